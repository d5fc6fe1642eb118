"""What scoring returns: :class:`ScoreResult` for a call, :class:`ItemResult` per image, and
:func:`emit_in_order`, which hands per-image results back in input order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class ScoreResult:
    """Scores of N images, in input order (CPU tensors).

    ``scores``: (N,) scaled to about [0, 1], higher is better (or raw when ``scale=False``);
    ``raw_scores``: (N,) on the regressor dataset's native scale; ``features``: (N, V, 4096) per view
    (V = 5 crops or 1 whole image) when requested, else None. The raw score is the regressor applied
    to ``features.mean(1)`` (the regressor is linear, so this is the mean of the view scores).
    ``sources``: each input's name, as :class:`ItemResult` names it (its path, or ``<input i>``), so
    ``zip(r.sources, r)`` pairs them: iterating gives the scores as floats, as ``tolist()``; ``rows()`` gives a
    dict per image, as :class:`~arniqa.inference.explaining.Explanation`'s. ``notes``: each input's
    :attr:`ItemResult.note` (None: none). One image's result is a number to
    ``float()`` and to format (``f"{r:.3f}"``).
    """

    scores: torch.Tensor
    raw_scores: torch.Tensor
    features: torch.Tensor | None = None
    sources: list[str] = field(default_factory=list, repr=False)  # left out: thousands of paths would flood a REPL
    notes: list[str | None] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[float]:
        return iter(self.tolist())

    def __float__(self) -> float:
        if len(self.scores) != 1:
            raise TypeError(
                f"float() and format() need a result for one image, this one has {len(self.scores)} (use .tolist())"
            )
        return float(self.scores[0])

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)

    def tolist(self) -> list[float]:
        return self.scores.tolist()

    def rows(self) -> list[dict]:
        """One dict of plain values per image, as ``arniqa score`` writes its row (``source``, ``score``,
        ``raw_score``, ``note``; no ``error``: ``score()`` raises the first input's): for ``json.dumps`` or
        ``pandas.DataFrame(r.rows())``."""
        notes = self.notes or [None] * len(self)
        return [
            {"source": source, "score": score, "raw_score": raw, "note": note}
            for source, score, raw, note in zip(self.sources, self.tolist(), self.raw_scores.tolist(), notes)
        ]


@dataclass
class ItemResult:
    """One image's outcome in :meth:`Scorer.iter_scores`: a score, or the error that stopped it."""

    index: int
    source: str
    score: float | None = None
    raw_score: float | None = None
    error: str | None = None  # the reason, without the source name
    note: str | None = None  # what was done to it besides (its first frame scored, downscaled), without the name
    features: torch.Tensor | None = None  # (V, 4096) when requested
    explanation: tuple[torch.Tensor, float] | None = None  # (probabilities (G,), severity) when requested
    exception: Exception | None = field(default=None, repr=False)


def emit_in_order(done: dict[int, ItemResult], next_out: int) -> Iterator[ItemResult]:
    """Pop and yield ``done[next_out]``, ``done[next_out + 1]``, ... while they are there."""
    while next_out in done:
        yield done.pop(next_out)
        next_out += 1
