"""The linear quality regressor (4096-d feature -> score), scaled by its dataset's score range.

Scaling follows the official ARNIQA ``torch.hub`` model: ``s' = (s - lo) / (hi - lo)``, then
``1 - s'`` for DMOS datasets (lower raw score = better image), and no clamping, so out-of-range
images can score outside [0, 1]. Higher scaled scores are always better.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..constants import QUALITY_DIM
from ..data.iqa.registry import ALIASES, SCORE_KINDS, SCORE_RANGES, ScoreRange, canonical_dataset, scale_score


def _as_range(value) -> ScoreRange:
    if isinstance(value, ScoreRange):
        return value
    low, high, *kind = value
    kind = kind[0] if kind else "mos"
    if kind not in SCORE_KINDS:
        raise ValueError(f"score range kind must be 'mos' or 'dmos', got {kind!r}")
    if not float(high) > float(low):
        raise ValueError(f"score range needs high > low, got ({low}, {high})")
    return ScoreRange(float(low), float(high), kind)


class Regressor(nn.Module):
    """Linear map from the quality feature (N, ``in_features``) to a raw score (N,).

    ``dataset`` names what the regressor was fitted on; a known name (or pyiqa alias) fixes the
    score range used by :meth:`scale`. For other data pass ``score_range=(low, high[, "mos"|"dmos"])``;
    an explicit range overrides the table. Without either, :meth:`scale` raises.

    Parameters are ``weight`` (1, in_features) and ``bias`` (1,), as in ``nn.Linear(in_features, 1)``,
    zero-initialised (fill them from a fit with :meth:`from_numpy` or a weight loader).
    """

    def __init__(
        self,
        dataset: str | None = None,
        score_range: ScoreRange | tuple | None = None,
        in_features: int = QUALITY_DIM,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, in_features))
        self.bias = nn.Parameter(torch.zeros(1))
        if dataset is not None and score_range is None:
            dataset = canonical_dataset(dataset)
        elif dataset is not None:
            dataset = ALIASES.get(dataset.lower(), dataset.lower())
        self.dataset = dataset
        if score_range is not None:
            self.score_range: ScoreRange | None = _as_range(score_range)
        else:
            self.score_range = SCORE_RANGES.get(dataset) if dataset else None

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Raw scores (N,) in the dataset's native scale for features (N, in_features)."""
        if features.ndim != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"regressor expects features of shape (N, {self.in_features}), got {tuple(features.shape)}"
            )
        return F.linear(features, self.weight.to(features.dtype), self.bias.to(features.dtype)).squeeze(1)

    def scale(self, raw):
        """Map raw scores to about [0, 1], higher is better; DMOS is inverted; no clamping.

        Works on tensors, numpy arrays and floats.
        """
        if self.score_range is None:
            raise ValueError("this regressor has no score range (no known dataset, no score_range); use raw scores")
        return scale_score(raw, self.score_range)

    @classmethod
    def from_numpy(
        cls,
        weight,
        bias,
        dataset: str | None = None,
        score_range: ScoreRange | tuple | None = None,
    ) -> "Regressor":
        """A regressor from a linear fit: ``weight`` of shape (D,) or (1, D), ``bias`` a scalar or (1,).

        E.g. ``Regressor.from_numpy(ridge.coef_, ridge.intercept_, dataset="kadid10k")``.
        """
        w = np.asarray(weight, dtype=np.float64)
        b = np.asarray(bias, dtype=np.float64)
        if w.ndim == 2 and w.shape[0] == 1:
            w = w[0]
        if w.ndim != 1:
            raise ValueError(f"regressor weight must have shape (D,) or (1, D), got {w.shape}")
        if b.size != 1:
            raise ValueError(f"regressor bias must be a scalar, got shape {b.shape}")
        reg = cls(dataset=dataset, score_range=score_range, in_features=w.shape[0])
        with torch.no_grad():
            reg.weight.copy_(torch.from_numpy(w).float().unsqueeze(0))
            reg.bias.fill_(float(b.reshape(())))
        return reg

    @property
    def config(self) -> dict:
        """JSON-serialisable metadata: dataset, score range, input size."""
        r = self.score_range
        return {
            "dataset": self.dataset,
            "score_range": None if r is None else [r.low, r.high, r.kind],
            "in_features": self.in_features,
        }

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, dataset={self.dataset!r}, score_range={self.score_range}"
