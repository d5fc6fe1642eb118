"""CLI verb: ``arniqa evaluate`` runs the linear-probe protocol on a dataset and writes a report."""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import typer

from ..constants import CROP_SIZE
from .command import (
    app,
    checkpoint_option,
    connect_ray,
    device_option,
    fail,
    fail_io,
    go_on,
    one_model_source,
    output_folders,
    weights_dir_option,
)

FEATURES_KEPT = "the features computed so far are cached, a rerun goes on from them"  # a stopped run


@app.command()
def evaluate(
    dataset: str = typer.Option(
        ..., "--dataset", help="live | csiq | tid2013 | kadid10k | koniq10k | clive | flive | spaq | csv"
    ),
    root: Path = typer.Option(
        ..., "--root", help="Dataset folder as distributed (for csv: the CSV file or its folder).", readable=False
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Output folder (results.json, results.md, plots, regressor).", readable=False
    ),
    weights_dir: Path | None = weights_dir_option(regressor=False),
    checkpoint: Path | None = checkpoint_option(onnx=False),
    splits: str | None = typer.Option(
        None,
        "--splits",
        help="N random 70/10/20 splits, or a folder with train/val/test.npy "
        "[default: <root>/splits if present, else 10].",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random splits."),
    alpha: float | None = typer.Option(
        None, "--alpha", help="Fixed ridge alpha (no search; the reference default is 0.1)."
    ),
    cross_to: str | None = typer.Option(
        None, "--cross-to", help="Also fit on all of --dataset and test on all of this one."
    ),
    cross_root: Path | None = typer.Option(
        None, "--cross-root", help="Folder of the --cross-to dataset.", readable=False
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass (10 crops each)."),
    device: str = device_option(),
    amp: bool = typer.Option(False, "--amp", help="Autocast on CUDA, as the reference (features differ slightly)."),
    crop_size: int = typer.Option(
        CROP_SIZE, "--crop-size", min=8, help="Crop side (224 in the protocol; smaller for quick tests)."
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes for decoding."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Feature cache [default: <weights cache>/features].", readable=False
    ),
    tsne: bool = typer.Option(False, "--tsne", help="Also write tsne.png (features coloured by distortion type)."),
    export_checkpoint: bool = typer.Option(
        True,
        "--export-checkpoint/--no-export-checkpoint",
        show_default=False,  # typer shows it as a value, [default: export-checkpoint]
        help="Also write checkpoint_<dataset>.safetensors (encoder + fitted regressor) for "
        "`arniqa score --checkpoint`. Default: on.",
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS|local",
        help="Compute the features on the Ray cluster at ADDRESS, or on a Ray instance started here (local); "
        "the same feature cache. Needs arniqa[ray].",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="--ray: feature actors (default: one per GPU, else per CPU)."
    ),
) -> None:
    """Frozen features + ridge: alpha by median validation SRCC, median/mean/std over splits."""

    from ..evaluate.report import markdown
    from ..evaluate.run import EvaluationSpec, OutOfMemory, feature_cache, run_evaluation
    from ..utils.console import terminal
    from ..utils.runtime import check_workers, out_of_memory

    go_on(FEATURES_KEPT)  # Ctrl-C, a signal: the cache's status file is saved after every batch
    one_model_source(checkpoint, weights_dir)
    if (cross_to is None) != (cross_root is None):
        raise typer.BadParameter("--cross-to and --cross-root go together")
    if ray_workers is not None and ray is None:
        raise typer.BadParameter("--ray-workers goes with --ray")
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise typer.BadParameter(f"--alpha must be a positive number, got {alpha}")
    try:
        check_workers(workers, "--workers")  # --workers 1000 started 1000 processes
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    spec = EvaluationSpec(
        dataset=dataset,
        root=root,
        output=output,
        weights_dir=weights_dir,
        checkpoint=checkpoint,
        splits=splits,
        seed=seed,
        alpha=alpha,
        cross_to=cross_to,
        cross_root=cross_root,
        batch_size=batch_size,
        device=device,
        amp=amp,
        crop_size=crop_size,
        workers=workers,
        cache_dir=cache_dir,
        tsne=tsne,
        export_checkpoint=export_checkpoint,
    )
    err = terminal(stderr=True)
    with ExitStack() as stack:
        elsewhere = another_cache(cache_dir)
        cache = None if cache_dir is None else (cache_dir, elsewhere)
        stack.enter_context(output_folders(output, cache=cache))  # a dataset error leaves no empty folder
        stops: tuple = ()  # with --ray: a lost worker or node
        load_failed: tuple = ()  # with --ray: a worker could not load the model
        if ray is not None:
            cluster = connect_ray(stack, ray)
            stops, load_failed = (cluster.RayRunError,), (cluster.WorkerLoadError,)
            spec.runner = partial(
                cluster.extract_features_on_ray,
                checkpoint=checkpoint,
                weights_dir=weights_dir,
                batch_size=batch_size,
                device=device,
                workers=ray_workers,
            )
        try:
            try:
                out = run_evaluation(spec, log=err.print)
            except load_failed as e:  # said below as the load here says it (the features computed are cached)
                raise OutOfMemory("model", e.error) if out_of_memory(e.error) else e.error from None
        except stops as e:
            fail(f"the Ray run stopped ({e}); {FEATURES_KEPT}")
        except OSError as e:  # writing into -o or the feature cache (disk full, a folder in the way), else reading
            fail_io(e, output, cache=(feature_cache(cache_dir), elsewhere))
        except ValueError as e:  # DatasetError, SplitError, FeatureError: each names the file to fix
            fail(str(e))
        except OutOfMemory as e:  # its message names the step
            fail(str(e))
    typer.echo(markdown(out.result))
    err.print("wrote " + ", ".join(str(p) for p in out.files.values()))


def another_cache(cache_dir: Path | None) -> str:
    """How to put the feature cache elsewhere when it cannot be written: the setting that chose it, --cache-dir,
    else ARNIQA_CACHE when set (--cache-dir, which comes first, as well)."""
    if cache_dir is None and os.environ.get("ARNIQA_CACHE"):
        return "set ARNIQA_CACHE to another folder, or choose a --cache-dir"
    return "choose another --cache-dir"
