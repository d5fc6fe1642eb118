import csv
import math

import pytest
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open

from arniqa.train import load_config
from arniqa.train.loop import Trainer
from arniqa.train.validation import build_validator


def small_config(tmp_path, image_folder, *extra):
    return load_config(None, [
        f"data.root={image_folder}", "data.crop_size=32", "data.num_workers=0", "data.max_images=2",
        "model.init=random", "train.batch_size=2", "train.epochs=3", "train.device=cpu", "train.precision=fp32",
        f"output={tmp_path / 'run'}", "log.progress=false", "log.tensorboard=false", *extra,
    ])  # fmt: skip


def step_of(path):
    with safe_open(str(path), framework="pt") as f:
        import json

        return json.loads(f.metadata()["arniqa"])["global_step"]


class TinyARNIQA(torch.nn.Module):
    """Stands in for ARNIQA where only the run's bookkeeping is under test (forward returns (f, g))."""

    config = {"backbone": "tiny", "backbone_options": {}}

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x):
        f = torch.nn.functional.normalize(self.conv(x).mean((2, 3)), dim=1)
        return f, torch.nn.functional.normalize(self.proj(f), dim=1)


@pytest.fixture
def tiny_model(monkeypatch):
    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())


def test_keeps_the_best_epoch(tmp_path, image_folder, tiny_model):
    scores = iter([0.3, 0.7, 0.5])
    seen = []

    def validate(model):
        seen.append(model.training)
        return {"srcc": next(scores)}

    final = Trainer(small_config(tmp_path, image_folder), validate=validate).fit()
    run = tmp_path / "run"
    assert seen == [False, False, False]  # eval mode during validation
    assert step_of(run / "best.safetensors") == 2  # epoch 2 of 3 (one step each) scored best
    assert final.read_bytes() == (run / "best.safetensors").read_bytes()
    rows = list(csv.DictReader(open(run / "validation.csv")))
    assert [float(r["srcc"]) for r in rows] == [0.3, 0.7, 0.5] and [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert torch.load(run / "state.pt", weights_only=False)["best"] == 0.7


def test_without_validation_the_last_model_is_kept(tmp_path, image_folder, tiny_model):
    final = Trainer(small_config(tmp_path, image_folder, "train.epochs=1")).fit()
    assert step_of(final) == 1 and not (tmp_path / "run" / "best.safetensors").exists()


def test_validator_on_a_labelled_csv_dataset(tmp_path, image_folder):
    # 20 images: a texture blurred by increasing radius; MOS falls with blur. 10 % val = 2 images.
    base = Image.open(sorted(image_folder.rglob("*.png"))[0]).convert("RGB").resize((48, 48))
    rows = []
    for i in range(20):
        name = f"blur{i}.png"
        base.filter(ImageFilter.GaussianBlur(i * 0.2)).save(tmp_path / name)
        rows.append({"path": name, "score": 5 - 0.2 * i})
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "score"])
        writer.writeheader()
        writer.writerows(rows)
    config = small_config(tmp_path, image_folder, f"validation.datasets=[{{name: csv, root: {tmp_path / 'labels.csv'}}}]",
                          "validation.num_splits=3").validation  # fmt: skip
    validate = build_validator(config, torch.device("cpu"), crop_size=32)
    from arniqa.models import ARNIQA

    torch.manual_seed(0)
    metrics = validate(ARNIQA("resnet50").eval())
    assert set(metrics) == {"srcc", "csv"} and metrics["srcc"] == metrics["csv"]
    assert math.isfinite(metrics["srcc"]) and -1 <= metrics["srcc"] <= 1
