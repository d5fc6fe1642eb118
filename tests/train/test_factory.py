"""train/factory.py: what a run is built from. The optimiser (LARS's update against a hand computation, AdamW's
weight-decay groups, exact resume with both, model snapshots at train.snapshot_steps); model.init=random_resnet50
(an SE-ResNet50 that starts as the random ResNet50 of the same seed); mixed precision (the reference trains under
fp16 autocast with a GradScaler; fp16 autocast itself needs CUDA, so on CPU the scaler's place in a run is checked
by asking for a scaler without autocast) and the record of the ImageNet file a run starts from."""

import hashlib
import re
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from arniqa.train import factory, load_config, loop
from arniqa.train.__main__ import main
from arniqa.train.config import OptimConfig
from arniqa.train.factory import build_model, make_optimizer
from arniqa.train.loop import Trainer, autocast_settings, snapshot_path
from arniqa.train.state import STATE_FILE


class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # norm 5
        self.bias = torch.nn.Parameter(torch.tensor([1.0]))


def test_lars_update_by_hand():
    model = Two()
    opt = OptimConfig(name="lars", lr=0.5, momentum=0.9, weight_decay=0.1, trust_coefficient=0.01)
    optimizer = make_optimizer(model, opt)
    grads = [torch.tensor([[0.6, 0.8]]), torch.tensor([2.0])]  # weight grad norm 1
    for p, g in zip((model.weight, model.bias), grads):
        p.grad = g.clone()
    optimizer.step()
    # weight: trust = 0.01 * |w| / (|g| + wd * |w|) = 0.01 * 5 / (1 + 0.5) = 1/30;
    # update = lr * trust * (g + wd * w) (the first momentum buffer is the update itself)
    trust = 0.01 * 5 / (1 + 0.1 * 5)
    expected_w = torch.tensor([[3.0, 4.0]]) - 0.5 * trust * (
        torch.tensor([[0.6, 0.8]]) + 0.1 * torch.tensor([[3.0, 4.0]])
    )
    torch.testing.assert_close(model.weight.detach(), expected_w, rtol=1e-6, atol=0)
    # bias (1-d): no weight decay and no trust ratio: plain momentum SGD, 1 - 0.5 * 2
    torch.testing.assert_close(model.bias.detach(), torch.tensor([0.0]))
    # second step: buffer = 0.9 * buffer + new update
    buf_b = torch.tensor([2.0])
    model.bias.grad = torch.tensor([1.0])
    optimizer.step()
    torch.testing.assert_close(model.bias.detach(), torch.tensor([0.0]) - 0.5 * (0.9 * buf_b + 1.0))


def test_adamw_decays_weights_only():
    model = Two()
    optimizer = make_optimizer(model, OptimConfig(name="adamw", lr=0.1, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradients: only decoupled weight decay moves anything, w * (1 - lr * wd)
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[3.0, 4.0]]) * (1 - 0.1 * 0.5))
    torch.testing.assert_close(model.bias.detach(), torch.tensor([1.0]))
    assert isinstance(make_optimizer(model, OptimConfig()), torch.optim.SGD)


def settings(image_folder, output, name, steps):
    return load_config(
        None,
        [
            f"data.root={image_folder}",
            "data.crop_size=16",
            "data.num_workers=0",
            "model.init=random",
            "model.backbone=resnet50",
            "train.batch_size=2",
            "train.epochs=2",
            "train.device=cpu",
            "train.precision=fp32",
            "train.channels_last=false",
            f"train.max_steps={steps}",
            f"optim.name={name}",
            "optim.lr=0.01",
            "optim.warmup_steps=2",
            "optim.t0_steps=3",
            "train.snapshot_steps=[2, 4]",
            f"output={output}",
            "log.every=1",
            "log.progress=false",
            "log.tensorboard=false",
        ],
    )


