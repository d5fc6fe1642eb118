"""TID2013: ``mos_with_names.txt`` ("MOS filename" per line, no header, official order) with
``distorted_images/`` and ``reference_images/``. MOS in 0-9, higher is better. 3,000 images.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...utils.messages import file_line
from .base import (
    LABELS_AS_DISTRIBUTED,
    MAX_ROWS,
    DatasetError,
    IQADataset,
    Record,
    found,
    label_lines,
    parse_score,
    require_dir,
    require_file,
    score_range,
    text_encoding,
)

NAME = re.compile(r"^(i\d+)_(\d+)_(\d+)\.bmp$", re.IGNORECASE)

# Distortion types 1-24 in TID2013's numbering.
TYPES = (
    "awgn", "awgn_color", "correlated_noise", "masked_noise", "hf_noise", "impulse_noise",
    "quantization_noise", "gaussian_blur", "denoising", "jpeg", "jpeg2000", "jpeg_transmission",
    "jpeg2000_transmission", "noneccentricity_pattern", "local_blockwise", "mean_shift",
    "contrast_change", "saturation_change", "multiplicative_noise", "comfort_noise",
    "noisy_compression", "color_quantization_dither", "chromatic_aberration", "sparse_sampling",
)  # fmt: skip


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    path = require_file(found(root, "mos_with_names.txt"), "TID2013 labels: lines of 'MOS filename'")
    images = found(root, "distorted_images")
    if check:
        require_dir(images, "TID2013 distorted_images/")
    with open(path, encoding=text_encoding(path), errors="replace") as f:
        records = _records(f, path, images)
    if not records:
        raise DatasetError(file_line(path, "no labels (expected lines of 'MOS filename')", LABELS_AS_DISTRIBUTED))
    return IQADataset("tid2013", root, records, score_range("tid2013"), synthetic=True, label_file=path)


def _records(f, path: Path, images: Path) -> list[Record]:
    records = []
    for line, text in enumerate(label_lines(f, path), start=1):
        if not text.strip():
            continue
        if len(records) == MAX_ROWS:
            raise DatasetError(file_line(path, f"more than {MAX_ROWS:,} labels", "not TID2013's file"))
        fields = text.split()
        if len(fields) != 2:
            raise DatasetError(f"{path}, line {line}: expected 'MOS filename', got {text.strip()!r}")
        match = NAME.match(fields[1])
        if not match:
            raise DatasetError(f"{path}, line {line}: {fields[1]!r} is not a TID2013 name like i01_01_1.bmp")
        kind = int(match.group(2))
        if not 1 <= kind <= len(TYPES):
            raise DatasetError(f"{path}, line {line}: distortion type {kind} outside 1..{len(TYPES)}")
        score = parse_score(fields[0], path, line)
        reference = match.group(1).upper()
        records.append(Record(images / fields[1], score, reference, TYPES[kind - 1], int(match.group(3)), line))
    return records
