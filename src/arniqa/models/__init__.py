"""Crops -> features -> score: backbones, the ARNIQA model, the linear regressor, weight files."""

from .arniqa import ARNIQA
from .backbones import BACKBONES, create_backbone, load_resnet50_imagenet, near_identity_se_
from .files import WeightsError
from .regressor import SCORE_RANGES, Regressor, ScoreRange, canonical_dataset

__all__ = [
    "ARNIQA",
    "BACKBONES",
    "SCORE_RANGES",
    "Regressor",
    "ScoreRange",
    "WeightsError",
    "canonical_dataset",
    "create_backbone",
    "load_resnet50_imagenet",
    "near_identity_se_",
]
