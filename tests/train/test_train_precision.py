"""Mixed precision (the reference trains under fp16 autocast with a GradScaler) and the record of
the ImageNet file a run starts from. fp16 autocast itself needs CUDA; on CPU the scaler's place in
a run is checked by asking for a scaler without autocast."""

import hashlib
import re
import warnings
from pathlib import Path

import pytest
import torch

from arniqa.train import factory, load_config, loop
from arniqa.train.__main__ import main
from arniqa.train.loop import Trainer, autocast_settings


def overrides(tmp_path, image_folder, *extra):
    return [
        f"data.root={image_folder}",
        "data.crop_size=32",
        "data.num_workers=0",
        "data.max_images=2",
        "model.init=random",
        "train.batch_size=1",
        "train.epochs=1",
        "train.device=cpu",
        "train.precision=fp32",
        "train.checkpoint_every=1",
        f"output={tmp_path / 'run'}",
        "log.progress=false",
        "log.tensorboard=false",
        *extra,
    ]


def test_autocast_settings(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_settings("fp32", cpu) == (None, False)
    assert autocast_settings("auto", cpu) == (None, False)  # fp32 on CPU
    assert autocast_settings("bf16", cpu) == (torch.bfloat16, False)
    assert autocast_settings("bf16", cuda) == (torch.bfloat16, False)  # bf16 needs no scaler
    assert autocast_settings("fp16", cuda) == (torch.float16, True)  # the reference's: fp16 with a GradScaler
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert autocast_settings("auto", cuda) == (torch.bfloat16, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert autocast_settings("auto", cuda) == (torch.float16, True)
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        autocast_settings("fp16", cpu)


def test_fp16_on_cpu_is_refused_by_the_command(tmp_path, image_folder, tiny_model, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {precision: fp16}\n")
    args = [str(config)] + [a for o in overrides(tmp_path, image_folder) if "precision" not in o for a in ("--set", o)]
    assert main(args) == 2  # a setup error, as arniqa train
    assert "train.precision=fp16 needs CUDA" in capsys.readouterr().err


def test_scaler_state_is_saved_and_resumed(tmp_path, image_folder, tiny_model, monkeypatch):
    monkeypatch.setattr(loop, "autocast_settings", lambda precision, device: (None, True))  # fp16's scaler
    run = tmp_path / "run"
    Trainer(load_config(None, overrides(tmp_path, image_folder, "train.max_steps=1"))).fit()
    saved = torch.load(run / "state.pt", weights_only=False)["scaler"]
    assert saved["scale"] == 2.0**16 and saved["_growth_tracker"] == 1  # one finite step went through the scaler
    resumed = Trainer(load_config(None, overrides(tmp_path, image_folder)))
    resumed.load_state(run / "state.pt")
    assert resumed.scaler.state_dict() == saved
    resumed.fit(run / "state.pt")
    assert torch.load(run / "state.pt", weights_only=False)["scaler"]["_growth_tracker"] == 2
    assert f"resumed from {run / 'state.pt'} at global step 1" in (run / "run.log").read_text()


def test_a_run_without_scaler_resumes_with_one(tmp_path, image_folder, tiny_model, monkeypatch):
    run = tmp_path / "run"
    Trainer(load_config(None, overrides(tmp_path, image_folder, "train.max_steps=1"))).fit()  # fp32: no scaler state
    assert torch.load(run / "state.pt", weights_only=False)["scaler"] == {}
    monkeypatch.setattr(loop, "autocast_settings", lambda precision, device: (None, True))
    Trainer(load_config(None, overrides(tmp_path, image_folder))).fit(run / "state.pt")
    scaler = torch.load(run / "state.pt", weights_only=False)["scaler"]
    assert scaler["scale"] == 2.0**16 and scaler["_growth_tracker"] == 1  # a fresh scaler, one step


def imagenet_run(tmp_path, image_folder):
    weights = tmp_path / "resnet50-other.pth"
    weights.write_bytes(b"a ResNet50 file that is not torchvision's")  # build_model is stubbed: never parsed
    config = load_config(
        None, overrides(tmp_path, image_folder, "model.init=imagenet", f"model.weights={weights}", "train.max_steps=1")
    )
    return config, weights, hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_foreign_imagenet_file_is_warned_and_its_hash_logged(tmp_path, image_folder, tiny_model):
    config, weights, digest = imagenet_run(tmp_path, image_folder)
    with pytest.warns(UserWarning, match=re.escape(f"{weights}: SHA-256 {digest} is not") + ".*IMAGENET1K_V1"):
        trainer = Trainer(config)
    trainer.fit()
    log = (tmp_path / "run" / "run.log").read_text()
    assert f"model.weights {weights}: sha256 {digest} (not torchvision IMAGENET1K_V1" in log


def test_the_torchvision_file_is_logged_without_warning(tmp_path, image_folder, tiny_model, monkeypatch):
    config, weights, digest = imagenet_run(tmp_path, image_folder)
    monkeypatch.setattr(factory, "IMAGENET1K_V1_SHA256_PREFIX", digest[:8])  # pretend it is resnet50-0676ba61.pth
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer = Trainer(config)
    trainer.fit()
    log = (tmp_path / "run" / "run.log").read_text()
    assert f"model.weights {weights}: sha256 {digest} (torchvision IMAGENET1K_V1, as the reference)" in log


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    """`python -m arniqa.train` (the torchrun entry) ended a Ctrl-C with KeyboardInterrupt's traceback."""
    import arniqa.train.__main__ as entry

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "Trainer", interrupted)
    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    assert main([str(config), "--set", f"data.root={tmp_path}"]) == 128 + 2  # SIGINT, as shells report it
    assert capsys.readouterr().err == (
        "error: interrupted; what was written is kept: arniqa score --resume, arniqa train --resume and arniqa "
        "ablate go on from it\n"
    )
