"""colordiff, colorshift, colorsat1, colorsat2 against kornia round trips written here (with the
reference's channel swap), literal re-statements of the reference steps, and properties."""

import math

import pytest
import torch
import torch.nn.functional as F
from kornia.color import hsv_to_rgb, lab_to_rgb, rgb_to_grayscale, rgb_to_hsv, rgb_to_lab

from arniqa.degradations import LEVELS, distort
from arniqa.degradations.color import colordiff, colorsat1, colorsat2, colorshift, sample_colorshift

BGR = [2, 1, 0]


def textured(b=1, h=48, w=56, seed=0):
    """Colour gradients, a saturated square and texture, in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(9 * xx + 5 * yy)]).repeat(b, 1, 1, 1)
    base[:, :, h // 4 : h // 2, w // 3 : w // 2] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    return (0.05 + 0.85 * base + 0.1 * torch.rand(b, 3, h, w, generator=g)).clamp(0.01, 0.99)


def psnr(a, b):
    return (10 * torch.log10(1 / ((a - b) ** 2).mean())).item()


def falls(values):
    return all(later < earlier for earlier, later in zip(values, values[1:]))


def is_8bit(y):
    return torch.allclose(y * 255, torch.round(y * 255), atol=1e-3)


def gaussian_2d(size, sigma):
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * sigma**2))
    return (g / g.sum()).float()


def conv_replicate(x, kernel):
    """Full 2-D correlation of every channel with replicate padding (no separability)."""
    k = kernel.shape[-1]
    padded = F.pad(x, (k // 2,) * 4, mode="replicate")
    weight = kernel.expand(x.shape[1], 1, k, k)
    return F.conv2d(padded, weight, groups=x.shape[1])


# ------------------------------------------------------------------------------------- colordiff


@pytest.mark.parametrize("amount", LEVELS["colordiff"])
def test_colordiff_matches_swapped_lab_with_full_2d_gaussian(amount):
    x = textured(1)
    sigma = 1.5 * amount + 2
    size = 2 * math.ceil(2 * sigma) + 1
    lab = rgb_to_lab(x[:, BGR])
    ab = conv_replicate(lab[:, 1:], gaussian_2d(size, sigma)) * amount
    expected = torch.floor(lab_to_rgb(torch.cat([lab[:, :1], ab], 1)) * 255)[:, BGR] / 255
    out = colordiff(x, amount)
    assert is_8bit(out)
    # the 8-bit floor turns float rounding into at most one step, on a few pixels
    diff = (out - expected).abs()
    assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).float().mean() < 0.01


def test_colordiff_severity_grows_with_level():
    x = textured(1)
    assert falls([psnr(distort(x, "colordiff", level), x) for level in range(1, 6)])


# ------------------------------------------------------------------------------------ colorshift


def literal_colorshift(x, amount, direction):
    """The reference's colour shift with the intended percentile clipping, step by step."""
    gray = rgb_to_grayscale(x)
    gx = F.pad(gray, (1, 1, 0, 0), mode="replicate")
    gy = F.pad(gray, (0, 0, 1, 1), mode="replicate")
    e = (((gx[..., 2:] - gx[..., :-2]) / 2) ** 2 + ((gy[..., 2:, :] - gy[..., :-2, :]) / 2) ** 2).sqrt()
    e = conv_replicate(e, gaussian_2d(17, 4))
    if e.min() < e.max():
        e = (e - e.min()) / (e.max() - e.min())
    values = e.flatten().sort().values
    n = values.numel()
    index = round(max(min(n * 99 / 100, n), 1) - 1)
    high = values[index]
    low = 1 - (1 - e).flatten().sort().values[index]
    e = torch.maximum(torch.minimum(e, high), low)[0, 0]
    s0, s1 = (int(v) for v in torch.round(direction.double() / direction.double().norm() * amount))
    g = x[0, 1]
    y = F.pad(g[None], (s0, s0), mode="replicate")[0]
    y = F.pad(y.t()[None], (s1, s1), mode="replicate")[0].t()
    y = torch.roll(y, (s0, s1), dims=(0, 1))
    if s1:
        y = y[s1:-s1]
    if s0:
        y = y[:, s0:-s0]
    out = x.clone()
    out[0, 1] = y * e + g * (1 - e)
    return out


