"""Custom data: a CSV with ``path`` and ``score`` columns, optionally ``reference``, ``distortion``
and ``level`` (then splits are reference-disjoint). Paths are relative to the CSV's folder and stay inside it.

``root`` is the CSV file, or a folder holding ``labels.csv``. Scores are MOS (higher is better)
unless ``kind="dmos"``; the range is the observed minimum and maximum unless given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError, IQADataset, Record, parse_score, read_csv_rows
from .registry import SCORE_KINDS, ScoreRange

DEFAULT_NAME = "labels.csv"


def load(root: Path, check: bool = True, kind: str = "mos", score_range: tuple | None = None) -> IQADataset:
    root = Path(root)
    path = root / DEFAULT_NAME if root.is_dir() else root
    rows = read_csv_rows(path, ["path", "score"], "a CSV with columns path, score[, reference, distortion, level]")
    synthetic = "reference" in rows[0]
    records = []
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            raise DatasetError(f"{path}, line {line}: empty path")
        level = row.get("level") or None
        if level is not None:
            try:
                level = int(level)
            except ValueError:
                raise DatasetError(f"{path}, line {line}: level {level!r} is not an integer") from None
        ref = row.get("reference") or None
        if synthetic and ref is None:
            raise DatasetError(f"{path}, line {line}: empty reference (the file has a reference column)")
        records.append(
            Record(
                path.parent / row["path"],
                parse_score(row["score"], path, line),
                ref,
                row.get("distortion") or None,
                level,
                line,
            )
        )
    if kind not in SCORE_KINDS:
        raise DatasetError(f"score kind must be 'mos' or 'dmos', got {kind!r}")
    scores = [r.score for r in records]
    try:
        low, high = (float(v) for v in score_range) if score_range is not None else (min(scores), max(scores))
    except (TypeError, ValueError):
        raise DatasetError(f"score_range must be two numbers (low, high), got {score_range!r}") from None
    if not (high > low and np.isfinite(high - low)):
        raise DatasetError(f"{path}: the scores need a finite range with high > low, got ({low}, {high})")
    return IQADataset(
        "csv", path.parent, records, ScoreRange(float(low), float(high), kind), synthetic=synthetic, label_file=path
    )
