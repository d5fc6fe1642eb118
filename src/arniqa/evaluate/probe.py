"""The linear probe: alpha search over splits, per-split test metrics, cross-dataset.

``features`` are per-crop quality features of shape (images, crops, d) (a memmap is fine); an
image's prediction is the mean of its crop predictions; ridge is fitted on crop rows with each
image's score repeated for its crops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..utils.console import progress_bar
from ..utils.names import count
from .metrics import correlations, srcc_columns, summarise
from .ridge import ALPHAS, RidgePath, gram
from .splits import Split

METRICS = ("srcc", "plcc", "krcc", "plcc_logistic")


def _as3d(features) -> np.ndarray:
    """(images, crops, dim) features; a torch tensor or an (images, dim) array is accepted too."""
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    if not isinstance(features, np.ndarray):
        features = np.asarray(features)
    if features.ndim == 2:
        features = features[:, None, :]
    if features.ndim != 3:
        raise ValueError(f"features must have shape (images, crops, dim) or (images, dim), got {features.shape}")
    return features


def _check(features, scores, splits=None) -> tuple[np.ndarray, np.ndarray]:
    """Crop rows (images × crops, d) and their scores; ValueError for scores that are not finite or do not match
    the features, or an empty list of ``splits`` (nothing to evaluate on: every number would be NaN)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(features):
        raise ValueError(f"{count(len(features), 'feature row')} but {count(len(scores), 'score')}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:  # NaN scores gave NaN metrics and a NaN regressor, silently
        raise ValueError(f"score {scores[bad[0]]} of image {bad[0]} is not finite")
    if splits is not None and not len(splits):
        raise ValueError("no splits to evaluate on")
    return features.reshape(-1, features.shape[2]), np.repeat(scores, features.shape[1])


def crop_rows(images: np.ndarray, n_crops: int) -> np.ndarray:
    """Row indices of the crops of ``images`` in the (images × crops, d) layout."""
    images = np.asarray(images, dtype=np.int64)
    return (images[:, None] * n_crops + np.arange(n_crops)[None, :]).ravel()


def _image_means(pred: np.ndarray, n_crops: int) -> np.ndarray:
    return pred.reshape(-1, n_crops, pred.shape[1]).mean(axis=1)


def _path(rows2d, y_rows, n_images, n_crops, train, total_gram=None) -> RidgePath:
    """Ridge path on the crops of ``train``; reuses a full-data Gram when that is cheaper."""
    rows = crop_rows(train, n_crops)
    g = None
    if total_gram is not None and len(rows) > rows2d.shape[1]:
        rest = np.setdiff1d(np.arange(n_images), train, assume_unique=True)
        g = total_gram - gram(rows2d, crop_rows(rest, n_crops))
    return RidgePath(rows2d, y_rows, rows, g)


def _needs_total_gram(n_crops: int, dim: int, splits: list[Split]) -> bool:
    # Gram(all) once + Gram(held-out) per split beats Gram(train) per split when train > held-out.
    train = np.mean([len(s.train) for s in splits])
    held = np.mean([len(s.val) + len(s.test) for s in splits])
    return len(splits) > 1 and train * n_crops > dim and train > held


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: chosen alpha, per-split test metrics and predictions."""

    alpha: float
    alpha_index: int
    alphas: np.ndarray
    val_srcc: np.ndarray  # (splits, alphas)
    split_metrics: list[dict[str, float]]
    test_predictions: list[np.ndarray]  # per split, image-level, with the chosen alpha
    splits: list[Split] = field(repr=False)

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """Median, mean and std over splits of each metric."""
        return {m: summarise([s[m] for s in self.split_metrics]) for m in METRICS}

    @property
    def median_split(self) -> int:
        """Index of the split whose test SRCC is closest to the median (for plots)."""
        values = np.array([s["srcc"] for s in self.split_metrics])
        if np.all(np.isnan(values)):
            return 0
        return int(np.nanargmin(np.abs(values - np.nanmedian(values))))


def check_alpha_search(splits: list[Split], alphas) -> None:
    """ValueError unless every split has the 3 validation images a search over several ``alphas`` needs."""
    short = next(((i, len(s.val)) for i, s in enumerate(splits) if len(s.val) < 3), None)
    if len(np.atleast_1d(alphas)) > 1 and short is not None:
        raise ValueError(
            f"alpha search needs at least 3 validation images in every split; split {short[0]} has {short[1]}: "
            "give a fixed alpha (--alpha 0.1, the reference's) or more images"
        )


def evaluate(features, scores, splits: list[Split], alphas=ALPHAS, progress: bool = False) -> Evaluation:
    """Choose alpha by the median validation SRCC over ``splits`` (ties: the first, smallest alpha),
    then report each split's test metrics with that alpha (ridge fitted on the train part only).

    With one alpha there is no search: the validation parts may then be empty. ``progress`` shows
    a rich progress bar over the splits.
    """
    features = _as3d(features)
    rows2d, y_rows = _check(features, scores, splits)
    scores = np.asarray(scores, dtype=np.float64)
    n_images, n_crops = features.shape[:2]
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    check_alpha_search(splits, alphas)
    total = gram(rows2d) if _needs_total_gram(n_crops, rows2d.shape[1], splits) else None
    val_srcc = np.full((len(splits), len(alphas)), np.nan)
    test_all = []
    with progress_bar(show=progress) as bar:
        for i, split in enumerate(bar.track(splits, description="ridge over splits")):
            path = _path(rows2d, y_rows, n_images, n_crops, split.train, total)
            if len(split.val) >= 3:
                val = _image_means(path.predict(rows2d, alphas, crop_rows(split.val, n_crops)), n_crops)
                val_srcc[i] = srcc_columns(val, scores[split.val])
            test_all.append(_image_means(path.predict(rows2d, alphas, crop_rows(split.test, n_crops)), n_crops))
    median = np.median(val_srcc, axis=0)
    best = int(np.argmax(np.where(np.isnan(median), -np.inf, median))) if len(alphas) > 1 else 0
    predictions = [t[:, best] for t in test_all]
    metrics = [correlations(p, scores[s.test]) for p, s in zip(predictions, splits)]
    return Evaluation(float(alphas[best]), best, alphas, val_srcc, metrics, predictions, list(splits))


def validation_srcc(features, scores, splits: list[Split], alpha: float = 0.1) -> float:
    """Median over ``splits`` of the validation SRCC of ridge(``alpha``) fitted on each train part.

    The quick check used during training (the reference's fixed alpha is 0.1).
    """
    features = _as3d(features)
    rows2d, y_rows = _check(features, scores, splits)
    scores = np.asarray(scores, dtype=np.float64)
    n_images, n_crops = features.shape[:2]
    values = []
    for split in splits:
        path = _path(rows2d, y_rows, n_images, n_crops, split.train)
        val = _image_means(path.predict(rows2d, [alpha], crop_rows(split.val, n_crops)), n_crops)
        values.append(srcc_columns(val, scores[split.val])[0])
    return float(np.median(values))


def fit(features, scores, alpha: float, images=None) -> tuple[np.ndarray, float]:
    """Ridge(``alpha``) on the crops of ``images`` (default: all): ``(coef (d,), intercept)``."""
    features = _as3d(features)
    rows2d, y_rows = _check(features, scores)
    n_images, n_crops = features.shape[:2]
    images = np.arange(n_images) if images is None else np.asarray(images)
    path = RidgePath(rows2d, y_rows, crop_rows(images, n_crops))
    coef = path.coefs([alpha])
    return coef[:, 0], float(path.intercepts(coef)[0])


def predict(features, coef: np.ndarray, intercept: float) -> np.ndarray:
    """Image-level predictions: the mean over crops of ``features @ coef + intercept``."""
    features = _as3d(features)
    n_images, n_crops, dim = features.shape
    out = np.empty(n_images)
    step = max(1, 4096 // n_crops)
    for start in range(0, n_images, step):
        block = np.asarray(features[start : start + step], dtype=np.float64)
        out[start : start + step] = (block @ coef).mean(axis=1) + intercept
    return out


def per_type_srcc(evaluation: Evaluation, scores, types) -> dict[str, dict[str, float]]:
    """SRCC and PLCC per distortion type on each split's test images; median over splits. Images whose type is
    None or empty (a custom CSV's empty ``distortion`` cell) are in no row: they count in the overall results only."""
    scores = np.asarray(scores, dtype=np.float64)
    types = np.asarray(["" if t is None else str(t) for t in types])
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(types.tolist()) - {""}):
        per_split = {"srcc": [], "plcc": []}
        for pred, split in zip(evaluation.test_predictions, evaluation.splits):
            mask = types[split.test] == name
            if mask.sum() >= 3:
                c = correlations(pred[mask], scores[split.test][mask], logistic=False)  # not reported per type
                per_split["srcc"].append(c["srcc"])
                per_split["plcc"].append(c["plcc"])
        if per_split["srcc"]:  # NaN when every split's correlation is undefined (constant scores of the type)
            out[name] = {
                k: float(np.median(v)) if np.isnan(v).all() else float(np.nanmedian(v)) for k, v in per_split.items()
            }
            out[name]["splits"] = len(per_split["srcc"])
    return out


def cross_dataset(
    features_a, scores_a, splits_a, features_b, scores_b, flip: bool = False, alphas=ALPHAS, alpha: float | None = None
) -> dict:
    """Fit on all of dataset A (alpha chosen on A's splits unless ``alpha`` is given), test on all of B.

    ``flip`` negates the predictions before the correlations, for a MOS/DMOS direction mismatch.
    """
    if alpha is None:
        alpha = evaluate(features_a, scores_a, splits_a, alphas).alpha
    coef, intercept = fit(features_a, scores_a, alpha)
    pred = predict(features_b, coef, intercept)
    result = correlations(-pred if flip else pred, scores_b)
    return {"alpha": alpha, "direction_flipped": flip, "predictions": pred, **result}
