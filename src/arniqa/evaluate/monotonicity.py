"""Does predicted quality fall with distortion level? A check for synthetic benchmarks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from scipy.stats import kendalltau


def level_monotonicity(
    refs: Iterable[str],
    types: Iterable[str],
    levels: Iterable[int],
    predictions: Iterable[float],
    exclude: Iterable[str] = (),
) -> dict[str, float]:
    """Agreement of predicted quality with distortion level, per (reference, type) group.

    Returns ``share``: the fraction of groups whose predictions fall strictly from each level to
    the next; ``kendall``: the mean Kendall tau between level and *negated* prediction (1 when
    quality always falls with level); ``groups``: the number of groups. Types in ``exclude``
    (those whose levels are not ordered by strength) and groups with fewer than two levels are
    skipped.
    """
    skip = set(exclude)
    groups: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for ref, kind, level, pred in zip(refs, types, levels, predictions, strict=True):
        if kind not in skip:
            groups[(ref, kind)].append((int(level), float(pred)))
    falls, taus = [], []
    for items in groups.values():
        if len(items) < 2:
            continue
        items.sort()
        lv, pred = np.array([i[0] for i in items]), np.array([i[1] for i in items])
        falls.append(bool(np.all(np.diff(pred) < 0)))
        tau = kendalltau(lv, -pred).statistic
        taus.append(0.0 if np.isnan(tau) else tau)
    if not falls:
        raise ValueError("no (reference, type) group with two or more levels to compare")
    return {"share": float(np.mean(falls)), "kendall": float(np.mean(taus)), "groups": len(falls)}
