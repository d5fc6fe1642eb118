"""This project's checkpoints: safetensors + JSON config round trip, and bad files."""

import json

import pytest
import torch
from safetensors.torch import save_file

from arniqa.models import ARNIQA, Regressor, WeightsError
from arniqa.models.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint


def _randomise(model, seed):
    """Random weights at a sane scale: timm's random conv init, random BN and linear 1-d tensors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and t.ndim == 1:
                noise = torch.rand(t.shape, generator=g)
                t.copy_(0.5 + noise if name.endswith(("running_var", "weight")) else 0.2 * (noise - 0.5))


def test_round_trip_se_model_with_regressor(tmp_path):
    torch.manual_seed(0)
    model = ARNIQA("se_resnet50", se_stages=(2, 3), se_bias=False)
    _randomise(model, 0)
    reg = Regressor.from_numpy(torch.randn(4096).numpy(), 0.5, dataset="csiq")
    path = save_checkpoint(tmp_path / "sub" / "model.safetensors", model, reg, step=1200, note="demo")
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]  # no temp file left

    loaded, loaded_reg, config = load_checkpoint(path)
    assert config["backbone"] == "se_resnet50"
    assert config["backbone_options"] == {"se_stages": [2, 3], "se_bias": False}
    assert config["regressor"] == {"dataset": "csiq", "score_range": [0.0, 1.0, "dmos"], "in_features": 4096}
    assert config["step"] == 1200 and config["note"] == "demo"
    assert not loaded.training
    assert loaded.backbone_options["se_stages"] == (2, 3)
    original = model.state_dict()
    assert loaded.state_dict().keys() == original.keys()
    assert all(torch.equal(v, original[k]) for k, v in loaded.state_dict().items())

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        q, q_loaded = model.quality_features(x, x[..., ::2, ::2]), loaded.quality_features(x, x[..., ::2, ::2])
        assert torch.equal(q, q_loaded)
        assert torch.equal(reg(q), loaded_reg(q_loaded))
    assert loaded_reg.scale(0.25) == pytest.approx(0.75)


def test_round_trip_without_regressor(tmp_path):
    model = ARNIQA("resnet50")
    path = save_checkpoint(tmp_path / "plain.safetensors", model)
    loaded, reg, config = load_checkpoint(path)
    assert reg is None and config["regressor"] is None and config["backbone_options"] == {}
    assert read_checkpoint_config(path) == config


def test_unserialisable_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "x.safetensors", ARNIQA("resnet50"), extra=object())
    with pytest.raises(ValueError, match=r"\['backbone'\] are reserved"):
        save_checkpoint(tmp_path / "x.safetensors", ARNIQA("resnet50"), backbone="vgg")
    assert not list(tmp_path.iterdir())


def test_bad_checkpoints(tmp_path):
    with pytest.raises(WeightsError, match="absent.safetensors: no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError, match="junk.safetensors: not a safetensors checkpoint"):
        load_checkpoint(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"a": torch.zeros(2)}, str(bare))
    with pytest.raises(WeightsError, match="bare.safetensors: safetensors file without an arniqa config"):
        load_checkpoint(bare)
    # Tensors of a resnet50 under a config that says se_resnet50: the SE keys are missing.
    model = ARNIQA("resnet50")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = {"format": "arniqa-checkpoint", "version": 1, "backbone": "se_resnet50", "backbone_options": {}}
    mismatch = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(mismatch), metadata={"arniqa": json.dumps(config)})
    expected = r"mismatch.safetensors: does not fit the model; missing 64 keys: encoder.layer1.0.se"
    with pytest.raises(WeightsError, match=expected):
        load_checkpoint(mismatch)
    unknown = tmp_path / "unknown.safetensors"
    save_file(tensors, str(unknown), metadata={"arniqa": json.dumps({**config, "backbone": "vgg16"})})
    with pytest.raises(WeightsError, match="unknown.safetensors: cannot rebuild the model.*vgg16"):
        load_checkpoint(unknown)