@pytest.mark.parametrize("name", ["adamw", "lars"])
def test_resume_is_exact_with_the_new_optimisers_and_snapshots(tmp_path, image_folder, name, tiny_model):
    Trainer(settings(image_folder, tmp_path / "whole", name, 5)).fit()
    Trainer(settings(image_folder, tmp_path / "cut", name, 3)).fit()  # stops after step 3 with a state.pt
    Trainer(settings(image_folder, tmp_path / "cut", name, 5)).fit(resume=tmp_path / "cut" / STATE_FILE)
    whole = torch.load(tmp_path / "whole" / STATE_FILE, weights_only=False)
    cut = torch.load(tmp_path / "cut" / STATE_FILE, weights_only=False)
    assert whole["global_step"] == cut["global_step"] == 5
    for key, value in whole["model"].items():
        assert torch.equal(value, cut["model"][key]), key
    assert whole["scheduler"]["last_epoch"] == cut["scheduler"]["last_epoch"] == 5
    states = [s for s in whole["optimizer"]["state"].values()]
    assert states and all(("exp_avg" if name == "adamw" else "momentum_buffer") in s for s in states)
    # snapshots after global steps 2 and 4, in both runs, equal
    for step in (2, 4):
        a = load_file(snapshot_path(tmp_path / "whole", step))
        b = load_file(snapshot_path(tmp_path / "cut", step))
        assert a.keys() == b.keys() and all(torch.equal(v, b[k]) for k, v in a.items())
        assert safe_open(snapshot_path(tmp_path / "whole", step), "pt").metadata()  # a checkpoint, with its metadata
    assert not snapshot_path(tmp_path / "whole", 3).exists()
    final = load_file(tmp_path / "whole" / "model.safetensors")
    four = load_file(snapshot_path(tmp_path / "whole", 4))
    assert not all(torch.equal(v, four[k]) for k, v in final.items())


