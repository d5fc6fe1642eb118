"""Fixtures shared by the test folders: a temporary weight cache, test images, random-weight models and
files in the published layout."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from imaging import write_image_tree, write_photo
from scoring_data import save_scripted_regressor

from arniqa.models.arniqa import ARNIQA
from arniqa.models.regressor import Regressor

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# Child processes (fresh_cli, torchrun, faults.cli_child) run in other folders: a relative PYTHONPATH (PYTHONPATH=src
# pytest, from a work tree) would there import another install of arniqa, or none.
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        os.path.abspath(p) if p else p for p in os.environ["PYTHONPATH"].split(os.pathsep)
    )


@pytest.fixture(scope="session", autouse=True)
def _weight_cache(tmp_path_factory):
    """The cache (ARNIQA_CACHE: downloads, the onnxruntime engine's exports) is a temporary folder."""
    old = os.environ.get("ARNIQA_CACHE")
    os.environ["ARNIQA_CACHE"] = str(tmp_path_factory.mktemp("arniqa-cache"))
    yield
    if old is None:
        os.environ.pop("ARNIQA_CACHE", None)
    else:
        os.environ["ARNIQA_CACHE"] = old


@pytest.fixture
def image() -> torch.Tensor:
    """A smooth, textured float32 test image (3, 64, 80) in [0, 1] with edges and colour."""
    g = torch.Generator().manual_seed(0)
    h, w = 64, 80
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(6 * xx + 4 * yy)])
    base[:, 20:40, 30:50] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    noise = 0.05 * torch.rand(3, h, w, generator=g)
    return (0.1 + 0.8 * base + noise).clamp(0, 1)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Six small images (48..96 px) in a nested folder tree."""
    write_image_tree(tmp_path / "pristine", [(48, 64), (80, 96), (64, 64), (96, 72), (56, 88), (72, 80)])
    return tmp_path / "pristine"


@pytest.fixture(scope="module")
def random_arniqa() -> tuple[ARNIQA, Regressor]:
    """An ARNIQA ResNet-50 with random weights (torch seed 0, eval mode) and a KADID-10k regressor with small
    random weights."""
    torch.manual_seed(0)
    regressor = Regressor.from_numpy(np.random.default_rng(0).normal(size=4096) * 0.01, 3.0, dataset="kadid10k")
    return ARNIQA("resnet50").eval(), regressor


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
    return [
        write_photo(d / "a.png", 80, 64, 1),
        write_photo(d / "b.png", 80, 64, 2),
        write_photo(d / "c.png", 70, 90, 3),
    ]
