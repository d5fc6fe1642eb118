"""``arniqa score`` on an ONNX file, fp32 or int8, imports neither torch nor timm (checked in a fresh process)."""

import csv
import os

import numpy as np
import onnxruntime
import torch
from fresh_cli import fresh_cli
from PIL import Image
from tiny_arniqa import tiny_onnx

from arniqa.data.images import open_image
from arniqa.data.views import get_protocol

# onnxruntime.quantization imports torch below 1.24 (shape_inference -> onnxruntime.tools, which imports torch
# when it is installed): there the int8 form's calibration run loads torch (docs/usage.md, Start-up)
QUANTIZES_WITHOUT_TORCH = tuple(int(v) for v in onnxruntime.__version__.split(".")[:2]) >= (1, 24)


def test_score_with_an_onnx_file_imports_no_torch(tmp_path):
    model, regressor, onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes(b"not a PNG")
    out = tmp_path / "scores.csv"
    env = dict(os.environ, ARNIQA_CACHE=str(tmp_path / "cache"))
    command = ["score", tmp_path, "--checkpoint", onnx_file, "-o", out]
    for protocol in ("whole", "pyiqa", "crops"):
        done, report = fresh_cli(*command, "--engine", "onnxruntime", "--protocol", protocol)
        assert (done.returncode, report["heavy"]) == (1, []), done.stderr  # 1: the broken file
        rows = list(csv.DictReader(open(out)))
        assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
        assert all(r["score"] for r in rows[:3]) and rows[3]["error"] and not rows[3]["score"]
        if protocol == "crops":  # and its int8 form, made on first use: no torch either
            calibration = tmp_path / "calibration"
            calibration.mkdir(exist_ok=True)
            Image.open(tmp_path / "0.png").save(calibration / "0.png")
            done, report = fresh_cli(*command, "--precision", "int8", "--calibrate", calibration, env=env)
            assert done.returncode == 1, done.stderr
            assert report["heavy"] == [] or not QUANTIZES_WITHOUT_TORCH, report["heavy"]
            assert len(list((tmp_path / "cache" / "onnx").glob("*.int8-*.onnx"))) == 1
        # the same scores as the model run in torch
        ref = []
        for i in range(3):
            full, half = get_protocol(protocol).views(open_image(tmp_path / f"{i}.png"))
            with torch.no_grad():
                ref.append(float(regressor.scale(regressor(model.quality_features(full, half)).mean())))
        assert np.allclose([float(r["score"]) for r in rows[:3]], ref, rtol=0, atol=1e-5)


def test_an_onnx_file_with_an_explanation_head_scores_without_torch_and_explains(tmp_path):
    """The explanation outputs are read only for --explain (which imports torch, as any explanation does)."""
    from tiny_arniqa import tiny_explainer

    from arniqa.inference.onnx_export import export_onnx

    model, regressor, _ = tiny_onnx(tmp_path / "plain.onnx")
    onnx_file = export_onnx(model, regressor, tmp_path / "head.onnx", protocol="whole", explainer=tiny_explainer())
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    command = ["score", tmp_path / "a.png", "--checkpoint", onnx_file]
    done, report = fresh_cli(*command)
    assert (done.returncode, report["heavy"]) == (0, []), done.stderr
    assert done.stdout.splitlines()[0] == "path,score,raw_score,error,note"
    done, _ = fresh_cli(*command, "--explain")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "path,score,raw_score,error,explanation,severity,note"
