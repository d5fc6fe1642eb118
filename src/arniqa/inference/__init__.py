"""Scoring: ``load`` a model by name or checkpoint; a ``Scorer`` scores paths, PIL images, arrays, tensors.
May import models, data, utils and constants, never evaluate, ablation or cli (which may import it)."""

from .loading import export, load, load_model, load_published
from .results import ItemResult, ScoreResult
from .scorer import Scorer

__all__ = ["ItemResult", "ScoreResult", "Scorer", "export", "load", "load_model", "load_published"]
