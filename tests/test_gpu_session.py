"""benchmarks/gpu_session.sh --smoke: the GPU session's script runs end to end on the CPU and writes
every result file it promises (the CUDA tests skip without a GPU)."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .train.conftest import write_images

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_smoke_mode_writes_every_result(tmp_path):
    write_images(tmp_path / "photos", [(48, 64)] * 8)
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "photos"), "--smoke", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    results = tmp_path / "out" / "benchmarks" / "results" / "gpu-session"
    stages = {row["stage"]: row["status"] for row in csv.DictReader(open(results / "stages.tsv"), delimiter="\t")}
    assert done.returncode == 0, (stages, done.stdout[-3000:], done.stderr[-3000:])
    assert set(stages) == {"machine", "cuda_tests", "photos", "pipeline", "step_device_b2", "step_workers_b2", "se_vs_resnet50"}
    assert set(stages.values()) == {"ok"}

    pipeline = json.loads((results / "pipeline.json").read_text())
    assert pipeline["workers"] == 1 and pipeline["pipeline_samples_per_s"] > 0 and pipeline["lscpu"]
    for name, mode in (("step-device-b2", "device"), ("step-workers-b2", "workers")):
        step = json.loads((results / f"{name}.json").read_text())
        assert step["degrade_on"] == mode and step["batch"] == 2 and step["full_s_per_step"] > 0
    summary = (results / "summary.md").read_text()
    assert "| step-device-b2 | device | 2 |" in summary and "| step-workers-b2 | workers | 2 |" in summary
    assert "needs a CUDA device" in (results / "cuda_tests.log").read_text()  # skipped: no GPU here

    report = tmp_path / "out" / "docs" / "results" / "gpu-se-vs-resnet50"
    summary = json.loads((report / "summary.json").read_text())
    assert "resnet50" in json.dumps(summary) and "se_resnet50" in json.dumps(summary)
    assert (report / "report.md").exists() and (report / "split.json").exists()
