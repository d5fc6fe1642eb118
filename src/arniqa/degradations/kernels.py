"""Filter kernels (ports of MATLAB ``fspecial``, the reference's lens-blur kernels) and the
replicate-padded correlation ``filter2d``."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources

import torch
import torch.nn.functional as F

EPS = 2.220446049250313e-16  # MATLAB eps, used by fspecial to drop negligible weights


def gaussian(size: int, sigma: float) -> torch.Tensor:
    """``fspecial('gaussian', size, sigma)``: float64 (size, size), entries < eps*max zeroed, sum 1."""
    r = (size - 1) / 2
    t = torch.arange(size, dtype=torch.float64) - r
    h = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma * sigma))
    h[h < EPS * h.max()] = 0
    return h / h.sum()


def disk(radius: float) -> torch.Tensor:
    """``fspecial('disk', radius)``: float64 (2c+1, 2c+1) pillbox, c = ceil(radius - 0.5), sum 1.

    Each weight is the area of the pixel's unit square inside the circle of ``radius`` (exact
    circle-segment areas on the rim, as MATLAB computes them). ``disk(1)`` has centre 0.3183,
    edges 0.1453 and corners 0.0251.

    The reference's Python port departs from MATLAB for radius >= 2 (it replaces the per-pixel
    square roots on the rim by 0 or by a root over the wrong axis, which gives negative weights;
    see :func:`reference_disk`); this is MATLAB's kernel, which KADID-10k's images were made with.
    """
    if radius <= 0:
        raise ValueError(f"disk radius must be positive, got {radius!r}")
    crad = math.ceil(radius - 0.5)
    t = torch.arange(-crad, crad + 1, dtype=torch.float64).abs()
    hi = torch.maximum(t[:, None], t[None, :])  # distance of the pixel centre along the longer axis
    lo = torch.minimum(t[:, None], t[None, :])
    r2 = radius * radius
    # Where the circle enters (m1) and leaves (m2) the pixel along its short side.
    m1 = torch.where(r2 < (hi + 0.5) ** 2 + (lo - 0.5) ** 2, lo - 0.5, (r2 - (hi + 0.5) ** 2).clamp(min=0).sqrt())
    m2 = torch.where(r2 > (hi - 0.5) ** 2 + (lo + 0.5) ** 2, lo + 0.5, (r2 - (hi - 0.5) ** 2).clamp(min=0).sqrt())
    a1, a2 = torch.asin(m1 / radius), torch.asin(m2 / radius)
    arc = r2 * (0.5 * (a2 - a1) + 0.25 * (torch.sin(2 * a2) - torch.sin(2 * a1)))
    segment = arc - (hi - 0.5) * (m2 - m1) + (m1 - lo + 0.5)
    on_rim = ((r2 < (hi + 0.5) ** 2 + (lo + 0.5) ** 2) & (r2 > (hi - 0.5) ** 2 + (lo - 0.5) ** 2)) | (
        (lo == 0) & (hi - 0.5 < radius) & (hi + 0.5 >= radius)
    )
    grid = segment * on_rim + ((hi + 0.5) ** 2 + (lo + 0.5) ** 2 < r2).double()
    grid[crad, crad] = min(math.pi * r2, math.pi / 2)
    if crad > 0 and radius > crad - 0.5 and r2 < (crad - 0.5) ** 2 + 0.25:
        # The circle barely crosses into the outermost ring: move the sliver there (MATLAB's fix-up).
        m = math.sqrt(r2 - (crad - 0.5) ** 2)
        a = math.asin(m / radius)
        sliver = 2 * (r2 * (0.5 * a + 0.25 * math.sin(2 * a)) - m * (crad - 0.5))
        n = 2 * crad
        for outer, inner in (
            ((n, crad), (n - 1, crad)),
            ((crad, n), (crad, n - 1)),
            ((crad, 0), (crad, 1)),
            ((0, crad), (1, crad)),
        ):
            grid[outer] = sliver
            grid[inner] -= sliver
    grid[crad, crad] = min(grid[crad, crad].item(), 1.0)
    return grid / grid.sum()


@lru_cache(maxsize=None)
def _reference_disks() -> dict[float, torch.Tensor]:
    text = resources.files(__package__).joinpath("lensblur_reference.json").read_text()
    return {float(r): torch.tensor(v, dtype=torch.float64) for r, v in json.loads(text)["kernels"].items()}


def reference_disk(radius: float) -> torch.Tensor:
    """The reference implementation's lens-blur kernel of ``radius`` (1, 2, 4, 6 or 8), float64.

    Its Python port of ``fspecial('disk')`` equals :func:`disk` at radius 1 and departs from it
    for radius >= 2: the rim weights differ by up to 0.05 and some are negative (-0.0019 to
    -0.050). ARNIQA's published model was trained on these kernels. The values are shipped as
    computed by the reference (``lensblur_reference.json``); the sums are 1 to within 2e-16.
    """
    kernels = _reference_disks()
    if float(radius) not in kernels:
        raise ValueError(f"the reference has lens-blur kernels for radius {sorted(kernels)}, got {radius!r}")
    return kernels[float(radius)].clone()


MOTION_EPS = 2.2204e-16  # the constant fspecial('motion') uses (MATLAB's eps, rounded)


def motion(length: float, angle: float) -> torch.Tensor:
    """``fspecial('motion', length, angle)``: float64 line kernel of ``length`` px at ``angle`` degrees.

    Angles are counter-clockwise from the x axis (mod 180). Both sizes are odd, the line is
    anti-aliased by the pixel's distance to it, and the kernel sums to 1 up to
    ``eps * length**2``. ``motion(1, a)`` is the 1x1 identity.
    """
    length = max(1.0, float(length))
    half = (length - 1) / 2
    phi = (angle % 180) / 180 * math.pi
    cos, sin = math.cos(phi), math.sin(phi)
    xsign = 1 if cos >= 0 else -1
    width = 1  # line width
    sx = int(half * cos + width * xsign - length * MOTION_EPS)
    sy = int(half * sin + width - length * MOTION_EPS)
    xs = torch.arange(0, sx + xsign, xsign, dtype=torch.float64)
    ys = torch.arange(0, sy + 1, dtype=torch.float64)
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # one quadrant, (sy+1, |sx|+1)
    dist = y * cos - x * sin  # signed distance to the line
    last = ((x * x + y * y).sqrt() >= half) & (dist.abs() <= width)  # pixels past the line's end
    beyond = half - ((x[last] + dist[last] * sin) / cos).abs()
    dist[last] = (dist[last] ** 2 + beyond**2).sqrt()
    quad = (width + MOTION_EPS - dist.abs()).clamp(min=0)
    qh, qw = quad.shape
    h = torch.zeros(2 * qh - 1, 2 * qw - 1, dtype=torch.float64)
    h[:qh, :qw] = quad.flip(0, 1)
    h[qh - 1 :, qw - 1 :] = quad
    h /= h.sum() + MOTION_EPS * length * length
    return h.flip(0) if cos > 0 else h


def pad_to(kernels: list[torch.Tensor]) -> torch.Tensor:
    """Stack odd-sized 2-D kernels into (N, kh, kw), zero-padding each around its centre."""
    kh = max(k.shape[0] for k in kernels)
    kw = max(k.shape[1] for k in kernels)
    out = kernels[0].new_zeros(len(kernels), kh, kw)
    for i, k in enumerate(kernels):
        top, left = (kh - k.shape[0]) // 2, (kw - k.shape[1]) // 2
        out[i, top : top + k.shape[0], left : left + k.shape[1]] = k
    return out


def gaussian_size(sigma: float) -> int:
    """Kernel size the reference uses for a Gaussian blur of ``sigma``: 2*ceil(2*sigma)+1."""
    return 2 * math.ceil(2 * sigma) + 1


def _separate(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Float64 (column, row) vectors whose outer product is ``kernel``, or None if it is not rank one
    (to the precision of the kernel's dtype)."""
    tolerance = 16 * torch.finfo(kernel.dtype).eps
    kernel = kernel.double()
    col, row = kernel.sum(1), kernel.sum(0)
    total = kernel.sum()
    if total.abs() < 1e-12:
        return None
    outer = torch.outer(col, row) / total
    if torch.allclose(outer, kernel, rtol=tolerance, atol=tolerance * kernel.abs().max().item()):
        return col / total, row
    return None


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of ``x`` (B,C,H,W) with ``kernel``, replicate padding, same size.

    ``kernel`` is (kh, kw), shared by the batch, or (B, kh, kw), one per sample; both sizes odd.
    A shared rank-one kernel (a Gaussian, a box) runs as two 1-D passes. On the CPU the
    correlation is a sum of shifted, weighted copies over the kernel's non-zero taps (oneDNN's
    depthwise convolution measured 5-40x slower on 224x224 planes), or, for a shared kernel whose
    rows hold long runs of equal taps (a disk of radius 4 or more), :func:`_shift_add_rows`;
    elsewhere it is a depthwise convolution. Every sample's result is independent of its batch.
    """
    if kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
        raise ValueError(f"filter2d needs an odd kernel size, got {tuple(kernel.shape[-2:])}")
    b, c, h, w = x.shape
    kh, kw = kernel.shape[-2:]
    if kernel.dim() == 3 and kernel.shape[0] != b:
        raise ValueError(f"per-sample kernels: expected {b}, got {kernel.shape[0]}")
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    correlate = _shift_add if x.device.type == "cpu" else _depthwise
    return correlate(padded, kernel, h, w)


def _shift_add(padded: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Correlation of replicate-padded planes as a sum of shifted copies (the CPU path)."""
    parts = _separate(kernel) if kernel.dim() == 2 else None
    if parts is not None:
        return _shift_add_1d(_shift_add_1d(padded, parts[0], -2, h), parts[1], -1, w)
    if kernel.dim() == 2 and _row_passes(kernel) < 0.7 * int((kernel != 0).sum()):
        return _shift_add_rows(padded, kernel, h, w)
    if kernel.dim() == 2:
        return _shift_add_2d(padded, kernel, h, w)
    return torch.cat([_shift_add_2d(padded[i : i + 1], kernel[i], h, w) for i in range(padded.shape[0])])


