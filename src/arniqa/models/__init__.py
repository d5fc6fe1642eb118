"""Crops -> features -> score: backbones, the ARNIQA model, the regressor, the model names (registry),
weight files (files, published, checkpoint, download), the explanation head (explain). May import
constants, utils, degradations (registry) and data (iqa.registry)."""

from ..data.iqa.registry import SCORE_RANGES, ScoreRange, canonical_dataset
from .arniqa import ARNIQA
from .backbones import BACKBONES, create_backbone, load_resnet50_imagenet, near_identity_se_
from .files import WeightsError
from .registry import list_models
from .regressor import Regressor

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