def test_the_default_optimiser_is_the_references_sgd_on_every_parameter():
    """SGD(lr 1e-3, momentum 0.9, weight decay 1e-4) on all parameters, biases and norm layers included: one
    group, no Nesterov, no dampening (arniqa-reference.md section 2, Optimisation)."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    optimizer = make_optimizer(model, OptimConfig())
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (1e-3, 0.9, 1e-4)
    assert group["nesterov"] is False and group["dampening"] == 0


def built(backbone, init, se_init="identity", seed=3):
    config = load_config(None, [f"model.backbone={backbone}", f"model.init={init}", f"model.se_init={se_init}"])
    torch.manual_seed(seed)
    model = build_model(config)
    return model, torch.get_rng_state()


def test_se_resnet50_starts_as_the_resnet50_of_the_same_seed():
    plain, rng_plain = built("resnet50", "random")
    se, rng_se = built("se_resnet50", "random_resnet50")
    same_plain, _ = built("resnet50", "random_resnet50")
    assert all(torch.equal(v, same_plain.state_dict()[k]) for k, v in plain.state_dict().items())
    assert torch.equal(rng_plain, rng_se)  # what the trainer draws next does not depend on the variant
    shared = {k: v for k, v in se.state_dict().items() if ".se." not in k}
    for key, value in shared.items():
        if "bn3" in key and key.endswith(("weight", "bias")):
            assert torch.equal(value, 2 * plain.state_dict()[key]), key  # doubled for the 0.5 gate
        else:
            assert torch.equal(value, plain.state_dict()[key]), key
    fc2 = [k for k in se.state_dict() if ".se.fc2." in k]
    assert fc2 and all(not se.state_dict()[k].any() for k in fc2)  # every gate is sigmoid(0) = 0.5
    x = torch.rand(3, 3, 48, 48)
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(se, mode)()
        with torch.no_grad():
            f_plain, p_plain = plain(x)
            f_se, p_se = se(x)
        torch.testing.assert_close(f_se, f_plain, rtol=0, atol=1e-6)
        torch.testing.assert_close(p_se, p_plain, rtol=0, atol=1e-6)


def test_se_init_random_keeps_timm_gates_and_plain_random_init_is_another_network():
    plain, _ = built("resnet50", "random")
    gated, _ = built("se_resnet50", "random_resnet50", se_init="random")
    state = gated.state_dict()
    fc2 = [k for k in state if ".se.fc2.weight" in k]
    assert fc2 and all(state[k].abs().sum() > 0 for k in fc2)  # timm's gates, not the 0.5 pass-through
    assert all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())  # bn3 not doubled
    # timm zero-initialises every bn3 gamma, so at step 0 any SE gate multiplies a zero branch: the
    # same function still; the init=random SE-ResNet50 has other convolution weights altogether
    other, _ = built("se_resnet50", "random")
    x = torch.rand(2, 3, 48, 48)
    plain.eval(), other.eval()
    with torch.no_grad():
        assert (other(x)[0] - plain(x)[0]).abs().max() > 1e-3


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


def imagenet_run(tmp_path, image_folder, monkeypatch):
    monkeypatch.setattr(loop, "load_imagenet", lambda model, config: None)  # the stand-in model takes no file
    weights = tmp_path / "resnet50-other.pth"
    weights.write_bytes(b"a ResNet50 file that is not torchvision's")  # never parsed
    config = load_config(
        None, overrides(tmp_path, image_folder, "model.init=imagenet", f"model.weights={weights}", "train.max_steps=1")
    )
    return config, weights, hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_foreign_imagenet_file_is_warned_and_its_hash_logged(tmp_path, image_folder, tiny_model, monkeypatch):
    config, weights, digest = imagenet_run(tmp_path, image_folder, monkeypatch)
    with pytest.warns(UserWarning, match=re.escape(f"{weights}: SHA-256 {digest} is not") + ".*IMAGENET1K_V1"):
        Trainer(config).fit()  # a new run reads the file as it starts
    log = (tmp_path / "run" / "run.log").read_text()
    assert f"model.weights {weights}: sha256 {digest} (not torchvision IMAGENET1K_V1" in log


def test_the_torchvision_file_is_logged_without_warning(tmp_path, image_folder, tiny_model, monkeypatch):
    config, weights, digest = imagenet_run(tmp_path, image_folder, monkeypatch)
    monkeypatch.setattr(factory, "IMAGENET1K_V1_SHA256_PREFIX", digest[:8])  # pretend it is resnet50-0676ba61.pth
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(config).fit()
    log = (tmp_path / "run" / "run.log").read_text()
    assert f"model.weights {weights}: sha256 {digest} (torchvision IMAGENET1K_V1, as the reference)" in log


@pytest.mark.filterwarnings("ignore:.*IMAGENET1K_V1")
def test_a_new_run_starts_from_the_model_build_model_loads(tmp_path, image_folder):
    """A new run reads the ImageNet file as it starts, not when built (a resumed run needs none): its model is still
    build_model's (SE blocks set as pass-throughs), drawn from the same seed."""
    from arniqa.models import ARNIQA

    torch.manual_seed(1)
    imagenet = tmp_path / "resnet50.pth"
    torch.save(ARNIQA("resnet50").encoder.state_dict(), imagenet)  # a ResNet50 file (timm's key names)
    settings = ["model.backbone=se_resnet50", "model.init=imagenet", f"model.weights={imagenet}"]
    config = load_config(None, overrides(tmp_path, image_folder, *settings))
    trainer = Trainer(config)
    trainer._load_imagenet()
    torch.manual_seed(config.train.seed)
    built = build_model(config).state_dict()
    assert all(torch.equal(value, built[key]) for key, value in trainer.model.state_dict().items())


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    """`python -m arniqa.train` (the torchrun entry) ended a Ctrl-C with KeyboardInterrupt's traceback."""
    import arniqa.train.loop as loop

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "Trainer", interrupted)
    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    assert main([str(config), "--set", f"data.root={tmp_path}"]) == 128 + 2  # SIGINT, as shells report it
    assert capsys.readouterr().err == "error: interrupted; nothing was trained: run the same command again\n"
    state = tmp_path / "state.pt"
    assert main([str(config), "--set", f"data.root={tmp_path}", "--resume", str(state)]) == 128 + 2
    assert capsys.readouterr().err == f"error: interrupted; resume with --resume {state}\n"
