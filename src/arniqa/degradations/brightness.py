"""Brightness changes: brighten, darken, meanshift (deterministic given the level)."""

from __future__ import annotations

import torch

from .colorspace import from_swapped_lab, to_swapped_lab
from .registry import register
from .tone import parabola


def brighten(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Mean of a per-channel tone curve (weight 2) and the same curve on Lab lightness (weight 1).

    The curve is the parabola through (0.5, 0.5 + amount / 2). The Lab branch uses the reference's
    channel-swapped Lab (kornia Lab of the BGR image), so its lightness weights R and B crosswise.
    """
    mid = 0.5 + amount / 2
    lab = to_swapped_lab(x)
    lab[:, :1] = parabola(lab[:, :1] / 100, mid) * 100
    return parabola(x, mid).mul_(2).add_(from_swapped_lab(lab)).div_(3)


def darken(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Per-channel parabola tone curve through (0.5, 0.5 - amount / 2), clamped (no Lab branch)."""
    return parabola(x, 0.5 - amount / 2)


def meanshift(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Add ``amount`` to every value and clamp to [0, 1]; level 1 (amount 0) is the identity."""
    return (x + amount).clamp(0, 1)


register("brighten", brighten)
register("darken", darken)
register("meanshift", meanshift)
