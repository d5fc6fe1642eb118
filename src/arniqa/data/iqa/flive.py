"""FLIVE (PaQ-2-PiQ): ``labels_image.csv`` (``name`` relative to ``database/``, ``mos``).

Whole images only (no patch rows). MOS about 1-100, higher is better. 39,810 images.
"""

from __future__ import annotations

from pathlib import Path

from .base import IQADataset, Record, found, parse_score, read_csv_rows, score_range


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    path = found(root, "labels_image.csv")
    rows = read_csv_rows(path, ["name", "mos"], "FLIVE labels_image.csv with columns name, mos")
    records = [
        Record(root / "database" / row["name"], parse_score(row["mos"], path, line), line=line) for line, row in rows
    ]
    return IQADataset("flive", root, records, score_range("flive"), label_file=path)
