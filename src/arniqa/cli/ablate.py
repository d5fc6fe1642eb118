"""CLI verb: ``arniqa ablate CONFIG`` runs the encoder ablation study and writes its report."""

from __future__ import annotations

import shlex
import sys
import warnings
from pathlib import Path

import typer

from ..utils import runtime
from ..utils.names import count
from .command import EXIT_FAILED, EXIT_USAGE, app, fail, fail_io, go_on, output_folders, stop


@app.command()
def ablate(
    config: Path = typer.Argument(..., help="Ablation YAML config (see configs/ablation.yaml).", readable=False),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Override a config value, e.g. --set evaluation.crop_size=64 (repeatable).",
    ),
    out: Path | None = typer.Option(
        None, "-o", "--output", "--out", help="Output folder (overrides the config's output).", readable=False
    ),
    report_only: bool = typer.Option(
        False,
        "--report-only",
        help="Only rewrite the report from finished results (a warning names the runs that have none).",
    ),
) -> None:
    """Train and evaluate every variant and seed of the ablation, then write its report.

    Finished runs are skipped and an interrupted training run resumes; the report is report.md, summary.json
    and plots."""
    runtime.keep_freed_memory()
    from ..ablation import GO_ON, load_ablation_config  # no torch: a config that cannot be used is one line at once

    advice = go_on(GO_ON)  # Ctrl-C, a signal: a rerun resumes what was done

    try:
        cfg = load_ablation_config(config, overrides)
    except ValueError as err:  # AblationError: names the file or key
        fail(str(err), EXIT_USAGE)
    if out is not None:
        cfg.output = str(out)
    study = Path(cfg.output)
    with output_folders(study):  # a study stopped before it wrote anything leaves no empty output folder
        if not report_only:
            from ..ablation.prepare import pristine_split  # no torch: a data.pristine that cannot be used is one line

            try:
                pristine_split(cfg, study)  # the runner splits it again, after torch is imported
            except ValueError as err:  # AblationError
                fail(str(err), EXIT_USAGE)
        from ..ablation import run_ablation, write_report
        from ..train.state import StateError
        from ..train.stopping import Stopped
        from ..utils.locks import OutputBusy, output_lock

        try:
            if report_only:  # not while a study writes its results and report there
                with output_lock(study):
                    path = write_report(cfg, study, made_here=False)
                typer.echo(f"report written to {path}")
                unfinished(cfg, study)
                return
            outcome = run_ablation(cfg, command=shlex.join(["arniqa", *sys.argv[1:]]))  # step lines on stderr
        except Stopped as err:  # a signal in a training run: its state is saved, and a rerun resumes it
            stop(err, advice)
        except (ValueError, FileNotFoundError, StateError, OutputBusy) as err:  # AblationError, DatasetError, ...
            fail(str(err), EXIT_USAGE)
        except OSError as err:  # writing the study's files, or a full disk in a run (which stops the study)
            fail_io(err, study)
    typer.echo(f"report written to {outcome['report']}")
    if outcome["failed"]:
        for variant, seed, stage, message in outcome["failed"]:
            typer.echo(f"failed: {variant} seed {seed} {stage}: {message}", err=True)
        raise typer.Exit(EXIT_FAILED)


def unfinished(cfg, study: Path) -> None:
    """A warning naming the configured runs (variant, seed, stage) that have no result in ``study``."""
    from ..ablation.layout import result_path

    runs = [(v, s, st) for v in cfg.variants for s in cfg.seeds for st in cfg.stages()]
    missing = [f"{v} seed {s} {st}" for v, s, st in runs if not result_path(study, v, s, st).exists()]
    if missing:
        shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
        warnings.warn(
            f"{study}: {len(missing)} of {count(len(runs), 'run')} have no result ({shown}); the report leaves them "
            "out: rerun arniqa ablate without --report-only to run them",
            stacklevel=2,
        )
