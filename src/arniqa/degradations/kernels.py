"""Filter kernels (ports of MATLAB ``fspecial``) and the replicate-padded correlation ``filter2d``."""

from __future__ import annotations

import math

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


def gaussian_size(sigma: float) -> int:
    """Kernel size the reference uses for a Gaussian blur of ``sigma``: 2*ceil(2*sigma)+1."""
    return 2 * math.ceil(2 * sigma) + 1


def _separate(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(column, row) vectors whose outer product is ``kernel``, or None if it is not rank one."""
    col, row = kernel.sum(1), kernel.sum(0)
    total = kernel.sum()
    if total.abs() < 1e-12:
        return None
    outer = torch.outer(col, row) / total
    if torch.allclose(outer, kernel, atol=1e-12, rtol=1e-9):
        return col / total, row
    return None


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of ``x`` (B,C,H,W) with ``kernel``, replicate padding, same size.

    ``kernel`` is (kh, kw), shared by the batch, or (B, kh, kw), one per sample; both sizes odd.
    A shared rank-one kernel (a Gaussian, a box) runs as two 1-D passes.
    """
    if kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
        raise ValueError(f"filter2d needs an odd kernel size, got {tuple(kernel.shape[-2:])}")
    b, c, h, w = x.shape
    kh, kw = kernel.shape[-2:]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    if kernel.dim() == 2:
        parts = _separate(kernel.double())
        if parts is not None:
            col, row = (p.to(x.dtype).to(x.device) for p in parts)
            y = F.conv2d(padded.reshape(b * c, 1, *padded.shape[-2:]), col.view(1, 1, kh, 1))
            y = F.conv2d(y, row.view(1, 1, 1, kw))
            return y.reshape(b, c, h, w)
        weight = kernel.to(x.dtype).to(x.device).expand(c, 1, kh, kw)
        return F.conv2d(padded, weight, groups=c)
    if kernel.shape[0] != b:
        raise ValueError(f"per-sample kernels: expected {b}, got {kernel.shape[0]}")
    weight = kernel.to(x.dtype).to(x.device)[:, None].repeat_interleave(c, dim=0)
    y = F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c)
    return y.reshape(b, c, h, w)
