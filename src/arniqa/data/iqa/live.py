"""LIVE (Release 2): ``LIVE.txt`` from icbcbicc/IQA-Dataset with the distorted-image folders.

Columns ``dis_img_path, dis_type, ref_img_path, score``; the paths' first component (``LIVE/``)
stands for the dataset root. ``score`` is the realigned DMOS (lower is better). 779 images.
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetError, IQADataset, Record, found, parse_score, read_csv_rows, score_range

COLUMNS = ["dis_img_path", "dis_type", "ref_img_path", "score"]


def rooted(root: Path, listed: str) -> Path:
    """``listed`` (e.g. ``LIVE/jp2k/img1.bmp``) with its first component replaced by ``root``; as it is under
    ``root`` when that component is a folder there (``jp2k/img1.bmp``: LIVE's names repeat across its folders)."""
    parts = Path(listed.replace("\\", "/")).parts
    if len(parts) > 1 and not found(root, parts[0]).is_dir():
        return root.joinpath(*parts[1:])
    return root.joinpath(*parts)


def read_icbcbicc(name: str, root: Path, label: str, parse_level=None, check: bool = True) -> IQADataset:
    """A dataset described by an icbcbicc/IQA-Dataset CSV (LIVE.txt, CSIQ.txt)."""
    root = Path(root)
    path = found(root, label)
    rows = read_csv_rows(path, COLUMNS, f"{label} with columns {', '.join(COLUMNS)}")
    records = []
    for line, row in rows:
        dist = rooted(root, row["dis_img_path"])
        ref = Path(row["ref_img_path"].replace("\\", "/")).stem
        if not row["dis_img_path"] or not ref:
            raise DatasetError(f"{path}, line {line}: empty image path")
        if not row["dis_type"]:  # it was a per-type row without a name in the reports
            raise DatasetError(f"{path}, line {line}: empty dis_type; give the image's distortion type")
        level = parse_level(dist.name, path, line) if parse_level else None
        records.append(Record(dist, parse_score(row["score"], path, line), ref, row["dis_type"], level, line))
    return IQADataset(name, root, records, score_range(name), synthetic=True, label_file=path)


def load(root: Path, check: bool = True) -> IQADataset:
    return read_icbcbicc("live", root, "LIVE.txt", check=check)
