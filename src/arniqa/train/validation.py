"""Validation during training: the evaluation protocol's quick check on labelled datasets.

For each dataset of ``validation.datasets``: features of every image under the evaluation protocol
(five crops per scale), ridge with the fixed ``alpha`` fitted on each split's train part, SRCC on
its val part, median over the splits. The model-selection score ``srcc`` is the mean of these
medians over the datasets (the reference's choice). The splits are chosen as ``arniqa evaluate``
chooses them: the dataset's own ``splits/`` files when its folder has them (the reference's
official splits), else ``num_splits`` seeded random splits.
"""

from __future__ import annotations

import torch

from ..constants import CROP_SIZE
from ..data.iqa import IQADataset, load_dataset
from ..evaluate.features import Extraction, dataset_features
from ..evaluate.probe import validation_srcc
from ..evaluate.splits import Split, choose_splits
from .config import ValidationConfig

SPLIT_SEED = 0  # seed of the random splits (as `arniqa evaluate`'s default)


class Validation:
    """``validation(model) -> {"srcc": mean, "<label>": median SRCC, ...}`` on prepared datasets.

    ``splits`` says which splits each dataset uses (``"<label>: official <folder> (10 splits)"``,
    ``"<label>: random 10 seed 0 (...)"``, joined by ``"; "``); the trainer writes it to
    ``validation.csv`` and ``run.log``.
    """

    def __init__(
        self,
        datasets: list[tuple[str, IQADataset, list[Split], str]],
        alpha: float,
        device: torch.device,
        crop_size: int = CROP_SIZE,
        batch_size: int = 8,
    ) -> None:
        self.datasets, self.alpha, self.device = datasets, alpha, device
        self.crop_size, self.batch_size = crop_size, batch_size
        self.splits = "; ".join(f"{label}: {source}" for label, _, _, source in datasets)

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        metrics = {}
        extraction = Extraction(
            batch_size=self.batch_size, device=self.device, crop_size=self.crop_size, progress=False
        )
        for label, dataset, splits, _ in self.datasets:
            features = dataset_features(model, dataset, extraction)
            metrics[label] = validation_srcc(features, dataset.scores, splits, alpha=self.alpha)
        return {"srcc": sum(metrics.values()) / len(metrics), **metrics}


def build_validator(
    config: ValidationConfig, device: torch.device, crop_size: int = CROP_SIZE, batch_size: int = 8
) -> Validation:
    """Read the datasets of ``config`` and their splits once. An entry may set ``splits`` (a count
    or a folder of split files, overriding the choice above) and ``label``."""
    datasets = []
    for entry in config.datasets:
        dataset = load_dataset(entry["name"], entry["root"])
        splits, source = choose_splits(dataset, entry.get("splits"), seed=SPLIT_SEED, default=config.num_splits)
        datasets.append((entry.get("label", dataset.name), dataset, splits, source))
    return Validation(datasets, config.alpha, device, crop_size=crop_size, batch_size=batch_size)
