"""optim.name: LARS's update against a hand computation, AdamW's weight-decay groups, exact resume
with both, and model snapshots at train.snapshot_steps."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from arniqa.train import load_config
from arniqa.train.config import OptimConfig
from arniqa.train.factory import make_optimizer
from arniqa.train.loop import Trainer, snapshot_path
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
