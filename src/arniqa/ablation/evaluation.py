"""One model on every benchmark of the study: the evaluation protocol (features, random reference-disjoint
splits, ridge), level monotonicity and SRCC per distortion type and group, and the time each part took."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..data.iqa import IQADataset
from ..degradations.registry import GROUP_OF, NON_MONOTONE
from ..evaluate.features import Extraction, dataset_features
from ..evaluate.monotonicity import level_monotonicity
from ..evaluate.probe import evaluate, per_type_srcc
from ..evaluate.splits import random_splits
from ..models.arniqa import model_fingerprint
from .config import AblationConfig


def monotonicity_over_splits(dataset: IQADataset, evaluation) -> dict[str, Any] | None:
    """Level monotonicity of the test predictions, split by split (ridge fitted on the split's
    training references with the chosen alpha), then the median over splits.

    Per split: the share of (test reference, distortion type) groups of the monotone types whose
    predicted quality falls strictly from each level to the next, and the mean Kendall tau between
    level and negated prediction. None when the dataset has no distortion levels.
    """
    records = dataset.records
    if not dataset.synthetic or any(r.level is None or r.distortion is None for r in records):
        return None
    refs = np.array([r.reference for r in records])
    kinds = np.array([r.distortion for r in records])
    levels = np.array([r.level for r in records])
    per_split = []
    for pred, split in zip(evaluation.test_predictions, evaluation.splits):
        t = split.test
        per_split.append(level_monotonicity(refs[t], kinds[t], levels[t], pred, exclude=NON_MONOTONE))
    return {
        "share": float(np.median([m["share"] for m in per_split])),
        "kendall": float(np.median([m["kendall"] for m in per_split])),
        "groups_per_split": int(np.median([m["groups"] for m in per_split])),
        "per_split": per_split,
    }


def distortion_breakdown(dataset: IQADataset, evaluation) -> dict[str, Any]:
    """SRCC and PLCC of each split's test predictions within each distortion type (``per_type``)
    and within each group of :data:`arniqa.degradations.registry.GROUPS` (``per_group``: the
    group's types and levels together), median over splits; empty for sets without types. Images without a
    type are in neither (not in the group "other", which holds the types outside the registry)."""
    kinds = dataset.distortions
    if kinds is None:
        return {}
    return {
        "per_type": per_type_srcc(evaluation, dataset.scores, kinds),
        "per_group": per_type_srcc(
            evaluation, dataset.scores, [None if k is None else GROUP_OF.get(k, "other") for k in kinds]
        ),
    }


def evaluate_model(
    model, sets: dict[str, IQADataset], config: AblationConfig, cache: Path, console: Console
) -> tuple[dict, dict, str]:
    """The protocol on every benchmark: ``(results per benchmark, timings per benchmark, model fingerprint)``."""
    ev = config.evaluation
    fingerprint = model_fingerprint(model)
    extraction = Extraction(
        cache_dir=cache,
        batch_size=ev.batch_size,
        device=ev.device,
        crop_size=ev.crop_size,
        num_workers=ev.num_workers,
        progress=not console.quiet,
    )
    results, timings = {}, {}
    for name, dataset in sets.items():
        t0 = time.perf_counter()
        features = dataset_features(model, dataset, extraction, fingerprint)
        t1 = time.perf_counter()
        splits = random_splits(len(dataset), ev.splits, seed=ev.seed, groups=dataset.references)
        evaluation = evaluate(features, dataset.scores, splits)
        summary = evaluation.summary
        results[name] = {
            "images": len(dataset),
            "references": len(set(dataset.references)) if dataset.references is not None else None,
            "splits": len(splits),
            "alpha": evaluation.alpha,
            **{metric: summary[metric] for metric in ("srcc", "plcc", "krcc", "plcc_logistic")},
            "monotonicity": monotonicity_over_splits(dataset, evaluation),
            **distortion_breakdown(dataset, evaluation),
            "per_split": evaluation.split_metrics,
        }
        timings[name] = {"features_s": t1 - t0, "protocol_s": time.perf_counter() - t1}
        console.print(
            f"    {name}: SRCC {summary['srcc']['median']:.4f}  PLCC {summary['plcc']['median']:.4f}  "
            f"(features {t1 - t0:.1f} s, protocol {timings[name]['protocol_s']:.1f} s)"
        )
    return results, timings, fingerprint[:16]
