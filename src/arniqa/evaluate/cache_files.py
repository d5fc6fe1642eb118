"""The feature cache's files, read without unpickling and checked before use: ``features.npy`` (float32, images × 5
× D), ``status.npy`` (a uint8 code per image) and ``stamps.npy`` (int64 size and modification time in ns of each
image file when its features were cached)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..utils.files import atomic_write, naming, reserve
from ..utils.messages import say, warning_line
from ..utils.names import count

PENDING, DONE, FAILED = 0, 1, 2


def file_stamps(paths: list[Path]) -> np.ndarray:
    """(n, 2) int64: each file's size and modification time in ns; -1 for a file that cannot be read."""
    out = np.full((len(paths), 2), -1, dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[i] = st.st_size, st.st_mtime_ns
    return out


def read_stamps(path: Path, n: int) -> np.ndarray | None:
    """The stamps saved in ``path``; None when there is none (a cache written before stamps were kept);
    ValueError saying what is wrong."""
    if not path.exists():
        return None
    _, offset, size = npy_array(path, np.int64, (n, 2))
    if size < n * 16:
        raise ValueError(f"{path.name} is cut off")
    return np.fromfile(path, np.int64, count=2 * n, offset=offset).reshape(n, 2)


def save_stamps(folder: Path, stamps: np.ndarray) -> None:
    atomic_write(folder / "stamps.npy", lambda tmp: np.save(tmp, stamps))


def allocate(folder: Path | None, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """The features of ``n`` images: in memory, or ``folder/features.npy`` mapped, its disk blocks reserved."""
    if folder is None:
        return np.zeros((n, *shape), dtype=np.float32)
    path = folder / "features.npy"
    with naming(path):
        features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, *shape))
    reserve(path, features.offset + features.nbytes)
    return features


def save_status(folder: Path, status: np.ndarray) -> None:
    atomic_write(folder / "status.npy", lambda tmp: np.save(tmp, status))


def warn_damaged(folder: Path, why: str, images: int) -> None:
    say(warning_line(f"{folder}: damaged feature cache ({why}); computing {count(images, 'image')} again"))


def npy_array(path: Path, dtype: type, shape: tuple[int | None, ...]) -> tuple[tuple[int, ...], int, int]:
    """``(shape, offset, size)``: the shape, data offset and data bytes of ``path``, a C-order ``.npy`` file
    of ``dtype`` and ``shape`` (None: any length), read without unpickling; ValueError saying what is wrong."""
    if not path.exists():
        raise ValueError(f"{path.name} is missing")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            found_shape, fortran, found = read[version](f)
        except (KeyError, ValueError, SyntaxError):
            raise ValueError(f"{path.name} is not a numpy array file") from None
        offset = f.tell()
    want = str(tuple("D" if s is None else s for s in shape)).replace("'", "")
    if found != np.dtype(dtype) or fortran:
        raise ValueError(f"{path.name} holds {found}{' in Fortran order' * fortran}, not {np.dtype(dtype)}")
    fits = len(found_shape) == len(shape) and all(f > 0 and s in (None, f) for s, f in zip(shape, found_shape))
    if not fits:
        raise ValueError(f"{path.name} has shape {found_shape}, not {want}")
    size = path.stat().st_size - offset
    if size > math.prod(found_shape) * found.itemsize:
        raise ValueError(f"{path.name} is longer than its header says")
    return found_shape, offset, size


def read_status(path: Path, n: int) -> np.ndarray:
    """The status codes of ``n`` images in ``path``; ValueError saying what is wrong."""
    _, offset, size = npy_array(path, np.uint8, (n,))
    if size < n:
        raise ValueError(f"{path.name} is cut off")
    status = np.fromfile(path, np.uint8, count=n, offset=offset)
    if not np.isin(status, (PENDING, DONE, FAILED)).all():
        raise ValueError(f"{path.name} holds codes other than {PENDING}, {DONE} and {FAILED}")
    return status


def intact_features(path: Path, done: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, str, int]:
    """``(intact, why, length)``: which images of ``done`` have complete, finite features in ``path``
    (float32, (n, 5, D)), read only; why the others do not; the file's full length. ValueError: it holds none."""
    n = len(done)
    shape, offset, size = npy_array(path, np.float32, (n, 5, None))
    row = 5 * shape[2] * 4
    whole = size // row
    intact = np.zeros(n, dtype=bool)
    if whole:
        rows = np.memmap(path, np.float32, "r", offset, (whole, *shape[1:]))
        for start in range(0, whole, chunk):
            block = rows[start : start + chunk]
            intact[start : start + len(block)] = np.isfinite(block).all(axis=(1, 2))
    cut, bad = int(done[whole:].sum()), int((done & ~intact)[:whole].sum())
    why = [f"{path.name} is cut off ({count(cut, 'image')} missing)"] if cut else []
    why += [f"{path.name} holds non-finite values for {count(bad, 'image')}"] if bad else []
    return intact & done, "; ".join(why), offset + n * row
