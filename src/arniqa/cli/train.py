"""CLI verbs: ``arniqa train CONFIG [--set key=value ...] [--resume state.pt]`` (one process; for
several GPUs use ``torchrun --nproc-per-node N -m arniqa.train CONFIG``)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML config (configs/arniqa_resnet50.yaml, arniqa_se_resnet50.yaml, demo.yaml)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set optim.lr=0.01 (repeatable)."),
    resume: Path | None = typer.Option(None, "--resume", help="Resume from the state.pt of an interrupted run."),
) -> None:
    """Self-supervised ARNIQA training (see docs/training.md)."""
    from ..train import ConfigError, TrainingError, load_config
    from ..train import train as run

    try:
        path = run(load_config(config, overrides), resume=resume)
    except (ConfigError, TrainingError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"model written to {path}")
