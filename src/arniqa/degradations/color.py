"""Colour distortions: colordiff, colorshift, colorsat1, colorsat2."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import rng
from .colorspace import LUMA, from_swapped_lab, mix, to_swapped_lab, trunc8_
from .kernels import filter2d, gather_rows_cols, gaussian, gaussian_size
from .registry import register

EDGE_SIGMA = 4  # colorshift's Gaussian for the edge map (17 x 17)
EDGE_PERCENTILE = 99  # colorshift clips the edge map to its 1st-99th percentiles


def colordiff(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Colour diffusion: blur the chroma, then scale it by ``amount``.

    In the reference's channel-swapped Lab, a and b are blurred with a Gaussian of
    sigma = 1.5 * amount + 2 (kernels 15 to 81, replicate padding) and multiplied by ``amount``;
    lightness is kept. The result is converted back (clipped) and truncated to 8 bits.
    """
    sigma = 1.5 * amount + 2
    lab = to_swapped_lab(x)
    lab[:, 1:] = filter2d(lab[:, 1:], gaussian(gaussian_size(sigma), sigma)).mul_(amount)
    return trunc8_(from_swapped_lab(lab))


def sample_colorshift(x: torch.Tensor, amount: float, generator: torch.Generator | None) -> dict:
    """Per sample, a direction U(0, 1)^2 for the shift of the green channel."""
    draws = [rng.rand((2,), generator, x.device) for _ in range(x.shape[0])]
    return {"direction": torch.stack(draws) if draws else x.new_zeros(0, 2)}


def _edge_weight(x: torch.Tensor) -> torch.Tensor:
    """colorshift's blend weight (B, 1, H, W): blurred gradient magnitude of the grey image,
    min-max normalised per image, clipped to its 1st-99th percentiles."""
    grey = F.pad(mix(x, (LUMA,)), (1, 1, 1, 1), mode="replicate")
    # kornia spatial_gradient(mode="diff"): central differences / 2, replicate borders
    gx = (grey[..., 1:-1, 2:] - grey[..., 1:-1, :-2]) * 0.5
    gy = (grey[..., 2:, 1:-1] - grey[..., :-2, 1:-1]) * 0.5
    e = (gx * gx + gy * gy).sqrt()
    e = filter2d(e, gaussian(gaussian_size(EDGE_SIGMA), EDGE_SIGMA))
    flat = e.flatten(1)
    low, high = flat.amin(1), flat.amax(1)
    spread = torch.where(high > low, high - low, torch.ones_like(high))
    flat = (flat - low[:, None]) / spread[:, None]
    n = flat.shape[1]
    # MATLAB-style percentile of the KADID code: the sorted value at round(n * p / 100) (1-based).
    k_high = round(max(min(n * EDGE_PERCENTILE / 100, n), 1) - 1) + 1
    value_high = flat.kthvalue(k_high, dim=1).values
    value_low = flat.kthvalue(n - k_high + 1, dim=1).values
    return torch.maximum(torch.minimum(flat, value_high[:, None]), value_low[:, None]).view_as(e)


def _shift_index(size: int, pad: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Source indices (B, size) of the reference's pad / roll / crop along one axis.

    Per sample, the axis is replicate-padded by ``pad`` on both sides, rolled by ``roll`` and
    cropped by ``pad``; when the two differ, rolled content can wrap around the padded axis.
    """
    out = torch.arange(size, device=pad.device)
    padded = (out + (pad - roll)[:, None]) % (size + 2 * pad[:, None])
    return (padded - pad[:, None]).clamp(0, size - 1)


def colorshift(x: torch.Tensor, amount: float, direction: torch.Tensor) -> torch.Tensor:
    """Shift the green channel by about ``amount`` pixels, mostly at edges.

    s = round(d / |d| * amount) for the sampled direction d (non-negative, so down and right).
    G' = shifted(G) * e + G * (1 - e), with e the edge weight of :func:`_edge_weight`.

    Deviation: the reference means to clip e to its 1st-99th percentiles but its helper indexes
    ``torch.sort``'s (values, indices) pair and forces about two pixels per row to 0 or 1; this
    implements the intended clipping. Kept quirk: the reference pads the rows by s[1] and the
    columns by s[0] but rolls the rows by s[0] and the columns by s[1], so when s[0] != s[1] a few
    rows or columns at the top or left wrap from the other side; this is reproduced.
    """
    h, w = x.shape[-2:]
    d = direction.to(device=x.device, dtype=torch.float64)
    shift = torch.round(d / d.norm(dim=1, keepdim=True).clamp_min(1e-12) * amount).long()
    rows = _shift_index(h, shift[:, 1], shift[:, 0])
    cols = _shift_index(w, shift[:, 0], shift[:, 1])
    green = x[:, 1]
    shifted = gather_rows_cols(green, rows, cols)
    e = _edge_weight(x)[:, 0]
    out = x.clone()
    out[:, 1] = shifted * e + green * (1 - e)
    return out


def colorsat1(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply the HSV saturation by ``factor``: each channel becomes V - factor * (V - c), with
    V the largest channel.

    This is the closed form of the reference's round trip (channel swap, kornia ``rgb_to_hsv``,
    S *= factor, ``hsv_to_rgb``, swap; the swap is harmless here), equal to it up to float rounding
    and about 10x cheaper. Factors below 1 desaturate; the negative factor of level 5 overshoots
    past grey (clipped afterwards).
    """
    value = x.amax(dim=1, keepdim=True)
    return value - factor * (value - x)


def colorsat2(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply a and b of the channel-swapped Lab by ``factor``, convert back (clipped), truncate
    to 8 bits. Factor 1 (level 1) is the identity up to the conversion and the truncation."""
    lab = to_swapped_lab(x)
    lab[:, 1:] *= factor
    return trunc8_(from_swapped_lab(lab))


register("colordiff", colordiff)
register("colorshift", colorshift, sample_colorshift)
register("colorsat1", colorsat1)
register("colorsat2", colorsat2)
