"""``arniqa score``: rows in input order, CSV/JSON, error rows and exit status, resume, small images."""

import csv
import errno
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from faults import one_line_error
from fresh_cli import fresh_call, fresh_cli
from local_http import sending, serving
from PIL import Image
from scoring_data import published_weights
from tiny_arniqa import tiny_checkpoint, tiny_onnx
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import EXIT_USAGE, app
from arniqa.inference import load
from arniqa.inference.listing import LIST_CHUNK
from arniqa.models import download
from arniqa.models.registry import PublishedFile


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """ARNIQA.pth in the published key layout and a TorchScript regressor_kadid10k.pth, random values."""
    return published_weights(tmp_path_factory.mktemp("weights"))


def _img(path, w, h, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(a)
    (img.convert("L") if mode == "L" else img).save(path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    (d / "sub").mkdir()
    _img(d / "b.png", 64, 48, 1)
    _img(d / "a.jpg", 50, 70, 2)
    _img(d / "sub" / "c.png", 64, 48, 3, mode="L")
    (d / "sub" / "broken.png").write_text("not an image")
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.txt").write_text("ignored: not an image extension")
    return d


def test_max_side_downscaling_is_one_warning_line_per_image(weights_dir, tmp_path):
    # before: Python's warning format, two lines per image naming concurrent/futures/thread.py:
    # '.../thread.py:58: UserWarning: a.png: 64x48 exceeds ...' and '  result = self.fn(*self.args, **self.kwargs)'
    _img(tmp_path / "a.png", 64, 48, 1)
    done, _ = fresh_cli("score", tmp_path / "a.png", "--weights-dir", weights_dir, "--protocol", "whole",
                        "--max-side", 32, "--engine", "torch")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.splitlines()[:-1] if not x.startswith("scoring ")]  # [-1]: fresh_cli's report
    assert lines.pop() == "1 of 1 image has a warning (see the note column of the rows on standard output)"
    expected = f"warning: {tmp_path / 'a.png'}: 64x48 exceeds max_side=32; downscaled to 32x24 before scoring"
    # a library's own warning may come too (timm 1.0.3 on torch 2.14: torch.jit.interface), as one line as well
    assert lines.count(expected) == 1 and all(line.startswith("warning: ") for line in lines), lines


def _run(args):
    result = CliRunner().invoke(app, ["score", *map(str, args)], catch_exceptions=False)
    return result


def _csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _rows(path, fmt):
    """The rows of a result file, read with the standard library alone."""
    if fmt == "csv":
        return _csv(path)
    text = path.read_text()
    return json.loads(text) if fmt == "json" else [json.loads(line) for line in text.split("\n")[:-1]]


def test_folder_to_csv_error_rows_and_exit_status(weights_dir, folder, tmp_path):
    out = tmp_path / "scores.csv"
    r = _run([folder, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out, "--batch-size", "2"])
    assert r.exit_code == 1  # two files could not be scored
    rows = _csv(out)
    names = [row["path"].replace(str(folder) + "/", "") for row in rows]
    assert names == ["a.jpg", "b.png", "empty.jpg", "sub/broken.png", "sub/c.png"]  # sorted walk, no .txt
    by = dict(zip(names, rows))
    assert "0 bytes" in by["empty.jpg"]["error"] and by["empty.jpg"]["score"] == ""
    assert "not an image" in by["sub/broken.png"]["error"]
    # the good rows equal the Python API's scores
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=weights_dir, protocol="whole")
    good = [folder / n for n in ("a.jpg", "b.png", "sub/c.png")]
    api = scorer.score(good)
    for n, s, raw in zip(("a.jpg", "b.png", "sub/c.png"), api.scores.tolist(), api.raw_scores.tolist()):
        assert by[n]["error"] == ""
        assert float(by[n]["score"]) == pytest.approx(s, abs=1e-5)
        assert float(by[n]["raw_score"]) == pytest.approx(raw, abs=1e-5)
        assert float(by[n]["score"]) == pytest.approx((float(by[n]["raw_score"]) - 1) / 4, abs=1e-6)


def test_json_keeps_argument_order_and_exit_zero(weights_dir, folder, tmp_path):
    out = tmp_path / "s.json"
    files = [folder / "sub" / "c.png", folder / "a.jpg", folder / "b.png"]
    r = _run([*files, "--weights-dir", weights_dir, "--protocol", "pyiqa", "-o", out, "--no-scale"])
    assert r.exit_code == 0
    rows = json.loads(out.read_text())
    assert [row["path"] for row in rows] == [str(f) for f in files]
    assert all(row["error"] is None and row["score"] == row["raw_score"] for row in rows)


def test_stdout_and_small_images_in_crops(weights_dir, tmp_path):
    small = _img(tmp_path / "small.png", 40, 30, 4)  # smaller than 224: zero-filled crops
    r = _run([small, "--weights-dir", weights_dir, "--format", "csv"])
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["path"] == str(small) and rows[0]["error"] == ""
    assert np.isfinite(float(rows[0]["score"]))


def test_dash_output_is_standard_output_and_a_closed_one_is_one_line(folder, tmp_path, monkeypatch):
    """`-o -` wrote a file named '-' in the current folder (`--files-from -` reads standard input); with standard
    output closed (`arniqa score photos >&-`) the run ended in a traceback (`'RowWriter' object has no attribute
    '_fd'`), exit 1."""
    import os
    import subprocess

    import tiny_score

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    r = _run([folder / "a.jpg", "--protocol", "whole", "-o", "-"])
    assert r.exit_code == 0 and not (tmp_path / "-").exists()
    [row] = list(csv.DictReader(io.StringIO(r.stdout)))
    assert row["path"] == str(folder / "a.jpg") and float(row["score"]) > 0
    p = subprocess.run(
        [sys.executable, "-m", "arniqa", "score", str(folder / "a.jpg")],
        preexec_fn=lambda: os.close(1),  # in the child: no standard output at all
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    assert p.returncode == EXIT_USAGE and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "error: standard output is closed; write the rows to a file with -o FILE (see arniqa score --help)"
    ]


def test_the_progress_bar_counts_images_in_a_noun_that_agrees(folder, tmp_path, monkeypatch):
    """The bar's last line said 'scoring ... 1 images' for one photo."""
    import tiny_score

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal: off one, no bar is drawn
    for photos, said in (([folder / "a.jpg"], " 1 image "), ([folder / "a.jpg", folder / "b.png"], " 2 images ")):
        r = _run([*photos, "--protocol", "whole", "-o", tmp_path / f"{len(photos)}.csv"])
        assert r.exit_code == 0 and said in r.stderr, r.stderr


def test_a_device_or_a_named_pipe_as_output_is_written_as_standard_output_is(folder, tmp_path, monkeypatch):
    """`-o /dev/null`, `-o /dev/stdout` (on a pipe) and `-o` a named pipe (rows streamed to another program) all
    stopped at once, exit 2: `Invalid argument (EINVAL)` (the file was cut to its last row, which a pipe cannot) or
    `no such folder (ENOENT)` (a lock file beside `pipe:[N]`). They are written into now, as standard output."""
    import os
    import threading

    import tiny_score

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)
    images = [folder / "a.jpg", folder / "b.png"]
    assert _run([*images, "--protocol", "whole", "-o", tmp_path / "file.csv"]).exit_code == 0
    assert _run([*images, "--protocol", "whole", "-o", "/dev/null"]).exit_code == 0
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert _run([*images, "--protocol", "whole", "-o", fifo]).exit_code == 0
    reader.join(timeout=60)
    assert got == [(tmp_path / "file.csv").read_bytes()]
    # no lock file left beside it; a settings file for the file alone, not the pipe
    assert sorted(os.listdir(tmp_path)) == [".file.csv.arniqa.json", "file.csv", "rows"]
    r = _run([*images, "--protocol", "whole", "-o", fifo, "--resume"])  # nothing to read back from a pipe
    assert r.exit_code == EXIT_USAGE and "--resume needs -o FILE, a file" in r.output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_as_output_is_one_line_exit_2(folder, tiny):
    """`-o /dev/full` said its one line, then closing the file flushed the failed row again: a traceback, exit 1."""
    r = _run([folder / "a.jpg", "--protocol", "whole", "-o", "/dev/full"])
    assert r.exit_code == EXIT_USAGE
    assert one_line_error(r.stderr) == (
        "error: /dev/full: disk full (ENOSPC) after 0 rows; write to a file (-o) to keep the rows and resume"
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_resume_appends_only_new_paths(weights_dir, folder, tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    first = [folder / "a.jpg", folder / "b.png"]
    assert _run([*first, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out]).exit_code == 0
    before = out.read_text()
    allfiles = [*first, folder / "sub" / "c.png"]
    r = _run([*allfiles, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 2 of 3" in r.stderr
    rows = _rows(out, fmt)
    assert [row["path"] for row in rows] == [str(f) for f in allfiles]
    if fmt != "json":
        assert out.read_text().startswith(before)  # old rows untouched, one header (JSON Lines: none)


def test_bad_options(weights_dir, folder, tmp_path):
    r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "--regressor", "imagenet"])
    assert r.exit_code == 2 and "unknown" in r.stderr
    r = _run([folder / "a.jpg", "--resume"])
    assert r.exit_code == EXIT_USAGE
    out = tmp_path / "s.parquet"  # was CSV under a Parquet name, exit 0: pandas.read_parquet then failed
    r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "-o", out])
    assert r.exit_code == EXIT_USAGE and not out.exists() and not any(tmp_path.iterdir())
    assert one_line_error(r.stderr) == (
        f"error: {out}: .parquet is the suffix of Parquet files, but arniqa score writes CSV, JSON or JSON Lines, "
        "uncompressed; name it .csv, .json or .jsonl, or give --format"
    )


