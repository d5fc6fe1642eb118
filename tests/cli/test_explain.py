"""``arniqa explain fit``, ``score --explain --html``, ``map`` and ``export`` with a head (issue 29)."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import arniqa.cli.explain  # noqa: F401  (registers the verbs)
import arniqa.cli.export  # noqa: F401
import arniqa.cli.map  # noqa: F401
import arniqa.cli.report  # noqa: F401
import arniqa.cli.score  # noqa: F401
from arniqa.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app
from arniqa.inference import load
from arniqa.inference.explaining import describe
from arniqa.inference.maps import positions
from arniqa.models.checkpoint import save_checkpoint
from arniqa.models.explain import LABELS, add_to_checkpoint, fit_explainer
from arniqa.utils.textfiles import unescape_name


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _photo(path, w, h, seed):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (max(1, h // 4), max(1, w // 4), 3), dtype=np.uint8))
    small.resize((w, h), Image.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, random_arniqa):
    d = tmp_path_factory.mktemp("explain_cli")
    [plain] = save_checkpoint(d / "plain.safetensors", *random_arniqa)  # one file: no max_part_bytes
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4096, generator=g)
    head = fit_explainer(x, torch.eye(len(LABELS))[torch.arange(16) % len(LABELS)], x[:, 0], max_iter=5)
    with_head = add_to_checkpoint(plain, head, d / "head.safetensors")
    photos = d / "photos"
    photos.mkdir()
    for i, (w, h) in enumerate([(80, 60), (64, 72), (96, 64)]):
        _photo(photos / f"p{i}.png", w, h, i)
    (photos / "broken.png").write_text("not an image")
    return d, plain, with_head, photos


def test_score_explain_html_rows_errors_and_exit_code(files):
    d, _, with_head, photos = files
    out, html = d / "scores.csv", d / "report.html"
    result = _run(
        "score",
        photos,
        "--checkpoint",
        with_head,
        "--protocol",
        "whole",
        "--engine",
        "torch",
        "--explain",
        "--html",
        html,
        "-o",
        out,
    )
    assert result.exit_code == EXIT_FAILED
    rows = list(csv.DictReader(open(out)))
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == ["broken.png", "p0.png", "p1.png", "p2.png"]
    assert rows[0]["error"] and not rows[0]["explanation"]
    expected = load(with_head, device="cpu", engine="torch", protocol="whole").explain([r["path"] for r in rows[1:]])
    for i, r in enumerate(rows[1:]):
        parts = [p.rsplit(" ", 1) for p in r["explanation"].split("; ")]
        assert [(label, round(p, 2)) for label, p in expected.top(i)] == [(n, float(p)) for n, p in parts]
        assert float(r["severity"]) == pytest.approx(float(expected.severity[i]), abs=0.006)
    text = html.read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert len(data["rows"]) == 3 and "broken.png" in text and "Could not be scored (1)" in text
    assert all(row[4].startswith("data:image/jpeg;base64,") for row in data["rows"])


def test_score_explain_without_a_head_is_a_usage_error(files):
    _, plain, _, photos = files
    result = _run("score", photos / "p0.png", "--checkpoint", plain, "--protocol", "whole", "--explain")
    assert result.exit_code == EXIT_USAGE and "explanation head" in result.output


def test_map_writes_grids_overlays_and_error_rows(files):
    d, _, with_head, photos = files
    out = d / "maps"
    result = _run(
        "map",
        photos,
        "-o",
        out,
        "--checkpoint",
        with_head,
        "--crop",
        32,
        "--stride",
        16,
        "--explain",
        "--engine",
        "torch",
    )
    assert result.exit_code == EXIT_FAILED
    rows = {r["path"].rsplit("/", 1)[1]: r for r in csv.DictReader(open(out / "maps.csv"))}
    assert rows["broken.png"]["error"] and not rows["p0.png"]["error"]
    grid = np.load(out / "p2.map.npy")
    assert grid.shape == (len(positions(64, 32, 16)), len(positions(96, 32, 16)))
    groups = np.load(out / "p2.groups.npy")
    assert groups.shape == (len(LABELS), *grid.shape)
    np.testing.assert_allclose(groups.sum(0), 1, atol=1e-5)
    assert Image.open(out / "p2.map.png").size == (96, 64)
    assert all((out / f"p2.{label}.png").is_file() for label in LABELS)


def test_map_counts_the_maps_it_wrote_in_a_noun_that_agrees(files, tmp_path):
    """`map` of one photo said 'wrote 1 maps'."""
    _, plain, _, photos = files
    for names, said in ((["p0.png"], "wrote 1 map to"), (["p0.png", "p1.png"], "wrote 2 maps to")):
        out = tmp_path / str(len(names))
        result = _run(
            "map", *(photos / n for n in names), "-o", out, "--checkpoint", plain, "--crop", 32, "--engine", "torch"
        )
        assert result.exit_code == EXIT_OK, result.output
        assert said in result.output


def test_score_explain_warns_on_a_head_of_another_protocol_and_map_does_not(files, tmp_path, monkeypatch):
    """A head fitted on `crops` features explained `whole` features without a word; `map` applies it to its own
    single crops by design (docs/explain.md). (The arniqa command prints a warning as one line: test_score.py.)
    The line names the option to type (it said "use protocol 'crops' (--protocol crops)"), export's too."""
    import warnings

    import arniqa.inference.onnx_export

    monkeypatch.setattr(arniqa.inference.onnx_export, "export_onnx", lambda model, reg, output, **kwargs: output)
    _, plain, _, photos = files
    x = torch.randn(16, 4096, generator=torch.Generator().manual_seed(3))
    head = fit_explainer(x, torch.eye(len(LABELS))[torch.arange(16) % len(LABELS)], x[:, 0], max_iter=5)
    checkpoint = add_to_checkpoint(plain, head, tmp_path / "crops-head.safetensors", protocol="crops")
    said = [
        "the explanation head was fitted on 'crops' features, these come from 'whole': its groups and "
        "severities may be off; use --protocol crops, or fit the head with arniqa explain fit --protocol whole"
    ]
    model = ("--checkpoint", checkpoint)
    for args, expected in [
        (("score", photos / "p0.png", "--protocol", "whole", "-o", tmp_path / "s.csv", "--explain"), said),
        (("map", photos / "p0.png", "--crop", 32, "-o", tmp_path / "maps", "--explain"), []),
        (("export", "--protocol", "whole", "-o", tmp_path / "m.onnx"), said),
    ]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _run(*args, *model, *(("--engine", "torch") if args[0] != "export" else ())).exit_code == EXIT_OK
        assert [str(w.message) for w in caught if "explanation head" in str(w.message)] == expected, args[0]


