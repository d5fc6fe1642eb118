"""brighten, darken, meanshift: closed forms, the swapped-Lab branch, identities and severity."""

import pytest
import torch
from imaging import falls, psnr, textured
from kornia.color import lab_to_rgb, rgb_to_lab

from arniqa.degradations import LEVELS, distort

BGR = [2, 1, 0]


def tone(x, c):
    return ((2 - 4 * c) * x**2 + (4 * c - 1) * x).clamp(0, 1)


@pytest.mark.parametrize("level", range(1, 6))
def test_darken_is_the_per_channel_parabola(level):
    x = textured()
    c = 0.5 - LEVELS["darken"][level - 1] / 2
    assert torch.allclose(distort(x, "darken", level), tone(x, c), atol=1e-6)


@pytest.mark.parametrize("level", range(1, 6))
def test_brighten_mixes_rgb_curve_and_swapped_lab_lightness(level):
    x = textured()
    c = 0.5 + LEVELS["brighten"][level - 1] / 2
    lab = rgb_to_lab(x[:, BGR])
    lab[:, 0] = tone(lab[:, 0] / 100, c) * 100
    expected = (2 * tone(x, c) + lab_to_rgb(lab)[:, BGR]) / 3
    assert torch.allclose(distort(x, "brighten", level), expected.clamp(0, 1), atol=1e-5)


def test_brighten_lab_branch_uses_the_channel_swap():
    x = textured()
    c = 0.5 + LEVELS["brighten"][4] / 2
    lab = rgb_to_lab(x)  # unswapped: the lightness weights of R and B are not exchanged
    lab[:, 0] = tone(lab[:, 0] / 100, c) * 100
    unswapped = (2 * tone(x, c) + lab_to_rgb(lab)) / 3
    assert (distort(x, "brighten", 5) - unswapped).abs().max() > 0.01


@pytest.mark.parametrize("name", ["brighten", "darken"])
def test_severity_grows_with_level(name):
    x = textured()
    assert falls([psnr(distort(x, name, level), x) for level in range(1, 6)])


def test_brighten_raises_and_darken_lowers_the_mean():
    x = textured()
    brighter = [distort(x, "brighten", level).mean().item() for level in range(1, 6)]
    darker = [distort(x, "darken", level).mean().item() for level in range(1, 6)]
    assert x.mean().item() < brighter[0] and falls(brighter[::-1])
    assert x.mean().item() > darker[0] and falls(darker)


def test_meanshift_level1_is_identity():
    x = textured()
    assert torch.equal(distort(x, "meanshift", 1), x)


@pytest.mark.parametrize("level", range(2, 6))
def test_meanshift_shifts_the_mean_exactly_where_nothing_clips(level):
    a = LEVELS["meanshift"][level - 1]
    x = 0.2 + 0.6 * textured()
    out = distort(x, "meanshift", level)
    assert torch.allclose(out - x, torch.full_like(x, a), atol=1e-6)
    assert abs((out.mean() - x.mean()).item() - a) < 1e-6


def test_meanshift_clamps_and_alternates_in_sign():
    x = textured()
    assert distort(x, "meanshift", 4).max() <= 1 and distort(x, "meanshift", 5).min() >= 0
    signs = [torch.sign(distort(x, "meanshift", level).mean() - x.mean()).item() for level in range(2, 6)]
    assert signs == [1, -1, 1, -1]
