"""The evaluation protocol: features with an on-disk cache, fast ridge, splits, metrics, reports."""

from .metrics import correlations
from .protocol import Evaluation, cross_dataset, evaluate, fit, predict, validation_srcc
from .ridge import ALPHAS, RidgePath
from .splits import Split, load_splits, random_splits

__all__ = [
    "ALPHAS", "Evaluation", "RidgePath", "Split", "correlations", "cross_dataset", "evaluate", "fit",
    "load_splits", "predict", "random_splits", "validation_srcc",
]  # fmt: skip
