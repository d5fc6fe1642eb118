"""``arniqa explain fit``: features of the labelled samples (:mod:`.samples`), which the head is fitted on
(:func:`~arniqa.models.explain.fit_explainer`), and its accuracy on them and on held-out references.

Features come from a :class:`~arniqa.inference.Scorer`, so the head sees what ``arniqa score --explain`` sees
with the same protocol (an image's feature is the mean over its views). Each reference's features can be
cached in a folder (named after the model's fingerprint and the settings), so a rerun skips what is done.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

import torch

from ..constants import SYNTHETIC_SIZE
from ..data.images import ImageError
from ..data.pixels import tensor_to_pil
from ..degradations.registry import NUM_LEVELS
from ..models.arniqa import model_fingerprint
from ..models.explain import LABELS, NONE, Explainer
from ..utils.cache import short_digest
from ..utils.files import own_folder, save_torch
from ..utils.messages import file_line, warn_file, with_fix, words
from .samples import reference_samples


@dataclass
class Labelled:
    """Features (N, D) of labelled samples, their soft targets (N, G), severities (N,), kinds, groups and chains
    (``str(chain)``: ``gaublur@3 -> jpeg@2``, ``pristine``)."""

    features: torch.Tensor
    targets: torch.Tensor
    severity: torch.Tensor
    kinds: list[str] = field(default_factory=list)
    groups: list[set[str]] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of unreadable references


def _key(fingerprint: str, path: Path, settings: dict) -> str:
    text = json.dumps({"model": fingerprint, "path": str(path), **settings}, sort_keys=True)
    return short_digest(hashlib.sha256(text.encode()).hexdigest())


def _made(path: Path, index: int, size: tuple[int, int], chains: int, seed: int) -> dict | tuple[str, str]:
    """One reference's samples as uint8 images (cheap to pass between processes), labels and the seconds making
    them took, or why it could not be read and what to do: ``(problem, fix)``."""
    start = time.perf_counter()
    try:
        samples = list(reference_samples(path, index, size, chains, seed))
    except (ImageError, ValueError, OSError) as e:
        return getattr(e, "problem", str(e)), getattr(e, "fix", "")
    return {
        "images": torch.stack([(s.image * 255).round().to(torch.uint8) for s in samples]),
        "targets": torch.stack([s.target for s in samples]),
        "severity": torch.tensor([float(s.severity) for s in samples]),
        "kinds": [s.kind for s in samples],
        "groups": [sorted(s.groups) for s in samples],
        "chains": [str(s.chain) for s in samples],
        "seconds": time.perf_counter() - start,
    }


def _read_part(file: Path | None) -> dict | None:
    """A reference's cache entry, or None when there is none; a damaged one (cut off, foreign, of other shapes)
    is named in a warning and computed again."""
    if file is None or not file.is_file():
        return None
    try:
        part = torch.load(file, weights_only=True)
        n = len(part["kinds"])
        if not all(len(part[k]) == n for k in ("features", "targets", "severity", "groups", "chains")):
            raise ValueError("its parts differ in length")
        if part["targets"].shape != (n, len(LABELS)) or not torch.isfinite(part["features"]).all():
            raise ValueError("wrong targets or features that are not finite")
    except Exception as e:  # any failure to read it back: the entry is made again
        reason = words(str(e))[:120] or type(e).__name__
        warn_file(
            f"{file}: damaged explain cache entry ({reason}); computing it again",
            "with a damaged explain cache entry, each computed again",
            stacklevel=2,
        )
        return None
    return part


def labelled_features(
    scorer,
    paths: list[Path],
    size: tuple[int, int] = SYNTHETIC_SIZE,
    chains: int = 40,
    seed: int = 0,
    cache: Path | None = None,
    workers: int = 0,
    progress: Callable[[int, int], object] | None = None,
    starting: Callable[[], object] | None = None,
    first: Callable[[float, int], object] | None = None,
) -> Labelled:
    """The labelled samples of every reference in ``paths`` and their features under ``scorer``; ``workers``
    processes make the samples (0: this process). A reference that cannot be read is listed in ``failed`` and
    the others go on. For the first reference made here (not read from the cache) that can be read:
    ``starting()`` is called before its features are computed, ``first(seconds, left)`` after, with the seconds
    it took (with workers: its features, or its samples' share of the workers if more, the pool's start left out)
    and how many references are left to make."""
    # "inputs": entries from before the samples went in as 8-bit images (features up to 4e-3 away) are not reused
    settings = {"size": list(size), "chains": chains, "seed": seed, "protocol": scorer.protocol.name, "inputs": "8-bit"}
    fingerprint = model_fingerprint(scorer.model) if cache is not None and scorer.model is not None else None
    files = [
        cache / f"{_key(fingerprint, p, {**settings, 'index': i})}.pt" if fingerprint else None
        for i, p in enumerate(paths, start=1)
    ]
    cached = {i: part for i, f in enumerate(files, start=1) if (part := _read_part(f)) is not None}
    todo = [(p, i) for i, p in enumerate(paths, start=1) if i not in cached]
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers and len(todo) > 1 else None
    made = (
        pool.map(_made, *zip(*todo), repeat(size), repeat(chains), repeat(seed))
        if pool
        else (_made(p, i, size, chains, seed) for p, i in todo)
    )
    parts = []
    failed = []
    unread = None  # the first reference that could not be read: (path, problem, fix)
    left = len(todo)  # references still to make here
    try:
        for i, (path, file) in enumerate(zip(paths, files), start=1):
            if i in cached:
                part = cached.pop(i)
            else:
                left -= 1
                part = next(made)
                if isinstance(part, tuple):
                    failed.append((str(path), with_fix(*part)))
                    unread = unread or (str(path), *part)
                    continue
                if starting:
                    starting()
                    starting = None
                start = time.perf_counter()
                making, images = part.pop("seconds"), part.pop("images")
                # as 8-bit images: the views of `arniqa score` on the sample's PNG file, made without torch
                part["features"] = scorer.features([tensor_to_pil(x) for x in images.float() / 255]).mean(1)
                if file is not None:  # whole or not at all: a run killed mid-write leaves no torn entry
                    file.parent.mkdir(parents=True, exist_ok=True)
                    with own_folder(cache):  # the entries' names are its own: a pipe planted as one is replaced
                        save_torch(file, part)
                if first:
                    took = time.perf_counter() - start
                    first(max(took, making / workers) if pool else took + making, left)  # a pool makes them beside
                    first = None
            parts.append(part)
            if progress:
                progress(i, len(paths))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if not parts:
        path, problem, fix = unread
        lost = (
            "it is the only reference image"
            if len(paths) == 1
            else f"none of the {len(paths)} reference images could be read"
        )
        raise ValueError(
            file_line(
                path,
                f"{problem}, and {lost}, so there is no fit",
                f"{fix}, or give other reference images" if fix else "give other reference images",
            )
        )
    return Labelled(
        torch.cat([p["features"] for p in parts]),
        torch.cat([p["targets"] for p in parts]),
        torch.cat([p["severity"] for p in parts]),
        [k for p in parts for k in p["kinds"]],
        [set(g) for p in parts for g in p["groups"]],
        [c for p in parts for c in p["chains"]],
        failed,
    )


def accuracy(head: Explainer, data: Labelled) -> dict:
    """How often the head is right, by kind of sample.

    ``single``: group top-1 and top-2 (the distortion's group among the two most probable), severity within 1
    level (prediction rounded and clipped to 0..NUM_LEVELS), and top-1 per group; ``chain``: top-1 among the chain's
    groups; ``pristine``: share predicted ``none``. ``chance``: top-1 of a uniform guess over the labels."""
    with torch.no_grad():
        probs, severity = head(data.features)
    order = probs.argsort(1, descending=True)
    top = [[LABELS[j] for j in row[:2]] for row in order.tolist()]
    level = severity.round().clamp(0, NUM_LEVELS)
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
            "top1_per_group": {
                g: _share(top[i][0] == g for i, t in zip(single, truth) if t == g) for g in LABELS if g != NONE
            },
        }
    chain = [i for i, k in enumerate(data.kinds) if k == "chain"]
    if chain:
        result["chain"] = {
            "images": len(chain),
            "top1_in_chain": _share(top[i][0] in data.groups[i] for i in chain),
            "severity_within_1": _share(abs(level[i] - data.severity[i]) <= 1 for i in chain),
        }
    pristine = [i for i, k in enumerate(data.kinds) if k == "pristine"]
    if pristine:
        result["pristine"] = {"images": len(pristine), "top1_none": _share(top[i][0] == NONE for i in pristine)}
    return result


def _share(flags) -> float | None:
    flags = [bool(f) for f in flags]
    return sum(flags) / len(flags) if flags else None
