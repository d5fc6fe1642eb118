"""Spatial distortions: jitter, noneccpatch, pixelate, quantization, colorblock."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import rng
from .kernels import gather_rows_cols
from .registry import register

JITTER_PASSES = 5
PATCH = 16  # noneccpatch: patch side
PATCH_MARGIN = 16  # noneccpatch: source margin, and the span of the paste offset
BLOCK = 32  # colorblock: block side


def _stack(draws: list[torch.Tensor], x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.stack(draws) if draws else x.new_zeros((0, *shape))


# ---------------------------------------------------------------------------------------- jitter


def sample_jitter(x: torch.Tensor, amount: float, generator: torch.Generator | None) -> dict:
    """Per sample, 5 passes of N(0, 1) fields (2, H, W): column then row displacement."""
    fields = x.new_empty((x.shape[0], JITTER_PASSES, 2, *x.shape[-2:]), dtype=torch.float32)
    for sample in fields:
        rng.randn_(sample, generator)
    return {"fields": fields}


def _scatter_pass(x: torch.Tensor, col_shift: torch.Tensor, row_shift: torch.Tensor) -> torch.Tensor:
    """One pass of the reference's ``imscatter``: output pixel (r, c) takes the bilinear sample of
    the image at (r - row_shift, c - col_shift), edges replicated (``grid_sample``, border mode).

    Reproduced details of the reference: the image and the fields are replicate-padded by
    pr = ceil(|max row_shift|) rows and pc = ceil(|max col_shift|) columns, but cropped back by pc
    rows and pr columns, which shifts the image by pc - pr pixels when they differ; its bilinear
    interpolation returns 0 (black) where a sample point falls outside [0, last index) of the padded
    image, because its clamped corner indices collapse and the weights cancel. Both are rare.
    """
    b, _, h, w = x.shape
    device = x.device
    pad_r = row_shift.flatten(1).amax(1).abs().ceil()
    pad_c = col_shift.flatten(1).amax(1).abs().ceil()
    if bool((pad_r != pad_c).any()):  # the fields are read at the crosswise-cropped positions too
        rows = torch.arange(h, device=device)[None] + (pad_c - pad_r).long()[:, None]
        cols = torch.arange(w, device=device)[None] + (pad_r - pad_c).long()[:, None]
        fr, fc = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
        row_shift, col_shift = gather_rows_cols(row_shift, fr, fc), gather_rows_cols(col_shift, fr, fc)
    # Sample points in image coordinates: (r + pc - pr - row_shift, c + pr - pc - col_shift).
    rows = torch.arange(h, device=device, dtype=x.dtype)[None] + (pad_c - pad_r)[:, None]
    cols = torch.arange(w, device=device, dtype=x.dtype)[None] + (pad_r - pad_c)[:, None]
    grid = torch.empty(b, h, w, 2, device=device, dtype=x.dtype)
    sx = torch.sub(cols[:, None, :], col_shift, out=grid[..., 0])
    sy = torch.sub(rows[:, :, None], row_shift, out=grid[..., 1])
    pr, pc = pad_r[:, None, None], pad_c[:, None, None]
    inside = (sy >= -pr) & (sy < h - 1 + pr) & (sx >= -pc) & (sx < w - 1 + pc)
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=device, dtype=x.dtype)
    grid = grid.mul_(scale).sub_(1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out if bool(inside.all()) else out * inside[:, None]


def jitter(x: torch.Tensor, amount: float, fields: torch.Tensor) -> torch.Tensor:
    """Scatter pixels: 5 passes of bilinear resampling at (row - sx, col - sy) with sx, sy the
    sampled N(0, 1) fields times ``amount`` (see :func:`_scatter_pass` for the reference's border
    quirks, reproduced)."""
    fields = fields.to(device=x.device, dtype=x.dtype)
    y = x
    for p in range(JITTER_PASSES):
        y = _scatter_pass(y, fields[:, p, 0] * amount, fields[:, p, 1] * amount)
    return y


# ----------------------------------------------------------------------------------- noneccpatch


def sample_noneccpatch(x: torch.Tensor, count: float, generator: torch.Generator | None) -> dict:
    """Per sample and patch, 4 uniforms: source column, source row, column offset, row offset."""
    shape = (int(count), 4)
    return {"uniforms": _stack([rng.rand(shape, generator, x.device) for _ in range(x.shape[0])], x, shape)}


def _gather(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pixels of ``flat`` (B, C, N) at the flat positions ``index`` (B, M), all channels."""
    return flat.gather(2, index[:, None].expand(-1, flat.shape[1], -1))


