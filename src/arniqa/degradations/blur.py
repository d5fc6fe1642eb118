"""Blur group: gaublur, lensblur, motionblur (MATLAB fspecial kernels, replicate-padded correlation)."""

from __future__ import annotations

from functools import lru_cache

import torch

from . import kernels, rng
from .registry import register


# Kernels stay float64 (filter2d casts them to the image's dtype); a Gaussian is then recognised
# as separable exactly and runs as two 1-D passes.
@lru_cache(maxsize=None)
def _gaussian(sigma: float) -> torch.Tensor:
    return kernels.gaussian(kernels.gaussian_size(sigma), sigma)


@lru_cache(maxsize=None)
def _disk(radius: float, kernel: str) -> torch.Tensor:
    return kernels.reference_disk(radius) if kernel == "reference" else kernels.disk(radius)


@lru_cache(maxsize=None)
def _motion(length: float, angle: int) -> torch.Tensor:
    return kernels.motion(length, angle)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``sigma`` with a 2*ceil(2*sigma)+1 kernel (3, 3, 5, 9, 21 for the levels).

    At sigma = 0.1 every off-centre weight is below eps and is zeroed, so level 1 is the identity.
    """
    kernel = _gaussian(float(sigma))
    if kernel.shape == (3, 3) and kernel[1, 1] == 1:
        return x.clone()
    return kernels.filter2d(x, kernel)


def lens_blur(x: torch.Tensor, radius: float, *, kernel: str = "reference") -> torch.Tensor:
    """Pillbox blur of ``radius`` (kernels 3, 5, 9, 13, 17 for the levels).

    ``kernel="reference"`` (the default, used in training) takes the reference implementation's
    own disk kernels, which ARNIQA's published model was trained on; ``"matlab"`` takes MATLAB's
    anti-aliased disk, which KADID-10k's images were made with (the synthetic KADID-style
    benchmark uses it). The two are equal at radius 1 and differ from radius 2 on.
    """
    if not isinstance(kernel, str) or kernel not in ("reference", "matlab"):
        raise ValueError(f"lensblur kernel must be 'reference' or 'matlab', got {kernel!r}")
    return kernels.filter2d(x, _disk(float(radius), kernel))


def sample_motion(x: torch.Tensor, length: float, generator: torch.Generator | None) -> dict:
    """One angle per sample, integer degrees uniform on 0..180 inclusive (as the reference's randint)."""
    angles = [int(rng.randint(0, 181, (), generator, torch.device("cpu"))) for _ in range(x.shape[0])]
    return {"angle": torch.tensor(angles, dtype=torch.int64)}


def motion_blur(x: torch.Tensor, length: float, angle: torch.Tensor) -> torch.Tensor:
    """Linear motion blur of ``length`` px at ``angle[i]`` degrees for sample i (MATLAB 'motion' kernel).

    Length 1 gives a kernel whose off-centre weights are at most 2.2e-16, i.e. the identity in
    float32; it is returned as such.
    """
    if length <= 1:
        return x.clone()
    angles = angle.tolist()
    if len(set(angles)) == 1:
        return kernels.filter2d(x, _motion(float(length), angles[0]))
    stack = kernels.pad_to([_motion(float(length), a) for a in angles])
    return kernels.filter2d(x, stack)


register("gaublur", gaussian_blur)
register("lensblur", lens_blur)
register("motionblur", motion_blur, sample_motion)