def test_explain_fit_reports_accuracy_and_failed_references(files, tmp_path):
    _, plain, _, _ = files
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    _photo(pristine / "a.png", 64, 48, 5)
    broken = pristine / f"c-{'x' * 80}\n.png"  # a long name, a newline in it: its line was wrapped, then split
    broken.write_text("broken")
    out = tmp_path / "head.safetensors"
    result = _run(
        "explain",
        "fit",
        pristine,
        "-o",
        out,
        "--checkpoint",
        plain,
        "--protocol",
        "whole",
        "--size",
        "32x24",
        "--chains",
        1,
        "--device",
        "cpu",
        "--batch-size",
        32,
        "--into",
        tmp_path / "model.safetensors",
    )
    assert result.exit_code == EXIT_FAILED, result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["references"] == 1 and report["images"] == 1 + 23 * 5 + 1
    assert [f["path"] for f in report["failed"]] == [str(broken)]
    named = "error: " + str(broken).replace("\n", "\\x0a") + ": "
    *_, line, summary = result.stderr.splitlines()
    assert "" not in result.stderr.splitlines()  # the progress bar, off a terminal, left a blank line in a log
    assert line.startswith(named)  # one line, naming the file whole, as an error (it was a bare `PATH: problem`)
    assert summary == f'1 of 2 reference images could not be read (see "failed" in {out.with_suffix(".json")})'
    assert report["fit_accuracy"]["single"]["images"] == 23 * 5
    fitted = load(tmp_path / "model.safetensors", device="cpu", engine="torch").explainer
    assert fitted is not None and fitted.protocol == "whole"  # the protocol it was fitted with, read back


