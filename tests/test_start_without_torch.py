"""``arniqa score`` on an ONNX file, fp32 or int8, imports neither torch nor timm (checked in a fresh process)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from tiny_arniqa import tiny_onnx

from arniqa.data.images import open_image
from arniqa.data.views import get_protocol

SCRIPT = r"""
import json, sys
from arniqa.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "torchvision"))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_score_with_an_onnx_file_imports_no_torch(tmp_path):
    model, regressor, onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes(b"not a PNG")
    out = tmp_path / "scores.csv"
    env = dict(os.environ, ARNIQA_CACHE=str(tmp_path / "cache"))
    for protocol in ("whole", "pyiqa", "crops"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                "score",
                str(tmp_path),
                "--checkpoint",
                str(onnx_file),
                "--engine",
                "onnxruntime",
                "--protocol",
                protocol,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        report = json.loads(done.stderr.strip().splitlines()[-1])
        assert report == {"code": 1, "heavy": []}, done.stderr  # 1: the broken file
        rows = list(csv.DictReader(open(out)))
        assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
        assert all(r["score"] for r in rows[:3]) and rows[3]["error"] and not rows[3]["score"]
        if protocol == "crops":  # and its int8 form, made on first use: no torch either
            calibration = tmp_path / "calibration"
            calibration.mkdir(exist_ok=True)
            Image.open(tmp_path / "0.png").save(calibration / "0.png")
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    SCRIPT,
                    "score",
                    str(tmp_path),
                    "--checkpoint",
                    str(onnx_file),
                    "--precision",
                    "int8",
                    "--calibrate",
                    str(calibration),
                    "-o",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
            )
            assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 1, "heavy": []}, done.stderr
            assert len(list((tmp_path / "cache" / "onnx").glob("*.int8-*.onnx"))) == 1
        # the same scores as the model run in torch
        ref = []
        for i in range(3):
            full, half = get_protocol(protocol).views(open_image(tmp_path / f"{i}.png"))
            with torch.no_grad():
                ref.append(float(regressor.scale(regressor(model.quality_features(full, half)).mean())))
        assert np.allclose([float(r["score"]) for r in rows[:3]], ref, rtol=0, atol=1e-5)
