"""One evaluation end to end: model, features, splits, protocol, regressor export (the CLI calls this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.iqa import IQADataset
from ..models.regressor import Regressor
from .features import FeatureProtocol, extract_features
from .protocol import Evaluation, cross_dataset, evaluate, fit, per_type_srcc
from .ridge import ALPHAS
from .splits import Split, load_splits, random_splits


@dataclass
class Extraction:
    """How to compute features: cache folder, batch size (images), device, crop size, autocast, workers."""

    cache_dir: Path | None = None
    batch_size: int = 8
    device: str = "cpu"
    crop_size: int = 224
    amp: bool = False
    num_workers: int = 0
    progress: bool = True


def load_model(checkpoint=None, weights_dir=None, device="cpu"):
    """``(model, description)``: a project checkpoint, else the published ``ARNIQA.pth`` (fetched or
    read from ``weights_dir``)."""
    from ..models import ARNIQA
    from ..models.weights import ENCODER_FILE, fetch, load_checkpoint, load_published_encoder

    if checkpoint is not None:
        model, _, _ = load_checkpoint(checkpoint, device=device)
        return model.eval(), f"checkpoint {checkpoint}"
    path = fetch(ENCODER_FILE, weights_dir)
    return load_published_encoder(ARNIQA("resnet50"), path).to(device).eval(), f"published {path}"


def dataset_features(model, dataset: IQADataset, extraction: Extraction, fingerprint: str | None = None) -> np.ndarray:
    """Per-crop features (images, 5, D) of ``dataset`` under the evaluation protocol (cached)."""
    protocol = FeatureProtocol(crop_size=extraction.crop_size, short_side=dataset.short_side, amp=extraction.amp)
    return extract_features(model, dataset.paths, protocol, cache_dir=extraction.cache_dir,
                            batch_size=extraction.batch_size, device=extraction.device,
                            num_workers=extraction.num_workers, progress=extraction.progress,
                            fingerprint=fingerprint)  # fmt: skip


def choose_splits(dataset: IQADataset, splits: int | str | Path | None = None, seed: int = 0,
                  count: int = 10) -> tuple[list[Split], str]:
    """Splits and a description. ``splits``: a number of random 70/10/20 splits (reference-disjoint
    for synthetic datasets), a folder with ``train/val/test.npy`` (−1 padding dropped), or None:
    the dataset's own ``splits/`` folder (the official splits) if it has one, else ``count``
    random splits."""
    if splits is None:
        own = dataset.root / "splits"
        if (own / "train.npy").is_file():
            made = load_splits(own, len(dataset))
            return made, f"official {own} ({len(made)} splits)"
        splits = count
    if isinstance(splits, (str, Path)) and not str(splits).isdigit():
        made = load_splits(splits, len(dataset))
        return made, f"files in {splits} ({len(made)} splits)"
    count = int(splits)
    groups = dataset.references
    made = random_splits(len(dataset), n_splits=count, seed=seed, groups=groups)
    unit = "reference-disjoint" if groups is not None else "per image"
    return made, f"random {count} seed {seed} (70/10/20, {unit})"


def evaluate_dataset(dataset: IQADataset, features, splits: list[Split], alphas=ALPHAS,
                     progress: bool = False) -> tuple[dict, Evaluation, Regressor]:
    """The protocol on one dataset: results (JSON-ready), the :class:`Evaluation`, and the ridge
    fitted on all images with the chosen alpha as a :class:`Regressor`."""
    scores = dataset.scores
    ev = evaluate(features, scores, splits, alphas, progress)
    coef, intercept = fit(features, scores, ev.alpha)
    known = dataset.name != "csv"
    regressor = Regressor.from_numpy(coef, intercept, dataset=dataset.name if known else None,
                                     score_range=None if known else tuple(dataset.score_range))  # fmt: skip
    result = {
        "dataset": dataset.name,
        "images": len(dataset),
        "score": {"kind": dataset.score_kind, "range": list(dataset.score_range[:2])},
        "splits": len(splits),
        "alpha": ev.alpha,
        "alpha_search": {"alphas": ev.alphas.tolist(), "median_val_srcc": np.median(ev.val_srcc, axis=0).tolist()},
        "summary": ev.summary,
        "per_split": ev.split_metrics,
    }
    if dataset.synthetic and dataset.distortions is not None:
        result["per_type"] = per_type_srcc(ev, scores, dataset.distortions)
    return result, ev, regressor


def cross_evaluate(source: IQADataset, source_features, source_splits, target: IQADataset, target_features,
                   alpha: float | None = None):
    """Fit on all of ``source`` (alpha chosen on its splits), test on all of ``target``: returns
    ``(results, predictions on target)``. When one dataset is MOS and the other DMOS the
    predictions are negated before the correlations."""
    flip = source.score_kind != target.score_kind
    out = cross_dataset(source_features, source.scores, source_splits, target_features, target.scores, flip=flip,
                        alpha=alpha)
    predictions = out.pop("predictions")
    out["source"], out["target"], out["images"] = source.name, target.name, len(target)
    return out, predictions


def save_regressor(path: Path, regressor: Regressor, **info) -> Path:
    """A regressor-only ``.safetensors`` file: tensors ``weight`` (1, D) and ``bias`` (1,), and
    header metadata ``"arniqa"`` = JSON of the regressor config plus ``info``."""
    import json

    from safetensors.torch import save_file

    tensors = {"weight": regressor.weight.detach().cpu().contiguous(), "bias": regressor.bias.detach().cpu().contiguous()}
    meta = {"format": "arniqa-regressor", "version": 1, **regressor.config, **info}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"arniqa": json.dumps(meta)})
    return path