def test_onnx_export_outputs_the_explanation(files, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, _, with_head, photos = files
    onnx_file = tmp_path / "model.onnx"
    assert _run("export", "-o", onnx_file, "--checkpoint", with_head, "--protocol", "whole").exit_code == EXIT_OK
    meta = json.loads((tmp_path / "model.onnx.json").read_text())
    assert meta["explain_labels"] == list(LABELS) and meta["outputs"][-2:] == ["explain_logits", "severity"]
    scorer = load(with_head, device="cpu", engine="torch", protocol="whole")
    image = torch.from_numpy(np.array(Image.open(photos / "p0.png"))).permute(2, 0, 1).float() / 255
    full, half = scorer.protocol.views(image)
    logits, severity = ort.InferenceSession(str(onnx_file)).run(
        ["explain_logits", "severity"], {"full": full.numpy(), "half": half.numpy()}
    )
    expected = scorer.explain(image)
    np.testing.assert_allclose(torch.from_numpy(logits).mean(0).softmax(-1).numpy(), expected.probs[0], atol=1e-4)
    np.testing.assert_allclose(np.clip(severity.mean(), 0, 5), expected.severity[0], atol=1e-3)  # levels 0..5


def test_map_and_report_link_each_image_to_its_own_map(tmp_path, monkeypatch):
    """Two images named x.png in two folders: the report linked both to the first one's map (it guessed the map
    from the file name); a file name that is not UTF-8 stopped `arniqa map` with a traceback."""
    import os
    import urllib.parse

    from tiny_arniqa import tiny_onnx

    from arniqa.inference.maps import quality_map

    monkeypatch.chdir(tmp_path)
    tiny_onnx(tmp_path / "tiny.onnx")
    images = {"photos/a/x.png": (200, 30, 30), "photos/b/x.png": (30, 30, 200), os.fsdecode(b"photos/\xff.png"): 90}
    for name, colour in images.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), colour).save(name)
    model = ["--checkpoint", "tiny.onnx"]
    assert _run("map", "photos", "-o", "maps", *model, "--crop", 16, "--stride", 8).exit_code == EXIT_OK
    assert _run("score", "photos", "-o", "scores.csv", *model).exit_code == EXIT_OK
    result = _run("report", "scores.csv", "-o", "report.html", "--maps", "maps", "--thumbnails", "none")
    assert result.exit_code == EXIT_OK, result.output
    text = (tmp_path / "report.html").read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    shown = {row[0]: row[5] for row in data["rows"]}
    assert set(shown) == {"photos/a/x.png", "photos/b/x.png", "photos/\\xff.png"}  # as people read it
    scorer = load("tiny.onnx", device="cpu")
    for name in images:
        link = shown[name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")]
        grid = np.load(Path(urllib.parse.unquote(link, errors="surrogateescape")).with_suffix(".npy"))
        expected = quality_map(scorer, Image.open(name).convert("RGB"), crop=16, stride=8).scores
        np.testing.assert_allclose(grid, expected, rtol=1e-6)  # this image's own map
    assert shown["photos/a/x.png"] != shown["photos/b/x.png"]
    missing = _run("report", "scores.csv", "-o", "r2.html", "--maps", "photos")
    assert missing.exit_code == EXIT_USAGE and "no maps.csv" in missing.output


def test_report_links_each_shard_member_of_one_name_to_its_own_map(tmp_path, monkeypatch):
    """A shard made by appending holds three members named 0001.png (the first cut short): map names their maps
    0001 (none: an error row), 0001-2 and 0001-3, while score's rows of the three share one path, and the report
    linked both scored rows to the last map. Each links to its own now; a file scored twice, to its one map."""
    import io
    import tarfile
    import urllib.parse

    from tiny_arniqa import tiny_onnx

    from arniqa.inference.maps import quality_map

    monkeypatch.chdir(tmp_path)
    tiny_onnx(tmp_path / "tiny.onnx")
    photos = [Image.new("RGB", (20, 20), colour) for colour in [(200, 30, 30), (30, 30, 200), (30, 200, 30)]]
    with tarfile.open("shard.tar", "w") as tar:
        for i, photo in enumerate(photos):
            data = io.BytesIO()
            photo.save(data, "PNG")
            member = data.getvalue()[: 40 if i == 0 else None]  # the first cut short
            info = tarfile.TarInfo("0001.png")
            info.size = len(member)
            tar.addfile(info, io.BytesIO(member))
    photos[0].save("a.png")
    model = ["--checkpoint", "tiny.onnx"]
    assert _run("map", "shard.tar", "a.png", "-o", "maps", *model, "--crop", 16, "--stride", 8).exit_code == 1
    assert _run("score", "shard.tar", "a.png", "a.png", "-o", "scores.csv", *model).exit_code == 1
    result = _run("report", "scores.csv", "-o", "report.html", "--maps", "maps", "--thumbnails", "none")
    assert (result.exit_code, result.stderr) == (EXIT_OK, ""), result.output
    text = (tmp_path / "report.html").read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    links = [(row[0], row[5]) for row in data["rows"]]
    assert [path for path, _ in links] == ["shard.tar/0001.png", "shard.tar/0001.png", "a.png", "a.png"]
    scorer = load("tiny.onnx", device="cpu")
    for (_, link), photo in zip(links, [*photos[1:], photos[0], photos[0]]):
        grid = np.load(Path(urllib.parse.unquote(link)).with_suffix(".npy"))
        np.testing.assert_allclose(grid, quality_map(scorer, photo, crop=16, stride=8).scores, rtol=1e-6)


def test_photos_named_as_long_as_a_file_name_can_be_are_mapped_each_to_its_own_map(tmp_path):
    """A photo named with 230 bytes or more (a 77-character Chinese title) stopped `arniqa map` with exit 2 and
    `cannot write it: File name too long (ENAMETOOLONG); choose an output you can write to`, leaving the photos
    after it unmapped: its map's name (and the temporary name it is written under) exceeded 255 bytes."""
    import os

    from tiny_arniqa import tiny_onnx

    from arniqa.inference.maps import quality_map

    tiny_onnx(tmp_path / "tiny.onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    names = [
        b"x" * 249 + b"a.png",
        b"x" * 249 + b"b.png",
        "画".encode() * 83 + b".png",
        b"\xff" * 250 + b".png",
        b"z.png",
    ]
    for seed, name in enumerate(names):
        assert len(name) <= 255
        _photo(os.path.join(os.fsencode(photos), name), 40, 30, seed)
    out = tmp_path / "maps"
    result = _run("map", photos, "-o", out, "--checkpoint", tmp_path / "tiny.onnx", "--crop", 16)
    assert result.exit_code == EXIT_OK, result.output
    rows = list(csv.DictReader(open(out / "maps.csv", encoding="utf-8")))
    assert sorted(os.fsencode(Path(unescape_name(r["path"])).name) for r in rows) == sorted(names)
    scorer = load(tmp_path / "tiny.onnx", device="cpu")
    maps = [out / unescape_name(r["map"]) for r in rows]
    assert len(set(maps)) == len(names) and all(len(os.fsencode(m.name)) <= 255 for m in maps)
    for row, png in zip(rows, maps):
        expected = quality_map(scorer, Image.open(unescape_name(row["path"])).convert("RGB"), crop=16).scores
        np.testing.assert_allclose(np.load(png.with_suffix(".npy")), expected, rtol=1e-6)  # its own image's map


def test_map_into_a_folder_among_its_inputs_does_not_map_its_maps(tmp_path):
    """`arniqa map photos -o photos/maps` run twice mapped the first run's map PNGs as photos."""
    from tiny_arniqa import tiny_onnx

    tiny_onnx(tmp_path / "tiny.onnx")
    (tmp_path / "photos").mkdir()
    _photo(tmp_path / "photos" / "a.png", 40, 30, 0)
    args = ("map", tmp_path / "photos", "-o", tmp_path / "photos" / "maps", "--checkpoint", tmp_path / "tiny.onnx")
    for _ in range(2):
        assert _run(*args, "--crop", 16).exit_code == EXIT_OK
        rows = list(csv.DictReader(open(tmp_path / "photos" / "maps" / "maps.csv")))
        assert [Path(r["path"]).name for r in rows] == ["a.png"]


def test_explain_fit_refuses_test_images_that_are_fit_images(tmp_path):
    """`--test` naming the fit folder, or a copy of one of its photos, reported the fit accuracy as held out."""
    import shutil

    fit, test = tmp_path / "fit", tmp_path / "test"
    fit.mkdir()
    test.mkdir()
    _photo(fit / "a.png", 32, 24, 1)
    _photo(fit / "b.png", 32, 24, 2)
    _photo(test / "c.png", 32, 24, 3)
    shutil.copy(fit / "b.png", test / "copy-of-b.png")
    for held in (fit, test):
        result = _run("explain", "fit", fit, "-o", tmp_path / "h.safetensors", "--test", held)
        assert result.exit_code == EXIT_USAGE, result.output
        assert f"--test {held}: " in result.output and "also among the fit images" in result.output
    assert not (tmp_path / "h.safetensors").exists()


def test_map_refuses_options_no_image_fits_and_names_images_smaller_than_the_crop(tmp_path):
    """`arniqa map --crop 100000` gave each image an error row with the allocator's message (120 GB asked); a
    small image was mapped as one zero-filled crop; `--crop 16` kept the stride at 112 (pixels in no crop)."""
    from tiny_arniqa import tiny_onnx

    tiny_onnx(tmp_path / "tiny.onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "big.png", 40, 30, 0)
    _photo(photos / "small.png", 12, 10, 1)
    args = ("map", photos, "--checkpoint", tmp_path / "tiny.onnx")
    for options, said in [
        (("--crop", 100000), "larger than --max-side 1024, the longer side of a mapped image; use --crop 1024 or less"),
        (("--crop", 16, "--stride", 17), "use --stride 16 or less"),
        (("--max-side", 100), "larger than --max-side 100, the longer side of a mapped image; use --crop 100 or less"),
    ]:  # the options as typed: it said 'max_side' (load()'s keyword) and 'a crop of at most'
        result = _run(*args, "-o", tmp_path / "refused", *options)
        assert result.exit_code == EXIT_USAGE, result.output
        assert len(result.output.strip().splitlines()) == 1 and "error: " in result.output
        assert said in result.output
        assert not (tmp_path / "refused" / "maps.csv").exists()
    result = _run(*args, "-o", tmp_path / "maps", "--crop", 16)
    assert result.exit_code == EXIT_FAILED
    rows = {Path(r["path"]).name: r for r in csv.DictReader(open(tmp_path / "maps" / "maps.csv"))}
    assert rows["small.png"]["error"] == "the image is 12x10 px, smaller than the 16 px crop; use a crop of at most 10"
    grid = np.load(tmp_path / "maps" / "big.map.npy")  # the stride is half the crop: 8
    assert grid.shape == (len(positions(30, 16, 8)), len(positions(40, 16, 8))) == (3, 4)
    assert Image.open(tmp_path / "maps" / "big.map.png").size == (40, 30)


def test_a_model_that_fails_in_onnx_runtime_leaves_one_line_on_stderr(tmp_path):
    """ONNX Runtime printed its own `[W:onnxruntime...]` (an unused weight) and `[E:onnxruntime...]` (the failed
    node) lines on stderr besides arniqa's; its error is in the row, and stderr holds arniqa's line alone."""
    import onnx
    from fresh_cli import fresh_cli
    from onnx import TensorProto, helper, numpy_helper
    from tiny_arniqa import tiny_onnx

    *_, path = tiny_onnx(tmp_path / "m.onnx")  # its sidecar stays: the graph is replaced by one that cannot run
    views = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, "H", "W"]) for n in ("full", "half")]
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["full", "shape"], ["flat"]),  # (N, 3, H, W) is never 7 x 5 values
            helper.make_node("ReduceMean", ["flat"], ["raw_score"], axes=[1], keepdims=0),
        ],
        "broken",
        views,
        [helper.make_tensor_value_info("raw_score", TensorProto.FLOAT, ["N"])],
        initializer=[
            numpy_helper.from_array(np.array([7, 5]), "shape"),
            numpy_helper.from_array(np.zeros(3), "unused"),
        ],
    )
    # IR 7, opset 13's: onnx writes its newest IR, which ONNX Runtime up to 1.23 (the newest for Python 3.10) refuses
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)
    _photo(tmp_path / "a.png", 40, 30, 0)
    done, _ = fresh_cli("map", tmp_path / "a.png", "-o", tmp_path / "maps", "--checkpoint", path, "--crop", 16)
    assert done.returncode == EXIT_FAILED, done.stderr
    assert done.stderr.strip().splitlines()[:-1] == ["1 of 1 image could not be mapped (see maps.csv)"]
    assert done.stdout.strip() == f"wrote no map to {tmp_path / 'maps'}, only maps.csv with the errors"  # not '0 maps'
    [row] = csv.DictReader(open(tmp_path / "maps" / "maps.csv"))
    assert "Reshape" in row["error"]


