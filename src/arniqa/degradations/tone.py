"""The reference's per-pixel, per-channel tone curves (a port of MATLAB ``spline``).

* :func:`parabola`, one control value ``c``: the spline through (0, 0), (0.5, c), (1, 1), i.e. the
  parabola p(x) = (2 - 4c) x^2 + (4c - 1) x;
* :func:`spline`, two control values ``(c0, c1)``: the not-a-knot cubic spline through (0, 0), (0.3, c0),
  (0.5, 0.5), (0.7, c1), (1, 1). Not-a-knot makes the pieces either side of 0.3 one cubic, and those either side of 0.7
  another, so the curve is one cubic on [0, 0.5] and one on (0.5, 1] (the reference's intervals are
  closed on the right).

Both are clamped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

SPLINE_X = (0.0, 0.3, 0.5, 0.7, 1.0)


def parabola(x: torch.Tensor, c: float) -> torch.Tensor:
    """The three-point tone curve through (0, 0), (0.5, c), (1, 1), clamped to [0, 1]."""
    return (x * ((2 - 4 * c) * x + (4 * c - 1))).clamp_(0, 1)


@lru_cache(maxsize=64)
def spline_cubics(c0: float, c1: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Coefficients (a3, a2, a1, a0) of the spline's cubic in powers of x on [0, 0.5] and in
    powers of (x - 0.5) on (0.5, 1], from scipy's not-a-knot ``CubicSpline``."""
    from scipy.interpolate import CubicSpline  # here: importing it takes 0.7-0.9 s, which only lincontrchange uses

    cs = CubicSpline(SPLINE_X, [0.0, c0, 0.5, c1, 1.0], bc_type="not-a-knot")
    return tuple(cs.c[:, 0].tolist()), tuple(cs.c[:, 2].tolist())


def _horner(t: torch.Tensor, coef: Sequence[float]) -> torch.Tensor:
    a3, a2, a1, a0 = coef
    return ((a3 * t + a2) * t + a1) * t + a0


def spline(x: torch.Tensor, c0: float, c1: float) -> torch.Tensor:
    """The five-point not-a-knot tone curve with control values ``c0`` at 0.3 and ``c1`` at 0.7."""
    left, right = spline_cubics(float(c0), float(c1))
    # Both cubics are 0.5 at x = 0.5, so clamping the argument of each and adding avoids a select.
    return (_horner(x.clamp(max=0.5), left) + _horner(x.clamp(min=0.5) - 0.5, right) - 0.5).clamp_(0, 1)
