"""IQA dataset adapters, one module per dataset in the layout its authors distribute, and the name registry.
May import ``data`` and ``constants``; not ``models`` (the regressor reads :mod:`.registry`, not the reverse).

``load_dataset(name, root)`` returns an :class:`IQADataset` (records in label-file order, score
range and direction, references and distortion types for synthetic sets).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from ...utils.files import cannot_open
from .base import AS_DISTRIBUTED, DatasetError, IQADataset, Record, check_images, check_labels
from .registry import ALIASES, CUSTOM, DATASETS, SCORE_RANGES, ScoreRange, canonical_dataset


def load_dataset(name: str, root: str | Path, check: bool = True, **options) -> IQADataset:
    """Read dataset ``name`` (any spelling :func:`canonical_dataset` accepts, or ``"csv"``) from ``root``.
    ``check`` verifies that every image file exists. Every adapter's result passes the checks of its labels
    here (:func:`.base.check_labels`: images inside ``root``, none named twice), with or without ``check``. A file
    or folder of the dataset this user may not read is a DatasetError naming it
    (:func:`~arniqa.utils.files.cannot_open`).

    Each dataset's adapter is the module of this package named by its key (``kadid10k.py``, ``csv``:
    ``custom.py``); it is imported here, on first use, so that reading the registry does not import
    the adapters' readers (pandas, scipy).
    """
    root = Path(root)
    try:
        if not root.exists():
            raise DatasetError(
                f"{root}: dataset root not found; {AS_DISTRIBUTED} (for csv: the CSV file or its folder)"
            )
        key = canonical_dataset(name, custom=True)
        if key != CUSTOM and not root.is_dir():  # its label file, most likely: it said "dmos.csv/dmos.csv: not found"
            raise DatasetError(
                f"{root}: a file, not a folder; give the {key} folder as it is distributed (the one holding it)"
            )
        adapter = import_module(f"{__name__}.{'custom' if key == CUSTOM else key}")
        data = check_labels(adapter.load(root, check=check, **options))
        return check_images(data) if check else data
    except OSError as e:  # a file or folder of it this user may not read (pathlib's checks raise it too)
        raise DatasetError(cannot_open(e, root)) from None


__all__ = ["ALIASES", "CUSTOM", "DATASETS", "DatasetError", "IQADataset", "Record", "SCORE_RANGES", "ScoreRange",
           "canonical_dataset", "load_dataset"]  # fmt: skip
