"""The localisation protocol (arniqa.explain.localise): one half degraded, the halves' means."""

import numpy as np
import torch

from arniqa.degradations import distort
from arniqa.explain.localise import half_degraded, half_means


def test_half_degraded_changes_one_half_only():
    x = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
    x = (x * 255).round() / 255
    y = half_degraded(x, "gaublur", 4, "left")
    blurred = (distort(x, "gaublur", 4).clamp(0, 1) * 255).round() / 255
    assert torch.equal(y[..., 24:], x[..., 24:])
    assert torch.allclose(y[..., :24], blurred[..., :24])
    assert half_means(np.array([[1.0, 2.0, 3.0, 4.0]]), [0, 8, 24, 32], 16, 48) == (1.5, 3.5)
