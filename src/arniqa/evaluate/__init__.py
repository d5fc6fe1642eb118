"""The evaluation protocol: cached features, fast ridge, splits, metrics, the linear probe, reports and
the end-to-end run. May import constants, utils, data and models (never train or ablation)."""

from .metrics import correlations
from .probe import Evaluation, cross_dataset, evaluate, fit, predict, validation_srcc
from .ridge import ALPHAS, RidgePath
from .splits import Split, load_splits, random_splits

__all__ = [
    "ALPHAS", "Evaluation", "RidgePath", "Split", "correlations", "cross_dataset", "evaluate", "fit",
    "load_splits", "predict", "random_splits", "validation_srcc",
]  # fmt: skip