def _head_file(path, labels=LABELS, width=4096, weight=0.0):
    """An explainer file as save_explainer writes it, with the given config labels, width and group weights."""
    import json

    from safetensors.torch import save_file

    tensors = {
        "explainer.group.weight": torch.full((len(labels), width), weight),
        "explainer.group.bias": torch.zeros(len(labels)),
        "explainer.severity.weight": torch.zeros(1, width),
        "explainer.severity.bias": torch.zeros(1),
    }
    meta = {"format": "arniqa-explainer", "version": 1, "explainer": {"labels": list(labels), "in_features": width}}
    save_file(tensors, str(path), metadata={"arniqa": json.dumps(meta)})
    return path


def test_heads_for_other_groups_models_or_with_nan_weights_are_refused_at_the_start(files, tmp_path):
    """A head's labels from its file named the map PNGs (`../../x` wrote outside -o; the same label twice overwrote
    one); a head of another width failed every row with torch's `mat1 and mat2` message; NaN weights gave
    `blur nan; ...` explanations; a config that is not a table was a traceback."""
    _, plain, _, photos = files
    heads = {
        "escape": _head_file(tmp_path / "escape.safetensors", labels=[f"../../{g}" for g in LABELS]),
        "twice": _head_file(tmp_path / "twice.safetensors", labels=["blur"] * len(LABELS)),
        "five": _head_file(tmp_path / "five.safetensors", labels=LABELS[:5]),
        "narrow": _head_file(tmp_path / "narrow.safetensors", width=12),
        "nan": _head_file(tmp_path / "nan.safetensors", weight=float("nan")),
    }
    for name, head in heads.items():
        for verb in (("map", "--crop", 32), ("score", "--protocol", "whole")):
            model = ("--checkpoint", plain, "--explainer", head, "--explain", "--engine", "torch")
            result = _run(verb[0], photos / "p0.png", *verb[1:], *model, "-o", tmp_path / f"{name}-{verb[0]}")
            assert result.exit_code == EXIT_USAGE, (name, result.output)
            assert result.output.count("\n") == 1 and f"error: {head}: its explanation head" in result.output


