"""Sharpness and contrast: highsharpen, lincontrchange, nonlincontrchange (deterministic)."""

from __future__ import annotations

import torch

from .colorspace import from_swapped_lab, to_swapped_lab
from .kernels import filter2d, gaussian
from .registry import register
from .tone import spline

SHARPEN_SIGMA = 6  # the reference passes its filter radius, ceil(2 * 3) = 6, as sigma
SHARPEN_SIZE = 13


def highsharpen(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Unsharp-mask the lightness of the channel-swapped Lab with K = a (delta - G) + delta.

    G is the 13 x 13 Gaussian of sigma 6; replicate padding. Filtering with K equals
    (1 + a) L - a (G * L), which runs as a separable blur. Converted back with clipping.
    """
    lab = to_swapped_lab(x)
    light = lab[:, :1]
    blurred = filter2d(light, gaussian(SHARPEN_SIZE, SHARPEN_SIGMA))
    lab[:, :1] = (1 + amount) * light - amount * blurred
    return from_swapped_lab(lab)


def lincontrchange(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Per-channel spline tone curve with control values 0.25 - a/4 at 0.3 and 0.75 + a/4 at 0.7.

    a > 0 raises contrast, a < 0 lowers it; a = 0 (level 1) is not the identity but a slight rise.
    """
    return spline(x, 0.25 - amount / 4, 0.75 + amount / 4)


def nonlincontrchange(x: torch.Tensor, offset: float) -> torch.Tensor:
    """Linear range compression despite the name: y = 2 o x + (0.5 - o), so [0, 1] maps onto
    [0.5 - o, 0.5 + o]."""
    low, high = 0.5 - offset, 0.5 + offset
    return (x * (high - low) + low).clamp(low, high)


register("highsharpen", highsharpen)
register("lincontrchange", lincontrchange)
register("nonlincontrchange", nonlincontrchange)
