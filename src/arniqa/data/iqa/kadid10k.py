"""KADID-10k: ``dmos.csv`` (``dist_img, ref_img, dmos``) with ``images/``.

The ``dmos`` column is really a MOS in 1-5, higher is better. 10,125 images named
``I<ref>_<type>_<level>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import DatasetError, IQADataset, Record, found, parse_score, read_csv_rows, score_range

NAME = re.compile(r"^I(\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)

# Distortion types 1-25 in KADID-10k's numbering; shared types use this project's degradation keys.
TYPES = (
    "gaublur", "lensblur", "motionblur", "colordiff", "colorshift", "colorquant", "colorsat1",
    "colorsat2", "jpeg2000", "jpeg", "whitenoise", "whitenoiseCC", "impulsenoise", "multnoise",
    "denoise", "brighten", "darken", "meanshift", "jitter", "noneccpatch", "pixelate",
    "quantization", "colorblock", "highsharpen", "lincontrchange",
)  # fmt: skip

COLUMNS = ["dist_img", "ref_img", "dmos"]


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    path = found(root, "dmos.csv")
    rows = read_csv_rows(path, COLUMNS, "KADID-10k dmos.csv with columns dist_img, ref_img, dmos")
    records = []
    for line, row in rows:
        match = NAME.match(row["dist_img"])
        if not match:
            raise DatasetError(f"{path}, line {line}: {row['dist_img']!r} is not a name like I01_01_01.png")
        kind = int(match.group(2))
        if not 1 <= kind <= len(TYPES):
            raise DatasetError(f"{path}, line {line}: distortion type {kind} outside 1..{len(TYPES)}")
        ref = Path(row["ref_img"]).stem or f"I{match.group(1)}"
        score = parse_score(row["dmos"], path, line)
        records.append(
            Record(root / "images" / row["dist_img"], score, ref, TYPES[kind - 1], int(match.group(3)), line)
        )
    return IQADataset("kadid10k", root, records, score_range("kadid10k"), synthetic=True, label_file=path)
