"""The reference's Lab round trip, channel-swap quirk included, and its 8-bit truncation.

The reference reverses the channel order (RGB -> BGR) before calling kornia's *RGB* -> Lab
conversions and reverses it again after converting back, so its "Lab" is the Lab of the BGR image
(the luminance weights of R and B are exchanged). These helpers reproduce that exactly; all take
and return batches (B, 3, H, W).
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab


def swap(x: torch.Tensor) -> torch.Tensor:
    """Reverse the channel order (RGB <-> BGR), the reference's ``x[[2, 1, 0]]``."""
    return x.flip(-3)


def to_swapped_lab(x: torch.Tensor) -> torch.Tensor:
    """kornia ``rgb_to_lab`` of the channel-reversed image: (L in [0, 100], a, b)."""
    return rgb_to_lab(swap(x))


def from_swapped_lab(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_swapped_lab`: kornia ``lab_to_rgb`` (clipped to [0, 1]), then reverse."""
    return swap(lab_to_rgb(lab, clip=True))


def trunc8(x: torch.Tensor) -> torch.Tensor:
    """8-bit truncation of values in [0, 1]: floor(x * 255) / 255."""
    return torch.floor(x * 255) / 255