def _depthwise(padded: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Correlation of replicate-padded planes as one depthwise convolution (the GPU path)."""
    b, c = padded.shape[:2]
    kh, kw = kernel.shape[-2:]
    # One group per plane. A lone plane would run as an ordinary convolution, which rounds
    # differently; doubling it keeps every batch bit-identical to its samples one by one.
    n = max(2, b * c)
    planes = padded.reshape(1, b * c, *padded.shape[-2:]).expand(1, n, -1, -1)
    parts = _separate(kernel) if kernel.dim() == 2 else None
    if parts is not None:
        col, row = (p.to(padded.device, padded.dtype) for p in parts)
        y = F.conv2d(planes, col.view(1, 1, kh, 1).expand(n, 1, kh, 1), groups=n)
        y = F.conv2d(y, row.view(1, 1, 1, kw).expand(n, 1, 1, kw), groups=n)
        return y[:, : b * c].reshape(b, c, h, w)
    if kernel.dim() == 2:
        weight = kernel.to(padded.device, padded.dtype).expand(n, 1, kh, kw)
    else:
        weight = kernel.to(padded.device, padded.dtype).repeat_interleave(c, dim=0).expand(n, kh, kw)[:, None]
    return F.conv2d(planes, weight, groups=n)[:, : b * c].reshape(b, c, h, w)


def _shift_add_1d(x: torch.Tensor, taps: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """sum_i taps[i] * x.narrow(dim, i, size) over the non-zero taps."""
    out = None
    for offset, weight in enumerate(taps.tolist()):
        if weight:
            part = x.narrow(dim, offset, size)
            out = part * weight if out is None else out.add_(part, alpha=weight)
    return out


BOX_RUN = 4  # a run of this many equal taps in a kernel row is summed from prefix sums instead


def _runs(taps: list[float]) -> list[tuple[int, int, float]]:
    """(first, last, weight) of each run of equal non-zero taps in a kernel row."""
    runs: list[tuple[int, int, float]] = []
    for j, weight in enumerate(taps):
        if weight and runs and runs[-1][2] == weight and runs[-1][1] == j - 1:
            runs[-1] = (runs[-1][0], j, weight)
        elif weight:
            runs.append((j, j, weight))
    return runs


def _distinct_rows(kernel: torch.Tensor) -> dict[tuple[float, ...], list[int]]:
    """Each distinct non-zero row of ``kernel`` with the offsets where it stands."""
    rows: dict[tuple[float, ...], list[int]] = {}
    for i, row in enumerate(kernel.tolist()):
        if any(row):
            rows.setdefault(tuple(row), []).append(i)
    return rows


def _row_passes(kernel: torch.Tensor) -> int:
    """Whole-image passes :func:`_shift_add_rows` makes for ``kernel`` (the prefix sums count 3)."""
    rows = _distinct_rows(kernel)
    taps = sum(1 if b - a + 1 >= BOX_RUN else b - a + 1 for row in rows for a, b, _ in _runs(list(row)))
    return 3 + taps + sum(map(len, rows.values()))


def _shift_add_rows(x: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The correlation of :func:`_shift_add_2d`, row by row of the kernel: each distinct kernel row
    is correlated once along the image rows, with runs of :data:`BOX_RUN` or more equal taps summed
    as differences of prefix sums, then added at each of its row offsets. A disk's rows are mostly
    such runs: its 241 taps at radius 8 become about 60 passes.

    The prefix sums are of x - 1/2, which keeps them small (and exact for a constant image).
    """
    prefix = F.pad((x - 0.5).cumsum(-1), (1, 0))  # prefix[..., c] = sum of x[..., :c] - c/2
    out = None
    for row, offsets in _distinct_rows(kernel).items():
        line, offset = None, 0.0
        for first, last, weight in _runs(list(row)):
            if last - first + 1 >= BOX_RUN:
                part = prefix[..., last + 1 : last + 1 + w] - prefix[..., first : first + w]
                offset += weight * (last - first + 1) / 2
                line = part.mul_(weight) if line is None else line.add_(part, alpha=weight)
            else:
                for j in range(first, last + 1):
                    part = x[..., j : j + w]
                    line = part * weight if line is None else line.add_(part, alpha=weight)
        if offset:
            line.add_(offset)
        for i in offsets:
            part = line[..., i : i + h, :]
            out = part.clone() if out is None else out.add_(part)
    return out


def _shift_add_2d(x: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """sum_ij kernel[i, j] * x[..., i:i+h, j:j+w] over the non-zero taps."""
    out = None
    for (i, j), weight in zip(torch.nonzero(kernel).tolist(), kernel[kernel != 0].tolist()):
        part = x[..., i : i + h, j : j + w]
        out = part * weight if out is None else out.add_(part, alpha=weight)
    return out


def gather_rows_cols(planes: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``planes[i][rows[i]][:, cols[i]]`` for every sample i of (B, H, W) planes, rows (B, H') and
    cols (B, W') of indices. On the CPU sample by sample, whole rows then columns (index_select),
    5x faster there than one gather with three index tensors, which stays one kernel elsewhere."""
    if planes.device.type == "cpu" and len(planes):
        return torch.stack([p.index_select(0, r).index_select(1, c) for p, r, c in zip(planes, rows, cols)])
    batch = torch.arange(len(planes), device=planes.device)[:, None, None]
    return planes[batch, rows[:, :, None], cols[:, None, :]]