def test_resume_after_interrupted_json(weights_dir, folder, tmp_path):
    out = tmp_path / "cut.json"
    a, b = folder / "a.jpg", folder / "b.png"
    # as left by a run killed while writing its second row: no closing bracket, a half line
    out.write_text('[\n{"path": "%s", "score": 0.5, "raw_score": 3.0, "error": null},\n{"path": "%s", "sc' % (a, b))
    r = _run([a, b, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0
    rows = json.loads(out.read_text())
    assert [row["path"] for row in rows] == [str(a), str(b)]
    assert rows[0]["score"] == 0.5 and rows[1]["error"] is None  # the old row kept, the cut one redone


def _smooth(w=72, h=56, seed=4):
    """A smooth RGB image (lossy phone codecs keep it close)."""
    import tempfile
    from pathlib import Path

    from imaging import write_photo

    with tempfile.TemporaryDirectory() as d:
        return Image.open(write_photo(Path(d) / "s.png", w, h, seed)).convert("RGB")


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_phone_formats_score_as_their_pixels_in_png(weights_dir, tmp_path, suffix):
    from PIL import features

    assert suffix != ".avif" or features.check("avif")
    if suffix == ".heic":
        pytest.importorskip("pillow_heif").register_heif_opener()  # to write the file; arniqa imports it lazily
    src = _smooth()
    phone = tmp_path / f"photo{suffix}"
    src.save(phone, quality=90, **({"chroma": 444} if suffix == ".heic" else {"subsampling": "4:4:4"}))
    with Image.open(phone) as im:  # what the codec gave back, independently of arniqa
        assert im.format in ("HEIF", "AVIF") and im.size == src.size
        decoded = np.asarray(im.convert("RGB"))
    assert np.abs(decoded.astype(int) - np.asarray(src).astype(int)).mean() < 3  # a lossy copy of the same image
    png = tmp_path / "same-pixels.png"
    Image.fromarray(decoded).save(png)
    out = tmp_path / "s.csv"
    r = _run([phone, png, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out])
    assert r.exit_code == 0, r.stderr
    rows = _csv(out)
    assert [row["error"] for row in rows] == ["", ""]
    assert float(rows[0]["score"]) == pytest.approx(float(rows[1]["score"]), abs=1e-6)


def test_avif_exif_orientation_is_applied(tmp_path):
    from arniqa.data.images import open_image

    src = _smooth(40, 24)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    src.save(tmp_path / "r.avif", quality=90, exif=exif.tobytes())
    assert open_image(tmp_path / "r.avif").size == (24, 40)
    assert open_image(tmp_path / "r.avif", exif=False).size == (40, 24)


def test_undecodable_files_in_folders_are_listed_once_named_ones_get_rows(weights_dir, tmp_path):
    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    pytest.importorskip("pillow_heif").register_heif_opener()  # to write the file
    _smooth().save(d / "a.heic", quality=90)
    _img(d / "b.png", 40, 32, 5)
    _img(d / "sub" / "x.png", 40, 32, 6).rename(d / "sub" / "no-extension")  # a PNG found by its header
    (d / "notes.txt").write_text("x")
    (d / "sub" / "more.TXT").write_text("y")
    (d / "data.xyz").write_bytes(b"\x00\x01")
    named = tmp_path / "named.xyz"
    named.write_bytes(b"\x00\x01")
    out = tmp_path / "s.csv"
    r = _run([d, named, "--weights-dir", weights_dir, "--protocol", "whole", "-o", out])
    assert r.exit_code == 1  # the named file could not be decoded
    rows = _csv(out)
    assert [row["path"].replace(str(tmp_path) + "/", "") for row in rows] == [
        "mixed/a.heic",
        "mixed/b.png",
        "mixed/sub/no-extension",
        "named.xyz",
    ]
    assert [bool(row["error"]) for row in rows] == [False, False, False, True]
    assert "not an image" in rows[3]["error"]
    assert r.stderr.count("skipped") == 1
    assert "skipped 3 files no decoder can open: 2 .txt, 1 .xyz" in r.stderr


def test_a_nas_librarys_thumbnails_are_not_scored_unless_named(tiny, tmp_path):
    """arniqa score library/ on a Synology share gave a row to each thumbnail in @eaDir, as a photo."""
    lib = tmp_path / "library"
    (lib / "@eaDir" / "a.jpg").mkdir(parents=True)
    _img(lib / "a.jpg", 40, 32, 1)
    thumb = _img(lib / "@eaDir" / "a.jpg" / "SYNOPHOTO_THUMB_XL.jpg", 40, 32, 2)
    out = tmp_path / "s.csv"
    r = _run([lib, thumb, "--protocol", "whole", "-o", out])
    assert r.exit_code == 0, r.stderr
    assert [row["path"] for row in _csv(out)] == [str(lib / "a.jpg"), str(thumb)]  # a file named is scored
    assert r.stderr.splitlines()[-1] == (
        f"skipped 1 system folder: {lib / '@eaDir'} (thumbnails, trash, snapshots: not entered; give it as a path "
        "to score it)"
    )
    r = _run([lib / "@eaDir", "--protocol", "whole", "-o", tmp_path / "t.csv"])  # a folder named is walked
    assert [row["path"] for row in _csv(tmp_path / "t.csv")] == [str(thumb)] and "skipped" not in r.stderr


@pytest.mark.parametrize(
    "data, said",
    [
        (None, r"Ray Data is not installed \([^)]+\); install it with: pip install 'arniqa\[ray\]'"),
        (  # pyarrow 26 on numpy 1.x: the advice to install Ray, which is installed, was all
            "raise ImportError('pyarrow requires NumPy 2.0 or newer, found 1.26.4')",
            r"Ray Data is installed but does not import \(pyarrow requires NumPy 2.0 or newer, found 1.26.4\); "
            "install a version of the package it names",
        ),
    ],
)
def test_ray_missing_or_not_importing_is_one_line_exit_2(weights_dir, folder, tmp_path, monkeypatch, data, said):
    loaded = [m for m in sys.modules if m == "ray" or m.startswith("ray.")]
    for name in loaded:  # put back after the test
        monkeypatch.delitem(sys.modules, name)
    if data is None:
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ModuleNotFoundError
    else:
        (tmp_path / "ray" / "data").mkdir(parents=True)
        (tmp_path / "ray" / "__init__.py").write_text("")
        (tmp_path / "ray" / "data" / "__init__.py").write_text(data)
        monkeypatch.syspath_prepend(str(tmp_path))
    try:
        res = _run([folder, "--weights-dir", weights_dir, "--ray", "local"])
    finally:  # the stand-in modules must not stay for the Ray tests
        for name in [m for m in sys.modules if (m == "ray" or m.startswith("ray.")) and m not in loaded]:
            del sys.modules[name]
    assert res.exit_code == EXIT_USAGE and res.output.count("\n") == 1, res.output
    assert re.fullmatch(f"error: {said}[^\n]*\n", res.output), res.output


def test_a_broken_download_is_one_line_exit_2_and_nothing_is_cached(folder, tmp_path, monkeypatch):
    """The published files from a local server: an answer that is not HTTP was a BadStatusLine traceback (exit
    1), a network's login page was cached as the regressor and then an unpickling error on every run. Both are
    now one line, exit 2, with nothing cached (tests/models/test_download.py: the real kinds of file pass)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARNIQA_CACHE", str(cache))
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    def garbage(handler):
        handler.wfile.write(b"hello\r\n\r\n")
        handler.close_connection = True

    page = b"<html><body>Sign in to the hotel network</body></html>"
    for answer, problem in [(garbage, "the answer is not HTTP"), (sending(page, len(page)), "it is a web page")]:
        with serving(answer) as base:
            for name in ("ARNIQA.pth", "regressor_kadid10k.pth"):
                monkeypatch.setitem(download.PUBLISHED, name, PublishedFile(base + name, None))
            r = _run([folder / "a.jpg", "--protocol", "whole"])
        assert r.exit_code == EXIT_USAGE and r.stderr.startswith(f"error: cannot download {base}")
        assert problem in r.stderr and r.stderr.count("\n") == 1
        assert not cache.exists() or list(cache.iterdir()) == []


def test_mistyped_paths_alone_are_one_line_before_any_download(weights_dir, folder, tmp_path, monkeypatch):
    # before: the published weights were downloaded (100 MB) and the model loaded, then an error row said so
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    asked = []
    with serving(lambda handler: asked.append(handler.path)) as base:
        for name in ("ARNIQA.pth", "regressor_kadid10k.pth"):
            monkeypatch.setitem(download.PUBLISHED, name, PublishedFile(base + name, None))
        typos = [tmp_path / f"phot{i}.jpg" for i in range(5)]
        r = _run([*typos, "--protocol", "whole"])
    assert (r.exit_code, asked) == (EXIT_USAGE, [])
    named = f"{typos[0]}, {typos[1]}, {typos[2]} (and 2 more)"
    assert r.stderr == f"error: {named}: no such file or folder; check the path (nothing to score)\n"
    # beside a path that is there, a mistyped one is still a row of its own (exit 1)
    out = tmp_path / "scores.csv"
    r = _run([typos[0], folder / "a.jpg", "--weights-dir", weights_dir, "--protocol", "whole", "-o", out])
    rows = _csv(out)
    assert r.exit_code == 1 and [row["path"] for row in rows] == [str(typos[0]), str(folder / "a.jpg")]
    assert rows[0]["error"] == "no such file; check the path" and rows[1]["score"]


def test_a_folder_named_that_holds_no_image_is_said_beside_the_rows(tiny, tmp_path):
    # before: a folder named like a photo (x.jpg/), an empty one, were passed over in silence, exit 0
    (tmp_path / "x.jpg").mkdir()
    (tmp_path / "empty").mkdir()
    good = _img(tmp_path / "a.png", 40, 32, 1)
    out = tmp_path / "s.csv"
    r = _run([tmp_path / "x.jpg", good, tmp_path / "empty", "--protocol", "whole", "-o", out])
    assert r.exit_code == 0 and [row["path"] for row in _csv(out)] == [str(good)]
    [line] = r.stderr.splitlines()
    assert line.startswith(f"warning: {tmp_path / 'x.jpg'}, {tmp_path / 'empty'}: no image files found; give ")
    folders = [tmp_path / f"d{i}" for i in range(5)]
    for d in folders:
        d.mkdir()
    r = _run([*folders, good, "--protocol", "whole", "-o", tmp_path / "t.csv"])
    assert f"{folders[0]}, {folders[1]}, {folders[2]} (and 2 more): no image files found" in r.stderr


@pytest.mark.parametrize(
    "args, said",
    [
        # the published model has none; before: "the model has ...; pass --explainer FILE (arniqa explain fit)", where
        # the API said "this model has ...; fit one with `arniqa explain fit` and pass explainer=FILE to load()"
        (
            ["--explain"],
            "this model has no explanation head; fit one with `arniqa explain fit` and pass --explainer FILE\n",
        ),
        (["--explainer", "head.safetensors"], "head.safetensors: no such"),
        (["--precision", "int8", "--calibrate", "photos"], "photos: no such folder"),
    ],
)
def test_option_mistakes_are_one_line_before_any_download(folder, tmp_path, monkeypatch, args, said):
    # before: the published weights were downloaded and the model loaded (or exported) first
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.chdir(tmp_path)
    asked = []
    with serving(lambda handler: asked.append(handler.path)) as base:
        for name in ("ARNIQA.pth", "regressor_kadid10k.pth"):
            monkeypatch.setitem(download.PUBLISHED, name, PublishedFile(base + name, None))
        r = _run([folder / "a.jpg", *args])
    assert (r.exit_code, asked) == (EXIT_USAGE, [])
    assert r.stderr.startswith(f"error: {said}") and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "option, message",
    [
        (["--protocol", "crop"], "unknown protocol 'crop'; expected one of ['crops', 'eval', 'pyiqa', 'whole']"),
        (["--engine", "onnx"], "--engine must be one of ('auto', 'torch', 'onnxruntime'), got 'onnx'"),
        (["--precision", "int4"], "--precision must be one of ('fp32', 'bf16', 'fp16', 'int8'), got 'int4'"),
        (["--device", "gpu"], "device gpu is not a device: choose auto, cpu, cuda, cuda:N or mps"),
        # before: said after the download, in load()'s names: "int8 runs on ONNX Runtime (engine='onnxruntime')"
        (["--engine", "torch", "--precision", "int8"], "--precision int8 runs on ONNX Runtime, not --engine torch"),
        (
            ["--engine", "onnxruntime", "--precision", "bf16"],
            "--precision bf16 applies to the torch engine; ONNX Runtime runs fp32 or int8",
        ),
        (
            ["--precision", "int8", "--channels-last"],
            "--channels-last applies to the torch engine; ONNX Runtime runs fp32 or int8",
        ),
    ],
)
def test_a_mistyped_choice_is_one_line_before_torch_and_any_download(tmp_path, monkeypatch, option, message):
    # before: torch was imported and the published model's files fetched first (a download with an empty cache,
    # refused here by a proxy that is not there), the choice was said after: 3.4-5.2 s and 530 MB
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    _img(tmp_path / "a.png", 32, 32, 0)
    done, report = fresh_cli("score", tmp_path / "a.png", *option)
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    said = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(said) == 1 and said[0].startswith(f"error: {message}"), said
    assert not list((tmp_path / "cache").rglob("*"))  # nothing fetched


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_nul_separated_list_scores_names_with_newlines_and_resumes(tmp_path, fmt):
    """`find -print0 | arniqa score --files-from -` was one 'no such file' line naming the whole list."""
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    names = [str(_img(tmp_path / n, 20, 16, i)) for i, n in enumerate(["b\nc.png", "a.png", "tab\t.png", "d.png"])]
    out = tmp_path / f"scores.{fmt}"
    common = ["score", "--checkpoint", str(model), "--protocol", "whole", "-o", str(out), "--files-from", "-"]
    listed = lambda paths: b"".join(os.fsencode(p) + b"\0" for p in paths)  # noqa: E731  (as find -print0)
    r = CliRunner().invoke(app, [*common, "-0"], input=listed(names[:3]))
    assert r.exit_code == 0, r.output
    rows = _rows(out, fmt)
    assert [row["path"] for row in rows] == names[:3] and not any(row["error"] for row in rows)
    r = CliRunner().invoke(app, [*common, "--null", "--resume"], input=listed(names))
    assert r.exit_code == 0 and "resuming: 3 of 4 paths" in r.stderr, r.output
    again = _rows(out, fmt)
    assert [row["path"] for row in again] == names and again[:3] == rows


def test_a_list_that_is_not_one_is_one_line_exit_2_before_anything_is_scored(tmp_path):
    """A NUL list without -0 (or a photo given as the list) was refused once the paths before it were scored."""
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    image = str(_img(tmp_path / "a.png", 20, 16, 1))
    out = tmp_path / "scores.csv"
    common = ["score", "--checkpoint", str(model), "--protocol", "whole", "-o", str(out)]
    for listing in ("-", image):
        r = CliRunner().invoke(app, [*common, image, "--files-from", listing], input=f"{image}\0{image}\0".encode())
        name = "standard input" if listing == "-" else listing
        assert r.exit_code == EXIT_USAGE and r.stderr.splitlines() == [
            f"error: {name}: holds a NUL byte, which no file name holds; for a NUL-separated list (find -print0) add -0"
        ]
        assert not out.exists()
    # a NUL beyond the list's first chunk is met as the run reaches it: the rows written so far are kept
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{image}\n".encode() + b"\n" * LIST_CHUNK + b"\0")
    r = CliRunner().invoke(app, [*common, image, "--files-from", str(listing)])
    assert r.exit_code == EXIT_USAGE and r.stderr.splitlines()[-1].startswith(f"error: {listing}: holds a NUL byte")
    assert [row["path"] for row in _csv(out)] == [image, image]
    for args, said in [
        (["--files-from", str(tmp_path / "missing")], f"error: {tmp_path / 'missing'}: no such file or directory; "),
        (["--files-from", str(tmp_path)], f"error: {tmp_path}: is a directory (a folder goes among PATHS); "),
        ([image, "-0"], "-0 (--null) goes with --files-from"),
    ]:
        r = CliRunner().invoke(app, [*common, *args])
        assert r.exit_code == EXIT_USAGE and said in r.stderr and "Traceback" not in r.output, r.output


def test_calibrate_without_int8_names_the_options(tmp_path):
    # before: 'error: calibrate goes with precision='int8'', load()'s names, not the options to type
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    image = str(_img(tmp_path / "a.png", 20, 16, 1))
    r = CliRunner().invoke(app, ["score", image, "--checkpoint", str(model), "--calibrate", str(tmp_path)])
    assert r.exit_code == EXIT_USAGE and "--calibrate goes with --precision int8" in r.stderr, r.output


def test_running_out_of_memory_loading_the_model_is_one_line_saying_what_to_try(
    weights_dir, folder, tmp_path, monkeypatch
):
    """The onnxruntime engine's first use exports the model to ONNX; under `ulimit -d 1500000` that ran out of
    memory and the run ended in a traceback, `RuntimeError: Could not allocate bytes object!` (raised from a
    MemoryError), exit 1. It is one line now, exit 2, with what to try for the options given."""
    import torch

    import arniqa.models.published

    def no_memory(*args, **kwargs):
        try:
            raise MemoryError
        except MemoryError as e:  # as torch's exporter raises it, from pybind11
            raise RuntimeError("Could not allocate bytes object!") from e

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.onnx, "export", no_memory)
    r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "--engine", "onnxruntime", "--device", "cpu"])
    assert r.exit_code == EXIT_USAGE and "Traceback" not in r.output
    assert r.stderr.splitlines() == [
        "error: arniqa-kadid10k: out of memory loading the model (RuntimeError); try --engine torch (it loads the "
        "model without exporting it to ONNX), or free memory or use a machine with more"
    ]
    assert not list((tmp_path / "cache").rglob("*.onnx*"))  # no half-written export left
    r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "--precision", "int8", "--device", "cpu"])
    assert r.exit_code == EXIT_USAGE and r.stderr.splitlines() == [
        "error: arniqa-kadid10k: out of memory loading the model (RuntimeError); leave out --precision int8 "
        "(quantizing takes more memory than scoring), or free memory or use a machine with more"
    ]
    monkeypatch.setattr(arniqa.models.published, "published_encoder", no_memory)  # the torch engine: no export
    r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "--engine", "torch", "--device", "cpu"])
    assert r.exit_code == EXIT_USAGE and r.stderr.splitlines() == [
        "error: arniqa-kadid10k: out of memory loading the model (RuntimeError); free memory or use a machine with more"
    ]


def test_running_out_of_memory_loading_a_cached_export_advises_no_other_engine(tmp_path, monkeypatch):
    """ONNX Runtime running out of memory loading a checkpoint's export already in the cache said `try --engine torch
    (it loads the model without exporting it to ONNX)`: there is no export left to save, and the torch engine takes
    more memory than ONNX Runtime on the export. Only more memory helps there."""
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    def no_memory(*args, **kwargs):  # ONNX Runtime's words under `ulimit -d 250000`
        raise RuntimeException(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Exception during initialization: std::bad_alloc"
        )

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    model = tiny_checkpoint(tmp_path / "tiny.safetensors", monkeypatch)
    args = [_img(tmp_path / "a.png", 20, 16, 1), "--checkpoint", model, "--engine", "onnxruntime", "--device", "cpu"]
    assert _run(args).exit_code == 0
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1  # the export, cached
    monkeypatch.setattr(onnxruntime, "InferenceSession", no_memory)
    r = _run(args)
    assert r.exit_code == EXIT_USAGE and r.stderr.splitlines() == [
        f"error: {model}: out of memory loading the model (MemoryError); free memory or use a machine with more"
    ]


def test_the_gpu_running_out_of_memory_loading_the_model_says_what_helps_there(weights_dir, folder, monkeypatch):
    """CUDA out of memory while the model loaded (moved to the GPU) got the advice for the host's memory, `free
    memory or use a machine with more`; the GPU's memory is what ran out: the CPU, or a GPU others leave free, helps.
    Simulated (no GPU here): PyTorch's OutOfMemoryError, and the CUDA runtime's own message outside its allocator."""
    import torch

    import arniqa.models.published

    for error in (
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of ..."),
        RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported ..."),
    ):

        def no_memory(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(arniqa.models.published, "published_encoder", no_memory)
        r = _run([folder / "a.jpg", "--weights-dir", weights_dir, "--engine", "torch", "--device", "cpu"])
        assert r.exit_code == EXIT_USAGE and r.stderr.splitlines() == [
            f"error: arniqa-kadid10k: out of memory loading the model ({type(error).__name__}); try --device cpu, or "
            "end other jobs on the GPU (nvidia-smi lists them), or use a GPU with more memory"
        ]


@pytest.fixture
def tiny(monkeypatch):
    """Runs score with the stand-in model (tests/tiny_score.py)."""
    import tiny_score

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)


REFUSED = "score into another file, or rerun without --resume to score everything again"


def _digest(data: bytes) -> str:
    """A one-file checkpoint's SHA-256 as the settings file records it: of its file's hex digest, first 24 digits."""
    import hashlib

    return hashlib.sha256(hashlib.sha256(data).hexdigest().encode()).hexdigest()[:24]


def test_resume_refuses_rows_of_another_checkpoint_content_at_the_same_path(tiny, folder, tmp_path):
    """A checkpoint retrained into the same file: --resume appended its scores to the old model's, exit 0."""
    ck, out = tmp_path / "model.safetensors", tmp_path / "s.csv"
    ck.write_bytes(b"night 1")
    args = ["--checkpoint", ck, "--protocol", "whole", "-o", out]
    assert _run([folder / "a.jpg", *args]).exit_code == 0
    before, settings = out.read_bytes(), (tmp_path / ".s.csv.arniqa.json").read_bytes()
    copy = tmp_path / "copy.safetensors"  # the same bytes under another name: the same model
    copy.write_bytes(b"night 1")
    r = _run([folder / "a.jpg", folder / "b.png", "--checkpoint", copy, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 1 of 2" in r.stderr, r.stderr
    before = out.read_bytes()
    ck.write_bytes(b"night 2")
    r = _run([folder / "a.jpg", folder / "sub" / "c.png", *args, "--resume"])
    assert r.exit_code == EXIT_USAGE
    assert one_line_error(r.stderr) == (
        f"error: {out}: its rows were scored with --checkpoint {copy} (SHA-256 {_digest(b'night 1')}) → {ck} "
        f"(SHA-256 {_digest(b'night 2')}); {REFUSED}"
    )
    assert out.read_bytes() == before  # nothing appended, and the record of the rows kept
    assert (tmp_path / ".s.csv.arniqa.json").read_bytes() != settings  # the copy's name, same digest
    assert json.loads((tmp_path / ".s.csv.arniqa.json").read_text())["settings"]["--checkpoint"]["name"] == str(copy)


@pytest.mark.parametrize(
    ("first", "then", "changed"),
    [
        (["--protocol", "whole"], ["--protocol", "crops"], "--protocol whole → crops"),
        ([], ["--no-scale"], "--no-scale off → on"),
        (["--max-side", "40"], ["--max-side", "30"], "--max-side 40 → 30"),
        ([], ["--precision", "bf16"], "--precision fp32 → bf16"),
    ],
)
def test_resume_refuses_rows_scored_with_other_settings(tiny, folder, tmp_path, first, then, changed):
    out = tmp_path / "s.jsonl"
    base = ["--protocol", "whole", "--engine", "torch", "-o", out]
    assert _run([folder / "a.jpg", *base, *first]).exit_code == 0
    before = out.read_bytes()
    r = _run([folder / "a.jpg", folder / "b.png", *base, *then, "--resume"])
    assert r.exit_code == EXIT_USAGE
    assert one_line_error(r.stderr) == f"error: {out}: its rows were scored with {changed}; {REFUSED}"
    assert out.read_bytes() == before
    r = _run([folder / "a.jpg", folder / "b.png", *base, *first, "--resume"])  # the same settings go on
    assert r.exit_code == 0 and "resuming: 1 of 2" in r.stderr


def test_max_side_under_the_crops_is_refused_before_the_model_loads(tiny, folder, tmp_path):
    """--max-side does nothing under crops and eval (224-px crops whatever the image's size), yet `arniqa score
    --max-side 1024` (crops, the default) took it without a word, as if it bounded something. It is refused now,
    exit 2, naming the protocol and whose it is, before anything is written, as --calibrate without int8 is; an
    ONNX file's own protocol decides when --protocol is not given."""
    out = tmp_path / "s.csv"
    for given, whose in [
        ([], "crops protocol (the default)"),
        (["--protocol", "crops"], "crops protocol"),
        (["--protocol", "eval"], "eval protocol"),
    ]:
        r = _run([folder / "a.jpg", *given, "--max-side", "30", "-o", out])
        assert r.exit_code == EXIT_USAGE and not out.exists()
        assert one_line_error(r.stderr) == (
            "error: --max-side 30 goes with --protocol whole or --protocol pyiqa; "
            f"the {whose} scores 224-px crops whatever the image's size, so leave it out"
        )
    assert _run([folder / "a.jpg", "--protocol", "whole", "--max-side", "30", "-o", out]).exit_code == 0


def test_max_side_goes_with_an_onnx_files_own_protocol(folder, tmp_path):
    """Without --protocol, an ONNX file's own protocol decides whether --max-side is taken (see above)."""
    onnx = tiny_onnx(tmp_path / "tiny.onnx")[2]  # exported with the whole protocol: --max-side goes with it
    r = _run([folder / "b.png", "--checkpoint", onnx, "--max-side", "32", "-o", tmp_path / "o.csv"])
    assert r.exit_code == 0, r.stderr
    assert _csv(tmp_path / "o.csv")[0]["note"] == "64x48 exceeds max_side=32; downscaled to 32x24 before scoring"
    sidecar = Path(f"{onnx}.json")
    sidecar.write_text(sidecar.read_text().replace('"protocol": "whole"', '"protocol": "crops"'))
    r = _run([folder / "b.png", "--checkpoint", onnx, "--max-side", "32", "-o", tmp_path / "o2.csv"])
    assert r.exit_code == EXIT_USAGE and "the crops protocol (the file's own) scores 224-px crops" in r.stderr


def test_resume_without_a_settings_file_warns_and_goes_on(tiny, folder, tmp_path):
    """A file of an older arniqa (or moved without its settings file) resumes as before, saying it is unchecked."""
    out = tmp_path / "s.csv"
    assert _run([folder / "a.jpg", "--protocol", "whole", "-o", out]).exit_code == 0
    settings = tmp_path / ".s.csv.arniqa.json"
    recorded = settings.read_bytes()
    settings.unlink()
    r = _run([folder / "a.jpg", folder / "b.png", "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 1 of 2" in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {out}: there is no .s.csv.arniqa.json beside it (an older arniqa wrote it, or it was moved "
        "without it), so the settings its rows were scored with could not be checked; this run's are recorded from "
        "now on"
    ]
    assert settings.read_bytes() == recorded


def test_a_result_file_that_cannot_be_opened_keeps_the_record_of_its_rows(tiny, folder, tmp_path, monkeypatch):
    """A read-only result file in a writable folder, scored into under other settings: the new settings replaced
    the record of its old rows before the file was refused, and a later --resume checked against the wrong one."""
    out, side = tmp_path / "s.csv", tmp_path / ".s.csv.arniqa.json"
    assert _run([folder / "a.jpg", "--protocol", "whole", "-o", out]).exit_code == 0
    rows, record = out.read_bytes(), side.read_bytes()
    out.chmod(0o444)
    real = os.open

    def refusing(path, flags, *args, **kwargs):  # as the kernel refuses anyone but root, who opens any file
        if flags & (os.O_WRONLY | os.O_RDWR) and os.path.isfile(path) and not os.stat(path).st_mode & 0o222:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refusing)
        r = _run([folder / "a.jpg", "--protocol", "crops", "-o", out])
    assert r.exit_code == EXIT_USAGE
    assert r.stderr == f"error: {out}: cannot write it: permission denied (EACCES); choose an output you can write to\n"
    assert out.read_bytes() == rows and side.read_bytes() == record
    out.chmod(0o644)
    r = _run([folder / "a.jpg", folder / "b.png", "--protocol", "crops", "-o", out, "--resume"])
    assert r.exit_code == EXIT_USAGE
    assert one_line_error(r.stderr) == f"error: {out}: its rows were scored with --protocol whole → crops; {REFUSED}"


def test_an_output_that_is_a_folder_is_one_error_line(tiny, folder, tmp_path):
    """The progress bar's "scoring 0 images" came before the refusal (or after it, off a terminal)."""
    out = tmp_path / "s.csv"
    out.mkdir()
    r = _run([folder / "a.jpg", "--protocol", "whole", "-o", out])
    assert r.exit_code == EXIT_USAGE
    assert r.stderr == f"error: {out}: cannot write it: is a folder (EISDIR); choose an output you can write to\n"
    assert os.listdir(tmp_path) == ["s.csv"] and os.listdir(out) == []  # no settings file, no lock file left


def test_an_output_in_a_folder_not_there_makes_the_folder_as_html_does(tiny, folder, tmp_path):
    """`-o results/scores.csv` was `cannot write it: no such folder (ENOENT)` while `--html results/r.html` made
    results/ (docs/usage.md, *Outputs*: a verb makes its output's folder); a run that stops leaves none."""
    out = tmp_path / "results" / "run1" / "scores.csv"
    r = _run([folder / "a.jpg", "--protocol", "whole", "-o", out])
    assert r.exit_code == 0, r.stderr
    assert [row["path"] for row in _csv(out)] == [str(folder / "a.jpg")]
    r = _run([tmp_path / "typo.jpg", "--protocol", "whole", "-o", tmp_path / "other" / "scores.csv"])
    assert r.exit_code == EXIT_USAGE
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("name", ["arniqa", "arniqa-koniq", "ARNIQA-KADID10K"])
def test_a_model_name_given_as_a_path_says_to_give_it_as_regressor(tiny, folder, tmp_path, monkeypatch, name):
    """pyiqa's habit, `pyiqa arniqa -t photos/`: `arniqa score arniqa photos/` scored photos/ and gave `arniqa` the
    row `no such file; check the path`, exit 1; it stops before scoring now. A file of that name is scored."""
    monkeypatch.chdir(tmp_path)
    r = _run([name, folder / "a.jpg", "-o", "s.csv"])
    assert r.exit_code == EXIT_USAGE
    assert (
        r.stderr
        == f"error: {name}: no such file or folder, but a model's name; to score with it, give --regressor {name}\n"
    )
    assert not (tmp_path / "s.csv").exists()
    (tmp_path / name).write_bytes((folder / "a.jpg").read_bytes())
    r = _run([name, "--protocol", "whole", "-o", "s.csv"])
    assert r.exit_code == 0, r.stderr
    assert [row["path"] for row in _csv(tmp_path / "s.csv")] == [name]


def test_an_html_report_that_is_a_folder_is_one_error_line_before_scoring(tiny, folder, tmp_path):
    """--html DIR: every image was scored and its rows written, then the report failed after the progress bar."""
    (tmp_path / "r.html").mkdir()
    r = _run([folder / "a.jpg", "--protocol", "whole", "-o", tmp_path / "s.csv", "--html", tmp_path / "r.html"])
    assert r.exit_code == EXIT_USAGE
    assert r.stderr == (
        f"error: {tmp_path / 'r.html'}: cannot write it: is a folder (EISDIR); choose an output you can write to\n"
    )
    assert os.listdir(tmp_path) == ["r.html"]


def test_an_html_report_says_what_it_lacks_as_arniqa_report_does(tiny, folder, tmp_path, monkeypatch):
    """`score shard.tar --html r.html` wrote a report of tar members, which have no thumbnail, without the warning
    `arniqa report` gives of the same rows; both verbs say a report's warnings by one function now."""
    from scoring_data import write_shard

    import arniqa.cli.report  # noqa: F401  (registers the verb)

    monkeypatch.chdir(tmp_path)
    write_shard(tmp_path / "shard.tar", {"a.jpg": (folder / "a.jpg").read_bytes()})
    r = _run(["shard.tar", folder / "b.png", "--protocol", "whole", "-o", "s.csv", "--html", "r.html"])
    assert r.exit_code == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert said == [
        "warning: 1 scored image is not a file from here, so it has no thumbnail (paths relative to the folder "
        "arniqa score ran in, or tar members): run arniqa report from that folder"
    ]
    r = CliRunner().invoke(app, ["report", "s.csv", "-o", "r2.html"])
    assert r.exit_code == 0 and r.stderr.splitlines() == said


def test_no_settings_file_is_left_beside_an_output_that_is_refused(tiny, folder, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes((folder / "b.png").read_bytes())
    r = _run([folder / "a.jpg", "-o", photo, "--format", "csv"])
    assert r.exit_code == EXIT_USAGE and sorted(os.listdir(tmp_path)) == ["photo.png"]


def test_resume_refuses_rows_of_a_published_regressor_that_changed(weights_dir, folder, tmp_path):
    """The published files replaced in the weights folder (a new release): their rows are another model's."""
    import hashlib
    import shutil

    import torch
    from scoring_data import save_scripted_regressor

    weights, out = tmp_path / "weights", tmp_path / "s.csv"
    shutil.copytree(weights_dir, weights)
    args = ["--weights-dir", weights, "--protocol", "whole", "--engine", "torch", "-o", out]
    assert _run([folder / "a.jpg", *args]).exit_code == 0
    regressor = weights / "regressor_kadid10k.pth"
    old = hashlib.sha256(regressor.read_bytes()).hexdigest()[:24]
    save_scripted_regressor(regressor, torch.ones(1, 4096) / 4096, torch.tensor(2.0))
    new = hashlib.sha256(regressor.read_bytes()).hexdigest()[:24]
    r = _run([folder / "a.jpg", folder / "b.png", *args, "--resume"])
    assert r.exit_code == EXIT_USAGE
    assert one_line_error(r.stderr) == (
        f"error: {out}: its rows were scored with --regressor regressor_kadid10k.pth (SHA-256 {old}) → "
        f"regressor_kadid10k.pth (SHA-256 {new}); {REFUSED}"
    )


def test_resume_whose_rows_name_no_input_warns_once(tiny, folder, tmp_path, monkeypatch):
    """Run from another folder (relative paths, then absolute ones): every image was scored again and appended,
    exit 0, no word."""
    out = tmp_path / "s.csv"
    monkeypatch.chdir(folder)
    assert _run(["a.jpg", "b.png", "--protocol", "whole", "-o", out]).exit_code == 0
    r = _run([folder / "a.jpg", folder / "b.png", "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {out}: none of its 2 rows names an input; paths are matched as written (photos/a.jpg, "
        "./photos/a.jpg and /nas/photos/a.jpg differ), so all 2 inputs were scored again and appended: give the "
        "paths as the run that wrote it did, from the same folder"
    ]
    r = _run(["a.jpg", "sub/c.png", "--protocol", "whole", "-o", out, "--resume"])  # one row names an input
    assert r.exit_code == 0 and "warning:" not in r.stderr


def test_resume_takes_the_same_calibration_photos_by_any_path_and_refuses_others(tmp_path, monkeypatch):
    """--calibrate was recorded by its path as typed: the same folder given as an absolute path, or moved, was
    refused by --resume, and other photos put at the same path were taken."""
    from tiny_arniqa import tiny_onnx

    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    Path("cal").mkdir()
    photo = _img(Path("cal") / "a.png", 64, 48, 7).read_bytes()
    images = [_img(tmp_path / f"{i}.png", 40, 32, i) for i in range(4)]
    base = ["--checkpoint", fp32, "--precision", "int8", "-o", "s.csv", "--resume"]
    assert _run([images[0], *base, "--calibrate", "cal"]).exit_code == 0
    r = _run([*images[:2], *base, "--calibrate", tmp_path / "cal"])  # the same folder, by its absolute path
    assert r.exit_code == 0 and "resuming: 1 of 2" in r.stderr, r.stderr
    Path("cal").rename("moved")
    r = _run([*images[:3], *base, "--calibrate", "moved"])
    assert r.exit_code == 0 and "resuming: 2 of 3" in r.stderr, r.stderr
    Path("cal").mkdir()
    other = _img(Path("cal") / "a.png", 64, 48, 8).read_bytes()  # other photos at the first path
    before = Path("s.csv").read_bytes()
    r = _run([*images, *base, "--calibrate", "cal"])
    assert r.exit_code == EXIT_USAGE and Path("s.csv").read_bytes() == before
    assert one_line_error(r.stderr) == (
        f"error: s.csv: its rows were scored with --calibrate moved (SHA-256 {_digest(photo)}) → cal (SHA-256 "
        f"{_digest(other)}); {REFUSED}"
    )


def test_off_a_terminal_a_run_that_scored_everything_writes_nothing_on_stderr(tiny, folder, tmp_path, monkeypatch):
    """`arniqa score photos/ -o s.csv 2> log`: the bar's last frame (`scoring ━━━━ 2 images 0:00:00`) went into the
    log, where the other verbs drew no bar off a terminal; one rule now (docs/usage.md, *Progress bars*)."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    r = _run([folder / "a.jpg", folder / "b.png", "--protocol", "whole", "-o", tmp_path / "s.csv"])
    assert r.exit_code == 0 and r.stderr == ""
    assert len(_csv(tmp_path / "s.csv")) == 2


def test_a_named_link_loop_or_link_to_nothing_is_said_as_such_not_as_no_such_file(tmp_path, monkeypatch):
    """`ln -s loop loop; arniqa score loop` said 'loop: no such file or folder; check the path', though ls lists it."""
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", "loop")
    os.symlink("gone", "dangling")
    r = _run(["loop"])
    assert r.exit_code == EXIT_USAGE
    assert r.stderr == (
        "error: loop: a symbolic link loop (following it leads back to it); make the link point to the file, or "
        "remove it (nothing to score)\n"
    )
    r = _run(["missing.jpg", "loop", "dangling"])
    assert r.exit_code == EXIT_USAGE
    assert r.stderr == (
        "error: missing.jpg: no such file or folder, loop: a symbolic link loop (following it leads back to it), "
        "dangling: a symbolic link to nothing (what it points to is not there); check each path (nothing to score)\n"
    )
    r = _run(["missing.jpg", "also-missing.jpg"])  # as before
    assert (
        r.stderr == "error: missing.jpg, also-missing.jpg: no such file or folder; check the path (nothing to score)\n"
    )


def test_retry_failed_keeps_the_permissions_of_the_file_it_rewrites(tiny, tmp_path):
    """A scores.csv kept at 0600 (it names private photos) came back 0644 from --resume --retry-failed."""
    photos = tmp_path / "photos"
    photos.mkdir()
    whole = _img(photos / "a.png", 40, 30, 0).read_bytes()
    (photos / "a.png").write_bytes(whole[:40])  # cut short by a copy
    out = tmp_path / "s.csv"
    assert _run([photos, "--protocol", "whole", "-o", out]).exit_code == 1
    out.chmod(0o600)
    (photos / "a.png").write_bytes(whole)
    r = _run([photos, "--protocol", "whole", "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == 0, r.output
    assert not _csv(out)[0]["error"] and out.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_retry_failed_scores_the_error_rows_again_in_their_place(tiny, tmp_path, fmt):
    """--resume skipped a failed row for good (a file cut by a copy, then copied again, stayed an error until a run
    without --resume scored everything again). --resume --retry-failed scores the paths of error rows again, each
    new row in its failed row's place: the file is then the one a run without the fault writes."""
    photos = tmp_path / "photos"
    photos.mkdir()
    whole = {name: _img(photos / f"{name}.png", 40, 30, seed).read_bytes() for seed, name in enumerate("abce")}
    for name in "be":  # cut short by a copy
        (photos / f"{name}.png").write_bytes(whole[name][:40])
    out, base = tmp_path / f"s.{fmt}", ["--protocol", "whole", "--format", fmt]
    assert _run([photos, *base, "-o", out]).exit_code == 1
    kept = [line for line in out.read_bytes().splitlines() if b"a.png" in line or b"c.png" in line]

    r = _run([photos, *base, "--protocol", "crops", "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == EXIT_USAGE and "its rows were scored with --protocol whole → crops" in r.stderr
    (photos / "b.png").write_bytes(whole["b"])  # copied again; e still cut
    r = _run([photos, tmp_path / "d.png", *base, "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == 1, r.output
    assert r.stderr == (
        f"resuming: 4 of 5 paths already in {out} (2 failed, scored again)\n"
        "2 of 5 images could not be scored (see the error column)\n"
    )
    rows = _rows(out, fmt)
    assert [(Path(row["path"]).name, bool(row["error"])) for row in rows] == [
        ("a.png", False),
        ("b.png", False),
        ("c.png", False),
        ("e.png", True),  # still cut: still one error row
        ("d.png", True),
    ]
    lines = out.read_bytes().splitlines()
    assert all(line in lines for line in kept)  # the other rows as they were

    (photos / "e.png").write_bytes(whole["e"])
    r = _run([photos, *base, "-o", out, "--resume"])  # without --retry-failed: a failed row is kept, exit 1
    assert r.exit_code == 1 and _rows(out, fmt)[3]["error"]
    r = _run([photos, *base, "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == 0, r.output
    fresh = tmp_path / f"fresh.{fmt}"
    assert _run([photos, *base, "-o", fresh]).exit_code == 0
    expected = _rows(fresh, fmt)
    assert [{**row, "score": pytest.approx(float(row["score"]))} for row in _rows(out, fmt)[:4]] == [
        {**row, "score": pytest.approx(float(row["score"]))} for row in expected
    ]
    r = _run([photos, *base, "-o", out, "--retry-failed"])
    assert r.exit_code == EXIT_USAGE and "--retry-failed goes with --resume" in r.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_path_given_twice_is_resumed_to_the_rows_a_fresh_run_writes(tiny, tmp_path, fmt):
    """A list naming a photo twice has two rows in a fresh run. Resumed from rows in another order than the list
    (not a prefix of it), both items matched the photo's one row: a plain --resume left one row for the two, and
    --retry-failed scored it twice with one error row to put the new rows in, the second lost. Each row now matches
    one item: the rows of a fresh run, once each (the kept rows in their place, the new ones appended)."""
    whole = _img(tmp_path / "a.png", 40, 30, 0).read_bytes()
    b, c = _img(tmp_path / "b.png", 40, 30, 1), _img(tmp_path / "c.png", 40, 30, 2)
    a, listing = tmp_path / "a.png", tmp_path / "list.txt"
    listing.write_text(f"{a}\n{b}\n{a}\n")  # a twice
    base = ["--protocol", "whole", "--format", fmt]
    fresh = tmp_path / f"fresh.{fmt}"
    assert _run(["--files-from", listing, *base, "-o", fresh]).exit_code == 0
    expected = sorted((row["path"], str(row["score"])) for row in _rows(fresh, fmt))
    for earlier, resumed in ([[a, b], "in step"], [[c, b, a], "out of step"]):  # in step: a run stopped after b
        for retry in ([], ["--retry-failed"]):
            out = tmp_path / f"{resumed} {retry}.{fmt}".replace(" ", "-")
            a.write_bytes(whole[:40])  # cut short by a copy: an error row
            assert _run([*earlier, *base, "-o", out]).exit_code == 1
            a.write_bytes(whole)
            r = _run(["--files-from", listing, *base, "-o", out, "--resume", *retry])
            rows = _rows(out, fmt)
            mine = sorted((row["path"], str(row["score"])) for row in rows if row["path"] != str(c))
            if retry:  # the error rows scored again: a fresh run's rows, and c's kept
                assert r.exit_code == 0 and mine == expected, (resumed, rows)
            else:  # each a's error row kept, failed; a second a new in step or not
                assert r.exit_code == 1, (resumed, r.stderr)
                got = sorted((path, score in ("", "None")) for path, score in mine)
                assert got == [(str(a), False), (str(a), True), (str(b), False)], (resumed, rows)
            assert len(rows) == 3 + (resumed == "out of step"), rows


def test_retry_failed_sets_the_retried_rows_aside_on_disk_not_in_memory(tmp_path):
    """--resume --retry-failed held every retried row in memory until the end: 118 MB at 200,000 failed rows
    (benchmarks/retry_memory.py). They are set aside on disk: its peak is that of a run scoring the same paths
    afresh, and the set of the failed rows' paths (as a plain --resume holds); the file comes back with every row
    in its place."""
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    image = _img(tmp_path / "a.png", 16, 12, 0)
    n = 60_000
    paths = [str(image), *(str(tmp_path / "gone" / f"{i}.png") for i in range(n - 1))]  # then files not there
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in paths))
    args = ["--files-from", listing, "--checkpoint", model, "--protocol", "whole", "--batch-size", 64]
    done, afresh = fresh_cli("score", *args, "-o", tmp_path / "afresh.csv", timeout=600)
    assert done.returncode == 1, done.stderr
    out = tmp_path / "scores.csv"
    rows = [[path, "", "", "image file is truncated"] for path in paths]
    rows[1] = [paths[1], "0.5", "3.0", ""]  # a scored row among them, left as it is
    with open(out, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([["path", "score", "raw_score", "error"], *rows])
    done, retried = fresh_cli("score", *args, "-o", out, "--resume", "--retry-failed", timeout=600)
    assert done.returncode == 1, done.stderr
    got = _csv(out)
    assert [row["path"] for row in got] == paths
    assert got[0]["score"] and not got[0]["error"]  # scored again, in its place
    assert (got[1]["score"], got[1]["error"]) == ("0.5", "")
    assert all(row["error"].startswith("no such file") for row in got[2:])  # retried: the new error
    # the set of 60,000 paths takes about 9 MB; held in memory, their rows took about 30 MB more
    assert retried["peak_kb"] - afresh["peak_kb"] < 16 * 1024, (afresh, retried)


def _failed_rows_bytes_more() -> float:
    """How many bytes more the traced peak of score --resume over 20,000 rows is when 19,999 of them failed than when
    all were scored, here, with the stand-in model; each run's end line checked."""
    import tracemalloc

    import tiny_score

    arniqa.inference.load = tiny_score.load  # a fresh process of its own: nothing to undo
    here = Path.cwd()
    image = _img(here / "a.png", 16, 12, 0)
    n = 20_000
    paths = [str(image), *(str(here / "gone" / f"{i:05d}.png") for i in range(n - 1))]  # then files not there
    listing = here / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in paths))
    out = here / "scores.csv"
    args = ["--files-from", listing, "--protocol", "whole", "-o", out, "--resume"]
    peaks = {}
    for kind in ("scored", "failed", "failed in another order", "scored", "failed"):  # the first runs: the imports
        rows = [
            [path, "0.5", "3.0", ""] if kind == "scored" or i == 0 else [path, "", "", "no such file"]
            for i, path in enumerate(paths)
        ]
        with open(out, "w", newline="") as f:
            rows = rows[::-1] if "order" in kind else rows
            csv.writer(f, lineterminator="\n").writerows([["path", "score", "raw_score", "error"], *rows])
        tracemalloc.start()
        r = _run(args)
        peaks[kind] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert out.read_bytes().count(b"\n") == n + 1  # nothing scored again
        if kind == "scored":
            assert r.exit_code == 0 and r.stderr.endswith(f"resuming: {n} of {n} paths already in {out}\n"), r.output
        else:
            assert r.exit_code == 1 and r.stderr == (
                f"resuming: {n} of {n} paths already in {out}\n"
                f"{n - 1} of {n} images could not be scored, {n - 1} of them in the rows resumed (see the error "
                "column)\n"
            ), r.output
    return peaks["failed"] - peaks["scored"]


def test_resume_without_retry_failed_holds_no_set_of_the_failed_paths(tmp_path):
    """A plain --resume held the paths of every error row in a set (26 MB at 200,000 rows,
    benchmarks/retry_memory.py) only to count the failed rows it skipped. Each row now says whether it failed as it
    is matched: over 20,000 error rows it holds as little as over 20,000 scored rows (Python's allocations traced in a
    fresh process: in the suite's, a run measured 8.6 MB more), and still counts them, in step with the inputs or
    not."""
    # the set of 20,000 paths took 4.8 MB more (old code: 5.75 MB against 0.91)
    assert fresh_call(__file__, "_failed_rows_bytes_more", tmp_path) < 512 * 1024


def _retry_failed_bytes_per_row() -> float:
    """The traced peak of score --resume --retry-failed per earlier failed row more (1,000 then 21,000), here, with
    the stand-in model; each row back in its place."""
    import tracemalloc

    import tiny_score

    arniqa.inference.load = tiny_score.load  # a fresh process of its own: nothing to undo
    here = Path.cwd()
    image = _img(here / "a.png", 16, 12, 0)
    peaks = {}
    for n in (1_000, 1_000, 21_000):  # the first run: the imports
        paths = [str(image), *(str(here / "gone" / f"{i:05d}.png") for i in range(n - 1))]  # then not there
        listing = here / "list.txt"
        listing.write_text("".join(f"{path}\n" for path in paths))
        out = here / "scores.csv"
        with open(out, "w", newline="") as f:
            rows = [[path, "", "", "image file is truncated"] for path in paths]
            csv.writer(f, lineterminator="\n").writerows([["path", "score", "raw_score", "error"], *rows])
        args = ["--files-from", listing, "--protocol", "whole", "-o", out, "--resume", "--retry-failed"]
        tracemalloc.start()
        r = _run(args)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert r.exit_code == 1, r.output
        got = _csv(out)
        assert [row["path"] for row in got] == paths and got[0]["score"] and not got[0]["error"]
        assert all(row["error"].startswith("no such file") for row in got[1:])  # scored again: the new error
    return (peaks[21_000] - peaks[1_000]) / 20_000


def test_retry_failed_holds_only_the_failed_paths_listed_and_not_yet_scored(tmp_path):
    """--resume --retry-failed held the paths of every error row in a set until the end, to know which rows to set
    aside (26 MB at 200,000 rows, benchmarks/retry_memory.py). The rows come in input order, so only the failed
    paths listed and not yet scored are held, in a queue: 20,000 more failed rows take 13 bytes each (Python's
    allocations traced in a fresh process; 250 before), and each row still comes back in its place."""
    assert fresh_call(__file__, "_retry_failed_bytes_per_row", tmp_path) < 40  # 13 bytes; 250 before


def test_a_path_that_cannot_be_read_is_its_own_row_and_the_others_are_scored(tiny, tmp_path):
    """A photo without read permission among the paths stopped the whole run before any was scored, with click's
    line (`error: Invalid value for 'PATHS': path 'a.png' is not readable`, exit 2), as did a write-only -o file.
    It is its own error row now, the others scored (exit 1); the -o file is written."""
    locked = _img(tmp_path / "a.png", 40, 30, 0)
    fine = _img(tmp_path / "b.png", 40, 30, 1)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("this user reads any file (root)")
    out = tmp_path / "s.csv"
    out.write_text("path,score,raw_score,error\n")
    out.chmod(0o200)
    r = _run([locked, fine, "--protocol", "whole", "-o", out])
    assert r.exit_code == 1, r.output
    out.chmod(0o600)
    rows = _csv(out)
    assert [row["path"] for row in rows] == [str(locked), str(fine)]
    assert rows[0]["error"] == "cannot read file (Permission denied); check its permissions" and rows[1]["score"]


def test_a_path_the_system_says_cannot_be_read_does_not_stop_the_run(tiny, tmp_path, monkeypatch):
    """The test above as root, who reads any file: click's readable check asks os.access, denied here for a.png (and
    the -o file); the run is not stopped before scoring (exit 2, click's line), every path gets its row."""
    locked = _img(tmp_path / "a.png", 40, 30, 0)
    fine = _img(tmp_path / "b.png", 40, 30, 1)
    out = tmp_path / "s.csv"
    denied = {str(locked), str(out)}
    access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: not (str(p) in denied and mode & os.R_OK) and access(p, mode, **kw)
    )
    r = _run([locked, fine, "--protocol", "whole", "-o", out])
    assert r.exit_code == 0, r.output
    assert [row["path"] for row in _csv(out)] == [str(locked), str(fine)]


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/dev/stderr", "/dev/fd/2"])
def test_o_standard_output_or_error_redirected_to_a_file_writes_the_rows_there_and_nothing_beside_it(tmp_path, name):
    """`arniqa score PHOTOS -o /dev/stdout > s.csv` took /dev/stdout (a link to the file) for a file of its own: its
    lock and settings files were made in /dev, beside the link (/dev/.stdout.arniqa.json left there as root; for
    other users /dev cannot be written: exit 2). It writes to standard output now, as without -o. So did
    `-o /dev/stderr 2> s.csv` (the file cut when opened again: the rows and the lines on stderr overwrote each
    other), and `-o /dev/fd/1` or `/proc/self/fd/1` was exit 2 for all users (no settings file in /proc/self/fd).
    Any descriptor named is written as a stream now: no lock, no settings file, the rows where it writes."""
    import subprocess

    import tiny_score

    if not os.path.exists(name):
        pytest.skip(f"no {name}")
    photo = _img(tmp_path / "a.png", 40, 30, 0)
    settings = Path(name).with_name(f".{Path(name).name}.arniqa.json")
    existed = settings.exists()
    out = tmp_path / "s.csv"
    stdout = name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")
    with open(out, "wb") as f:
        f.write(b"kept\n")  # written before (`>> s.csv`): the rows follow it
        f.flush()
        done = subprocess.run(
            [sys.executable, tiny_score.__file__, "score", photo, "--protocol", "whole", "-o", name],
            stdout=f if stdout else subprocess.PIPE,
            stderr=subprocess.PIPE if stdout else f,
            text=True,
            timeout=300,
        )
    try:
        assert done.returncode == 0, (done.stderr, out.read_text())
        assert out.read_text().splitlines()[:2] == ["kept", "path,score,raw_score,error,note"]
        assert [row["path"] for row in csv.DictReader(out.read_text().splitlines()[1:])] == [str(photo)]
        assert sorted(os.listdir(tmp_path)) == ["a.png", "s.csv"]  # no settings file, no lock beside the file
        assert existed or not settings.exists()
    finally:
        if not existed:
            settings.unlink(missing_ok=True)  # the old code's, as root


def test_a_checkpoint_the_system_says_cannot_be_read_is_read_by_the_verb(tmp_path, monkeypatch):
    """As root, with click's readable check denied through os.access for the --checkpoint ONNX file: the run stopped
    before loading with click's 'Invalid value for --checkpoint: File ... is not readable' (exit 2, no advice); the
    verb reads the file itself (root may), and scores."""
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    photo = _img(tmp_path / "a.png", 40, 30, 0)
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: str(p) != str(model) and access(p, mode, **kw))
    r = _run([photo, "--checkpoint", model, "--protocol", "whole", "-o", tmp_path / "s.csv"])
    assert r.exit_code == 0, r.output
    assert [row["path"] for row in _csv(tmp_path / "s.csv")] == [str(photo)]


@pytest.mark.parametrize("kind", ["onnx", "safetensors"])
def test_a_checkpoint_that_cannot_be_read_is_one_line_saying_to_check_its_permissions(tmp_path, monkeypatch, kind):
    """An unreadable ONNX file was 'not an ONNX model ONNX Runtime can load (... system error number 13); give the
    file that arniqa export wrote', a safetensors file 'not a safetensors checkpoint ([Errno 13] Permission
    denied: ...)': the file blamed, nothing on permissions. (As root, who reads any file, the refusal is raised where
    the file is opened: Python's open for ONNX, safetensors' safe_open.)"""
    import builtins

    import arniqa.models.checkpoint as checkpoint

    photo = _img(tmp_path / "a.png", 40, 30, 0)
    if kind == "onnx":
        _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
        real_open = builtins.open

        def denied(file, *args, **kwargs):
            if str(file) == str(model):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denied)
    else:
        model = tmp_path / "model.safetensors"
        model.write_bytes(b"x")

        def denied(file, *args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))

        monkeypatch.setattr(checkpoint, "safe_open", denied)
    r = CliRunner().invoke(app, ["score", str(photo), "--checkpoint", str(model), "--protocol", "whole"])
    assert r.exit_code == EXIT_USAGE, r.output
    assert one_line_error(r.stderr) == f"error: {model}: cannot read file (Permission denied); check its permissions"


def test_a_library_of_animated_and_oversized_images_gets_five_warning_lines_of_each_kind_and_a_sum(tmp_path):
    """12 animated GIFs and 12 images over --max-side printed 24 warning lines (one per file: 10,000 GIFs buried
    the run's last lines in 10,000). Now the first 5 of each kind, the end lines, then one line per kind for the
    rest; ARNIQA_WARNINGS=all names every one."""
    import subprocess

    import tiny_score

    rng = np.random.default_rng(0)
    for k in range(12):
        a, b = (Image.fromarray(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)) for _ in range(2))
        a.save(tmp_path / f"a{k:02d}.gif", save_all=True, append_images=[b])
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"b{k:02d}.png")
    (tmp_path / "c.png").write_text("not an image")
    here = Path(tiny_score.__file__).parent
    env = {**os.environ, "PYTHONPATH": f"{here.parent / 'src'}{os.pathsep}{here}"}
    env.pop("ARNIQA_WARNINGS", None)
    command = [sys.executable, tiny_score.__file__, "score", tmp_path, "--protocol", "whole", "--max-side", 32]
    command += ["-o", tmp_path / "s.csv"]
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    gif = ": an animated or multi-page image; its first frame is scored, the others are not"
    named = [f"warning: {tmp_path / f'a{k:02d}.gif'}{gif}" for k in range(5)]
    named += [f"warning: {tmp_path / f'b{k:02d}.png'}: 50x40 exceeds max_side=32; downscaled to 32x26 before scoring"
              for k in range(5)]  # fmt: skip
    every = f"every one in the note column of {tmp_path / 's.csv'}"
    above = f"(the first 5 are named above, {every}; ARNIQA_WARNINGS=all names every one)"
    assert sorted(lines[:10]) == sorted(named)  # decoding threads: either kind first
    assert lines[10:] == [
        "1 of 25 images could not be scored (see the error column)",
        f"24 of 25 images have a warning (see the note column of {tmp_path / 's.csv'})",
        f"warning: 7 more images animated or multi-page, each scored on its first frame {above}",
        f"warning: 7 more images larger than max_side=32, each downscaled before scoring {above}",
    ]
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=300,
                          env={**env, "ARNIQA_WARNINGS": "all"})  # fmt: skip
    assert len([line for line in done.stderr.splitlines() if line.startswith("warning: ")]) == 24


def test_rows_on_standard_output_end_with_lines_that_say_the_notes_are_there(tmp_path):
    """With the rows on standard output (-o -), the end lines said '(see the note column of the rows)' and
    'every one in the note column of the rows', which read oddly: they now name the rows on standard output, whose
    note column holds every file's warning."""
    import subprocess

    import tiny_score

    rng = np.random.default_rng(0)
    for k in range(6):
        a, b = (Image.fromarray(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)) for _ in range(2))
        a.save(tmp_path / f"a{k}.gif", save_all=True, append_images=[b])
    here = Path(tiny_score.__file__).parent
    env = {**os.environ, "PYTHONPATH": f"{here.parent / 'src'}{os.pathsep}{here}"}
    env.pop("ARNIQA_WARNINGS", None)
    command = [sys.executable, tiny_score.__file__, "score", tmp_path, "--protocol", "whole", "-o", "-"]
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    frame = "an animated or multi-page image; its first frame is scored, the others are not"
    rows = list(csv.DictReader(done.stdout.splitlines()))
    assert [(row["path"], row["note"]) for row in rows] == [(str(tmp_path / f"a{k}.gif"), frame) for k in range(6)]
    where = "the note column of the rows on standard output"
    assert done.stderr.splitlines()[-2:] == [
        f"6 of 6 images have a warning (see {where})",
        "warning: 1 more image animated or multi-page, each scored on its first frame (the first 5 are named above, "
        f"every one in {where}; ARNIQA_WARNINGS=all names every one)",
    ]


def test_rows_and_report_both_on_standard_output_are_refused(tiny, folder, tmp_path):
    """score -o - --html /dev/stdout wrote the rows, then the report's HTML after them, into one stream."""
    for html in ("/dev/stdout", "/dev/fd/1"):
        r = _run([folder / "a.png", "-o", "-", "--html", html])
        assert r.exit_code == EXIT_USAGE and r.stdout == ""
        said = f"--html {html} is standard output, where the rows go; write the rows or the report to a file (-o FILE)"
        assert said in r.stderr


def test_each_row_says_its_warnings_in_its_note_and_a_file_of_an_older_arniqa_keeps_its_columns(tiny, tmp_path):
    """Engineers read the result file, not stderr, whose per-file warnings stop after the first 5 of each kind:
    each row now carries its own in the note column (empty when none), and the end says how many have one and
    where. A file an older arniqa wrote (its head and rows written here by hand) is resumed, retried and reported
    with its own columns: no note column added, no row of other columns."""
    frames = [Image.new("RGB", (30, 20), (c, 90, 200 - c)) for c in (10, 150)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    _img(tmp_path / "big.png", 64, 48, 1)
    _img(tmp_path / "still.png", 20, 20, 2)
    images = [tmp_path / n for n in ("anim.gif", "big.png", "still.png")]
    common = ["--protocol", "whole", "--max-side", 32]
    r = _run([*images, *common, "-o", tmp_path / "new.csv"])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "new.csv", encoding="utf-8")))
    assert [row["note"] for row in rows] == [
        "an animated or multi-page image; its first frame is scored, the others are not",
        "64x48 exceeds max_side=32; downscaled to 32x24 before scoring",
        "",
    ]
    assert f"2 of 3 images have a warning (see the note column of {tmp_path / 'new.csv'})" in r.stderr

    old = tmp_path / "old.csv"
    head = "path,score,raw_score,error"
    old.write_text(f"{head}\n{images[0]},,,image file is truncated\n{images[1]},0.5,3.0,\n", encoding="utf-8")
    r = _run([*images, *common, "-o", old, "--resume", "--retry-failed"])
    assert r.exit_code == 0, r.stderr
    lines = list(csv.reader(open(old, encoding="utf-8")))
    assert lines[0] == head.split(",") and all(len(line) == 4 for line in lines)
    assert [line[0] for line in lines[1:]] == list(map(str, images)) and lines[1][3] == "" and lines[2][2] == "3.0"
    assert f"{old} was written by an older arniqa, without a note column" in r.stderr
    r = CliRunner().invoke(app, ["report", str(old), "-o", str(tmp_path / "old.html")])
    assert r.exit_code == 0, r.stderr


def _as_excel_saves(path: Path) -> bytes:
    """The bytes Excel writes when a result file is opened and saved as "CSV UTF-8": a byte order mark, CRLF line
    ends, fields quoted only where they must be, numbers at 15 significant digits."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    for row in rows[1:]:
        row[1:3] = [f"{float(v):.15g}" if v else "" for v in row[1:3]]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return b"\xef\xbb\xbf" + text.getvalue().encode("utf-8")


def test_resume_reads_a_result_file_saved_by_excel_and_keeps_its_bytes(tiny, tmp_path):
    """A scores.csv opened in Excel and saved starts with a UTF-8 byte order mark (and has CRLF line ends): --resume
    refused it as not an arniqa result file, and arniqa report too. Its rows are read now, kept as Excel wrote them
    (the mark too), and the new rows appended; --retry-failed puts the row scored again in its place."""
    a, b, c = (_img(tmp_path / f"{n}.png", 40, 30, seed) for seed, n in enumerate("abc"))
    photo = a.read_bytes()
    base = ["--protocol", "whole"]
    fresh = tmp_path / "fresh.csv"
    assert _run([a, b, c, *base, "-o", fresh]).exit_code == 0
    expected = {row["path"]: float(row["score"]) for row in _csv(fresh)}
    out = tmp_path / "scores.csv"
    a.write_bytes(photo[:40])  # cut short: an error row
    assert _run([a, b, *base, "-o", out]).exit_code == 1
    a.write_bytes(photo)
    excel = _as_excel_saves(out)
    assert excel.count(b"\r\n") == 3 and excel.startswith(b"\xef\xbb\xbfpath,")
    out.write_bytes(excel)
    r = _run([a, b, c, *base, "-o", out, "--resume"])
    assert r.exit_code == 1 and "resuming: 2 of 3 paths" in r.stderr, r.output
    assert out.read_bytes().startswith(excel)  # nothing rewritten: one header, Excel's rows as they were
    r = _run([a, b, c, *base, "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [row["path"] for row in rows] == [str(a), str(b), str(c)]
    for row in rows:
        assert float(row["score"]) == pytest.approx(expected[row["path"]], rel=1e-12)
    assert out.read_bytes().startswith(excel[: excel.index(b"\r\n") + 2])  # the mark and header kept
    assert _run_report(out).exit_code == 0


def _as_excel_leaves_out_empty_ends(text: str) -> str:
    """``text`` (a result file) as Excel can save it: the separators of empty cells at the end of a row left out (it
    does so in runs of rows whose last cells are all empty; the Stata FAQ "How Excel writes empty cells", 1997)."""
    return "".join(line.rstrip(",") + "\r\n" for line in text.splitlines())


@pytest.mark.parametrize("note", [True, False], ids=["note", "note-column-deleted"])
def test_resume_and_report_read_rows_whose_empty_last_fields_excel_left_out(tiny, tmp_path, note):
    """Excel can save a scores.csv with the separators of empty last cells left out ('a.png,0.5,3.2' for a row whose
    error and note are empty; 'b.png,,,cannot read' for an error row): --resume refused it as edited ('row 1 does not
    parse as a result row') and arniqa report said no row parses. Such rows are read, their empty fields filled in,
    and kept as Excel wrote them; so is a file whose empty note column was deleted (an older arniqa's columns)."""
    a, b, c = (_img(tmp_path / f"{n}.png", 40, 30, seed) for seed, n in enumerate("abc"))
    photo = b.read_bytes()
    base = ["--protocol", "whole"]
    out = tmp_path / "scores.csv"
    b.write_bytes(photo[:40])  # cut short: an error row
    assert _run([a, b, *base, "-o", out]).exit_code == 1
    b.write_bytes(photo)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["path", "score", "raw_score", "error", "note"] and rows[2][3]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(row if note else row[:4] for row in rows)
    excel = _as_excel_leaves_out_empty_ends(text.getvalue()).encode("utf-8")
    assert [len(row) for row in csv.reader(io.StringIO(excel.decode()))] == [5 if note else 4, 3, 4]
    out.write_bytes(excel)
    r = _run([a, b, c, *base, "-o", out, "--resume"])
    assert r.exit_code == 1 and "resuming: 2 of 3 paths" in r.stderr, r.output
    assert out.read_bytes().startswith(excel)  # Excel's rows as they were, c's row after them
    assert [row["path"] for row in _csv(out)] == [str(a), str(b), str(c)]
    out.write_bytes(excel)
    r = _run_report(out)
    assert (r.exit_code, r.stderr) == (0, ""), r.output
    assert r.stdout.startswith(f"wrote {out.with_suffix('.html')} (2 rows, ")


def test_resume_and_report_say_a_result_file_saved_with_semicolons_is_so(tiny, tmp_path):
    """Excel in a locale that writes decimal commas (German, French) saves CSV with ';' between fields: --resume and
    arniqa report refused such a scores.csv as 'not an arniqa csv result file (its first line is ...)', nothing on
    why. The line says how its fields are separated and to save it comma-separated; the file is left as it is."""
    a, b = (_img(tmp_path / f"{n}.png", 40, 30, seed) for seed, n in enumerate("ab"))
    out = tmp_path / "scores.csv"
    assert _run([a, *["--protocol", "whole"], "-o", out]).exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    german = "".join(";".join(field.replace(".", ",") for field in row) + "\r\n" for row in rows)
    out.write_bytes(b"\xef\xbb\xbf" + german.encode("utf-8"))
    problem = (
        f"error: {out}: its fields are separated by ';', not commas, as a spreadsheet saves CSV in a locale that "
        "writes decimal commas (the header is one column, 'path;score;raw_score;error;note'); save it again as a "
        "comma-separated CSV, or "
    )
    r = _run([a, b, "--protocol", "whole", "-o", out, "--resume"])
    assert (r.exit_code, r.stderr) == (EXIT_USAGE, problem + "choose another output\n"), r.output
    r = _run_report(out)
    assert r.exit_code == EXIT_USAGE and r.stderr == (
        f"{problem}give the CSV, JSON or JSON Lines file that arniqa score -o wrote (--format says which, if its "
        "name does not)\n"
    )
    assert out.read_bytes() == b"\xef\xbb\xbf" + german.encode("utf-8")


def _scored_and_failed(tmp_path: Path, out: Path) -> tuple[Path, Path, Path]:
    """Images a, b, c, and ``out`` written with b's error row (b cut short, then whole again) and a's scored row."""
    a, b, c = (_img(tmp_path / f"{n}.png", 40, 30, seed) for seed, n in enumerate("abc"))
    photo = b.read_bytes()
    b.write_bytes(photo[:40])
    assert _run([b, a, "--protocol", "whole", "-o", out]).exit_code == 1
    b.write_bytes(photo)
    return a, b, c


def test_resume_and_report_say_a_result_file_saved_with_decimal_commas_is_so(tiny, tmp_path):
    """LibreOffice in a locale that writes decimal commas can keep commas between fields and quote the numbers
    ('"0,53"'): --resume cut such a file's last row as torn (and scored it again) or refused it as edited, and arniqa
    report left the row out or said it does not parse, nothing on decimal commas. The line says the scores are written
    with a decimal comma and to save it with decimal points; the file is left as it is (0,53 is not read as 0.53)."""
    out = tmp_path / "scores.csv"
    a, b, c = _scored_and_failed(tmp_path, out)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[1][3] and rows[2][1]  # b's error row first, a's scores after it
    for row in rows[1:]:
        row[1:3] = [f"{float(v):.15g}".replace(".", ",") if v else "" for v in row[1:3]]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    saved = text.getvalue().encode("utf-8")
    assert b',"0,' in saved
    out.write_bytes(saved)
    problem = (
        f"error: {out}: row 2 writes a score with a decimal comma ({rows[2][1]!r}), as a spreadsheet saves CSV in a "
        "locale that writes them; save it again with decimal points (in an English locale, say), or "
    )
    r = _run([b, a, c, "--protocol", "whole", "-o", out, "--resume"])
    assert (r.exit_code, r.stderr) == (EXIT_USAGE, problem + "choose another output\n"), r.output
    r = _run_report(out)
    assert (r.exit_code, r.stderr) == (
        EXIT_USAGE,
        f"{problem}give the CSV, JSON or JSON Lines file that arniqa score -o wrote (--format says which, if its "
        "name does not)\n",
    ), r.output
    assert out.read_bytes() == saved


def test_resume_and_report_read_a_result_file_whose_text_cells_are_quoted(tiny, tmp_path):
    """LibreOffice's "Quote all text cells" writes the header '"path","score",...' and quotes each path and error: a
    CSV reader reads the same columns, but --resume and arniqa report refused it as not arniqa's. It is read now, kept
    as it was, and the rows --resume appends (and --retry-failed puts in place) are read alike by a CSV reader."""
    out = tmp_path / "scores.csv"
    a, b, c = _scored_and_failed(tmp_path, out)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    text = "".join(
        ",".join(f'"{v}"' if v and (i == 0 or j not in (1, 2)) else v for j, v in enumerate(row)) + "\r\n"
        for i, row in enumerate(rows)
    )
    saved = text.encode("utf-8")
    assert (
        saved.startswith(b'"path","score","raw_score","error","note"\r\n"')
        and list(csv.reader(text.splitlines())) == rows
    )
    out.write_bytes(saved)
    r = _run([b, a, c, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 1 and "resuming: 2 of 3 paths" in r.stderr, r.output
    assert out.read_bytes().startswith(saved)
    r = _run([b, a, c, "--protocol", "whole", "-o", out, "--resume", "--retry-failed"])
    assert r.exit_code == 0 and "resuming: 3 of 3 paths" in r.stderr, r.output
    fresh = tmp_path / "fresh.csv"
    assert _run([b, a, c, "--protocol", "whole", "-o", fresh]).exit_code == 0
    assert _csv(out) == _csv(fresh)  # a CSV reader reads the quoted rows and those arniqa wrote alike
    assert out.read_bytes().startswith(saved[: saved.index(b"\n") + 1])  # the quoted header kept
    r = _run_report(out)
    assert (r.exit_code, r.stderr) == (0, ""), r.output


def test_resume_and_report_say_which_columns_were_deleted(tiny, tmp_path):
    """A scores.csv whose empty error and note columns were deleted in a spreadsheet ('path,score,raw_score') was
    refused as not arniqa's: the line names the columns missing and, where they were the last, that adding them to
    the header makes it read (its rows then read with those fields empty). Appending rows of three columns would lose
    the errors of the new rows, so it is refused, not read. A middle column deleted took its values along."""
    out = tmp_path / "scores.csv"
    a, b, c = (_img(tmp_path / f"{n}.png", 40, 30, seed) for seed, n in enumerate("abc"))
    assert _run([a, b, "--protocol", "whole", "-o", out]).exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    for keep, problem, fix in [
        (3, "path, score, raw_score, without error, note", "add ',error,note' to the end of its first line, or "),
        ((0, 1, 3, 4), "path, score, error, note, without raw_score", ""),
    ]:
        text = io.StringIO()
        kept = range(keep) if isinstance(keep, int) else keep
        csv.writer(text, lineterminator="\n").writerows([row[i] for i in kept] for row in rows)
        out.write_text(text.getvalue(), encoding="utf-8")
        line = f"error: {out}: its columns are {problem} (deleted in a spreadsheet?); {fix}"
        r = _run([a, b, c, "--protocol", "whole", "-o", out, "--resume"])
        assert (r.exit_code, r.stderr) == (EXIT_USAGE, line + "choose another output\n"), r.output
        r = _run_report(out)
        assert r.exit_code == EXIT_USAGE and r.stderr.startswith(line + "give the CSV, JSON or JSON Lines file"), (
            r.output
        )
        assert out.read_text(encoding="utf-8") == text.getvalue()
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(row[:3] for row in rows)
    out.write_text(text.getvalue().replace("\n", ",error,note\n", 1), encoding="utf-8")  # what the line says to do
    r = _run([a, b, c, "--protocol", "whole", "-o", out, "--resume"])
    assert r.exit_code == 0 and "resuming: 2 of 3 paths" in r.stderr, r.output
    assert [row["path"] for row in _csv(out)] == [str(a), str(b), str(c)]


def _run_report(scores: Path):
    return CliRunner().invoke(app, ["report", str(scores), "-o", str(scores.with_suffix(".html"))])
