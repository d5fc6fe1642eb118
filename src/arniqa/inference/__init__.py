"""Scoring images: ``load(...)`` a model by name or checkpoint, then ``Scorer.score(...)`` paths, PIL
images, arrays or tensors (``scorer``: batching; ``loading``: names to weights; ``hub``: torch.hub).

May import ``models``, ``data``, ``utils`` and ``constants``; nothing above it (``evaluate``, ``cli``).
"""

from .loading import load, load_published
from .results import ItemResult, ScoreResult
from .scorer import Scorer

__all__ = ["ItemResult", "ScoreResult", "Scorer", "load", "load_published"]
