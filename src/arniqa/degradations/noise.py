"""Noise group: whitenoise, whitenoiseCC, impulsenoise, multnoise.

Noise fields and impulse positions are drawn per sample, one sample after another, so a batch
draws exactly what its samples would draw one by one.
"""

from __future__ import annotations

import math

import torch

from . import rng
from .colorspace import LUMA
from .registry import register

# The inverse of kornia's YCbCr (BT.601, full range: Cb = 0.564 (B - Y), Cr = 0.713 (R - Y), both offset by
# 0.5), exact as in kornia 0.9; kornia up to 0.8 (the reference pins 0.7.0) rounds it to 1.403, 0.344, 0.714,
# 1.773, which moves a round trip by up to 2.8e-4, under a tenth of an 8-bit level.
# R = Y + Cr / 0.713, B = Y + Cb / 0.564, and G from Y = .299 R + .587 G + .114 B.
YCBCR_TO_RGB = (
    (1.0, 0.0, 1 / 0.713),
    (1.0, -LUMA[2] / LUMA[1] / 0.564, -LUMA[0] / LUMA[1] / 0.713),
    (1.0, 1 / 0.564, 0.0),
)


def sample_normal(x: torch.Tensor, var: float, generator: torch.Generator | None) -> dict:
    """A standard normal field of ``x``'s shape, drawn one (3,H,W) sample at a time."""
    noise = torch.empty_like(x, dtype=torch.float32, memory_format=torch.contiguous_format)
    for field in noise:
        rng.randn_(field, generator)
    return {"noise": noise}


def white_noise(x: torch.Tensor, var: float, noise: torch.Tensor) -> torch.Tensor:
    """Additive Gaussian noise of variance ``var`` per pixel and channel: x + sqrt(var) * noise."""
    return torch.add(x, noise, alpha=math.sqrt(var))


def white_noise_cc(x: torch.Tensor, var: float, noise: torch.Tensor) -> torch.Tensor:
    """Gaussian noise of variance ``var`` added to Y, Cb and Cr (kornia's YCbCr), then back to RGB.

    The inverse is exact and both conversions are affine, so the image comes back as it was and only the
    noise goes through the inverse's matrix: kornia 0.9's result up to float rounding, in fewer passes,
    except that kornia clips its RGB to [0, 1], which :func:`arniqa.degradations.distort` does after every
    distortion.
    """
    out = x.clone()
    for plane, row in zip(out.unbind(1), YCBCR_TO_RGB):
        for channel, weight in zip(noise.unbind(1), row):
            if weight:
                plane.add_(channel, alpha=math.sqrt(var) * weight)
    return out


def multiplicative_noise(x: torch.Tensor, var: float, noise: torch.Tensor) -> torch.Tensor:
    """Speckle: x + x * N(0, var) per pixel and channel."""
    return torch.addcmul(x, x, noise, value=math.sqrt(var))


def impulse_count(density: float, height: int, width: int) -> int:
    """Number of impulses in one (3,H,W) image: int(density * 3 * H * W)."""
    return int(density * 3 * height * width)


def sample_impulse(x: torch.Tensor, density: float, generator: torch.Generator | None) -> dict:
    """Impulse positions per sample: n = int(d*3*H*W) (channel, row, column) triplets, with replacement.

    For each sample the n channels are drawn first, then the n rows, then the n columns. Returns
    flat indices into one (3,H,W) image, (B, n) int64.
    """
    _, c, h, w = x.shape
    n = impulse_count(density, h, w)
    cpu = torch.device("cpu")
    flat = []
    for _ in range(x.shape[0]):
        ch = rng.randint(0, c, (n,), generator, cpu)
        row = rng.randint(0, h, (n,), generator, cpu)
        col = rng.randint(0, w, (n,), generator, cpu)
        flat.append((ch * h + row) * w + col)
    return {"positions": torch.stack(flat) if flat else torch.empty(0, n, dtype=torch.int64)}


def impulse_noise(x: torch.Tensor, density: float, positions: torch.Tensor) -> torch.Tensor:
    """Salt-and-pepper noise on single channel values: the first floor(n/2) positions of a sample are
    set to 1 (salt), the rest to 0 (pepper); a pepper drawn on a salt position wins.

    The reference indexes the image with a (3, n) numpy array, which modern torch rejects; this
    implements the intended ``x[c, y, x]`` indexing.
    """
    b = x.shape[0]
    out = x.clone().reshape(b, -1)
    positions = positions.to(x.device)
    salt = positions.shape[1] // 2
    out.scatter_(1, positions[:, :salt], 1.0)
    out.scatter_(1, positions[:, salt:], 0.0)
    return out.reshape(x.shape)


register("whitenoise", white_noise, sample_normal)
register("whitenoiseCC", white_noise_cc, sample_normal)
register("impulsenoise", impulse_noise, sample_impulse)
register("multnoise", multiplicative_noise, sample_normal)
