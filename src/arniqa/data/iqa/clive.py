"""CLIVE (LIVE In the Wild Image Quality Challenge): ``Data/AllImages_release.mat`` and
``Data/AllMOS_release.mat`` with ``Images/``; or pyiqa's ``meta_info_LIVEChallengeDataset.csv``.

The 7 training images (``t1.bmp`` ... ``t7.bmp``, in ``Images/trainingImages/``) are excluded,
leaving 1,162 images in the release order. MOS about 0-100, higher is better.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import scipy.io

from ...utils.messages import file_line
from .base import (
    LABELS_AS_DISTRIBUTED,
    MAX_UNPACKED,
    DatasetError,
    IQADataset,
    Record,
    found,
    not_found,
    parse_score,
    read_csv_rows,
    score_range,
)

COMPRESSED = 15  # miCOMPRESSED: a MATLAB 5 element holding a zlib stream
TRAINING = re.compile(r"^t\d+\.bmp$", re.IGNORECASE)
PYIQA_CSV = "meta_info_LIVEChallengeDataset.csv"


def _mat_variable(path: Path, name: str) -> np.ndarray:
    try:
        if (unpacked := _unpacked_bytes(path)) > MAX_UNPACKED:
            raise DatasetError(
                file_line(
                    path,
                    f"its variables unpack to more than {MAX_UNPACKED:,} bytes ({unpacked:,} so far)",
                    f"not the CLIVE release file with {name}",
                )
            )
        content = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise not_found(path, "file", f"the CLIVE release file with {name}") from None
    except (DatasetError, PermissionError):  # load_dataset says the one this user may not read
        raise
    except NotImplementedError:  # scipy's word for MATLAB 7.3
        raise DatasetError(
            file_line(
                path,
                "a MATLAB 7.3 (HDF5) file, which is not read",
                f"use the release file as distributed (MATLAB 5), or save {name} again with "
                f"save(FILE, '{name}', '-v7')",
            )
        ) from None
    except Exception as e:  # scipy raises several types for corrupt files
        raise DatasetError(file_line(path, f"not a readable MATLAB file ({e})", f"expected variable {name}")) from e
    if name not in content:
        found = [k for k in content if not k.startswith("__")]
        raise DatasetError(file_line(path, f"no variable {name!r} (found {found})", LABELS_AS_DISTRIBUTED))
    return content[name]


def _unpacked_bytes(path: Path) -> int:
    """The bytes the variables of the MATLAB 5 file ``path`` hold: the stored size of each, or, compressed, what it
    inflates to, counted (and dropped) until past :data:`MAX_UNPACKED`; 0 for other files (scipy names them). A
    compressed variable of a few MB can hold gigabytes, which loadmat would inflate whole."""
    with open(path, "rb") as f:
        head = f.read(128)
        order = {b"IM": "<", b"MI": ">"}.get(head[126:128])
        if order is None or struct.unpack(order + "H", head[124:126])[0] != 0x0100:
            return 0  # MATLAB 4 (stored as it is) or 7.3 (HDF5: scipy refuses it)
        total = 0
        while total <= MAX_UNPACKED and len(tag := f.read(8)) == 8:
            kind, size = struct.unpack(order + "II", tag)
            if kind != COMPRESSED:
                total += size
                f.seek(size + -size % 8, 1)  # elements are padded to 8 bytes
                continue
            inflate, left = zlib.decompressobj(), size
            while total <= MAX_UNPACKED and (left or inflate.unconsumed_tail):
                data = inflate.unconsumed_tail or f.read(min(left, 1 << 16))
                if not data:
                    return total  # cut short: loadmat says so
                left -= 0 if inflate.unconsumed_tail else len(data)
                try:
                    total += len(inflate.decompress(data, 1 << 20))
                except zlib.error:
                    return total  # damaged: loadmat says so
    return total


def _names(cells: np.ndarray, path: Path) -> list[str]:
    """The image names of AllImages_release; an entry that is not text (a number, a struct: scipy's tuple of its
    fields, which was looked for as an image named "(array([[1]]),)") is a DatasetError naming its index."""
    names = []
    for index, cell in enumerate(np.asarray(cells, dtype=object).ravel(), start=1):
        value = cell
        while isinstance(value, np.ndarray) and (value.size == 1 or value.dtype.kind == "U"):
            value = value.ravel()[0] if value.size else ""
        if not isinstance(value, str):
            raise DatasetError(
                file_line(
                    path,
                    f"AllImages_release holds a non-text entry at index {index} (counted from 1, as MATLAB does)",
                    "expected image names, as in the release file as distributed",
                )
            )
        names.append(value.strip())
    return names


def _from_mat(root: Path) -> tuple[list[str], np.ndarray, Path]:
    images = found(root, "Data", "AllImages_release.mat")
    mos = found(root, "Data", "AllMOS_release.mat")
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


def _from_csv(path: Path) -> tuple[list[str], np.ndarray, Path, list[int]]:
    rows = read_csv_rows(path, ["img_name", "mos"], "pyiqa's LIVE Challenge CSV with columns img_name, mos")
    scores = np.array([parse_score(r["mos"], path, i) for i, r in rows])
    return [r["img_name"] for _, r in rows], scores, path, [i for i, _ in rows]


def _locate(root: Path, name: str) -> Path:
    direct = found(root, name)
    return direct if direct.is_file() else root / "Images" / Path(name).name


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    csv_path = found(root, PYIQA_CSV)
    if found(root, "Data").is_dir() or not csv_path.is_file():
        names, scores, label = _from_mat(root)
        lines = range(1, len(names) + 1)  # a .mat list's rows
    else:
        names, scores, label, lines = _from_csv(csv_path)
    rows = zip(lines, names, scores)
    records = [Record(_locate(root, n), float(s), line=i) for i, n, s in rows if not TRAINING.match(Path(n).name)]
    if not records:
        raise DatasetError(f"{label}: no test images after dropping the training images t1..t7")
    return IQADataset("clive", root, records, score_range("clive"), label_file=label)
