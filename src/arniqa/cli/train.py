"""CLI verb: ``arniqa train CONFIG [--set key=value ...] [--resume state.pt]`` (one process; for
several GPUs use ``torchrun --nproc-per-node N -m arniqa.train CONFIG``)."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import typer

from ..utils import runtime
from .command import EXIT_USAGE, app, fail, output_place, stop


@app.command()
def train(
    config: Path = typer.Argument(
        ..., help="YAML config (configs/arniqa_resnet50.yaml, arniqa_se_resnet50.yaml, demo.yaml)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config value, e.g. --set optim.lr=0.01 (repeatable)."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Resume from the state.pt of an interrupted run."),
) -> None:
    """Self-supervised ARNIQA training (see docs/training.md)."""
    runtime.keep_freed_memory()
    from ..train import ConfigError, Trainer, TrainingError, load_config
    from ..train.stopping import Stopped
    from ..utils.files import OutputBusy

    made = None  # the run folder, when this command made it
    try:
        settings = load_config(config, overrides)
        made = None if Path(settings.output).exists() else Path(settings.output)
        output_place(Path(settings.output), folder=True)
        trainer = Trainer(settings)
        path = trainer.fit(resume)
    except Stopped as err:  # on a signal, the state saved: 128 + its number, as a shell reports it
        stop(err)
    except (ConfigError, TrainingError, ValueError, OutputBusy) as err:  # each names the setting or file to fix
        if made is not None:
            with suppress(OSError):
                made.rmdir()  # only when the run left nothing in it: a set-up error leaves no empty folder
        fail(str(err), EXIT_USAGE)
    typer.echo(trainer.outcome(path))
