"""Crops -> features -> score: backbones, the ARNIQA model, the regressor, the model names and published files
(registry), weight files (paths, files, published, checkpoint, download), the explanation head (explain). May
import constants, utils, degradations (registry) and data (iqa.registry; views, for the explanation head's protocol).

The names below that import torch are imported on first use, and so are the submodules: registry, paths and
download import no torch, so that the commands check model names and files before torch is imported."""

import importlib

from ..constants import BACKBONES
from ..data.iqa.registry import SCORE_RANGES, ScoreRange, canonical_dataset
from .paths import WeightsError
from .registry import list_models

_NAMES = {"ARNIQA": "arniqa", "Regressor": "regressor", "create_backbone": "backbones",
          "load_resnet50_imagenet": "backbones", "near_identity_se_": "backbones"}  # fmt: skip

__all__ = [
    "ARNIQA",
    "BACKBONES",
    "SCORE_RANGES",
    "Regressor",
    "ScoreRange",
    "WeightsError",
    "canonical_dataset",
    "create_backbone",
    "list_models",
    "load_resnet50_imagenet",
    "near_identity_se_",
]


def __getattr__(name):
    if name in _NAMES:  # imports torch
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