def test_explain_fit_on_a_folder_of_unreadable_images_is_one_line(files, tmp_path):
    """No reference image readable: ValueError's traceback; now one line naming a file, and no head written. It
    ended '; copy or download it again; it is the only reference image, so there is no fit': two fixes, the second a
    conclusion."""
    _, plain, _, _ = files
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_text("not an image")
    out = tmp_path / "head.safetensors"
    result = _run("explain", "fit", broken, "-o", out, "--checkpoint", plain, "--size", "32x24", "--chains", 0)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.strip().splitlines() == [
        f"error: {broken / 'x.png'}: a text file, not an image (a web page or an error message saved under an image's "
        "name?), and it is the only reference image, so there is no fit; copy or download it again, or give other "
        "reference images"
    ]
    assert not out.exists()


@pytest.mark.parametrize("folder", ["h.safetensors", "h.json", "copy.safetensors"])
def test_explain_fit_on_an_output_that_is_a_folder_is_one_line_before_the_fit(files, tmp_path, monkeypatch, folder):
    """-o FILE (its report FILE.json, --into FILE) a folder: the whole fit ran and printed its plan, then failed."""
    _, plain, _, photos = files
    (tmp_path / folder).mkdir()
    monkeypatch.setattr(arniqa.inference, "load", lambda *a, **k: pytest.fail("the model loaded"))
    out = ["-o", tmp_path / "h.safetensors", "--into", tmp_path / "copy.safetensors"]
    r = _run("explain", "fit", photos, "--checkpoint", plain, "--size", "32x24", "--chains", 0, *out)
    assert r.exit_code == EXIT_USAGE
    assert (
        r.stderr
        == f"error: {tmp_path / folder}: cannot write it: is a folder (EISDIR); choose an output you can write to\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]


def test_explain_fit_refuses_outputs_it_would_lose_and_inputs_it_cannot_use(files, tmp_path):
    """`-o head.json` wrote the head, then its report over it under the same name (exit 0, no head left); `-o` a
    photo or `--into` an ONNX file replaced them with safetensors files; an empty `--test` folder was passed over
    (no test accuracy, exit 0); an ONNX `--checkpoint` was told to use `--engine`, an option explain fit has not;
    `--into` naming the `-o` file ran the whole fit to keep one of the two files under that name."""
    _, plain, _, photos = files
    (tmp_path / "empty").mkdir()
    photo, onnx = _photo(tmp_path / "photo.png", 32, 24, 9), tmp_path / "m.onnx"
    onnx.write_bytes(b"an onnx file")
    before = {p: p.read_bytes() for p in (photo, onnx)}
    fit = ["explain", "fit", photos, "--size", "32x24", "--chains", 0, "--protocol", "whole", "--device", "cpu"]
    cases = [
        (["-o", tmp_path / "head.json"], f"-o {tmp_path / 'head.json'}: the file it writes is a .safetensors file"),
        (["-o", photo], f"-o {photo}: the file it writes is a .safetensors file; name one"),
        (["-o", tmp_path / "h.safetensors", "--into", onnx], f"--into {onnx}: the file it writes is a .safetensors"),
        (["-o", tmp_path / "h.safetensors", "--into", tmp_path / "h.safetensors"], "the file -o names too"),
        (
            ["-o", tmp_path / "h.safetensors", "--test", tmp_path / "empty"],
            f"{tmp_path / 'empty'}: no image files found",
        ),
    ]
    for extra, message in cases:
        result = _run(*fit, "--checkpoint", plain, *extra)
        assert result.exit_code == EXIT_USAGE and message in result.output, result.output
    result = _run(*fit, "--checkpoint", onnx, "-o", tmp_path / "h.safetensors")
    assert result.exit_code == EXIT_USAGE and "--engine" not in result.output
    assert f"{onnx}: an ONNX file; fit on the .safetensors checkpoint it was exported from" in result.output
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "m.onnx", "photo.png"]  # nothing written


def test_map_rerun_without_explain_leaves_no_group_maps_of_the_earlier_run(files, tmp_path):
    """The earlier --explain run's per-group PNGs and groups.npy stayed beside the new maps; files that are no map
    outputs stay."""
    d, _, with_head, photos = files
    out = tmp_path / "maps"
    args = ("map", photos, "-o", out, "--checkpoint", with_head, "--crop", 32, "--engine", "torch")
    assert _run(*args, "--explain").exit_code == EXIT_FAILED  # broken.png
    assert all((out / f"p0.{label}.png").is_file() for label in LABELS)
    kept = [out / "p0.notes.png", out / "p0.txt", out / "q.blur.png"]
    for f in kept:
        f.write_text("mine")
    assert _run(*args).exit_code == EXIT_FAILED
    made = {f"p{i}.map.{ext}" for i in range(3) for ext in ("png", "npy")}
    assert {f.name for f in out.iterdir()} == made | {"maps.csv", ".maps.csv.arniqa.json"} | {f.name for f in kept}
    assert all(f.read_text() == "mine" for f in kept)


