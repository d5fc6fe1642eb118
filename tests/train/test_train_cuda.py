"""A few training steps on a CUDA device, chains on the device and in DataLoader workers, in bf16 and fp32
(skipped without a GPU; the GPU session runs it)."""

import csv
import math

import pytest
import torch
import yaml

from arniqa.train import load_config
from arniqa.train.loop import train

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("degrade_on, precision", [("device", "bf16"), ("workers", "bf16"), ("device", "fp32")])
def test_cuda_training_steps(tmp_path, image_folder, degrade_on, precision):
    values = {
        "output": str(tmp_path / "run"),
        "data": {"root": str(image_folder), "crop_size": 64, "num_workers": 2, "degrade_on": degrade_on},
        "model": {"backbone": "se_resnet50", "init": "random"},
        "train": {"epochs": 1, "batch_size": 2, "device": "cuda", "precision": precision, "checkpoint_every": 1},
        "log": {"every": 1, "tensorboard": False, "progress": False},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(values))
    path = train(load_config(tmp_path / "run.yaml"))
    with open(tmp_path / "run" / "log.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert path.exists() and len(losses) == 3 and all(math.isfinite(v) for v in losses)
