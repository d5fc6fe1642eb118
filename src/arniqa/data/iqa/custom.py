"""Custom data: a CSV with a ``path`` column and one score column, optionally ``reference``, ``distortion``
and ``level`` (then splits are reference-disjoint). Paths are relative to the CSV's folder and stay inside it.

``root`` is the CSV file, or a folder holding ``labels.csv``. The score column says what its numbers are:
``mos`` (higher is better), ``dmos`` (lower is better), or ``score`` (MOS unless ``kind="dmos"``); so
``arniqa evaluate``, training's validation sets and the ablation read a DMOS file as DMOS with no option. The
range is the observed minimum and maximum unless given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.messages import file_line
from .base import DatasetError, IQADataset, Record, csv_header, found, parse_score, read_csv_rows
from .registry import SCORE_KINDS, ScoreRange

DEFAULT_NAME = "labels.csv"
SCORE_COLUMNS = {"score": None, "mos": "mos", "dmos": "dmos"}  # the score column, and the kind it says
OPTIONAL = ("reference", "distortion", "level")
WHAT = "a CSV with columns path and score, mos or dmos[, reference, distortion, level]"


def load(root: Path, check: bool = True, kind: str | None = None, score_range: tuple | None = None) -> IQADataset:
    root = Path(root)
    path = found(root, DEFAULT_NAME) if root.is_dir() else root
    rows = read_csv_rows(path, ["path"], WHAT, optional=(*SCORE_COLUMNS, *OPTIONAL), names=("path",))
    column, kind = _score_column(path, list(rows[0][1]), kind)
    synthetic = "reference" in rows[0][1]
    records = []
    for line, row in rows:
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
                parse_score(row[column], path, line),
                ref,
                row.get("distortion") or None,
                level,
                line,
            )
        )
    scores = [r.score for r in records]
    try:
        low, high = (float(v) for v in score_range) if score_range is not None else (min(scores), max(scores))
    except (TypeError, ValueError):
        raise DatasetError(f"score_range must be two numbers (low, high), got {score_range!r}") from None
    if not (high > low and np.isfinite(high - low)):
        same = score_range is None and low == high
        fix = "give scores that are not all the same" if same else "pass score_range=(low, high) with finite low < high"
        raise DatasetError(file_line(path, f"the scores need a finite range with high > low, got ({low}, {high})", fix))
    return IQADataset(
        "csv", path.parent, records, ScoreRange(float(low), float(high), kind), synthetic=synthetic, label_file=path
    )


def _score_column(path: Path, header: list[str], kind: str | None) -> tuple[str, str]:
    """The score column of ``header`` and the kind of its scores (``kind``, where given, must agree with a
    ``mos`` or ``dmos`` column)."""
    if kind is not None and kind not in SCORE_KINDS:
        raise DatasetError(f"score kind must be 'mos' or 'dmos', got {kind!r}")
    found = [c for c in SCORE_COLUMNS if c in header]
    if len(found) > 1:
        raise DatasetError(file_line(path, f"both {' and '.join(found)} columns", "keep the one that holds the scores"))
    if not found:
        raise DatasetError(file_line(path, f"no score column (found {csv_header(path)})", f"expected {WHAT}"))
    column = found[0]
    said = SCORE_COLUMNS[column]
    if said is not None and kind is not None and kind != said:
        raise DatasetError(
            file_line(
                path,
                f"its scores are in a {column} column, but kind={kind!r} was asked for",
                f"pass kind={said!r} or none",
            )
        )
    return column, said or kind or "mos"
