"""``arniqa explain fit``: features of the labelled samples (:mod:`.samples`), the head fitted on them, and its
accuracy on held-out references.

Features come from a :class:`~arniqa.inference.Scorer`, so the head sees what ``arniqa score --explain`` sees
with the same protocol (an image's feature is the mean over its views). Each reference's features can be
cached in a folder (named after the model's fingerprint and the settings), so a rerun skips what is done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.images import ImageError
from ..evaluate.features import model_fingerprint
from ..models.explain import LABELS, NONE, Explainer, fit_explainer
from .samples import reference_samples


@dataclass
class Labelled:
    """Features (N, D) of labelled samples, their soft targets (N, G), severities (N,), kinds and groups."""

    features: torch.Tensor
    targets: torch.Tensor
    severity: torch.Tensor
    kinds: list[str] = field(default_factory=list)
    groups: list[set[str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of unreadable references


def _key(fingerprint: str, path: Path, settings: dict) -> str:
    text = json.dumps({"model": fingerprint, "path": str(path), **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def labelled_features(scorer, paths: list[Path], size: tuple[int, int] = (256, 192), chains: int = 40,
                      seed: int = 0, cache: Path | None = None,
                      progress: Callable[[int, int], object] | None = None) -> Labelled:
    """The labelled samples of every reference in ``paths`` and their features under ``scorer``. A reference
    that cannot be read is listed in ``failed`` and the others go on."""
    settings = {"size": list(size), "chains": chains, "seed": seed, "protocol": scorer.protocol.name}
    fingerprint = model_fingerprint(scorer.model) if cache is not None and scorer.model is not None else None
    parts = []
    failed = []
    for i, path in enumerate(paths, start=1):
        file = cache / f"{_key(fingerprint, path, {**settings, 'index': i})}.pt" if fingerprint else None
        if file is not None and file.is_file():
            part = torch.load(file, weights_only=True)
        else:
            try:
                samples = list(reference_samples(path, i, size, chains, seed))
            except (ImageError, ValueError, OSError) as e:
                failed.append((str(path), getattr(e, "reason", str(e))))
                continue
            part = {"features": scorer.features([s.image for s in samples]).mean(1),
                    "targets": torch.stack([s.target for s in samples]),
                    "severity": torch.tensor([float(s.severity) for s in samples]),
                    "kinds": [s.kind for s in samples], "groups": [sorted(s.groups) for s in samples]}
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                torch.save(part, file)
        parts.append(part)
        if progress:
            progress(i, len(paths))
    if not parts:
        raise ValueError("none of the reference images could be read")
    return Labelled(torch.cat([p["features"] for p in parts]), torch.cat([p["targets"] for p in parts]),
                    torch.cat([p["severity"] for p in parts]), [k for p in parts for k in p["kinds"]],
                    [set(g) for p in parts for g in p["groups"]], failed)


def fit(data: Labelled, l2: float = 1e-2, ridge: float = 1.0) -> Explainer:
    return fit_explainer(data.features, data.targets, data.severity, l2=l2, ridge=ridge)


def accuracy(head: Explainer, data: Labelled) -> dict:
    """How often the head is right, by kind of sample.

    ``single``: group top-1 and top-2 (the distortion's group among the two most probable), severity within 1
    level (prediction rounded and clipped to 0..5), and top-1 per group; ``chain``: top-1 among the chain's
    groups; ``pristine``: share predicted ``none``. ``chance``: top-1 of a uniform guess over the labels."""
    with torch.no_grad():
        probs, severity = head(data.features)
    order = probs.argsort(1, descending=True)
    top = [[LABELS[j] for j in row[:2]] for row in order.tolist()]
    level = severity.round().clamp(0, 5)
    result: dict = {"labels": list(LABELS), "chance_top1": 1 / len(LABELS)}
    single = [i for i, k in enumerate(data.kinds) if k == "single"]
    if single:
        truth = [next(iter(data.groups[i])) for i in single]
        result["single"] = {
            "images": len(single),
            "top1": _share(top[i][0] == g for i, g in zip(single, truth)),
            "top2": _share(g in top[i] for i, g in zip(single, truth)),
            "severity_within_1": _share(abs(level[i] - data.severity[i]) <= 1 for i in single),
            "severity_exact": _share(level[i] == data.severity[i] for i in single),
            "top1_per_group": {g: _share(top[i][0] == g for i, t in zip(single, truth) if t == g)
                               for g in LABELS if g != NONE},
        }
    chain = [i for i, k in enumerate(data.kinds) if k == "chain"]
    if chain:
        result["chain"] = {"images": len(chain), "top1_in_chain": _share(top[i][0] in data.groups[i] for i in chain),
                           "severity_within_1": _share(abs(level[i] - data.severity[i]) <= 1 for i in chain)}
    pristine = [i for i, k in enumerate(data.kinds) if k == "pristine"]
    if pristine:
        result["pristine"] = {"images": len(pristine), "top1_none": _share(top[i][0] == NONE for i in pristine)}
    return result


def _share(flags) -> float | None:
    flags = [bool(f) for f in flags]
    return sum(flags) / len(flags) if flags else None
