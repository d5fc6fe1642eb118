"""CLI verb: ``arniqa demo`` runs every stage of the pipeline on bundled photos (:mod:`arniqa.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..utils import runtime
from .command import EXIT_USAGE, app, device_option, fail, go_on, output_folders, stop, writing


@app.command()
def demo(
    output: Path = typer.Option(
        Path("arniqa-demo"), "-o", "--output", help="Folder for the photos, run, report.", readable=False
    ),
    steps: int = typer.Option(12, "--steps", min=1, help="Training steps (4 samples each)."),
    crop_size: int = typer.Option(64, "--crop-size", min=32, help="Crop size for training and features."),
    device: str = device_option("cpu", " The demo is sized for a CPU (about a minute), hence the default."),
) -> None:
    """The whole pipeline on bundled sample photos, in minutes on a CPU.

    Short SE-ResNet50 training, synthetic labelled set, features, ridge, scores and a report; not a useful
    quality model."""
    runtime.keep_freed_memory()
    advice = go_on("rerun arniqa demo with the same -o to go on")  # Ctrl-C, a signal: a rerun resumes what was done
    try:  # a name that is no device before torch is imported; an absent device after
        runtime.resolve_device(device)
    except ValueError as err:
        fail(f"--device: {err}", EXIT_USAGE)
    from ..demo import WARNING, run_demo
    from ..train import TrainingError
    from ..train.stopping import Stopped
    from ..utils.files import own_folder
    from ..utils.locks import OutputBusy

    try:  # a full disk, a folder in the way; the files in it are the demo's own
        with output_folders(output), writing(output), own_folder(output):
            report = run_demo(
                output, steps=steps, crop_size=crop_size, device=device, log=lambda line: typer.echo(line, err=True)
            )
    except Stopped as err:  # a signal in the training: its state is saved, and a rerun resumes it
        stop(err, advice)
    except TrainingError as err:  # a failed training run: a rerun resumes it (or, from the start, runs it again)
        fail(err.going_on(advice), EXIT_USAGE)
    except (ValueError, OutputBusy) as err:  # a folder in use, a bad setting
        fail(str(err), EXIT_USAGE)
    typer.echo(f"report: {report}")
    typer.echo(WARNING)
