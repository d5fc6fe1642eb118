"""The int8 engine: ``arniqa export --int8``, ``arniqa score --precision int8``, its cache and its error."""

import csv
import errno
import io
import json
import os
from pathlib import Path

import pytest
from imaging import write_photo
from typer.testing import CliRunner

import arniqa.cli.export  # noqa: F401  (registers the verbs)
import arniqa.cli.score  # noqa: F401
from arniqa.cli import app
from arniqa.inference import load
from arniqa.inference.quantize import int8_file

# |int8 - fp32| of a scaled score per unit of the regressor's weight norm (scaled units): measured 0.00024
# on these images with the published-layout test model (max |d| 0.0077 at norm 32); benchmarks/int8.py
# measures the error of a fitted regressor on 1000+ images.
PER_UNIT_NORM = 0.001


def _rows(output: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(output)))


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibration")
    write_photo(d / "one.png", 256, 240, 7)
    return d


@pytest.fixture(scope="module")
def folder(photos, tmp_path_factory):
    d = tmp_path_factory.mktemp("int8-images")
    for p in photos:
        (d / p.name).write_bytes(p.read_bytes())
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return d


def test_an_earlier_sidecar_never_stays_beside_a_new_int8_graph(calibration, tmp_path):
    """quantize() of a graph without a sidecar kept the sidecar of an earlier graph at the output, whose score
    range then scaled the new graph's scores."""
    from tiny_arniqa import tiny_onnx

    from arniqa.inference.quantize import quantize

    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    out = tmp_path / "q.onnx"
    quantize(fp32, out, calibration)
    meta = json.loads((tmp_path / "q.onnx.json").read_text())
    assert meta["precision"] == "int8" and meta["score_range"] == [1.0, 5.0, "mos"]
    (tmp_path / "fp32.onnx.json").unlink()  # a graph without a sidecar
    quantize(fp32, out, calibration)
    assert out.is_file() and not (tmp_path / "q.onnx.json").exists()


def test_a_pipe_planted_as_the_int8_sidecar_is_replaced_never_opened(calibration, tmp_path):
    """quantize() names the sidecar q.onnx.json itself: a FIFO under that name was written into, as an output the user
    named, and the export waited for a reader forever."""
    import os
    import stat
    import threading

    from tiny_arniqa import tiny_onnx

    from arniqa.inference.quantize import quantize

    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    side = tmp_path / "q.onnx.json"
    os.mkfifo(side)
    done = threading.Thread(target=quantize, args=(fp32, tmp_path / "q.onnx", calibration), daemon=True)
    done.start()
    done.join(120)
    if stuck := done.is_alive():  # waiting on the pipe: give it a reader, and the end of it
        os.close(os.open(side, os.O_RDONLY | os.O_NONBLOCK))
    assert not stuck and stat.S_ISREG(os.lstat(side).st_mode), "the planted pipe was opened"
    assert json.loads(side.read_text())["precision"] == "int8"


