"""CLI verbs: ``arniqa train CONFIG [--set key=value ...] [--resume state.pt]`` (one process; for
several GPUs use ``torchrun --nproc-per-node N -m arniqa.train CONFIG``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..utils import runtime
from . import app


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML config (configs/arniqa_resnet50.yaml, arniqa_se_resnet50.yaml, demo.yaml)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set optim.lr=0.01 (repeatable)."),
    resume: Path | None = typer.Option(None, "--resume", help="Resume from the state.pt of an interrupted run."),
) -> None:
    """Self-supervised ARNIQA training (see docs/training.md)."""
    runtime.keep_freed_memory()
    from ..train import ConfigError, TrainingError, load_config
    from ..train import train as run

    try:
        path = run(load_config(config, overrides), resume=resume)
    except (ConfigError, TrainingError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"model written to {path}")


@app.command()
def demo(
    output: Path = typer.Option(Path("arniqa-demo"), "-o", "--output", help="Folder for the photos, run, report."),
    steps: int = typer.Option(12, "--steps", min=1, help="Training steps (4 samples each)."),
    crop_size: int = typer.Option(64, "--crop-size", min=32, help="Crop size for training and features."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
) -> None:
    """The whole pipeline on bundled sample photos: short SE-ResNet50 training, synthetic labelled
    set, features, ridge, scores and a report. Minutes on a CPU; not a useful quality model."""
    runtime.keep_freed_memory()
    from ..demo import WARNING, run_demo

    report = run_demo(output, steps=steps, crop_size=crop_size, device=device, log=typer.echo)
    typer.echo(f"report: {report}")
    typer.echo(WARNING)