@pytest.mark.parametrize("amount", LEVELS["colorshift"])
@pytest.mark.parametrize("direction", [(0.6, 0.8), (0.95, 0.1), (0.05, 0.9)])
def test_colorshift_matches_literal_reference(amount, direction):
    x = textured(1)
    d = torch.tensor([direction])
    out = colorshift(x, amount, d)
    assert torch.allclose(out, literal_colorshift(x, amount, d[0]), atol=1e-5)
    assert torch.equal(out[:, [0, 2]], x[:, [0, 2]])  # only green moves


def test_colorshift_flat_image_is_unchanged():
    x = torch.full((1, 3, 40, 40), 0.3)
    assert torch.allclose(colorshift(x, 12, torch.tensor([[0.3, 0.7]])), x)


def test_colorshift_severity_grows_with_level():
    x = textured(1)
    d = torch.tensor([[0.5, 0.5]])  # shift round(a / sqrt 2) in both axes: 1, 2, 4, 6, 8
    assert falls([psnr(colorshift(x, amount, d), x) for amount in LEVELS["colorshift"]])


def test_colorshift_sample_is_per_sample_uniform():
    x = textured(3)
    d = sample_colorshift(x, 6, torch.Generator().manual_seed(0))["direction"]
    assert d.shape == (3, 2) and (d >= 0).all() and (d < 1).all()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(d, torch.cat([sample_colorshift(x[i : i + 1], 6, g)["direction"] for i in range(3)]))


# ------------------------------------------------------------------------------------- colorsat1


@pytest.mark.parametrize("factor", LEVELS["colorsat1"])
def test_colorsat1_matches_swapped_kornia_hsv(factor):
    x = textured(2)
    hsv = rgb_to_hsv(x[:, BGR])
    hsv[:, 1] *= factor
    assert torch.allclose(colorsat1(x, factor), hsv_to_rgb(hsv)[:, BGR], atol=1e-5)


@pytest.mark.parametrize("level", range(1, 6))
def test_colorsat1_on_grey_is_identity(level):
    grey = torch.linspace(0, 1, 40 * 48).view(1, 1, 40, 48).expand(2, 3, -1, -1).contiguous()
    assert torch.allclose(distort(grey, "colorsat1", level), grey, atol=1e-6)


def test_colorsat1_factor_zero_gives_grey_at_max_channel():
    x = textured(1)
    out = distort(x, "colorsat1", 4)  # factor 0
    assert torch.allclose(out, x.amax(1, keepdim=True).expand_as(x))


# ------------------------------------------------------------------------------------- colorsat2


def swapped_colorsat2(x, factor):
    lab = rgb_to_lab(x[:, BGR])
    lab[:, 1:] *= factor
    return torch.floor(lab_to_rgb(lab) * 255)[:, BGR] / 255


def test_colorsat2_level1_is_identity_up_to_8bit_truncation():
    x = textured(2)
    out = distort(x, "colorsat2", 1)
    assert is_8bit(out)
    assert (out <= x + 1e-4).all() and (out >= x - 1 / 255 - 1e-4).all()


@pytest.mark.parametrize("factor", LEVELS["colorsat2"][1:])
def test_colorsat2_channel_swap_quirk(factor):
    x = textured(1)
    out = colorsat2(x, factor)
    assert torch.allclose(out, swapped_colorsat2(x, factor), atol=1e-6)
    lab = rgb_to_lab(x)  # the same maths without the swap gives another image
    lab[:, 1:] *= factor
    unswapped = torch.floor(lab_to_rgb(lab) * 255) / 255
    assert (out - unswapped).abs().mean() > 0.01


def test_colorsat2_severity_grows_with_level():
    x = textured(1)
    assert falls([psnr(distort(x, "colorsat2", level), x) for level in range(1, 6)])
