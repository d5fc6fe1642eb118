"""One model on the benchmarks (arniqa.ablation.evaluation): level monotonicity split by split, then the median."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from arniqa.ablation.evaluation import distortion_breakdown, monotonicity_over_splits
from arniqa.data.iqa import IQADataset, Record, ScoreRange


def dataset(synthetic: bool = True) -> IQADataset:
    """Two references x (jpeg, meanshift) x levels 1..5, in that order (20 images)."""
    records = [
        Record(Path(f"{ref}_{kind}_{level}.png"), 3.0, ref, kind, level)
        for ref in ("a", "b")
        for kind in ("jpeg", "meanshift")
        for level in range(1, 6)
    ]
    if not synthetic:
        records = [Record(r.path, r.score) for r in records]
    return IQADataset("csv", Path("."), records, ScoreRange(1.0, 5.0, "mos"), synthetic=synthetic)


def test_median_over_splits_of_the_monotone_groups():
    levels = np.tile(np.arange(1, 6), 4)
    falling, rising = -levels.astype(float), levels.astype(float)
    every = np.arange(20)
    # Split 1: every group falls with level. Split 2: reference b's jpeg rises, a's falls (share 1/2,
    # Kendall tau (1 + -1) / 2 = 0). meanshift's levels are not ordered by strength: its groups never count.
    second = np.where((every >= 10) & (every < 15), rising, falling)
    second[5:10] = rising[5:10]  # a's meanshift rises too, and must not matter
    evaluation = SimpleNamespace(
        splits=[SimpleNamespace(test=every), SimpleNamespace(test=every)], test_predictions=[falling, second]
    )
    out = monotonicity_over_splits(dataset(), evaluation)
    assert [m["share"] for m in out["per_split"]] == [1.0, 0.5]
    assert [m["kendall"] for m in out["per_split"]] == pytest.approx([1.0, 0.0])
    assert out["share"] == 0.75 and out["kendall"] == pytest.approx(0.5) and out["groups_per_split"] == 2


def test_a_dataset_without_levels_has_no_monotonicity():
    evaluation = SimpleNamespace(splits=[], test_predictions=[])
    assert monotonicity_over_splits(dataset(synthetic=False), evaluation) is None


def test_images_without_a_type_are_in_no_type_or_group_row():
    """A custom CSV's empty distortion cells made a type row 'None' and went into the group 'other' (the types
    outside the registry). Now they are in neither; jpeg's row is scipy's SRCC on the jpeg images."""
    from scipy import stats

    records = [
        Record(Path(f"{ref}_{level}_{kind}.png"), float(level), ref, kind, level)
        for ref in ("a", "b")
        for kind in ("jpeg", None)
        for level in range(1, 6)
    ]
    data = IQADataset("csv", Path("."), records, ScoreRange(1.0, 5.0, "mos"), synthetic=True)
    pred = np.random.default_rng(0).normal(size=20)
    every = np.arange(20)
    evaluation = SimpleNamespace(splits=[SimpleNamespace(test=every)], test_predictions=[pred])
    out = distortion_breakdown(data, evaluation)
    jpeg = [i for i, r in enumerate(records) if r.distortion == "jpeg"]
    expected = stats.spearmanr(pred[jpeg], data.scores[jpeg])[0]
    assert set(out["per_type"]) == {"jpeg"} and set(out["per_group"]) == {"jpeg"}
    assert out["per_type"]["jpeg"]["srcc"] == out["per_group"]["jpeg"]["srcc"] == pytest.approx(expected)
