"""Crops -> features -> score: backbones, the ARNIQA model, the linear regressor, weight files."""

from .arniqa import ARNIQA
from .backbones import BACKBONES, create_backbone

__all__ = ["ARNIQA", "BACKBONES", "create_backbone"]
