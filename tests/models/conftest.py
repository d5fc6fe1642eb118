"""Fixtures for the model tests: random torchvision ResNet50 weights, published-layout files."""

import warnings

import pytest
import torch
import torch.nn as nn
import torchvision

from imaging import write_photo


def randomise_bn(module: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=generator))
                m.bias.copy_(0.1 * torch.randn(n, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=generator))


@pytest.fixture(scope="session")
def tv_resnet50() -> nn.Module:
    """A torchvision ResNet50 (eval mode) with random weights and random BN statistics."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    randomise_bn(net, torch.Generator().manual_seed(1))
    return net.eval()


@pytest.fixture(scope="session")
def tv_state(tv_resnet50) -> dict:
    """The torchvision-named state dict of ``tv_resnet50`` (with ``fc.*``)."""
    return {k: v.clone() for k, v in tv_resnet50.state_dict().items()}


@pytest.fixture(scope="session")
def tv_file(tmp_path_factory, tv_state):
    path = tmp_path_factory.mktemp("imagenet") / "resnet50-random.pth"
    torch.save(tv_state, path)
    return path


class ScriptedLinear(nn.Module):
    """The structure of the published regressors: parameters ``weights`` [1, D] and 0-d ``biases``."""

    def __init__(self, weights: torch.Tensor, biases: torch.Tensor) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights)
        self.biases = nn.Parameter(biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weights.t() + self.biases).flatten()


def save_scripted_regressor(path, weights: torch.Tensor, biases: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        torch.jit.script(ScriptedLinear(weights, biases)).save(str(path))
    return path


@pytest.fixture(scope="session")
def make_scripted_regressor():
    """``make(path, weights, biases)`` writes a TorchScript archive like the published regressors."""
    return save_scripted_regressor


DATASETS = {"kadid10k": 0, "koniq10k": 1, "live": 2}


@pytest.fixture(scope="session")
def published(tmp_path_factory, tv_resnet50, make_scripted_regressor):
    """A weights dir with ARNIQA.pth (published key layout) and TorchScript regressors, plus the
    reference encoder (torchvision ResNet50 without fc, as pyiqa builds it) and the loaded regressors."""
    d = tmp_path_factory.mktemp("weights")
    encoder = nn.Sequential(*list(tv_resnet50.children())[:-1]).eval()
    g = torch.Generator().manual_seed(3)
    state = {f"model.{k}": v for k, v in encoder.state_dict().items()}
    state["projector.0.weight"] = 0.02 * torch.randn(2048, 2048, generator=g)
    state["projector.0.bias"] = torch.zeros(2048)
    state["projector.2.weight"] = 0.02 * torch.randn(128, 2048, generator=g)
    state["projector.2.bias"] = torch.zeros(128)
    torch.save(state, d / "ARNIQA.pth")
    regs = {}
    for name, seed in DATASETS.items():
        gg = torch.Generator().manual_seed(10 + seed)
        w, b = 2.0 * torch.randn(1, 4096, generator=gg), torch.tensor(3.0 + seed)
        make_scripted_regressor(d / f"regressor_{name}.pth", w, b)
        regs[name] = torch.jit.load(str(d / f"regressor_{name}.pth"))
    return d, encoder, regs


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    return [write_photo(d / "a.png", 80, 64, 1), write_photo(d / "b.png", 80, 64, 2), write_photo(d / "c.png", 70, 90, 3)]
