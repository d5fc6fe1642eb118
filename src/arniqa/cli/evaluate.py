"""CLI verb: ``arniqa evaluate`` runs the linear-probe protocol on a dataset and writes a report."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def evaluate(
    dataset: str = typer.Option(..., "--dataset", help="live | csiq | tid2013 | kadid10k | koniq10k | clive | flive | spaq | csv"),
    root: Path = typer.Option(..., "--root", help="Dataset folder as distributed (for csv: the CSV file or its folder)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (results.json, results.md, plots, regressor)."),
    weights_dir: Path | None = typer.Option(None, "--weights-dir", help="Folder holding ARNIQA.pth (published model)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint (.safetensors) of this project."),
    splits: str | None = typer.Option(
        None, "--splits", help="N random 70/10/20 splits, or a folder with train/val/test.npy "
                               "[default: <root>/splits if present, else 10]."),  # fmt: skip
    seed: int = typer.Option(0, "--seed", help="Seed of the random splits."),
    alpha: float | None = typer.Option(None, "--alpha", help="Fixed ridge alpha (no search; the reference default is 0.1)."),
    cross_to: str | None = typer.Option(None, "--cross-to", help="Also fit on all of this dataset and test on all of that one."),
    cross_root: Path | None = typer.Option(None, "--cross-root", help="Folder of the --cross-to dataset."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass (10 crops each)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps."),
    amp: bool = typer.Option(False, "--amp", help="Autocast on CUDA, as the reference (features differ slightly)."),
    crop_size: int = typer.Option(224, "--crop-size", min=8, help="Crop side (224 in the protocol; smaller for quick tests)."),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes for decoding."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Feature cache [default: <weights cache>/features]."),
    tsne: bool = typer.Option(False, "--tsne", help="Also write tsne.png (features coloured by distortion type)."),
    export_checkpoint: bool = typer.Option(
        True, "--export-checkpoint/--no-export-checkpoint",
        help="Also write checkpoint_<dataset>.safetensors (encoder + fitted regressor) for 'arniqa score --checkpoint'."),  # fmt: skip
) -> None:
    """Frozen features + ridge: alpha by median validation SRCC, median/mean/std over splits."""
    from rich.console import Console

    from ..data.iqa import DatasetError, load_dataset
    from ..evaluate import report
    from ..evaluate.features import FeatureError, model_fingerprint
    from ..evaluate.ridge import ALPHAS
    from ..evaluate.run import (Extraction, choose_splits, cross_evaluate, dataset_features, evaluate_dataset,
                                load_model, save_regressor)  # fmt: skip
    from ..evaluate.splits import SplitError
    from ..utils.runtime import resolve_device
    from ..models.weights import cache_dir as weights_cache, save_checkpoint

    err = Console(stderr=True)
    if checkpoint is not None and weights_dir is not None:
        raise typer.BadParameter("--weights-dir is for the published model; do not combine it with --checkpoint")
    if (cross_to is None) != (cross_root is None):
        raise typer.BadParameter("--cross-to and --cross-root go together")
    try:
        data = load_dataset(dataset, root)
        target = load_dataset(cross_to, cross_root) if cross_to else None
        split_list, split_text = choose_splits(data, splits, seed)
        dev = resolve_device(device)
        model, model_text = load_model(checkpoint, weights_dir, device=dev)
        fingerprint = model_fingerprint(model)
        extraction = Extraction(cache_dir or weights_cache() / "features", batch_size, str(dev), crop_size, amp, workers)
        err.print(f"{data.name}: {len(data)} images; {split_text}; model: {model_text}")
        feats = dataset_features(model, data, extraction, fingerprint)
        alphas = [alpha] if alpha is not None else ALPHAS
        result, ev, regressor = evaluate_dataset(data, feats, split_list, alphas, progress=True)
        result.update({"model": model_text, "fingerprint": fingerprint, "split_source": split_text})
        cross = None
        if target is not None:
            target_feats = dataset_features(model, target, extraction, fingerprint)
            result["cross"], pred = cross_evaluate(data, feats, split_list, target, target_feats, alpha=ev.alpha)
            cross = (pred, target.scores)
    except (DatasetError, SplitError, FeatureError, ValueError, OSError) as e:
        err.print(f"error: {e}", style="red", markup=False)
        raise typer.Exit(2) from None

    output.mkdir(parents=True, exist_ok=True)
    info = {"evaluated_on": data.name, "alpha": ev.alpha, "srcc_median": result["summary"]["srcc"]["median"],
            "encoder": model_text, "encoder_fingerprint": fingerprint}  # fmt: skip
    result["regressor_file"] = str(save_regressor(output / f"regressor_{data.name}.safetensors", regressor, **info))
    if export_checkpoint:
        result["checkpoint_file"] = str(save_checkpoint(output / f"checkpoint_{data.name}.safetensors", model.cpu(),
                                                        regressor, evaluation=info))  # fmt: skip
    files = report.write_report(output, result, ev, data.scores, cross)
    if tsne:
        from ..evaluate.tsne import tsne_plot

        labels = data.distortions
        files["tsne"] = tsne_plot(feats, output / "tsne.png", labels=labels, values=None if labels else data.scores,
                                  title=f"{data.name}: t-SNE of quality features", max_images=5000)  # fmt: skip
    typer.echo(report.markdown(result))
    err.print("wrote " + ", ".join(str(p) for p in files.values()))
