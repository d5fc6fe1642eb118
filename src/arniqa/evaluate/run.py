"""One evaluation end to end: model, features, splits, linear probe, regressor export, report.

:func:`run_evaluation` runs an :class:`EvaluationSpec` (``arniqa evaluate`` builds one from its
options); the functions below are its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..constants import CROP_SIZE
from ..data.iqa import IQADataset, load_dataset
from ..utils.cache import cache_dir
from ..utils.files import atomic_writes, folder_in_the_way
from ..utils.jsonfile import jsonable
from ..utils.locks import output_lock
from ..utils.runtime import out_of_memory, resolve_device, worker_killed
from . import report
from .probe import Evaluation, check_alpha_search, cross_dataset, evaluate, fit, per_type_srcc
from .ridge import ALPHAS
from .splits import Split, choose_splits
from .tsne import tsne_plot

if TYPE_CHECKING:
    from ..models.regressor import Regressor

# The model, its files and the features import torch: they are imported where they are used, after the dataset,
# the splits and the device are checked (arniqa evaluate says a mistyped --root at once).


@dataclass
class EvaluationSpec:
    """What to evaluate and how (the options of ``arniqa evaluate``, same names and defaults).

    ``dataset``/``root``: the dataset and its folder; ``output``: the folder for the results, the
    fitted regressor and (``export_checkpoint``) a checkpoint with it; ``checkpoint``: a project
    checkpoint, else the published encoder (``weights_dir``); ``splits``: a count, a folder, or None
    (see :func:`.splits.choose_splits`); ``alpha``: a fixed ridge alpha, else the search over ``ALPHAS``;
    ``cross_to``/``cross_root``: also fit on all of ``dataset`` and test on all of that one;
    ``cache_dir``: the feature cache (default ``<cache>/features``: :func:`feature_cache`); ``tsne``: also tsne.png;
    ``runner``: computes the features elsewhere (``arniqa evaluate --ray``: on a Ray cluster).
    """

    dataset: str
    root: str | Path
    output: str | Path
    weights_dir: Path | None = None
    checkpoint: Path | None = None
    splits: str | None = None
    seed: int = 0
    alpha: float | None = None
    cross_to: str | None = None
    cross_root: Path | None = None
    batch_size: int = 8
    device: str = "auto"
    amp: bool = False
    crop_size: int = CROP_SIZE
    workers: int = 0
    cache_dir: Path | None = None
    tsne: bool = False
    export_checkpoint: bool = True
    progress: bool = True
    runner: Callable | None = None  # computes the features elsewhere (extract_features' runner)


# The steps of an evaluation: what each does, and what to do when memory runs out in it (OutOfMemory).
STEPS = {
    "dataset": ("reading the dataset", "free memory and rerun"),
    "model": ("loading the model", "free memory, or choose another --device"),
    "features": ("computing the features", "lower --batch-size or --crop-size"),
    "ridge": ("fitting the ridge", "free memory and rerun (the features are cached)"),
    "tsne": ("computing the t-SNE", "rerun without --tsne (the features are cached)"),
    "results": ("writing the results", "free memory and rerun (the features are cached)"),
}


class OutOfMemory(MemoryError):
    """Memory ran out in one step of an evaluation (``step``, a key of :data:`STEPS`): the message names the step
    and what to do. A DataLoader worker killed by SIGKILL (the system's out-of-memory killer) is one too."""

    def __init__(self, step: str, error: BaseException) -> None:
        what, advice = STEPS[step]
        if worker_killed(error):
            text = (
                f"a DataLoader worker was killed {what} (SIGKILL: most likely out of memory); "
                "lower --workers or --batch-size"
            )
        else:
            text = f"out of memory {what} ({type(error).__name__}); {advice}"
        super().__init__(text)
        self.step = step


@dataclass
class Step:
    """The step an evaluation is at (a key of :data:`STEPS`)."""

    now: str = "dataset"


@dataclass
class EvaluationOutput:
    """The results (JSON-ready, as in results.json) and the files written, by kind."""

    result: dict
    files: dict[str, Path]


def check_encoder(checkpoint=None, weights_dir=None) -> None:
    """WeightsError when a file :func:`load_encoder` reads is not there (the checkpoint's, ``ARNIQA.pth`` in
    ``weights_dir``), said without torch and without a download: the evaluation checks it before the model."""
    from ..models.download import fetch
    from ..models.paths import checkpoint_files
    from ..models.registry import ENCODER_FILE

    if checkpoint is not None:
        checkpoint_files(checkpoint)
    elif weights_dir is not None:  # a folder the user names: fetch() downloads nothing into it
        fetch(ENCODER_FILE, weights_dir)


def load_encoder(checkpoint=None, weights_dir=None, device="cpu"):
    """``(model, description)``: the encoder to evaluate, on ``device`` in eval mode: a project checkpoint's,
    else the published ``ARNIQA.pth`` (fetched or read from ``weights_dir``)."""
    from ..models.checkpoint import load_checkpoint
    from ..models.download import fetch
    from ..models.published import published_encoder
    from ..models.registry import ENCODER_FILE

    if checkpoint is not None:
        model, _, _ = load_checkpoint(checkpoint, device=device)
        return model.eval(), f"checkpoint {checkpoint}"
    path = fetch(ENCODER_FILE, weights_dir)
    return published_encoder(path).to(device), f"published {path}"


def evaluate_dataset(
    dataset: IQADataset, features, splits: list[Split], alphas=ALPHAS, progress: bool = False
) -> tuple[dict, Evaluation, Regressor]:
    """The protocol on one dataset: results (JSON-ready), the :class:`Evaluation`, and the ridge
    fitted on all images with the chosen alpha as a :class:`Regressor`."""
    from ..models.regressor import Regressor

    scores = dataset.scores
    ev = evaluate(features, scores, splits, alphas, progress)
    coef, intercept = fit(features, scores, ev.alpha)
    known = dataset.name != "csv"
    regressor = Regressor.from_numpy(
        coef,
        intercept,
        dataset=dataset.name if known else None,
        score_range=None if known else tuple(dataset.score_range),
    )
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
    if dataset.distortions is not None:
        result["per_type"] = per_type_srcc(ev, scores, dataset.distortions)
        untyped = dataset.distortions.count(None)
        if untyped:  # in the summary, in no per-type row
            result["images_without_type"] = untyped
    return result, ev, regressor


def cross_evaluate(
    source: IQADataset, source_features, source_splits, target: IQADataset, target_features, alpha: float | None = None
):
    """Fit on all of ``source`` (alpha chosen on its splits), test on all of ``target``: returns
    ``(results, predictions on target)``. When one dataset is MOS and the other DMOS the
    predictions are negated before the correlations."""
    flip = source.score_kind != target.score_kind
    out = cross_dataset(
        source_features, source.scores, source_splits, target_features, target.scores, flip=flip, alpha=alpha
    )
    predictions = out.pop("predictions")
    out["source"], out["target"], out["images"] = source.name, target.name, len(target)
    return out, predictions


def check_finite(features: np.ndarray, data: IQADataset, model_text: str, chunk: int = 1024) -> None:
    """ValueError when an image's features hold NaN or inf (a damaged model): before the ridge, so no
    NaN regressor or undefined metrics are written. Read in chunks: a dataset's features may be a large memmap."""
    for start in range(0, len(features), chunk):
        rows = np.asarray(features[start : start + chunk]).reshape(min(chunk, len(features) - start), -1)
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if bad.size:
            raise ValueError(
                f"{model_text}: non-finite features (NaN or inf) for {data.paths[start + bad[0]]} and maybe others; "
                "the model is damaged (check its weights); nothing was written"
            )


def feature_cache(folder: str | Path | None) -> Path:
    """The feature cache: ``folder`` (``--cache-dir``), else ``features`` in arniqa's cache folder
    (:func:`~arniqa.utils.cache.cache_dir`)."""
    return Path(folder) if folder is not None else cache_dir() / "features"


def output_files(spec: EvaluationSpec, data: IQADataset, alphas) -> dict[str, Path]:
    """The files an evaluation of ``data`` may write in ``spec.output``, by kind (the per-type plot: when the
    dataset has types and one of them has enough test images)."""
    names = {"regressor": f"regressor_{data.name}.safetensors"}
    if spec.export_checkpoint:
        names["checkpoint"] = f"checkpoint_{data.name}.safetensors"
    written = {"alpha": len(alphas) > 1, "per_type": data.distortions is not None, "cross": bool(spec.cross_to)}
    names.update({kind: name for kind, name in report.FILES.items() if written.get(kind, True)})
    if spec.tsne:
        names["tsne"] = "tsne.png"
    return {kind: Path(spec.output) / name for kind, name in names.items()}


def run_evaluation(spec: EvaluationSpec, log: Callable[[str], object] = print) -> EvaluationOutput:
    """Evaluate ``spec`` end to end: dataset(s) -> splits -> model -> features -> ridge over the splits
    (-> cross-dataset test) -> regressor file, checkpoint, results.json/.md and plots in ``spec.output``, all
    replaced together (:func:`~arniqa.utils.files.atomic_writes`).

    ``log`` gets one line (dataset, splits, model) before the features are computed.

    Returns:
        The results and the files written.

    ``spec.output`` is locked (:func:`~arniqa.utils.locks.output_lock`) from the start: two evaluations
    writing one folder would leave the results of one beside the regressor and plots of the other.

    Raises:
        ValueError, OSError: a dataset, split, feature or model problem (``DatasetError``,
        ``SplitError`` and ``FeatureError`` are ValueErrors); the message names the file.
        ``OutputBusy`` (an OSError): another process is writing ``spec.output``.
        OutOfMemory: memory ran out; the message names the step.
    """
    output = Path(spec.output)
    output.mkdir(parents=True, exist_ok=True)
    step = Step()
    with output_lock(output):
        try:
            return _evaluate(spec, output, log, step)
        except (MemoryError, RuntimeError) as e:
            if not (out_of_memory(e) or worker_killed(e)):
                raise
            raise OutOfMemory(step.now, e) from e


def _evaluate(spec: EvaluationSpec, output: Path, log: Callable[[str], object], step: Step) -> EvaluationOutput:
    data = load_dataset(spec.dataset, spec.root)
    target = load_dataset(spec.cross_to, spec.cross_root) if spec.cross_to else None
    split_list, split_text = choose_splits(data, spec.splits, spec.seed)
    alphas = [spec.alpha] if spec.alpha is not None else ALPHAS
    try:
        check_alpha_search(split_list, alphas)  # before the model and the features, not after
    except ValueError as e:
        raise ValueError(f"{data.name} ({split_text}): {e}") from None
    paths = output_files(spec, data, alphas)
    folder_in_the_way(paths.values())
    step.now = "model"
    check_encoder(spec.checkpoint, spec.weights_dir)  # before torch is imported
    dev = resolve_device(spec.device)
    from ..models.arniqa import PAIRING_KEYS, pairing_fingerprints
    from ..models.checkpoint import checkpoint_writers, regressor_writer
    from .features import Extraction, dataset_features

    model, model_text = load_encoder(spec.checkpoint, spec.weights_dir, device=dev)
    fingerprints = pairing_fingerprints(model)  # all go in the regressor file
    fingerprint = fingerprints[PAIRING_KEYS[None]]  # the exact one keys the cached features
    cache = feature_cache(spec.cache_dir)
    extraction = Extraction(
        cache, spec.batch_size, str(dev), spec.crop_size, spec.amp, spec.workers, spec.progress, spec.runner
    )
    log(f"{data.name}: {len(data)} images; {split_text}; model: {model_text}")
    step.now = "features"
    feats = dataset_features(model, data, extraction, fingerprint)
    check_finite(feats, data, model_text)
    step.now = "ridge"
    result, ev, regressor = evaluate_dataset(data, feats, split_list, alphas, progress=spec.progress)
    result.update({"model": model_text, "fingerprint": fingerprint, "split_source": split_text})
    cross = None
    if target is not None:
        step.now = "features"
        target_feats = dataset_features(model, target, extraction, fingerprint)
        check_finite(target_feats, target, model_text)
        step.now = "ridge"
        result["cross"], pred = cross_evaluate(data, feats, split_list, target, target_feats, alpha=ev.alpha)
        cross = (pred, target.scores)

    step.now = "results"
    info = {
        "evaluated_on": data.name,
        "alpha": ev.alpha,
        "srcc_median": result["summary"]["srcc"]["median"],
        "encoder": model_text,
        **fingerprints,  # what the regressor is checked against when it is scored with
    }
    # Every file of the evaluation is made first and all are replaced together: a full disk leaves an earlier
    # evaluation's files as they were, never some of them beside some of this one's.
    files = {"regressor": (paths["regressor"], regressor_writer(regressor, **info))}
    result["regressor_file"] = str(files["regressor"][0])
    if spec.export_checkpoint:
        [files["checkpoint"]] = checkpoint_writers(paths["checkpoint"], model.cpu(), regressor, evaluation=info)
        result["checkpoint_file"] = str(files["checkpoint"][0])
    files.update(report.report_files(output, result, ev, data.scores, cross))
    if spec.tsne:
        step.now = "tsne"
        labels = data.distortions
        plot = tsne_plot(
            feats,
            labels=labels,
            values=None if labels else data.scores,
            title=f"{data.name}: t-SNE of quality features",
            max_images=5000,
        )
        files["tsne"] = (paths["tsne"], plot)
    step.now = "results"
    atomic_writes(list(files.values()))
    return EvaluationOutput(jsonable(result), {kind: path for kind, (path, _) in files.items()})