def test_map_resume_with_explain_maps_again_an_image_whose_group_map_is_missing(files, tmp_path):
    """map --resume --explain: a listed image whose group map is missing (or groups.npy cut short) is mapped again,
    the others skipped; --resume without --explain into rows made with it is refused, nothing written."""
    d, _, with_head, photos = files
    out = tmp_path / "maps"
    args = ("map", photos, "-o", out, "--checkpoint", with_head, "--crop", 32, "--engine", "torch")
    assert _run(*args, "--explain").exit_code == EXIT_FAILED  # broken.png
    (out / f"p0.{LABELS[-1]}.png").unlink()
    groups = (out / "p1.groups.npy").read_bytes()
    (out / "p1.groups.npy").write_bytes(groups[:-8])
    inodes = {f.name: f.stat().st_ino for f in out.iterdir()}
    result = _run(*args, "--resume")
    assert result.exit_code == EXIT_USAGE
    assert "its rows were mapped with --explain on → off; map into another folder" in result.stderr
    assert {f.name: f.stat().st_ino for f in out.iterdir()} == inodes
    result = _run(*args, "--explain", "--resume")
    assert result.exit_code == EXIT_FAILED and result.stdout.startswith("wrote 2 maps to "), result.output
    now = {f.name: f.stat().st_ino for f in out.iterdir()}
    assert now["p2.map.png"] == inodes["p2.map.png"] and now["p2.groups.npy"] == inodes["p2.groups.npy"]
    assert now["p0.map.png"] != inodes["p0.map.png"] and (out / f"p0.{LABELS[-1]}.png").is_file()
    assert (out / "p1.groups.npy").read_bytes() == groups


def test_score_and_map_explain_an_onnx_file_with_a_head_as_its_checkpoint(tmp_path, monkeypatch):
    """`arniqa score/map --checkpoint model.onnx --explain` of a file exported with a head said 'the model has no
    explanation head' (exit 2). Now the rows, group maps and error rows are the checkpoint's in torch; a file
    without the outputs keeps that line, which said to pass --explainer FILE, refused on a file without the
    embedding: it says to export again."""
    from tiny_arniqa import tiny_checkpoint, tiny_onnx

    checkpoint = tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, (w, h) in enumerate([(80, 60), (64, 72), (96, 64)]):
        _photo(photos / f"p{i}.png", w, h, i)
    (photos / "broken.png").write_text("not an image")
    onnx = tmp_path / "model.onnx"
    assert _run("export", "-o", onnx, "--checkpoint", checkpoint, "--protocol", "whole").exit_code == EXIT_OK
    rows, maps = {}, {}
    for name, model in (("onnx", (onnx,)), ("torch", (checkpoint, "--engine", "torch"))):
        out, maps[name] = tmp_path / f"{name}.csv", tmp_path / f"maps-{name}"
        result = _run("score", photos, "--checkpoint", *model, "--protocol", "whole", "--explain", "-o", out)
        assert result.exit_code == EXIT_FAILED, result.output
        rows[name] = list(csv.DictReader(open(out)))
        result = _run("map", photos, "-o", maps[name], "--checkpoint", *model, "--crop", 32, "--explain")
        assert result.exit_code == EXIT_FAILED, result.output
    assert [r["path"] for r in rows["onnx"]] == [r["path"] for r in rows["torch"]]
    assert [r["error"] for r in rows["onnx"]] == [r["error"] for r in rows["torch"]]
    expected = load(checkpoint, device="cpu", engine="torch", protocol="whole").explain(sorted(photos.glob("p*.png")))
    for i, row in enumerate(r for r in rows["onnx"] if not r["error"]):
        parts = [p.rsplit(" ", 1) for p in row["explanation"].split("; ")]
        assert [(label, float(p)) for label, p in parts] == [(label, round(p, 2)) for label, p in expected.top(i)]
        assert float(row["severity"]) == round(float(expected.severity[i]), 2)
    assert [(r["explanation"], r["severity"]) for r in rows["onnx"]] == [
        (r["explanation"], r["severity"]) for r in rows["torch"]
    ]
    for i in range(3):
        for kind in ("map", "groups"):
            onnx_map, torch_map = (np.load(maps[name] / f"p{i}.{kind}.npy") for name in ("onnx", "torch"))
            np.testing.assert_allclose(onnx_map, torch_map, atol=1e-5)
    _, _, plain = tiny_onnx(tmp_path / "plain.onnx")
    for verb in (("score",), ("map", "-o", tmp_path / "maps-plain", "--crop", 32)):
        result = _run(*verb, photos / "p0.png", "--checkpoint", plain, "--explain")
        assert result.exit_code == EXIT_USAGE
        assert result.output == (
            f"error: this model has no explanation head, and {plain} was exported without the embedding a head file "
            "runs on; export it again with --explainer FILE, or with --embedding to pass --explainer FILE\n"
        )
        assert _run(*verb, photos / "p0.png", "--checkpoint", plain, "--explain", "--explainer", checkpoint).output == (
            f"error: {plain}: exported without the embedding, which the explanation head of {checkpoint} runs on; "
            "export it with --embedding\n"
        )  # what the advice before led to


