"""IQA dataset adapters: each reads a dataset in the layout its authors distribute.

``load_dataset(name, root)`` returns an :class:`IQADataset` (records in label-file order, score
range and direction, references and distortion types for synthetic sets).
"""

from __future__ import annotations

from pathlib import Path

from . import clive, csiq, flive, kadid10k, koniq10k, live, spaq, tid2013
from . import custom
from .base import DatasetError, IQADataset, Record

LOADERS = {
    "live": live.load,
    "csiq": csiq.load,
    "tid2013": tid2013.load,
    "kadid10k": kadid10k.load,
    "koniq10k": koniq10k.load,
    "clive": clive.load,
    "flive": flive.load,
    "spaq": spaq.load,
    "csv": custom.load,
}
ALIASES = {"kadid": "kadid10k", "koniq": "koniq10k", "tid": "tid2013", "livec": "clive", "paq2piq": "flive"}
DATASETS = tuple(LOADERS)


def dataset_key(name: str) -> str:
    """Canonical adapter name for ``name`` (case-insensitive, pyiqa aliases accepted)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS + tuple(ALIASES))}")
    return key


def load_dataset(name: str, root: str | Path, check: bool = True, **options) -> IQADataset:
    """Read dataset ``name`` from ``root``. ``check`` verifies that every image file exists."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset root not found")
    return LOADERS[dataset_key(name)](root, check=check, **options)


__all__ = ["DATASETS", "DatasetError", "IQADataset", "Record", "dataset_key", "load_dataset"]