def _patch_axis(size: int, u_start: torch.Tensor, u_offset: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Source and destination starts along one axis, and the patch length on it."""
    length = min(PATCH, size)
    low, high = PATCH_MARGIN, size - PATCH - PATCH_MARGIN
    src = torch.round(u_start * (high - low)) + low
    dst = torch.round((u_offset - 0.5) * PATCH_MARGIN + src)
    last = size - length  # only binds for images under 48 px
    return src.long().clamp(0, last), dst.long().clamp(0, last), length


def noneccpatch(x: torch.Tensor, count: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Copy ``count`` 16 x 16 patches, one after another, to a position about 8 px away.

    A source top-left is uniform in [16, H - 32] x [16, W - 32] (rounded) and the destination is
    offset by round((U - 0.5) * 16) in each axis; later patches see earlier pastes. As in the
    reference, which assigns an overlapping view of the same tensor and so gets PyTorch's CPU copy
    order (rows top to bottom, each row whole), a paste that lands below its source and overlaps it
    repeats its first rows: pixel (i, j) of the paste takes source pixel (i - t*dr, j - t*dc), with
    (dr, dc) the offset and t the largest count with t*dr <= i whose column steps stay inside the
    patch (t = 0 when the paste lands level with or above its source).

    Images under 48 px use patches of min(16, size) and keep every patch inside the image; the reference
    raises on most images under 40 px (on all under 35 px) and, where it runs, gives the same result.
    """
    b, c, h, w = x.shape
    u = uniforms.to(device=x.device, dtype=torch.float64)
    sr, dr, ph = _patch_axis(h, u[..., 1], u[..., 3])
    sc, dc, pw = _patch_axis(w, u[..., 0], u[..., 2])
    i = torch.arange(ph, device=x.device)[:, None]  # patch row
    j = torch.arange(pw, device=x.device)[None, :]  # patch column
    d, e = (dr - sr)[..., None, None], (dc - sc)[..., None, None]  # (B, n, 1, 1)
    big = ph + pw
    steps_i = torch.where(d > 0, i // d.clamp_min(1), 0)
    steps_left = torch.where(e < 0, (pw - 1 - j) // (-e).clamp_min(1), big)
    steps_j = torch.where(e > 0, j // e.clamp_min(1), steps_left)
    t = torch.minimum(steps_i, steps_j)
    src = (sr[..., None, None] + i - t * d) * w + sc[..., None, None] + j - t * e
    dst = (dr[..., None, None] + i) * w + dc[..., None, None] + j
    flat = x.reshape(b, c, h * w).clone()
    for k in range(uniforms.shape[1]):
        index = dst[:, k].reshape(b, 1, -1).expand(-1, c, -1)
        flat.scatter_(2, index, _gather(flat, src[:, k].reshape(b, -1)))
    return flat.view(b, c, h, w)


# -------------------------------------------------------------------------------------- pixelate


def pixelate_size(size: int, strength: float) -> int:
    """Reduced side: int(size * (0.95 - strength ** 0.6)), at least 1 (the reference fails at 0)."""
    return max(1, int(size * (0.95 - strength**0.6)))


def pixelate(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Nearest-neighbour downscale to (int(H z), int(W z)), z = 0.95 - strength ** 0.6, and back."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(pixelate_size(h, strength), pixelate_size(w, strength)), mode="nearest")
    return F.interpolate(small, size=(h, w), mode="nearest")


# ---------------------------------------------------------------------------------- quantization


def quantization(x: torch.Tensor, levels: float) -> torch.Tensor:
    """Bucket every channel value v = 255 x by the thresholds of ``np.histogram(.., L, [0, 255])``
    cast to int, t_k = int(255 k / L), then stretch each image's index map (all channels
    together) to [0, 1] by its min and max.

    Bins are [0, t1, ..., t(L-1), 256], closed on the right (``torch.bucketize``), so an exact 0
    gets index 0 and other values 1..L; the index is computed in closed form (no search). The
    global stretch changes contrast and brightness, as in the reference; a flat index map is left
    as it is (so it clips to 0 or 1 afterwards).
    """
    # Bucket index for thresholds floor(255 k / L): 1 + floor((ceil(v) L - 1) / 255), 0 at v = 0.
    index = torch.floor((torch.ceil(x * 255) * int(levels) - 1) / 255) + 1
    flat = index.flatten(1)
    low, high = flat.amin(1), flat.amax(1)
    stretch = high > low
    offset = torch.where(stretch, low, torch.zeros_like(low))[:, None]
    spread = torch.where(stretch, high - low, torch.ones_like(low))[:, None]
    return ((flat - offset) / spread).view_as(x)


# ------------------------------------------------------------------------------------ colorblock


def sample_colorblock(x: torch.Tensor, count: float, generator: torch.Generator | None) -> dict:
    """Per sample and block, 5 uniforms: the colour (R, G, B), then the top and left positions."""
    shape = (int(count), 5)
    return {"uniforms": _stack([rng.rand(shape, generator, x.device) for _ in range(x.shape[0])], x, shape)}


def colorblock(x: torch.Tensor, count: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Paint ``count`` 32 x 32 blocks of uniform random colour, one after another, with top-left
    (floor(U (H - 32)), floor(U (W - 32))). Images under 32 px get blocks clipped to the image."""
    b, c, h, w = x.shape
    u = uniforms.to(device=x.device, dtype=torch.float64)
    bh, bw = min(BLOCK, h), min(BLOCK, w)
    top = torch.floor(u[..., 3] * (h - bh)).long()
    left = torch.floor(u[..., 4] * (w - bw)).long()
    i = torch.arange(bh, device=x.device)[:, None]
    j = torch.arange(bw, device=x.device)[None, :]
    where = ((top[..., None, None] + i) * w + left[..., None, None] + j).flatten(2)  # (B, n, bh*bw)
    colour = uniforms.to(device=x.device, dtype=x.dtype)[..., :3]
    out = x.reshape(b, c, h * w).clone()
    for k in range(uniforms.shape[1]):
        out.scatter_(2, where[:, k, None].expand(-1, c, -1), colour[:, k, :, None].expand(-1, -1, bh * bw))
    return out.view(b, c, h, w)


register("jitter", jitter, sample_jitter)
register("noneccpatch", noneccpatch, sample_noneccpatch)
register("pixelate", pixelate)
register("quantization", quantization)
register("colorblock", colorblock, sample_colorblock)