def test_explainer_on_an_onnx_file_runs_on_its_embedding_or_is_one_line_without(tmp_path, monkeypatch):
    """`--explainer FILE` with an ONNX file exported without the embedding was a ValueError traceback after the
    first batch (the CSV header written); now one line at load, exit 2. With the embedding, FILE's head explains,
    not the file's own."""
    from tiny_arniqa import tiny_checkpoint, tiny_explainer

    from arniqa.models.explain import save_explainer

    checkpoint = tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    other = save_explainer(tmp_path / "other.safetensors", tiny_explainer(seed=2))
    photo = _photo(tmp_path / "a.png", 80, 60, 0)
    bare, embedded = tmp_path / "bare.onnx", tmp_path / "embedded.onnx"
    assert _run("export", "-o", bare, "--checkpoint", checkpoint, "--protocol", "whole").exit_code == EXIT_OK
    export = ("export", "-o", embedded, "--checkpoint", checkpoint, "--protocol", "whole", "--embedding")
    assert _run(*export).exit_code == EXIT_OK
    for verb in (("score", "-o", tmp_path / "s.csv"), ("map", "-o", tmp_path / "maps", "--crop", 32)):
        result = _run(*verb, photo, "--checkpoint", bare, "--explainer", other, "--explain")
        assert result.exit_code == EXIT_USAGE
        assert result.output == (
            f"error: {bare}: exported without the embedding, which the explanation head of {other} runs on; export "
            "it with --embedding, or leave out the explainer: the file has its own head\n"
        )
    assert not (tmp_path / "s.csv").exists()
    rows = {}
    plain = tmp_path / "plain-head.safetensors"  # the checkpoint without its head
    for name, model in (("onnx", (embedded,)), ("torch", (plain, "--engine", "torch", "--protocol", "whole"))):
        out = tmp_path / f"{name}.csv"
        result = _run("score", photo, "--checkpoint", *model, "--explainer", other, "--explain", "-o", out)
        assert result.exit_code == EXIT_OK, result.output
        [row] = csv.DictReader(open(out))
        rows[name] = row["explanation"], row["severity"]
    assert rows["onnx"] == rows["torch"]
    own = load(embedded, device="cpu").explain(photo)  # the file's own head says otherwise
    assert rows["onnx"] != (describe(own.top(0)), str(round(float(own.severity[0]), 2)))


def test_a_head_pairs_with_the_encoder_it_was_fitted_on_or_its_bf16_copy_and_no_other(tmp_path, monkeypatch):
    """An explanation head was checked against the model by its width alone: a head fitted on checkpoint A explained
    the features of B (of the same width) without a word, by `score`, `map` and `export`. `explain fit` now records
    the encoder's fingerprints and a head is checked as a regressor file is: with B it is one line, exit 2; with A
    and A's bf16 copy it explains; a head that records none (fitted before) still explains, with one warning line
    that it is checked by its width only (it was without a word)."""
    from tiny_arniqa import TinyARNIQA, tiny_checkpoint, tiny_explainer

    from arniqa.models.checkpoint import load_checkpoint
    from arniqa.models.explain import save_explainer

    a = tiny_checkpoint(tmp_path / "a.safetensors", monkeypatch)  # checkpoints load as TinyARNIQA
    (pristine := tmp_path / "pristine").mkdir()
    _photo(pristine / "r.png", 64, 48, 5)
    head = tmp_path / "head.safetensors"
    fit = ("explain", "fit", pristine, "-o", head, "--checkpoint", a, "--protocol", "whole", "--size", "32x24")
    assert _run(*fit, "--chains", 1, "--device", "cpu").exit_code == EXIT_OK
    model, regressor, _ = load_checkpoint(a)
    [bf16] = save_checkpoint(tmp_path / "bf16.safetensors", model, regressor, dtype=torch.bfloat16)
    torch.manual_seed(1)
    [b] = save_checkpoint(tmp_path / "b.safetensors", TinyARNIQA(), regressor)
    photo = _photo(tmp_path / "p.png", 80, 60, 0)
    verbs = {
        "score": ("score", photo, "--explain", "--protocol", "whole", "-o", tmp_path / "s.csv"),
        "map": ("map", photo, "--explain", "--crop", 32, "-o", tmp_path / "maps"),
        "export": ("export", "--protocol", "whole", "-o", tmp_path / "m.onnx"),
    }
    for checkpoint in (a, bf16):
        result = _run(*verbs["score"], "--checkpoint", checkpoint, "--explainer", head, "--engine", "torch")
        assert result.exit_code == EXIT_OK and "warning" not in result.output, result.output
    for verb in verbs.values():
        result = _run(*verb, "--checkpoint", b, "--explainer", head)
        assert result.exit_code == EXIT_USAGE, result.output
        assert result.output == (
            f"error: {head}: this explanation head was fitted on the features of checkpoint {a}, not of the "
            f"checkpoint {b}, so its explanations would be wrong; score with the encoder it was fitted on, or fit a "
            f"head on it (`arniqa explain fit PRISTINE --checkpoint {b} -o HEAD.safetensors`)\n"
        )
    older = save_explainer(tmp_path / "older.safetensors", tiny_explainer())
    for verb in verbs.values():
        with pytest.warns(UserWarning) as said:  # `arniqa` prints each as one `warning:` line (messages.show_warning)
            result = _run(*verb, "--checkpoint", b, "--explainer", older)
        assert result.exit_code == EXIT_OK, result.output
        assert [str(w.message) for w in said] == [  # once (it explained without a word before)
            f"{older}: the explanation head does not record which encoder it was fitted on (fitted before heads "
            f"recorded it), so only its width is checked against the checkpoint {b}; its explanations are right only "
            f"if it was fitted on that encoder's features; to be sure, fit a head on it (`arniqa explain fit PRISTINE "
            f"--checkpoint {b} -o HEAD.safetensors`)"
        ]


