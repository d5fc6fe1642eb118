"""Explanations of scored images: the explanation head (:mod:`arniqa.models.explain`) on each image's feature.

An image's feature is the mean over its views, as for its score; the head gives the probability of each
distortion group (and ``none``) and a severity (0 pristine .. 5). An ONNX file exported with a head gives the
head's outputs per view instead (:class:`~arniqa.inference.onnx_engine.GraphHead`): the head is linear, so the
softmax of the mean of the views' logits, and the mean of their severities, are the same explanation
(:func:`explain_views`). ``Scorer.explain`` calls :func:`explain`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..degradations.registry import NUM_LEVELS
from ..models.explain import Explainer
from .inputs import source_name


@dataclass
class Explanation:
    """Group probabilities (N, len(labels)) and severities (N,) of N images, in input order; ``sources``: each
    input's name, as :class:`~arniqa.inference.ScoreResult`'s (its path, or ``<input i>``), so
    ``zip(e.sources, e)`` pairs them, as a score result's (left out: ``<input i>``): iterating gives each image's
    :meth:`top` labels."""

    labels: tuple[str, ...]
    probs: torch.Tensor
    severity: torch.Tensor
    sources: list[str] = field(default_factory=list, repr=False)  # left out: thousands of paths would flood a REPL

    def __post_init__(self) -> None:
        if not self.sources:  # built without names: each is named as a score result names an input without one
            self.sources = [source_name(None, i) for i in range(len(self.probs))]

    def __len__(self) -> int:
        return len(self.probs)

    def __iter__(self) -> Iterator[list[tuple[str, float]]]:
        return (self.top(i) for i in range(len(self)))

    def rows(self) -> list[dict]:
        """One dict of plain values per image, as ``arniqa score --explain`` writes its row (``source``,
        ``explanation``, ``severity``) and each label's probability: for ``json.dumps`` or
        ``pandas.DataFrame(e.rows())``."""
        return [
            {"source": source, "explanation": describe(self.top(i)), "severity": float(self.severity[i]),
             **dict(zip(self.labels, self.probs[i].tolist()))}
            for i, source in enumerate(self.sources)
        ]  # fmt: skip

    def top(self, i: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable labels of image ``i`` with their probabilities, most probable first."""
        return top_labels(self.labels, self.probs[i], k)


def top_labels(labels, probs: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
    values, order = probs.topk(min(k, len(labels)))
    return [(labels[j], float(v)) for v, j in zip(values.tolist(), order.tolist())]


def describe(top: list[tuple[str, float]]) -> str:
    """``blur 0.71; noise 0.12``: a result file's ``explanation`` column."""
    return "; ".join(f"{label} {p:.2f}" for label, p in top)


def explain_views(logits, severity) -> tuple[torch.Tensor, float]:
    """Probabilities (G,) and severity of one image from its views' head outputs, logits (V, G) and severities
    (V,) (arrays or tensors): the softmax of the mean logits, and the mean severity clipped to the levels' range,
    0 (pristine) .. NUM_LEVELS (the ridge's prediction can overshoot)."""
    probs = torch.as_tensor(logits).float().mean(0).softmax(-1)
    return probs, float(torch.as_tensor(severity).float().mean().clamp(0, NUM_LEVELS))


@torch.no_grad()
def explain_features(head: Explainer, features: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Probabilities (len(labels),) and severity of one image from its view features (V, D): the head on
    their mean (:func:`explain_views`)."""
    mean = features.float().mean(0, keepdim=True)
    return explain_views(head.logits(mean), head.severity(mean)[:, 0])


def explain(scorer, inputs) -> Explanation:
    """:class:`Explanation` of ``inputs`` (anything ``Scorer.score`` takes); raises the first input's error."""
    results = scorer.iter_scores(inputs, explain=True)  # ValueError without a head
    scorer.explainer.check_protocol(scorer.protocol.name)
    probs, severity, sources = [], [], []
    for r in results:
        if r.exception is not None:
            raise r.exception
        p, s = r.explanation
        probs.append(p)
        severity.append(s)
        sources.append(r.source)
    labels = scorer.explainer.labels
    probs = torch.stack(probs) if probs else torch.zeros(0, len(labels))
    return Explanation(labels, probs, torch.tensor(severity), sources)
