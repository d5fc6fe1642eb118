"""Noise group: variances and covariances against closed forms, impulse density, severity.

Statistical tolerances are 5 standard errors (a false alarm below 1e-6 per check); the seeds
are fixed, so the tests are deterministic.
"""

import math

import kornia
import numpy as np
import pytest
import torch

from arniqa.degradations import LEVELS, distort
from arniqa.degradations.noise import impulse_noise, sample_impulse, white_noise_cc

GREY = torch.full((3, 96, 96), 0.5)
N = GREY.numel()


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def check_variance(values: np.ndarray, var: float) -> None:
    """Sample variance of n iid normals has standard error var * sqrt(2 / (n - 1))."""
    assert abs(values.var(ddof=1) - var) < 5 * var * math.sqrt(2 / (values.size - 1))


@pytest.mark.parametrize("level", range(1, 6))
def test_white_noise_variance_and_mean(level):
    var = LEVELS["whitenoise"][level - 1]
    noise = (distort(GREY, "whitenoise", level, seeded(level)) - 0.5).double().numpy().ravel()
    check_variance(noise, var)  # 0.5 +- 5 sigma stays in [0, 1]: clipping is negligible
    assert abs(noise.mean()) < 5 * math.sqrt(var / N)


@pytest.mark.parametrize("level", range(1, 6))
def test_multiplicative_noise_scales_with_the_signal(level):
    var = LEVELS["multnoise"][level - 1]
    noise = (distort(GREY, "multnoise", level, seeded(level)) - 0.5).double().numpy().ravel()
    check_variance(noise, 0.25 * var)  # x * N(0, var) with x = 0.5
    black = torch.zeros(3, 16, 16)
    assert torch.equal(distort(black, "multnoise", level, seeded()), black)


@pytest.mark.parametrize("level", range(1, 6))
def test_white_noise_cc_covariance_follows_ycbcr(level):
    var = LEVELS["whitenoiseCC"][level - 1]
    # BT.601 full range: Y = .299 R + .587 G + .114 B, Cb = .564 (B - Y), Cr = .713 (R - Y).
    luma = np.array([0.299, 0.587, 0.114])
    forward = np.stack([luma, 0.564 * (np.eye(3)[2] - luma), 0.713 * (np.eye(3)[0] - luma)])
    inverse = np.linalg.inv(forward)
    expected = var * inverse @ inverse.T  # i.i.d. noise of variance var on Y, Cb, Cr
    noise = (distort(GREY, "whitenoiseCC", level, seeded(level)) - 0.5).double().numpy().reshape(3, -1)
    measured = np.cov(noise)
    # The standard error of a sample covariance is at most sqrt((s_ii s_jj + s_ij^2) / n).
    error = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / noise.shape[1])
    assert (np.abs(measured - expected) < 5 * error).all()


def exact_ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """RGB clipped to [0, 1] by the exact inverse of kornia's affine rgb_to_ycbcr, as kornia 0.9's ycbcr_to_rgb;
    kornia 0.8's (the newest for Python 3.10) rounds its coefficients (1.403, 0.714, ...), 3e-4 off."""
    corners = torch.cat([torch.zeros(1, 3), torch.eye(3)]).double().view(4, 3, 1, 1)  # black, red, green, blue
    images = kornia.color.rgb_to_ycbcr(corners).view(4, 3)
    offset, matrix = images[0], (images[1:] - images[0]).T
    rgb = torch.einsum("ij,njhw->nihw", torch.linalg.inv(matrix), ycbcr.double() - offset.view(3, 1, 1))
    return rgb.clamp(0, 1).float()


@pytest.mark.parametrize("level", [1, 5])
def test_white_noise_cc_equals_kornias_ycbcr_round_trip(level):
    var = LEVELS["whitenoiseCC"][level - 1]
    g = seeded(level)
    x, noise = torch.rand(2, 3, 24, 32, generator=g), torch.randn(2, 3, 24, 32, generator=g)
    expected = exact_ycbcr_to_rgb(kornia.color.rgb_to_ycbcr(x) + math.sqrt(var) * noise)
    assert torch.allclose(white_noise_cc(x, var, noise).clamp(0, 1), expected, atol=1e-6)


def test_noise_fields_differ_between_samples_and_calls():
    batch = GREY.expand(2, -1, -1, -1)
    g = seeded()
    first = distort(batch, "whitenoise", 3, g)
    second = distort(batch, "whitenoise", 3, g)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first, second)


@pytest.mark.parametrize("level", range(1, 6))
def test_impulse_density(level):
    d = LEVELS["impulsenoise"][level - 1]
    out = distort(GREY, "impulsenoise", level, seeded(level))
    changed = (out != 0.5).sum().item()
    n = int(d * N)  # impulses drawn with replacement
    duplicates = n - changed
    expected = n * n / (2 * N)  # birthday count of repeated positions
    assert 0 <= duplicates <= expected + 5 * math.sqrt(expected) + 1
    assert set(out.unique().tolist()) <= {0.0, 0.5, 1.0}
    salt, pepper = (out == 1).sum().item(), (out == 0).sum().item()
    assert abs(salt - pepper) <= 5 * math.sqrt(n) + 1  # half salt, half pepper


def test_impulses_follow_the_drawn_positions():
    x = GREY[None].clone()
    positions = sample_impulse(x, 0.03, seeded())["positions"]
    n = int(0.03 * N)
    assert positions.shape == (1, n)
    out = impulse_noise(x, 0.03, positions).ravel()
    salt, pepper = set(positions[0, : n // 2].tolist()), set(positions[0, n // 2 :].tolist())
    assert set(torch.nonzero(out == 1).ravel().tolist()) == salt - pepper  # pepper wins
    assert set(torch.nonzero(out == 0).ravel().tolist()) == pepper
    channels = np.bincount(positions[0].numpy() // (96 * 96), minlength=3)
    assert channels.min() > n / 3 - 5 * math.sqrt(n * 2 / 9)  # every channel gets about a third


@pytest.mark.parametrize("name", ["whitenoise", "whitenoiseCC", "impulsenoise", "multnoise"])
def test_severity_grows_with_level(image, name):
    quality = []
    for level in range(1, 6):
        mse = (distort(image, name, level, seeded(0)) - image).pow(2).mean().item()
        quality.append(10 * math.log10(1 / mse))
    assert all(a > b for a, b in zip(quality, quality[1:])), quality
