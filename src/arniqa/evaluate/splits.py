"""Train/val/test splits of image indices: seeded random 70/10/20, or the reference's ``.npy`` files;
:func:`choose_splits` picks them for ``arniqa evaluate`` and for validation during training."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..utils.files import cannot_open
from ..utils.messages import GET_AGAIN, file_line
from ..utils.names import count

if TYPE_CHECKING:
    from ..data.iqa import IQADataset

RATIOS = (0.7, 0.1, 0.2)
MAX_SPLITS = 1000  # each split costs an eigendecomposition (seconds at KADID size); the protocol uses 10
NPY_MAGIC = b"\x93NUMPY"
# what to do with a split file that is not the array it should be
SAVE_NPY = "save the image indices with np.save, as integers (np.int64), a row per split, -1 padding the shorter rows"


class SplitError(ValueError):
    """A split file is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class Split:
    """Image indices of one split (int64 arrays)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _counts(n: int, ratios=RATIOS) -> tuple[int, int, int]:
    """Train/val/test counts: train and test rounded from the ratios, val takes the rest
    (reproduces the reference sizes, e.g. KADID refs 57/8/16, CLIVE 813/117/232). When rounding
    leaves val empty (e.g. 5 or 8 units), one unit moves from train to val."""
    train = int(round(ratios[0] * n))
    test = int(round(ratios[2] * n))
    if n - train - test < 1 and train > 1:
        train -= 1
    return train, n - train - test, test


def random_splits(n_images: int, n_splits: int = 10, seed: int = 0, groups=None, ratios=RATIOS) -> list[Split]:
    """``n_splits`` seeded random splits of ``n_images``.

    With ``groups`` (one label per image, e.g. its reference), the groups are split by the ratios
    and each image follows its group, so no reference appears in two parts of a split.
    """
    check_seed(seed)
    if groups is None:
        units = np.arange(n_images)[:, None]
        members = [np.array([i]) for i in range(n_images)]
    else:
        labels = np.asarray([str(g) for g in groups])
        if len(labels) != n_images:
            raise ValueError(f"{len(labels)} group labels for {n_images} images")
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        order = np.argsort(first)  # groups in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        unit_of = rank[inverse]
        members = [np.flatnonzero(unit_of == u) for u in range(len(order))]
        units = None
    size = len(members)
    n_train, n_val, n_test = _counts(size, ratios)
    if min(n_train, n_val, n_test) < 1:
        least = next(n for n in range(size + 1, size + 100) if min(_counts(n, ratios)) >= 1)
        what = f"{count(size, 'group')} (references)" if units is None else count(size, "image")
        raise SplitError(f"cannot split {what} into 70/10/20: each part needs one, so {least} or more")
    out = []
    for i in range(n_splits):
        perm = np.random.default_rng([seed, i]).permutation(size)
        parts = (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])
        idx = [np.sort(np.concatenate([members[u] for u in part])).astype(np.int64) for part in parts]
        out.append(Split(*idx))
    return out


def check_seed(seed: int) -> None:
    """SplitError unless ``seed`` can seed the random splits (numpy's own message names neither it nor what to give)."""
    if seed < 0:
        raise SplitError(f"seed {seed}: the seed of the random splits must be 0 or more")


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        problem = "not a file" if path.exists() else "split file not found"  # a folder of that name is there
        raise SplitError(
            file_line(
                path,
                f"{problem} (expected train.npy, val.npy and test.npy)",
                "give --splits the folder of the three files, or a number of random splits",
            )
        )
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:  # numpy would try to unpickle it and say so
            raise SplitError(file_line(path, "not a .npy file (expected an integer array of image indices)", SAVE_NPY))
    try:
        _check_size(path)
        arr = np.load(path, allow_pickle=False)
    except SplitError:
        raise
    except (ValueError, OSError, EOFError) as e:
        why = "it holds pickled Python objects, which are never loaded" if "pickle" in str(e) else str(e)
        raise SplitError(file_line(path, f"not a readable .npy array of image indices ({why})", SAVE_NPY)) from e
    if arr.ndim not in (1, 2) or arr.dtype.kind not in "iu":
        raise SplitError(
            file_line(
                path,
                f"expected an integer array of shape (splits, n) or (n,), got {arr.dtype} {arr.shape}",
                SAVE_NPY,
            )
        )
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def _check_size(path: Path) -> None:
    """SplitError if the .npy header of ``path`` declares more bytes than the file holds: numpy would allocate
    them all first (a MemoryError, or gigabytes of address space) before finding the data cut short."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            return  # numpy says what it makes of it
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        held = path.stat().st_size - f.tell()
    declared = math.prod(shape) * dtype.itemsize
    if declared > held:
        raise SplitError(
            file_line(
                path, f"its header declares {shape} {dtype} ({declared:,} bytes), but it holds {held:,}", GET_AGAIN
            )
        )


def load_splits(directory: str | Path, n_images: int) -> list[Split]:
    """Splits from ``train.npy``, ``val.npy``, ``test.npy`` in ``directory`` (or its ``splits/``).

    Each file holds (splits, n) indices right-padded with −1, or one split as a 1-D array (FLIVE).
    The −1 padding is dropped (the reference code uses it as an index of the last image).
    """
    directory = Path(directory)
    if not (directory / "train.npy").is_file() and (directory / "splits" / "train.npy").is_file():
        directory = directory / "splits"
    parts = {k: _load_array(directory / f"{k}.npy") for k in ("train", "val", "test")}
    counts = {k: v.shape[0] for k, v in parts.items()}
    if len(set(counts.values())) != 1:
        raise SplitError(
            f"{directory}: train/val/test hold different numbers of splits {counts}; give the three files of one set "
            "of splits, each with a row of image indices per split (shape (splits, n), not transposed)"
        )
    if not counts["train"]:
        raise SplitError(f"{directory}: the split files hold no splits (arrays of shape (0, n))")
    out = []
    for i in range(counts["train"]):
        idx = {}
        for k, arr in parts.items():
            row = arr[i][arr[i] != -1]
            bad = row[(row < 0) | (row >= n_images)]  # before the cast: a huge uint64 would wrap around
            if bad.size:
                raise SplitError(
                    f"{directory / f'{k}.npy'}: split {i} has index {int(bad[0])} outside 0..{n_images - 1} (the "
                    f"highest: {int(row.max())}; the dataset has {count(n_images, 'image')}); give split files made "
                    "for this dataset and its label file"
                )
            values, times = np.unique(row, return_counts=True)
            if (times > 1).any():
                twice = int(values[times > 1][0])
                raise SplitError(f"{directory / f'{k}.npy'}: split {i} names image {twice} twice; fix the split files")
            idx[k] = row.astype(np.int64)
        split = Split(**idx)
        if not split.train.size or not split.test.size:
            raise SplitError(f"{directory}: split {i} has an empty {'train' if not split.train.size else 'test'} part")
        try:
            check_disjoint(split)
        except SplitError as e:  # an image in train and test: the test would score images the ridge was fitted on
            raise SplitError(f"{directory}: split {i}: {e}; the parts of a split must not share images") from None
        out.append(split)
    return out


def check_disjoint(split: Split, groups=None) -> None:
    """Raise if an image (or, with ``groups``, a group) is in two parts of ``split``."""
    names = ("train", "val", "test")
    sets = [set(getattr(split, k).tolist()) for k in names]
    if groups is not None:
        labels = np.asarray([str(g) for g in groups])
        sets = [set(labels[list(s)].tolist()) for s in sets]
    for a in range(3):
        for b in range(a + 1, 3):
            common = sets[a] & sets[b]
            if common:
                raise SplitError(
                    f"{names[a]} and {names[b]} share {count(len(common), 'item')}, e.g. {sorted(common)[:3]}"
                )


def choose_splits(
    dataset: IQADataset, splits: int | str | Path | None = None, seed: int = 0, default: int = 10
) -> tuple[list[Split], str]:
    """Splits and a description. ``splits``: a number of random 70/10/20 splits (reference-disjoint
    for synthetic datasets), a folder with ``train/val/test.npy`` (−1 padding dropped), or None:
    the dataset's own ``splits/`` folder (the official splits) if it has one, else ``default``
    random splits."""
    try:  # the split files of a folder this user may not read: one line naming it (as the dataset's files)
        if splits is None:
            own = dataset.root / "splits"
            if (own / "train.npy").is_file():
                made = load_splits(own, len(dataset))
                return made, f"official {own} ({count(len(made), 'split')}){_files_say(made, dataset)}"
            splits = default
        number = isinstance(splits, int) or re.fullmatch(r"[+-]?[0-9]+", str(splits).strip())
        expected = f"expected a number of random splits from 1 to {MAX_SPLITS}, or a folder of .npy files"
        if not number and not Path(splits).is_dir():  # "3.5", a file, a misspelt folder: "3.5/train.npy: not found"
            what = "not a folder" if Path(splits).exists() else "no such folder"  # as data/folders says it
            raise SplitError(f"splits {str(splits)!r}: {what}; {expected}")
        if not number:
            made = load_splits(splits, len(dataset))
            return made, f"files in {splits} ({count(len(made), 'split')}){_files_say(made, dataset)}"
    except OSError as e:
        raise SplitError(cannot_open(e, dataset.root / "splits" if splits is None else splits)) from None
    n = int(splits)
    if not 1 <= n <= MAX_SPLITS:
        raise SplitError(f"splits {splits!r}: {expected}")
    groups = dataset.references
    check_seed(seed)  # not a matter of the dataset's size, as the errors below are
    try:
        made = random_splits(len(dataset), n_splits=n, seed=seed, groups=groups)
    except SplitError as e:  # it named neither the dataset nor what to do
        raise SplitError(
            f"{dataset.name} ({dataset.label_file or dataset.root}): {e}; give a larger dataset, or split files "
            "(a folder of train/val/test.npy)"
        ) from None
    unit = "reference-disjoint" if groups is not None else "per image"
    return made, f"{count(n, 'random 70/10/20 split')}, {unit}, seed {seed}"


def _files_say(splits: list[Split], dataset: IQADataset) -> str:
    """What the description of split files adds: how many of the dataset's images they use, where not all (files
    made for a smaller dataset evaluate part of this one: FLIVE's official split leaves 3 of 39,810 out), and
    whether their parts share references (:func:`_shared_references`)."""
    used = np.unique(np.concatenate([part for s in splits for part in (s.train, s.val, s.test)])).size
    some = f"; they use {used:,} of the {len(dataset):,} images" if used < len(dataset) else ""
    return some + _shared_references(splits, dataset.references)


def _shared_references(splits: list[Split], references) -> str:
    """``"; NOT reference-disjoint: ..."`` when a split's parts share a reference image (a synthetic dataset's
    split files may; the report then says so), else empty."""
    for i, split in enumerate(splits):
        try:
            check_disjoint(split, references)
        except SplitError as e:
            return f"; NOT reference-disjoint (split {i}: {e})"
    return ""
