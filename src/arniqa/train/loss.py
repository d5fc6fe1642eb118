"""NT-Xent with ARNIQA's hard negatives (the same image at the other scale).

Notation. A batch has N samples. ``a`` holds the projections of ``inputs_A = cat(A_full, A_half)``
and ``b`` those of ``inputs_B = cat(B_full, B_half)``, so both are (2N, d) and row k of ``a`` and
row k of ``b`` are two different images with the same distortion chain at the same scale. After L2
normalisation of every row, Z = [a; b] is (4N, d) and S = Z Zᵀ / τ. For row i of Z,

    ℓ_i = −log( exp(S[i, pos(i)]) / Σ_{j ≠ i} exp(S[i, j]) ),   pos(k) = k + 2N,  pos(k + 2N) = k,

and the loss is the mean of ℓ_i over all 4N rows. The denominator includes the positive. Every
other row is a negative, in particular the same image at the other scale (row k ± N of the same
half of Z: same content, same chain), the hard negative. The loss is symmetric in a and b.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def nt_xent(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float = 0.1,
    *,
    all_a: torch.Tensor | None = None,
    all_b: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """The NT-Xent loss of the module docstring for projections ``a`` and ``b`` (M, d), M = 2N.

    Rows need not be normalised (this function does it) and are computed in float32.

    For multi-process training pass the global batch as ``all_a``/``all_b`` (M_total, d; the
    rows of every process, gathered with gradient) and this process's rows as ``a``/``b``, which
    are rows ``offset .. offset + M`` of ``all_a``/``all_b``. The result is then the mean of ℓ_i
    over this process's 2M rows only, each against all 2·M_total rows; the mean over processes
    of these values is the single-process loss of the global batch, and so is its gradient under
    DDP's gradient averaging.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must be (M, d) of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if (all_a is None) != (all_b is None):
        raise ValueError("give both all_a and all_b, or neither")
    if all_a is None:
        all_a, all_b = a, b
    m, m_total = a.shape[0], all_a.shape[0]
    if all_b.shape != all_a.shape or not 0 <= offset <= m_total - m:
        raise ValueError(f"rows {offset}..{offset + m} do not fit a global batch of {m_total}")
    queries = F.normalize(torch.cat([a, b]).float(), dim=1)
    keys = F.normalize(torch.cat([all_a, all_b]).float(), dim=1)
    logits = queries @ keys.T / temperature  # (2M, 2 M_total)
    rows = torch.arange(m, device=a.device) + offset
    own = torch.cat([rows, rows + m_total])  # each query's own column
    positive = torch.cat([rows + m_total, rows])
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(2 * m, device=a.device), own] = True
    return F.cross_entropy(logits.masked_fill(self_mask, float("-inf")), positive)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`: ``NTXentLoss(temperature)(a, b, ...)``."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, a: torch.Tensor, b: torch.Tensor, **global_batch) -> torch.Tensor:
        return nt_xent(a, b, self.temperature, **global_batch)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
