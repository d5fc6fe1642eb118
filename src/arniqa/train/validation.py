"""Validation during training: the evaluation protocol's quick check on labelled datasets.

For each dataset of ``validation.datasets``: features of every image under the evaluation protocol
(five crops per scale), ridge with the fixed ``alpha`` fitted on each split's train part, SRCC on
its val part, median over the splits. The model-selection score ``srcc`` is the mean of these
medians over the datasets (the reference's choice).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.iqa import load_dataset
from ..evaluate.features import FeatureProtocol, extract_features
from ..evaluate.protocol import validation_srcc
from ..evaluate.run import choose_splits
from .config import ValidationConfig


def build_validator(config: ValidationConfig, device: torch.device, crop_size: int = 224, batch_size: int = 8) -> Callable:
    """A callable ``model -> {"srcc": mean, "<dataset>": median SRCC, ...}``. Datasets and splits
    are read once here; an entry may add ``splits`` (a count or a folder) and ``label``."""
    datasets = []
    for entry in config.datasets:
        dataset = load_dataset(entry["name"], entry["root"])
        splits, _ = choose_splits(dataset, entry.get("splits", config.num_splits), seed=0)
        datasets.append((entry.get("label", dataset.name), dataset, splits))

    def validate(model: torch.nn.Module) -> dict[str, float]:
        metrics = {}
        for label, dataset, splits in datasets:
            protocol = FeatureProtocol(crop_size=crop_size, short_side=dataset.short_side)
            features = extract_features(model, dataset.paths, protocol, batch_size=batch_size, device=device, progress=False)
            metrics[label] = validation_srcc(features, dataset.scores, splits, alpha=config.alpha)
        return {"srcc": sum(metrics.values()) / len(metrics), **metrics}

    return validate
