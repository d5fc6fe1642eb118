"""The reference's Lab round trip, channel-swap quirk included, and its 8-bit truncation.

The reference reverses the channel order (RGB -> BGR) before calling kornia's *RGB* -> Lab
conversions and reverses it again after converting back, so its "Lab" is the Lab of the BGR image
(the luminance weights of R and B are exchanged). These helpers reproduce that on batches
(B, 3, H, W).

The conversions use kornia's formulas and constants (sRGB with D65 white, CIE thresholds, output
clipped to [0, 1]) but evaluate each two-branch curve as the sum of its two branches on clamped
arguments instead of ``torch.where``, and powers as exp2(p log2 v); on the CPU this round trip is
about 1.6x faster than kornia's, and it agrees with kornia to about 2e-4 in L, a, b and 1e-5 in RGB.
"""

from __future__ import annotations

import torch

WHITE = (0.95047, 1.0, 1.08883)  # D65
RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
XYZ_TO_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
SRGB_KNEE = 0.04045  # sRGB value where the power law starts
LINEAR_KNEE = 0.0031308  # the same point in linear RGB
XYZ_KNEE = 0.008856  # CIE epsilon
F_KNEE = 0.2068966  # its cube root


def swap(x: torch.Tensor) -> torch.Tensor:
    """Reverse the channel order (RGB <-> BGR), the reference's ``x[[2, 1, 0]]``."""
    return x.flip(-3)


def _power(v: torch.Tensor, p: float) -> torch.Tensor:
    return torch.exp2(torch.log2(v) * p)


def _matrix(rows, x: torch.Tensor, column_scale=(1.0, 1.0, 1.0), row_scale=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """``rows`` (3 x 3, scaled per column and per row) applied to the channels of ``x``."""
    m = torch.tensor(rows, dtype=torch.float64)
    m = m * torch.tensor(column_scale, dtype=torch.float64)
    m = m * torch.tensor(row_scale, dtype=torch.float64)[:, None]
    return torch.einsum("ij,bjhw->bihw", m.to(x.device, x.dtype), x)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE Lab (L in [0, 100]), as kornia ``rgb_to_lab``."""
    # where(x > knee, ((x + 0.055) / 1.055) ** 2.4, x / 12.92); the branches meet at the knee
    linear = _power((x.clamp(min=SRGB_KNEE) + 0.055) / 1.055, 2.4)
    linear = linear + (x.clamp(max=SRGB_KNEE) - SRGB_KNEE) / 12.92
    xyz = _matrix(RGB_TO_XYZ, linear, row_scale=tuple(1 / w for w in WHITE))
    # where(t > eps, t ** (1/3), 7.787 t + 4/29)
    f = _power(xyz.clamp(min=XYZ_KNEE), 1 / 3) + 7.787 * (xyz.clamp(max=XYZ_KNEE) - XYZ_KNEE)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab -> sRGB clipped to [0, 1], as kornia ``lab_to_rgb(clip=True)``."""
    light, a, b = lab.unbind(1)
    fy = (light + 16) / 116
    f = torch.stack([a / 500 + fy, fy, (fy - b / 200).clamp(min=0)], dim=1)
    # where(f > knee, f ** 3, (f - 4/29) / 7.787)
    cube = f.clamp(min=F_KNEE)
    xyz = cube * cube * cube + (f.clamp(max=F_KNEE) - F_KNEE) / 7.787
    linear = _matrix(XYZ_TO_RGB, xyz, column_scale=WHITE)
    # where(v > knee, 1.055 v ** (1/2.4) - 0.055, 12.92 v)
    srgb = 1.055 * _power(linear.clamp(min=LINEAR_KNEE), 1 / 2.4) - 0.055
    srgb = srgb + 12.92 * (linear.clamp(max=LINEAR_KNEE) - LINEAR_KNEE)
    return srgb.clamp_(0, 1)


def to_swapped_lab(x: torch.Tensor) -> torch.Tensor:
    """Lab of the channel-reversed image, the reference's ``rgb_to_lab(x[[2, 1, 0]])``."""
    return rgb_to_lab(swap(x))


def from_swapped_lab(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_swapped_lab`: Lab -> RGB (clipped to [0, 1]), then reverse the channels."""
    return swap(lab_to_rgb(lab))


def trunc8(x: torch.Tensor) -> torch.Tensor:
    """8-bit truncation of values in [0, 1]: floor(x * 255) / 255."""
    return torch.floor(x * 255) / 255
