"""CSIQ: ``CSIQ.txt`` (icbcbicc/IQA-Dataset CSV) with ``dst_imgs/<type>/<name>.<TYPE>.<level>.png``.

``score`` is DMOS in [0, 1] (lower is better). 866 images.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import DatasetError, IQADataset
from .live import read_icbcbicc

NAME = re.compile(r"(\w+)\.(\w+)\.(\d+)")


def level_of(filename: str, path: Path, line: int) -> int:
    """The level from a CSIQ file name such as ``1600.AWGN.3.png``."""
    match = NAME.search(filename)
    if not match:
        raise DatasetError(f"{path}, line {line}: {filename!r} does not look like <name>.<TYPE>.<level>.png")
    return int(match.group(3))


def load(root: Path, check: bool = True) -> IQADataset:
    return read_icbcbicc("csiq", root, "CSIQ.txt", parse_level=level_of, check=check)
