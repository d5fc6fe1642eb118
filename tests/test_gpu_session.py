"""The GPU session's rehearsal: ``benchmarks/gpu_session.sh --smoke --archive`` on the CPU, in an
environment made like the GPU host: no ``python`` on the PATH (only ``python3``), and pillow-heif,
pywuffs, kornia, openpyxl and ray unimportable. Every stage must end ok and leave its result in the
archive; the model's parts lie beside it."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from imaging import write_image_tree

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"
OPTIONAL = ("pillow_heif", "pywuffs", "kornia", "openpyxl", "ray")
STAGES = {"preflight", "machine", "cuda_tests", "photos", "pipeline", "step_device_b2", "step_workers_b2", "scoring",
          "jpeg_codecs", "curve", "parts", "se_vs_resnet50"}  # fmt: skip
PART_LIMIT = 15 * 2**20


def bare_environment(tmp_path: Path) -> dict:
    """PATH with ``python3`` (this interpreter) and the system's tools but no ``python``; PYTHONPATH led by
    modules that raise ImportError for each optional package."""
    blockers = tmp_path / "blockers"
    for name in OPTIONAL:
        (blockers / name).mkdir(parents=True)
        (blockers / name / "__init__.py").write_text(f"raise ImportError('{name} is not on the GPU host')\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    path = [str(bin_dir)] + [
        d
        for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
        if Path(d).is_dir() and not (Path(d) / "python").exists()
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV")}
    return {**env, "PATH": os.pathsep.join(path), "PYTHONPATH": f"{blockers}{os.pathsep}{ROOT / 'src'}"}


def test_bare_environment_blocks_what_the_gpu_host_lacks(tmp_path):
    env = bare_environment(tmp_path)
    assert shutil.which("python", path=env["PATH"]) is None and shutil.which("python3", path=env["PATH"])
    for name in OPTIONAL:
        r = subprocess.run(["python3", "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert r.returncode == 1 and "is not on the GPU host" in r.stderr, name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_smoke_rehearsal_archives_every_stage(tmp_path):
    write_image_tree(tmp_path / "photos", [(48, 64)] * 8)
    archive = tmp_path / "back" / "session.tgz"
    done = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            str(tmp_path / "photos"),
            "--smoke",
            "--out",
            str(tmp_path / "out"),
            "--archive",
            str(archive),
        ],
        env=bare_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert archive.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    with tarfile.open(archive) as tar:
        files = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        read = lambda name: tar.extractfile(files[name]).read().decode()  # noqa: E731
        stages = {r["stage"]: r["status"] for r in csv.DictReader(io.StringIO(read("stages.tsv")), delimiter="\t")}
        assert set(stages) == STAGES and set(stages.values()) == {"ok"}, (stages, done.stdout[-4000:])
        assert done.returncode == 0

        # every stage's result
        assert "preflight failed" not in read("preflight.log") and "imports: ok" in read("preflight.log")
        assert "needs a CUDA device" in read("cuda_tests.log")  # skipped here: no GPU
        assert 'tests="' in read("cuda_tests.xml")
        pipeline = json.loads(read("pipeline.json"))
        assert pipeline["workers"] == 1 and pipeline["pipeline_samples_per_s"] > 0
        for name, mode in (("step-device-b2.json", "device"), ("step-workers-b2.json", "workers")):
            step = json.loads(read(name))
            assert step["degrade_on"] == mode and step["batch"] == 2 and step["full_s_per_step"] > 0
        scoring = json.loads(read("scoring.json"))
        assert {(r["protocol"], r["path"].split("@")[0]) for r in scoring["rows"]} == {
            (p, k) for p in ("whole", "pyiqa", "crops") for k in ("fp32", "loop", "encoder-fp32", "nvjpeg-fp32")
        }
        codecs = json.loads(read("jpeg_codecs.json"))
        assert [r["quality"] for r in codecs["rows"]] == [43, 36, 24, 7, 4]
        curve = {n for n in files if n.startswith("curve/se_resnet50/seed0/") and n.endswith("result.json")}
        assert curve == {f"curve/se_resnet50/seed0/{s}/result.json" for s in ("untrained", "step1", "trained")}
        scores = list(csv.DictReader(io.StringIO(read("scores.csv"))))
        assert len(scores) == 8 and all(r["error"] == "" and 0 <= float(r["score"]) for r in scores)
        assert "se_vs_resnet50/report.md" in files and "results.json" in files
        summary = read("summary.md")
        assert "| training step, degrade_on=workers, batch 2" in summary and "curve probe at step 2" in summary
        assert "scoring crops 48x40, fp32@b1 (images/s)" in summary

    # the model's parts, beside the archive: bf16, each at most 15 MiB, loadable by name of any part
    from arniqa.models.checkpoint import read_checkpoint_config

    parts = sorted(archive.parent.glob("se_resnet50-gpu-*.safetensors"))
    assert len(parts) >= 2 and all(p.stat().st_size <= PART_LIMIT for p in parts)
    assert parts[0].name == f"se_resnet50-gpu-00001-of-{len(parts):05d}.safetensors"
    config = read_checkpoint_config(parts[-1])
    assert config["dtype"] == "bfloat16" and config["backbone"] == "se_resnet50" and config["regressor"]


def test_the_summary_table_keeps_its_columns_whatever_the_cells_hold():
    """summary.md of the H200 session: the machine line held nvidia-smi's table row and the remarks
    `max |d score|`, whose pipes split cells, so the table showed the wrong columns."""
    import re

    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_summary.py"), str(ROOT / "docs/results/gpu-session-h200")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2] == "Machine: NVIDIA H200; CPU: Intel(R) Xeon(R) Processor."
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) > 10 and {len(re.findall(r"(?<!\\)\|", row)) for row in rows} == {6}  # 5 columns each
    assert any("max \\|d score\\|" in row for row in rows)
    assert done.stdout == (ROOT / "docs/results/gpu-session-h200/summary.md").read_text()  # the committed one


def test_the_curve_plan_counts_the_photos_without_torch(tmp_path):
    """The curve's plan imported torch (through arniqa.data.pristine) only to count the photos: about 13 s and
    0.8 GB on a busy 2-core machine for a count. It counts them with the folder walk alone. The count decides the
    batch: the step stages' batches that give an epoch of at least 8 steps of the photos left after 6 held out."""
    results = tmp_path / "results"
    results.mkdir()
    for batch, rate in ((2, 10.0), (4, 40.0)):  # batch 4 is faster per sample, but 16 photos are 4 steps of it
        step = {"batch": batch, "degrade_on": "workers", "full_samples_per_s": rate, "full_s_per_step": batch / rate}
        (results / f"step-workers-b{batch}.json").write_text(json.dumps(step))
    photos = tmp_path / "photos"
    paths = write_image_tree(photos, [(16, 16)] * 22)
    (photos / "notes.txt").write_text("not a photo")
    code = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
    code += "print('torch' in sys.modules)"
    command = [sys.executable, "-c", code, str(ROOT / "benchmarks" / "gpu_summary.py"), str(results), "--curve-plan"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for kept, plan in ((22, ["2", "workers"]), (21, ["64", "workers"])):  # 16 photos: 8 steps of 2; 15: 7, too few
        for extra in paths[kept:]:
            extra.unlink(missing_ok=True)
        done = subprocess.run([*command, "--photos", str(photos)], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0].split()[:2] == plan and done.stdout.splitlines()[1] == "False"
