"""The benchmark scripts that the docs tell users to run: every name they import from arniqa exists."""

import ast
import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def arniqa_imports(script: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from arniqa... import name`` in the script, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "arniqa":
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_name_a_benchmark_imports_from_arniqa_exists(script):
    # before: explain_cpu.py, int8.py and map_localisation.py imported list_images from arniqa.data.images
    # after it had moved to arniqa.data.folders, so `python benchmarks/int8.py ...` was an ImportError
    missing = []
    for line, module, name in arniqa_imports(script):
        if not hasattr(importlib.import_module(module), name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ImportError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{script.name}: {missing}"


def _training_benchmark(*args):
    """``benchmarks/training.py ARGS`` run on this checkout's code."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = ROOT / "benchmarks" / "training.py"
    return subprocess.run(
        [sys.executable, script, *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_training_benchmark_writes_its_json_file_where_out_says(tmp_path):
    # before: --out took a folder (the file inside named by --name), where every other script in benchmarks/
    # takes the JSON file's path; `--out x.json` made a folder x.json
    out = tmp_path / "results" / "pipeline.json"
    tiny = ["--pipeline-only", "--workers", "0", "--batch", "1", "--steps", "1", "--warmup", "0", "--profile-samples",
            "0", "--crop-size", "16"]  # fmt: skip
    done = _training_benchmark(*tiny, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and json.loads(out.read_text())["mode"] == "pipeline-only"
    assert done.stdout.splitlines()[-1] == f"wrote {out}"


def test_training_benchmark_times_the_fused_sgd_against_the_for_each_one(tmp_path):
    # before: docs/training.md quoted a for-each SGD step (0.49 s) that no benchmark measured or recorded
    out = tmp_path / "training.json"
    tiny = ["--batch", "1", "--steps", "1", "--warmup", "0", "--crop-size", "32", "--workers", "0", "--threads", "1"]
    done = _training_benchmark(*tiny, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["optimizer_fused"] is True  # this torch has the fused CPU kernel
    assert result["optimizer_s"] > 0 and result["optimizer_foreach_s"] > 0
    assert "optimizer_foreach 0." in done.stdout and "optimizer_fused" not in done.stdout


def test_explain_cpu_benchmark_takes_the_engine_explain_fit_takes(tmp_path, monkeypatch):
    # before: it forced the torch engine, where `arniqa explain fit` and `arniqa map` take the device's (ONNX
    # Runtime on a CPU, docs/usage.md), so its features and maps were not those the commands compute
    import runpy
    import sys

    import numpy as np
    import onnxruntime
    from PIL import Image
    from tiny_arniqa import tiny_checkpoint

    model = tiny_checkpoint(tmp_path / "tiny.safetensors", monkeypatch)
    for k, folder in enumerate(("fit", "test")):
        (tmp_path / folder).mkdir()
        pixels = np.random.default_rng(k).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / folder / "a.png")
    out = tmp_path / "explain.json"
    tiny = ["--size", "32x24", "--chains", "1", "--loc-images", "1", "--loc-size", "64x48", "--crop", "32",
            "--stride", "32", "--threads", "1"]  # fmt: skip
    args = ["--checkpoint", str(model), "--fit", str(tmp_path / "fit"), "--test", str(tmp_path / "test"), *tiny]
    monkeypatch.setattr(sys, "argv", ["explain_cpu.py", *args, "--out", str(out)])
    sides = set()  # the (height, width) of the images ONNX Runtime was given
    run = onnxruntime.InferenceSession.run

    def seen(self, names, feed, *rest, **options):
        sides.update(tuple(v.shape[-2:]) for v in feed.values())
        return run(self, names, feed, *rest, **options)

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", seen)
    runpy.run_path(str(ROOT / "benchmarks" / "explain_cpu.py"), run_name="__main__")
    assert {(24, 32), (32, 32)} <= sides  # the samples (32x24) and the map's crops (32 px)
    result = json.loads(out.read_text())
    assert result["engine"] == "onnxruntime" and "localisation" in result


def test_report_size_benchmark_writes_each_thumbnail_mode(tmp_path, monkeypatch):
    import runpy
    import sys

    from imaging import write_photo

    (tmp_path / "photos").mkdir()
    for k in range(2):
        write_photo(tmp_path / "photos" / f"{k}.png", 64, 48, k)
    out = tmp_path / "report.json"
    args = ["--photos", str(tmp_path / "photos"), "--rows", "5", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["report_size.py", *args])
    runpy.run_path(str(ROOT / "benchmarks" / "report_size.py"), run_name="__main__")
    result = json.loads(out.read_text())
    assert result["rows"] == 5 and [r["thumbnails"] for r in result["results"]] == ["none", "link", "embed"]
    sizes = [r["bytes"] for r in result["results"]]
    assert sizes[0] < sizes[1] < sizes[2]  # a relative link, then a JPEG thumbnail, in each of the 5 rows


def test_startup_benchmark_takes_the_photos_arniqa_score_takes_in_a_folder(tmp_path):
    # before: its own filter, the .jpg and .png files at the top of --images: a folder of .jpeg photos, or of
    # photos in subfolders, was 'no .jpg or .png photos' (and a Mac's ._a.jpg beside a photo was taken as one)
    import os
    import subprocess
    import sys

    from PIL import Image

    (tmp_path / "photos" / "2026").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "2026" / "a.jpeg")
    run = [sys.executable, ROOT / "benchmarks" / "startup.py", "--before", "no-such-commit", "--images"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([*run, tmp_path / "photos"], capture_output=True, text=True, env=env, timeout=120)
    assert done.stderr.splitlines()[-1] == (  # past the photos, to the first step that uses them
        "error: --before no-such-commit: git archive failed; name a commit of this repository"
    )
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    done = subprocess.run([*run, tmp_path / "none"], capture_output=True, text=True, env=env, timeout=120)
    # before: a warning of what was skipped, then its own 'no image files' line; the one line of every verb now
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        f"error: {tmp_path / 'none'}: no image files found, skipped 1 file no decoder can open: 1 .txt; give a "
        "folder holding image files: "
    )


def _options(script: Path) -> set[str]:
    """The option strings of every ``add_argument(...)`` call in the script (``--steps``, ``-o``)."""
    found = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return found


def test_every_option_the_docs_give_a_benchmark_is_one_it_takes():
    """Each `--option` after `python benchmarks/NAME.py` in README.md and docs/ (a code block line, with its
    `\\` lines, or inline code) is an option of that script's parser, so a renamed one fails here, not in a
    user's hands (argparse stops at a word it does not know)."""
    import re

    wrong, seen = [], 0
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))):
        text = doc.read_text().replace("\\\n", " ")
        for m in re.finditer(r"python3? (benchmarks/\w+\.py)([^`\n|#;&]*)", text):
            script = ROOT / m.group(1)
            flags = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", m.group(2)))
            wrong += [f"{doc.name}: {m.group(1)} {flag}" for flag in sorted(flags - _options(script))]
            seen += bool(flags)
    assert seen > 5  # the docs give options to several benchmarks
    assert not wrong, "not an option of the script:\n" + "\n".join(wrong)
