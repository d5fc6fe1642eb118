import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
