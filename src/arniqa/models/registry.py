"""The model names a user may type, the regressor each one stands for, and the published release files
(:data:`PUBLISHED`).

A published model is ``arniqa-<dataset>``: the published ``ARNIQA.pth`` encoder with the published
``regressor_<dataset>.pth``, for any spelling of a dataset in :mod:`arniqa.data.iqa.registry`
(``arniqa-kadid10k``, ``arniqa-kadid``). pyiqa's metric names are among them, and its plain
``arniqa`` is the KonIQ-10k regressor. :func:`arniqa.load` also takes the path of a checkpoint, which
:func:`is_checkpoint` tells from a model name.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import NamedTuple

from ..constants import DEFAULT_MODEL
from ..data.iqa.registry import ALIASES, DATASETS, canonical_dataset
from ..utils.names import did_you_mean
from .paths import is_safetensors, no_such_file

PREFIX = "arniqa-"
PYIQA_DEFAULT = "arniqa"  # pyiqa's plain name
PYIQA_DEFAULT_DATASET = "koniq10k"
PYIQA_NAMES = (PYIQA_DEFAULT, *(PREFIX + name for name in ("live", "csiq", "tid", "kadid", "clive", "flive", "spaq")))

__all__ = [
    "DEFAULT_MODEL",
    "ENCODER_FILE",
    "PUBLISHED",
    "PYIQA_NAMES",
    "is_checkpoint",
    "is_model_name",
    "list_models",
    "model_dataset",
    "regressor_dataset",
    "regressor_filename",
]


def list_models() -> tuple[str, ...]:
    """The published models by name: ``arniqa-<dataset>`` for each dataset, then pyiqa's other names."""
    canonical = tuple(PREFIX + d for d in DATASETS)
    return canonical + tuple(n for n in PYIQA_NAMES if n not in canonical)


def is_checkpoint(name_or_path) -> bool:
    """True if ``name_or_path`` names a checkpoint, not a published model: a ``.safetensors`` name, a
    file, or a folder (unless the name is a model name)."""
    path = Path(name_or_path)
    if is_safetensors(path) or path.is_file():
        return True
    if not path.is_dir():
        return False
    return str(name_or_path) not in list_models()


def is_model_name(name: str) -> bool:
    """True if ``name`` is a published model's name (:func:`model_dataset` takes it). Quick for other words (a path):
    no message is made for them."""
    key = str(name).strip().lower()
    if key != PYIQA_DEFAULT and not key.startswith(PREFIX):
        return False
    try:
        model_dataset(name)
    except ValueError:
        return False
    return True


def _is_path(key: str) -> bool:
    """True when ``key`` has a folder separator or a suffix, which no model or dataset name has: the path of a file
    that is not there."""
    return "/" in key or "\\" in key or bool(PurePath(key).suffix)


def model_dataset(name: str) -> str:
    """The regressor dataset of a model name (case-insensitive): ``arniqa`` (KonIQ-10k) or
    ``arniqa-<dataset or pyiqa alias>``.

    Raises:
        ValueError: not a model name; the message lists :func:`list_models`.

    >>> model_dataset("arniqa-tid")
    'tid2013'
    """
    key = str(name).strip().lower()
    if key == PYIQA_DEFAULT:
        return PYIQA_DEFAULT_DATASET
    if key.startswith(PREFIX):
        try:
            return canonical_dataset(key[len(PREFIX) :])
        except ValueError:
            pass
    names = list_models()
    if _is_path(key):
        raise ValueError(no_such_file(name, "checkpoint", f"a published model: {', '.join(names)}"))
    raise ValueError(
        f"unknown model {name!r}{did_you_mean(name, names)}; expected a checkpoint file or one of {', '.join(names)}"
    )


# the names of a published regressor, as a line or a help text lists them
REGRESSOR_NAMES = (
    f"a dataset ({', '.join(DATASETS)}; also {', '.join(ALIASES)}) or a model ({PYIQA_DEFAULT}, {PREFIX}DATASET)"
)


def regressor_dataset(name: str) -> str:
    """The dataset of a published regressor named by a dataset (``kadid10k``, ``kadid``) or by a
    model (``arniqa``, ``arniqa-live``): every spelling ``arniqa score --regressor`` accepts.

    >>> regressor_dataset("arniqa"), regressor_dataset("livec")
    ('koniq10k', 'clive')
    """
    key = str(name).strip().lower()
    if _is_path(key):
        raise ValueError(no_such_file(name, "regressor", f"a published regressor's dataset: {', '.join(DATASETS)}"))
    try:
        return model_dataset(name) if key == PYIQA_DEFAULT or key.startswith(PREFIX) else canonical_dataset(name)
    except ValueError:
        known = (*DATASETS, *ALIASES, *list_models())
        raise ValueError(
            f"unknown regressor {name!r}{did_you_mean(name, known)}; expected a regressor file, {REGRESSOR_NAMES}"
        ) from None


RELEASE_URL = "https://github.com/miccunifi/ARNIQA/releases/download/weights/"
ENCODER_FILE = "ARNIQA.pth"


class PublishedFile(NamedTuple):
    url: str
    sha256: str | None  # None: not known (nothing is verified; the computed hash is logged)


def regressor_filename(dataset: str) -> str:
    """``regressor_<dataset>.pth`` for a dataset name or pyiqa alias."""
    return f"regressor_{canonical_dataset(dataset)}.pth"


# The official release files. Their SHA-256 digests are not known to this project (they were
# written without network access), so they are None: fetch() verifies nothing for them and logs
# the digest it computed, which can be pinned here later.
PUBLISHED: dict[str, PublishedFile] = {
    name: PublishedFile(RELEASE_URL + name, None) for name in [ENCODER_FILE] + [regressor_filename(d) for d in DATASETS]
}
