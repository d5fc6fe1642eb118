"""CLI verb: ``arniqa train CONFIG [--set key=value ...] [--resume state.pt]`` (one process; for
several GPUs use ``torchrun --nproc-per-node N -m arniqa.train CONFIG``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..utils import runtime
from .command import EXIT_USAGE, app, fail, go_on, output_folders, stop


@app.command()
def train(
    config: Path = typer.Argument(
        ..., help="YAML config (configs/arniqa_resnet50.yaml, arniqa_se_resnet50.yaml, demo.yaml).", readable=False
    ),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Override a config value, e.g. --set optim.lr=0.01 or --set output=runs/x, the run folder (repeatable).",
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Resume from the state.pt of an interrupted run.", readable=False
    ),
) -> None:
    """Self-supervised ARNIQA training (see docs/training.md)."""
    runtime.keep_freed_memory()
    from ..train import state

    # a stop before the run trains says how to go on, as python -m arniqa.train (in the loop, Stopped names the
    # state.pt it wrote)
    go_on(state.go_on(resume, None))
    from ..train import load_config  # no torch: a config, data.root or --resume file that cannot be used is one line
    from ..train.config import check_data

    try:
        settings = load_config(config, overrides)
    except ValueError as err:  # ConfigError: names the file or key
        fail(str(err), EXIT_USAGE)
    go_on(state.go_on(resume, settings))
    with output_folders(Path(settings.output)):  # a set-up error leaves no empty run folder
        try:
            check_data(settings)
            if resume is not None:
                state.read_state_bytes(resume, 0)  # the Trainer reads it after building the model
        except (ValueError, state.StateError) as err:
            fail(str(err), EXIT_USAGE)
        from ..train import ConfigError, Trainer, TrainingError
        from ..train.stopping import Stopped
        from ..utils.locks import OutputBusy

        try:
            trainer = Trainer(settings)
            path = trainer.fit(resume)
        except Stopped as err:  # on a signal, the state saved: 128 + its number, as a shell reports it
            stop(err)
        except KeyboardInterrupt:  # a second Ctrl-C stops at once: resume from a state.pt written meanwhile
            go_on(state.go_on(resume, settings))
            raise
        except (ConfigError, TrainingError, ValueError, OutputBusy) as err:  # each names the setting or file to fix
            fail(str(err), EXIT_USAGE)
    typer.echo(trainer.outcome(path))
