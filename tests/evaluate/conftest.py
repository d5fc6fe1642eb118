import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image


class StandIn(nn.Module):
    """A tiny model with the ARNIQA feature interface: per-crop channel means and stds (scaled)."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(gain))

    def features(self, x):
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1) * self.gain

    def quality_features(self, full, half):
        return torch.cat([self.features(full), self.features(half)], dim=1)


class Counting(nn.Module):
    """Wraps a model and counts ``quality_features`` calls; raises KeyboardInterrupt at call ``stop_at``."""

    def __init__(self, model, stop_at=None):
        super().__init__()
        self.model = model
        self.calls = 0
        self.stop_at = stop_at

    def quality_features(self, full, half):
        self.calls += 1
        if self.stop_at is not None and self.calls >= self.stop_at:
            raise KeyboardInterrupt
        return self.model.quality_features(full, half)


@pytest.fixture
def stand_in():
    return StandIn()


@pytest.fixture
def image_files(tmp_path):
    """Seven small RGB PNGs of different sizes with smooth content."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):
        h, w = 40 + 3 * i, 50 - 2 * i
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / (2 + i))], axis=-1)
        arr = np.clip(255 * (0.8 * base + 0.2 * rng.random((h, w, 3))), 0, 255).astype(np.uint8)
        p = tmp_path / "imgs" / f"im{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths
