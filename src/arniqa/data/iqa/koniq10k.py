"""KonIQ-10k: ``koniq10k_scores_and_distributions.csv`` with the images in ``1024x768/``.

The official CSV has ``MOS`` (1-5) and ``MOS_zscore`` (rescaled z-scores, about 1-100). ARNIQA's
KonIQ range is (1, 100), so ``MOS_zscore`` is the default label; pass ``column="MOS"`` for the
5-point scale (the score range then becomes (1, 5)). 10,073 images, in the CSV's row order.
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetError, IQADataset, Record, found, not_found, parse_score, read_csv_rows, score_range
from .registry import ScoreRange

LABELS = "koniq10k_scores_and_distributions.csv"
FOLDERS = ("1024x768", "512x384")


def load(root: Path, check: bool = True, column: str = "MOS_zscore", folder: str | None = None) -> IQADataset:
    root = Path(root)
    if column not in ("MOS_zscore", "MOS"):
        raise DatasetError(f"KonIQ-10k label column must be 'MOS_zscore' or 'MOS', got {column!r}")
    path = found(root, LABELS)
    rows = read_csv_rows(path, ["image_name", column], f"the KonIQ-10k CSV with columns image_name, {column}")
    if folder is None:
        folder = next((f for f in FOLDERS if found(root, f).is_dir()), FOLDERS[0])
    images = found(root, folder)
    records = [
        Record(images / row["image_name"], parse_score(row[column], path, line), line=line) for line, row in rows
    ]
    if column == "MOS":
        rng = ScoreRange(1.0, 5.0, "mos")
    else:
        rng = score_range("koniq10k")
    if check and not images.is_dir():
        raise not_found(images, "folder", f"the KonIQ-10k images, {' or '.join(FOLDERS)}/")
    return IQADataset("koniq10k", root, records, rng, label_file=path)
