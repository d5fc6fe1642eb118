"""CLIVE (LIVE In the Wild Image Quality Challenge): ``Data/AllImages_release.mat`` and
``Data/AllMOS_release.mat`` with ``Images/``; or pyiqa's ``meta_info_LIVEChallengeDataset.csv``.

The 7 training images (``t1.bmp`` ... ``t7.bmp``, in ``Images/trainingImages/``) are excluded,
leaving 1,162 images in the release order. MOS about 0-100, higher is better.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from .base import DatasetError, IQADataset, Record, parse_score, read_csv_rows, score_range

TRAINING = re.compile(r"^t\d+\.bmp$", re.IGNORECASE)
PYIQA_CSV = "meta_info_LIVEChallengeDataset.csv"


def _mat_variable(path: Path, name: str) -> np.ndarray:
    try:
        content = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found (expected the CLIVE release file with {name})") from None
    except Exception as e:  # scipy raises several types for corrupt files
        raise DatasetError(f"{path}: not a readable MATLAB file ({e}); expected variable {name}") from e
    if name not in content:
        found = [k for k in content if not k.startswith("__")]
        raise DatasetError(f"{path}: no variable {name!r} (found {found})")
    return content[name]


def _names(cells: np.ndarray, path: Path) -> list[str]:
    names = []
    for cell in np.asarray(cells, dtype=object).ravel():
        value = cell
        while isinstance(value, np.ndarray):
            if value.size != 1 and value.dtype.kind != "U":
                raise DatasetError(f"{path}: AllImages_release holds a non-string entry")
            value = value.ravel()[0] if value.size else ""
        names.append(str(value).strip())
    return names


def _from_mat(root: Path) -> tuple[list[str], np.ndarray, Path]:
    images = root / "Data" / "AllImages_release.mat"
    mos = root / "Data" / "AllMOS_release.mat"
    names = _names(_mat_variable(images, "AllImages_release"), images)
    values = np.asarray(_mat_variable(mos, "AllMOS_release"))
    if values.dtype.kind not in "iuf":
        raise DatasetError(f"{mos}: AllMOS_release holds {values.dtype} values, not real numbers; expected the MOS")
    scores = values.astype(np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise DatasetError(f"{mos}: AllMOS_release value {bad[0] + 1} is {scores[bad[0]]}, not a finite number")
    if len(names) != len(scores):
        raise DatasetError(f"{mos}: {len(scores)} scores but {images} names {len(names)} images")
    return names, scores, images


def _from_csv(path: Path) -> tuple[list[str], np.ndarray, Path]:
    rows = read_csv_rows(path, ["img_name", "mos"], "pyiqa's LIVE Challenge CSV with columns img_name, mos")
    scores = np.array([parse_score(r["mos"], path, i) for i, r in enumerate(rows, start=2)])
    return [r["img_name"] for r in rows], scores, path


def _locate(root: Path, name: str) -> Path:
    direct = root / name
    return direct if direct.is_file() else root / "Images" / Path(name).name


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    csv_path = root / PYIQA_CSV
    if (root / "Data").is_dir() or not csv_path.is_file():
        names, scores, label = _from_mat(root)
    else:
        names, scores, label = _from_csv(csv_path)
    first = 1 if label.suffix == ".mat" else 2  # a .mat list's first row; the CSV's first line after its header
    rows = enumerate(zip(names, scores), start=first)
    records = [Record(_locate(root, n), float(s), line=i) for i, (n, s) in rows if not TRAINING.match(Path(n).name)]
    if not records:
        raise DatasetError(f"{label}: no test images after dropping the training images t1..t7")
    return IQADataset("clive", root, records, score_range("clive"), label_file=label)