def test_running_out_of_memory_quantizing_logs_no_line_of_onnx_runtimes_own(calibration, tmp_path):
    """`arniqa export --int8` running out of memory calibrating (under `ulimit -d 2000000` with the published
    model) printed ONNX Runtime's log line `[E:onnxruntime:, sequential_executor.cc:677 ExecuteKernel] Non-zero
    status code ... std::bad_alloc` before our one error line. Its default logger is at fatal only while quantizing,
    and at its default again after: a session of default options logs the same failure. Provoked for real in a
    child: a Conv whose calibration output (5 views x 1024 channels x 224 x 224: 1 GB) is past its data limit."""
    import subprocess
    import sys
    import textwrap

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((1024, 3, 3, 3), 0.01, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["full", "w"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["half", "w"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("ReduceMean", ["c"], ["score"], keepdims=0),
    ]
    views = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 3, "h", "w"]) for n in ("full", "half")]
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "wide", views, [score], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # as old an ONNX Runtime as the floor reads it
    (tmp_path / "wide.onnx").write_bytes(model.SerializeToString())
    code = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np, onnxruntime as ort
        from arniqa.inference.quantize import quantize
        from arniqa.utils.runtime import out_of_memory

        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
        try:
            quantize({str(tmp_path / "wide.onnx")!r}, {str(tmp_path / "int8.onnx")!r}, {str(calibration)!r})
        except Exception as e:
            print("quantize", out_of_memory(e), flush=True)
        print("after", file=sys.stderr, flush=True)
        session = ort.InferenceSession({str(tmp_path / "wide.onnx")!r}, providers=["CPUExecutionProvider"])
        view = np.zeros((5, 3, 224, 224), np.float32)
        try:
            session.run(None, {{"full": view, "half": view}})
        except Exception as e:
            print("session", out_of_memory(e), flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == ["quantize True", "session True"], done.stderr
    before, after = done.stderr.split("after\n")
    assert "onnxruntime" not in before, before  # nothing of ONNX Runtime's own while quantizing
    assert "[E:onnxruntime:" in after and "Non-zero status code" in after  # its logger is back at its level
    assert not (tmp_path / "int8.onnx").exists()


@pytest.fixture(scope="module")
def int8_export(export_published, calibration, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "m.onnx"
    return export_published(out, "--int8", "--calibrate", str(calibration))


def test_int8_rows_follow_fp32_rows(published, int8_export, folder):
    d, _, regs = published
    weight_norm = float(regs["kadid10k"].weights.detach().norm()) / 4  # kadid10k: raw 1-5, scaled by 1/4
    runner = CliRunner()
    common = ["score", str(folder), "--protocol", "crops", "--batch-size", "2"]
    fp32 = runner.invoke(app, common + ["--weights-dir", str(d), "--engine", "torch"])
    int8 = runner.invoke(app, common + ["--checkpoint", str(int8_export)])
    assert fp32.exit_code == int8.exit_code == 1  # the broken file
    a, b = _rows(fp32.stdout), _rows(int8.stdout)
    assert [r["path"] for r in a] == [r["path"] for r in b] and len(a) == 4
    assert [r["error"] for r in a] == [r["error"] for r in b] and sum(bool(r["error"]) for r in a) == 1
    diffs = [abs(float(ra["score"]) - float(rb["score"])) for ra, rb in zip(a, b) if not ra["error"]]
    assert 0 < max(diffs) <= PER_UNIT_NORM * weight_norm, (diffs, weight_norm)
    meta = json.loads(int8_export.with_name("m.onnx.json").read_text())
    assert (
        meta["precision"] == "int8" and meta["dataset"] == "kadid10k" and meta["calibration"].endswith("calibration0")
    )


def test_precision_int8_caches_beside_the_fp32_export(calibration, tmp_path, monkeypatch):
    """On the published layout of the stand-in model (tests/tiny_arniqa.py, 8-d regressors): the cache's files and
    names are the point, not the encoder."""
    import torch
    from scoring_data import save_scripted_regressor
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.published as published

    d = tmp_path / "weights"
    d.mkdir()
    torch.manual_seed(0)
    encoder = TinyARNIQA().eval()
    torch.save(encoder.state_dict(), d / "ARNIQA.pth")
    for seed, name in enumerate(("kadid10k", "live")):
        save_scripted_regressor(d / f"regressor_{name}.pth", torch.randn(1, 8), torch.tensor(3.0 + seed))
    monkeypatch.setattr(published, "published_encoder", lambda path: encoder)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    first = load("arniqa-kadid10k", device="cpu", weights_dir=d, precision="int8", calibrate=calibration)
    files = sorted(p.name for p in (tmp_path / "cache" / "onnx").glob("*.onnx"))
    fp32_key = next(f for f in files if ".int8-" not in f)[: -len(".onnx")]
    assert len(files) == 2 and first.engine.path.name.startswith(fp32_key + ".int8-")
    stamp = first.engine.path.stat().st_mtime_ns
    again = load("arniqa-live", device="cpu", weights_dir=d, precision="int8", calibrate=calibration)
    assert again.engine.path == first.engine.path and again.engine.path.stat().st_mtime_ns == stamp  # reused
    assert int8_file(first.engine.path.with_name(fp32_key + ".onnx"), calibration) == first.engine.path
    write_photo(calibration / "two.png", 240, 256, 8)  # another calibration set: another file
    try:
        assert int8_file(first.engine.path.with_name(fp32_key + ".onnx"), calibration) != first.engine.path
    finally:
        (calibration / "two.png").unlink()


def test_int8_errors(published, calibration, folder):
    d, _, _ = published
    runner = CliRunner()
    res = runner.invoke(
        app, ["score", str(folder), "--weights-dir", str(d), "--engine", "torch", "--precision", "int8"]
    )
    assert res.exit_code == 2 and "int8 runs on ONNX Runtime" in res.output
    res = runner.invoke(app, ["score", str(folder), "--weights-dir", str(d), "--calibrate", str(calibration)])
    assert res.exit_code == 2 and "calibrate goes with" in res.output
    res = runner.invoke(app, ["export", "-o", "x.onnx", "--weights-dir", str(d), "--calibrate", str(calibration)])
    assert res.exit_code == 2 and "--calibrate goes with --int8" in res.output


def test_calibrate_without_int8_is_named_as_export_and_arniqa_export_take_it(tmp_path):
    """Python's export() said 'calibrate goes with int8', naming neither setting as it is typed (int8 is a flag);
    each side now names its own: export()'s keywords, the command's options (utils/names)."""
    from arniqa.inference import export

    with pytest.raises(ValueError, match=r"^calibrate goes with int8=True$"):
        export(tmp_path / "x.onnx", calibrate=tmp_path)
    res = CliRunner().invoke(app, ["export", "-o", str(tmp_path / "x.onnx"), "--calibrate", str(tmp_path)])
    assert res.exit_code == 2 and res.stderr == "error: --calibrate goes with --int8\n", res.output
    assert not list(tmp_path.iterdir())


def test_unreadable_calibration_photos_are_left_out_each_named(tmp_path):
    """One unreadable photo in the calibration folder stopped the int8 load and export (naming it) though the other
    photos could calibrate."""
    import os
    import warnings

    import numpy as np
    from fresh_cli import fresh_cli
    from tiny_arniqa import tiny_onnx

    from arniqa.inference.quantize import calibration_views, quantize

    good, mixed, bad = (tmp_path / name for name in ("good", "mixed", "bad"))
    for d in (good, mixed, bad):
        d.mkdir()
    write_photo(good / "a.png", 256, 240, 7)
    (mixed / "a.png").write_bytes((good / "a.png").read_bytes())
    for d in (mixed, bad):
        (d / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        (d / "c.jpg").write_bytes(b"")
    named = [
        f"{mixed / 'b.png'}: truncated or corrupt image data (it starts as a PNG file, which Pillow cannot read); "
        "copy or download it again",
        f"{mixed / 'c.jpg'}: empty file (0 bytes); copy or download it again",
    ]
    with pytest.warns(UserWarning) as caught:
        feeds = calibration_views(mixed)
    assert [str(w.message) for w in caught] == [f"{line}; calibrating on the other photos" for line in named]
    [alone] = calibration_views(good)  # the readable photo's views, as if it were alone
    assert len(feeds) == 1 and all(np.array_equal(feeds[0][k], alone[k]) for k in ("full", "half"))

    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the one error, no warning per photo before it
        with pytest.raises(
            ValueError, match=r"bad: none of the calibration photos can be read \(2 tried; .*b.png: truncated"
        ):
            quantize(fp32, tmp_path / "never.onnx", bad)
    assert not (tmp_path / "never.onnx").exists()
    image = tmp_path / "image.png"
    write_photo(image, 40, 30, 1)
    env = dict(os.environ, ARNIQA_CACHE=str(tmp_path / "cache"))
    done, _ = fresh_cli("score", image, "--checkpoint", fp32, "--precision", "int8", "--calibrate", mixed, env=env)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if str(mixed) in line]  # one line each, in the CLI's style
    assert warned == [f"warning: {line}; calibrating on the other photos" for line in named], done.stderr
    assert len(list((tmp_path / "cache" / "onnx").glob("*.int8-*.onnx"))) == 1


def test_the_int8_form_of_a_file_with_a_head_keeps_its_explanation(calibration, tmp_path, monkeypatch):
    """`--precision int8` and `arniqa export --int8` of a file exported with an explanation head: the int8 graph keeps
    explain_logits and severity (only convolutions are quantized), its sidecar the labels, and it explains as the
    fp32 file does, within the int8 features' error."""
    import numpy as np
    from tiny_arniqa import tiny_checkpoint

    from arniqa.inference import export

    checkpoint = tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    photos = [write_photo(tmp_path / f"p{i}.png", 80, 60 + 8 * i, i) for i in range(3)]
    fp32 = export(tmp_path / "fp32.onnx", checkpoint, protocol="whole")
    exported = export(tmp_path / "int8.onnx", checkpoint, protocol="whole", int8=True, calibrate=calibration)
    expected = load(fp32, device="cpu").explain(photos)
    for scorer in (load(fp32, device="cpu", precision="int8", calibrate=calibration), load(exported, device="cpu")):
        assert scorer.engine.outputs[-2:] == ["explain_logits", "severity"]
        got = scorer.explain(photos)
        assert got.labels == expected.labels
        np.testing.assert_allclose(got.probs, expected.probs, atol=0.02)  # measured 0.004
        np.testing.assert_allclose(got.severity, expected.severity, atol=0.02)


def test_calibration_photos_that_are_not_there_say_what_to_give(tmp_path):
    from arniqa.inference.quantize import calibration_files

    (tmp_path / "empty").mkdir()
    (tmp_path / "a.txt").write_text("no photo")
    # a.txt said 'not a folder of calibration photos', and so did a folder not there
    for folder, problem in [
        ("a.txt", "not a folder (the calibration photos)"),
        ("gone", "no such folder (the calibration photos)"),
    ]:
        with pytest.raises(ValueError) as err:
            calibration_files(tmp_path / folder)
        assert str(err.value) == f"{tmp_path / folder}: {problem}; give a folder of photos like those to score"


def test_a_calibration_folder_with_no_photo_is_one_line_saying_what_it_skipped(tmp_path, capsys):
    """A folder holding only notes.txt said it in two lines, a warning of what was skipped, then 'no images to
    calibrate on'; it is one line now, as every verb's folder with no image (data/folders.no_images)."""
    from arniqa.inference.quantize import calibration_files

    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "read me.txt").write_text("no photo")
    for folder, found in [("empty", "no image files found"), ("notes", "no image files found, skipped 1 file ")]:
        with pytest.raises(ValueError) as err:
            calibration_files(tmp_path / folder)
        assert str(err.value).startswith(f"{tmp_path / folder}: {found}")
        assert "; give a folder of photos like those to score: files ending in .jpg" in str(err.value)
    assert capsys.readouterr().err == ""


def test_what_the_calibration_folder_skips_is_said_once(tmp_path):
    """arniqa score --precision int8 --calibrate cal, cal holding a notes.txt: its note came three times on the run
    that made the int8 file (the folder listed for the cache key, the photos, the sidecar), once on later runs."""
    import os

    from fresh_cli import fresh_cli
    from tiny_arniqa import tiny_onnx

    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    cal = tmp_path / "cal"
    cal.mkdir()
    write_photo(cal / "a.png", 64, 48, 7)
    (cal / "notes.txt").write_text("x")
    image = write_photo(tmp_path / "image.png", 40, 30, 1)
    env = dict(os.environ, ARNIQA_CACHE=str(tmp_path / "cache"))
    int8 = ["--checkpoint", fp32, "--precision", "int8", "--calibrate", cal, "-o", tmp_path / "s.csv"]  # -o: recorded
    for _ in range(2):  # made, then taken from the cache
        done, _ = fresh_cli("score", image, *int8, env=env)
        assert done.returncode == 0, done.stderr
        said = [line for line in done.stderr.splitlines() if str(cal) in line]
        assert said == [f"warning: {cal}: skipped 1 file no decoder can open: 1 .txt"], done.stderr


def test_a_calibration_folder_moved_keeps_its_int8_file_and_an_edited_photo_makes_a_new_one(tmp_path, monkeypatch):
    """The int8 file was keyed by each calibration photo's path, size and mtime: a folder moved elsewhere was
    quantized again (a minute or two for a ResNet-50), and a photo rewritten with its size and mtime kept was not."""
    import os

    import numpy as np
    from PIL import Image
    from tiny_arniqa import tiny_onnx

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    _, _, fp32 = tiny_onnx(tmp_path / "fp32.onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    one = photos / "one.bmp"  # a BMP's size is its width and height: another photo of the same size has it too
    Image.fromarray(rng.integers(0, 256, (240, 256, 3), dtype=np.uint8)).save(one)
    first = int8_file(fp32, photos)
    made = first.stat().st_mtime_ns
    moved = photos.rename(tmp_path / "moved")
    assert int8_file(fp32, moved) == first and first.stat().st_mtime_ns == made  # reused, not quantized again

    one = moved / "one.bmp"
    st = one.stat()
    Image.fromarray(rng.integers(0, 256, (240, 256, 3), dtype=np.uint8)).save(one)  # edited in place
    os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert one.stat().st_size == st.st_size
    assert int8_file(fp32, moved) != first


def test_processes_starting_together_quantize_once(tmp_path):
    """A cluster's 4 jobs starting together with --precision int8 on one shared cache each quantized the model (1-2
    minutes each for a ResNet-50). One quantizes now; the others say they wait for it, then use its file."""
    from tiny_arniqa import make_together, tiny_onnx

    fp32 = tiny_onnx(tmp_path / "m.onnx")[2]
    jobs, made = make_together("quantizing", tmp_path, str(fp32))
    assert [job.returncode for job in jobs] == [0, 0, 0, 0], [job.err for job in jobs]
    assert len(made) == 1
    (path,) = {job.out.strip() for job in jobs}
    waited = [job for job in jobs if str(job.pid) != made[0]]
    assert [job.err for job in waited] == [
        f"waiting for another arniqa process (pid {made[0]}) quantizing {path}\n"
    ] * 3
    name = Path(path).name
    assert sorted(p.name for p in Path(path).parent.iterdir()) == [name, f"{name}.json"]  # no lock file left


@pytest.mark.parametrize(
    "err, advice", [(errno.EACCES, "set ARNIQA_CACHE"), (errno.ENOSPC, "free space there, or set ARNIQA_CACHE")]
)
def test_a_cache_the_int8_file_cannot_be_written_into_says_what_to_do(tmp_path, monkeypatch, err, advice):
    """--precision int8 on a shared cache this user may read but not write said `error: [Errno 13] Permission denied:
    '<cache>/onnx/KEY.int8-....onnx'` and nothing of what to do; now it says it as the export does, one line, exit 2."""
    from tiny_arniqa import tiny_onnx

    import arniqa.inference.quantize as quantize

    def cannot(fp32, output, *args):
        raise OSError(err, os.strerror(err), str(output))

    fp32 = tiny_onnx(tmp_path / "m.onnx")[2]
    (tmp_path / "photos").mkdir()
    write_photo(tmp_path / "photos" / "a.png", 64, 64, 1)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(quantize, "quantize", cannot)
    res = CliRunner().invoke(app, ["score", str(tmp_path / "photos"), "--checkpoint", str(fp32), "--precision", "int8"])
    folder = tmp_path / "cache" / "onnx"
    assert res.exit_code == 2 and res.stderr.splitlines() == [
        f"error: {folder}: cannot write the model's int8 form into the cache ({os.strerror(err)}); {advice} to a "
        "folder you can write, or leave out --precision int8"
    ]


@pytest.mark.parametrize("sidecar", [False, True])
def test_a_read_error_of_the_fp32_file_names_it_not_the_cache(tmp_path, monkeypatch, sidecar):
    """--precision int8 when the fp32 ONNX file (or its sidecar) could not be read (a network share's I/O error) said
    '<cache>/onnx: cannot write the model's int8 form into the cache (Input/output error); set ARNIQA_CACHE ...': a
    cache that was fine, and not the file at fault. It now names the file read and the problem."""
    import onnxruntime.quantization.shape_inference as shape_inference
    from tiny_arniqa import tiny_onnx

    import arniqa.inference.quantize as quantize
    from arniqa.inference.sidecar import sidecar_path

    fp32 = tiny_onnx(tmp_path / "m.onnx")[2]
    bad = sidecar_path(fp32) if sidecar else fp32

    def cannot_read(path, *args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(bad))

    if sidecar:
        monkeypatch.setattr(quantize, "read_sidecar", cannot_read)
    else:
        monkeypatch.setattr(shape_inference, "quant_pre_process", cannot_read)
    (tmp_path / "photos").mkdir()
    write_photo(tmp_path / "photos" / "a.png", 64, 64, 1)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(app, ["score", str(tmp_path / "photos"), "--checkpoint", str(fp32), "--precision", "int8"])
    assert res.exit_code == 2 and res.stderr.splitlines() == [
        f"error: {bad}: cannot read file (Input/output error); check the disk or share it is on"
    ]


@pytest.mark.parametrize("cut", [False, True])
def test_an_onnx_file_that_cannot_be_loaded_is_the_line_fp32_gives(tmp_path, monkeypatch, cut):
    """--precision int8 on a .onnx file that is not ONNX, or an export cut short (a damaged copy, or the cache's own
    export damaged), ended in a traceback of onnx's DecodeError, exit 1; it is now the one line of the fp32 engine on
    the same file, exit 2, and no int8 file is made."""
    from tiny_arniqa import tiny_onnx

    fp32 = tiny_onnx(tmp_path / "m.onnx")[2]
    fp32.write_bytes(fp32.read_bytes()[:300] if cut else b"not an ONNX file")
    (tmp_path / "photos").mkdir()
    write_photo(tmp_path / "photos" / "a.png", 64, 64, 1)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    lines = {}
    for precision in ("fp32", "int8"):
        args = ["score", str(tmp_path / "photos"), "--checkpoint", str(fp32), "--precision", precision]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        lines[precision] = res.stderr.splitlines()
    assert len(lines["fp32"]) == 1 and lines["fp32"][0].startswith(f"error: {fp32}: not an ONNX model")
    assert lines["int8"] == lines["fp32"]
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx")) == []