def test_explain_fit_checks_its_folders_before_importing_torch(tmp_path):
    # before: torch, torchvision and the models were imported first: 5.7 s and 870 MB for a mistyped folder here;
    # an empty folder was "no images found", with no word of what counts as an image (as score and map say)
    from fresh_cli import fresh_cli

    from arniqa.data.folders import image_rule

    (tmp_path / "empty").mkdir()
    empty = f"empty: no image files found; give a folder holding image files: {image_rule()}"
    for folder, said in (("missing", "missing: no such folder; give a folder holding image files"), ("empty", empty)):
        done, report = fresh_cli("explain", "fit", tmp_path / folder, "-o", tmp_path / "head.safetensors")
        assert (done.returncode, report["heavy"]) == (2, []), done.stderr
        assert said in done.stderr.splitlines()[0]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--protocol", "crop"], "unknown protocol 'crop'; expected one of ['crops', 'eval', 'pyiqa', 'whole']"),
        (["--device", "gpu"], "device gpu is not a device: choose auto, cpu, cuda, cuda:N or mps"),
        (["--size", "12x"], "expected WIDTHxHEIGHT such as 128x96, got '12x'"),
        (["-o", "head.json"], "-o head.json: the file it writes is a .safetensors file; name one"),
    ],
)
def test_explain_fit_says_a_mistyped_option_before_importing_torch(tmp_path, monkeypatch, option, message):
    # before: torch, torchvision and the models were imported first (and with --protocol the published model
    # fetched: a download with an empty cache, refused here by a proxy that is not there): 6-10 s and 750 MB
    from fresh_cli import fresh_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (32, 32), (90, 120, 60)).save(tmp_path / "photos" / "a.png")
    done, report = fresh_cli("explain", "fit", "photos", "-o", "head.safetensors", *option)
    assert (done.returncode, report["heavy"]) == (2, []), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not list((tmp_path / "cache").rglob("*"))  # nothing fetched


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1"])
def test_explain_fit_refuses_a_seed_outside_0_to_2_to_the_32_naming_the_option(tmp_path, seed):
    """--seed 99999999999999999999 was 'PHOTO: Overflow when unpacking long long; none of the 1 reference images
    could be read', blaming the photos; now the option refuses it before any work."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32), (90, 60, 30)).save(photos / "a.png")
    out = tmp_path / "head.safetensors"
    result = CliRunner().invoke(app, ["explain", "fit", str(photos), "--seed", seed, "-o", str(out)])
    assert result.exit_code == EXIT_USAGE and "--seed" in result.output and not out.exists()


def test_explain_fit_runs_the_engine_score_runs_and_says_what_it_will_compute(tmp_path, monkeypatch):
    """On a CPU `explain fit` extracted features with the torch engine while `score` takes ONNX Runtime there
    (1.2-1.4x faster with `crops` here, 6x with `whole` at 32x24), and said nothing of its cost: 38 photos at --size
    32x24 ran past 900 s in silence. Now the features come from the engine `score` runs on the device (what `score
    --explain` sees), and it says how many images it will compute and, after the first reference, a projected
    time."""
    from tiny_arniqa import tiny_checkpoint

    from arniqa.inference.engines import TorchEngine
    from arniqa.inference.onnx_engine import OnnxEngine

    tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    plain = tmp_path / "plain-head.safetensors"
    runs = []
    for engine in (TorchEngine, OnnxEngine):
        run = engine.run
        monkeypatch.setattr(engine, "run", lambda self, *a, run=run: runs.append(self.name) or run(self, *a))
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for i in range(2):
        _photo(pristine / f"p{i}.png", 40, 30, i)
    out = tmp_path / "out" / "head.safetensors"
    args = ("--checkpoint", plain, "--size", "32x24", "--chains", 2, "--device", "cpu")
    result = _run("explain", "fit", pristine, "-o", out, *args, "--protocol", "whole")
    assert result.exit_code == EXIT_OK, result.output
    score_engine = load(plain, device="cpu").engine.name
    assert score_engine == "onnxruntime" and set(runs) == {score_engine}
    each = 1 + 23 * 5 + 2  # the photo, KADID's 23 types x 5 levels, 2 chains
    lines = result.output.splitlines()
    assert lines[0] == (
        f"fitting on {2 * each} images (2 references x {each}: the photo, 115 single distortions, 2 chains); each is "
        "the image and its half-scale copy (--protocol whole), on cpu with onnxruntime"
    )
    assert re.fullmatch(
        r"a reference takes about \d+ s \(timed on the first\): about \d+ s for the 1 left \(.*\*Cost\*.*\)", lines[1]
    )
    result = _run("explain", "fit", pristine, "-o", out, *args, "--images", 1)  # crops: the cost at any size
    assert result.exit_code == EXIT_OK, result.output
    assert result.output.splitlines()[0] == (
        f"fitting on {each} images (1 reference x {each}: the photo, 115 single distortions, 2 chains); each is "
        "10 crops of 224 px (--protocol crops, at any --size), on cpu with onnxruntime"
    )


def test_explain_fit_on_the_published_model_on_a_cpu_records_its_encoder(published, tmp_path, monkeypatch):
    """On a CPU (ONNX Runtime) `arniqa explain fit` without --checkpoint computed every feature and then failed with
    a traceback (AttributeError: 'NoneType' object has no attribute 'state_dict'), writing no head: its scorer runs
    a cached export and holds no torch encoder to fingerprint. Now the head records the published encoder's
    fingerprints and explains with it."""
    from arniqa.models.arniqa import PAIRING_KEYS, pairing_fingerprints
    from arniqa.models.published import published_encoder

    d, _, _ = published
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    (pristine := tmp_path / "pristine").mkdir()
    _photo(pristine / "r.png", 64, 48, 5)
    head = tmp_path / "head.safetensors"
    fit = ("explain", "fit", pristine, "-o", head, "--weights-dir", d, "--protocol", "whole", "--size", "32x24")
    result = _run(*fit, "--chains", 1, "--device", "cpu")
    assert result.exit_code == EXIT_OK, result.output
    report = json.loads(head.with_suffix(".json").read_text())
    expected = pairing_fingerprints(published_encoder(d / "ARNIQA.pth"))
    assert {key: report[key] for key in PAIRING_KEYS.values()} == expected
    photo = _photo(tmp_path / "p.png", 80, 60, 0)
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole", explainer=head)
    assert len(scorer.explain([photo])) == 1
