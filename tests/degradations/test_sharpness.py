"""highsharpen, lincontrchange, nonlincontrchange: closed forms and independent re-statements."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from imaging import falls, psnr, textured
from kornia.color import lab_to_rgb, rgb_to_lab
from scipy.interpolate import CubicSpline

from arniqa.degradations import LEVELS, distort

BGR = [2, 1, 0]


# ----------------------------------------------------------------------------------- highsharpen


def sharpen_kernel(a):
    """a (delta - G) + delta with G the 13 x 13 Gaussian of sigma 6, built in full."""
    t = np.arange(13) - 6.0
    g = np.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * 36.0))
    k = -a * g / g.sum()
    k[6, 6] += a + 1
    return torch.from_numpy(k).float()


@pytest.mark.parametrize("level", range(1, 6))
def test_highsharpen_matches_full_kernel_on_swapped_lab_lightness(level):
    x = textured()
    lab = rgb_to_lab(x[:, BGR])
    kernel = sharpen_kernel(LEVELS["highsharpen"][level - 1])[None, None]
    light = F.conv2d(F.pad(lab[:, :1], (6, 6, 6, 6), mode="replicate"), kernel)
    expected = lab_to_rgb(torch.cat([light, lab[:, 1:]], 1))[:, BGR]
    assert torch.allclose(distort(x, "highsharpen", level), expected, atol=1e-4)


def test_highsharpen_keeps_flat_images():
    x = torch.full((1, 3, 40, 40), 0.4)
    assert torch.allclose(distort(x, "highsharpen", 5), x, atol=1e-4)


def test_highsharpen_severity_grows_with_level():
    x = textured()
    assert falls([psnr(distort(x, "highsharpen", level), x) for level in range(1, 6)])


# -------------------------------------------------------------------------------- lincontrchange


@pytest.mark.parametrize("level", range(1, 6))
def test_lincontrchange_is_the_scipy_spline(level):
    a = LEVELS["lincontrchange"][level - 1]
    x = textured()
    cs = CubicSpline([0, 0.3, 0.5, 0.7, 1], [0, 0.25 - a / 4, 0.5, 0.75 + a / 4, 1], bc_type="not-a-knot")
    expected = torch.from_numpy(np.clip(cs(x.double().numpy()), 0, 1)).float()
    assert torch.allclose(distort(x, "lincontrchange", level), expected, atol=2e-6)


def test_lincontrchange_level1_is_not_identity_but_more_contrast():
    x = textured()
    out = distort(x, "lincontrchange", 1)
    assert (out - x).abs().max() > 0.01
    assert out.std() > x.std()


def test_lincontrchange_levels_alternate_between_more_and_less_contrast():
    x = textured()
    stds = [distort(x, "lincontrchange", level).std().item() for level in range(1, 6)]
    base = x.std().item()
    assert stds[1] > stds[0] > base  # +0.15 above 0
    assert stds[2] < base and stds[4] < stds[2]  # -0.4, then -0.6
    assert stds[3] > stds[1]  # +0.3


# ----------------------------------------------------------------------------- nonlincontrchange


@pytest.mark.parametrize("level", range(1, 6))
def test_nonlincontrchange_is_linear_range_compression(level):
    o = LEVELS["nonlincontrchange"][level - 1]
    ends = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    low, high = distort(ends, "nonlincontrchange", level)[0, :, 0].unbind(-1)
    assert torch.allclose(low, torch.full((3,), 0.5 - o)) and torch.allclose(high, torch.full((3,), 0.5 + o))
    x = textured()
    assert torch.allclose(distort(x, "nonlincontrchange", level), 2 * o * x + (0.5 - o), atol=1e-6)


def test_nonlincontrchange_severity_grows_with_level():
    x = textured()
    assert falls([psnr(distort(x, "nonlincontrchange", level), x) for level in range(1, 6)])
