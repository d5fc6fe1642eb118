"""Run the ablation: split the pristine files, build the benchmark, train and evaluate every variant
and seed (and its untrained initialisation), then write the report.

Output folder::

    study.json                       settings every result depends on (a rerun must match them: FREE_RECIPE_KEYS aside)
    runs.json                        one entry per invocation: command, start, end, failures
    data/split.json, data/train/     the file split; links (or copies) of the training images
    benchmarks/synthetic/            the KADID-style benchmark of the held-out images
    <variant>/seed<k>/train/         the training run (state.pt, log.csv, model.safetensors, ...)
    <variant>/seed<k>/training.json  wall time and steps, written when training ends
    <variant>/seed<k>/train/snapshots/step<n>.safetensors   the model after step n (evaluation.probe_steps)
    <variant>/seed<k>/<stage>/result.json   stage: untrained | step<n> | trained; written atomically
    report.md, summary.json, *.png

A finished (variant, seed, stage) has its ``result.json`` and is skipped on a rerun; a training
run interrupted after a checkpoint resumes from its ``state.pt``. The output folder is locked
(:func:`~arniqa.utils.locks.output_lock`) while the study runs; a locked output or a ``state.pt``
that cannot be read safely stops the study (the user has to act; other failures skip one job).
"""

from __future__ import annotations

import csv
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from threadpoolctl import threadpool_limits

from ..models.checkpoint import load_checkpoint
from ..train import loop
from ..train.factory import build_model
from ..train.state import STATE_FILE, StateError, TrainingError
from ..utils.console import terminal
from ..utils.files import out_of_space
from ..utils.jsonfile import jsonable, write_json
from ..utils.locks import OutputBusy, output_lock
from ..utils.names import count
from ..utils.runtime import resolve_device
from .config import GO_ON, AblationConfig, AblationError
from .evaluation import evaluate_model
from .layout import RESULT, TRAINING, has_runs, read_json, read_runs, result_path, run_folder, runs_path, stage_step
from .prepare import prepare_benchmarks, pristine_split, split_pristine
from .report import write_report

# ---------------------------------------------------------------------------------- training


def initial_model(train_config):
    """The model a training run of ``train_config`` starts from: the trainer seeds torch with
    ``train.seed`` and then builds the model, so the same two steps give the same weights."""
    torch.manual_seed(train_config.train.seed)
    return build_model(train_config)


def train_run(train_config, folder: Path, console: Console, keep_state: bool = False) -> Path:
    """Train (resuming from ``state.pt`` when an earlier run was interrupted); skip when the final
    model exists. Writes ``training.json`` (wall time of every invocation, steps) when the run ends, then deletes
    ``state.pt`` unless ``keep_state``."""
    output = Path(train_config.output)
    model_file = output / "model.safetensors"
    if model_file.exists() and (folder / "training.json").exists():
        return model_file
    state = output / STATE_FILE
    resume = state if state.exists() else None
    if resume is None and output.exists():
        shutil.rmtree(output)  # started but never checkpointed: start again
    console.print(f"    training {'(resumed from ' + str(resume) + ')' if resume else ''}")
    trainer = loop.Trainer(train_config)
    path = trainer.fit(resume)
    seconds = trainer.seconds()  # the interrupted invocations' time included
    steps = _last_step(output / "log.csv")
    write_json(
        folder / "training.json",
        {
            "seconds": seconds,
            "global_steps": steps,
            "resumed": resume is not None,
            "samples": steps * train_config.train.batch_size,
        },
    )
    console.print(f"    trained {count(steps, 'step')} in {seconds:.1f} s")
    if not keep_state:
        state.unlink(missing_ok=True)  # twice the model's size; the run is finished
    return path


def check_probe_steps(config: AblationConfig, train_images: int) -> None:
    """AblationError when the training part is smaller than one batch (every run would fail), or a probe step
    is not before the end of training (the ``trained`` stage evaluates the last step)."""
    train_config = config.train_config(config.baseline, config.seeds[0], "unused", "unused")
    batch = train_config.train.batch_size
    if train_images < batch:
        raise AblationError(
            f"data.pristine: the training part has {count(train_images, 'image')}, fewer than one batch of {batch}; "
            "add images, lower data.holdout_images or recipe.train.batch_size"
        )
    total = loop.total_steps(train_images // batch, train_config.train)
    late = [k for k in config.evaluation.probe_steps if k >= total]
    if late:
        raise AblationError(
            f"evaluation.probe_steps {late}: a run has {count(total, 'step')} ({count(train_images, 'image')}, "
            f"batch {train_config.train.batch_size}); probe before step {total} (the trained stage is the last)"
        )


def check_devices(config: AblationConfig) -> None:
    """AblationError, before any work, for a training or evaluation device this machine does not have (every
    job would fail on it). Not part of :func:`validate`: ``--report-only`` reads a GPU study on any machine."""
    train = config.train_config(config.baseline, config.seeds[0], "unused", "unused").train
    for key, device in (("recipe.train.device", train.device), ("evaluation.device", config.evaluation.device)):
        try:
            resolve_device(device)
        except ValueError as err:
            raise AblationError(f"{key}: {err}") from None


def _last_step(log_csv: Path) -> int:
    if not log_csv.exists():
        return 0
    with open(log_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    return int(rows[-1]["global_step"]) if rows else 0


# ---------------------------------------------------------------------------------- the study


# Recipe keys a rerun may change: no result changes with them (the worker count builds bit-identical batches,
# tests/train/test_batches.py; a checkpoint's cadence resumes bit-exact; logging aside from log.csv). log.every
# stays: the report's loss curves are running means over log.csv rows.
FREE_RECIPE_KEYS = (("data", "num_workers"), ("train", "checkpoint_every"), ("log", "tensorboard"), ("log", "progress"))


def study_settings(config: AblationConfig) -> dict[str, Any]:
    """The settings shared by every result: changing one of them invalidates finished results."""
    return {
        "data": asdict(config.data),
        "synthetic": asdict(config.synthetic),
        "datasets": config.datasets,
        "recipe": binding_recipe(config.recipe),
        "evaluation": {k: v for k, v in asdict(config.evaluation).items() if k in ("crop_size", "splits", "seed")},
    }


def binding_recipe(recipe: Any) -> Any:
    """``recipe`` without the :data:`FREE_RECIPE_KEYS` (a copy; a recipe of another shape as it is)."""
    if not isinstance(recipe, dict):
        return recipe
    kept = {name: dict(section) if isinstance(section, dict) else section for name, section in recipe.items()}
    for section, key in FREE_RECIPE_KEYS:
        if isinstance(kept.get(section), dict):
            kept[section].pop(key, None)
    return kept


def _check_study(config: AblationConfig, out: Path) -> None:
    """Refuse to mix results made with other shared settings; record the settings otherwise."""
    path = out / "study.json"
    settings = jsonable(study_settings(config))
    redo = "use another output folder, or delete the folder to start again"
    saved = read_json(path, {}, redo) if path.exists() else None
    if isinstance(saved, dict) and "recipe" in saved:  # a study.json that recorded them (written before)
        saved["recipe"] = binding_recipe(saved["recipe"])
    if saved == settings:
        return
    if saved is not None and has_runs(out):
        changed = sorted(k for k in settings if saved.get(k) != settings[k])
        raise AblationError(
            f"{out}: results or training runs were made with other settings ({', '.join(changed)} differ from "
            f"{path}); {redo}"
        )
    shutil.rmtree(out / "benchmarks", ignore_errors=True)  # nothing depends on it yet: rebuild with these settings
    write_json(path, settings)


def run_one(config: AblationConfig, out: Path, variant: str, seed: int, stage: str, sets, console: Console) -> dict:
    """Evaluate (and for ``trained`` first train) one variant and seed; write its ``result.json``."""
    folder = run_folder(out, variant, seed)
    train_config = config.train_config(variant, seed, folder / "train", out / "data" / "train")
    t0 = time.perf_counter()
    if stage == "untrained":
        model = initial_model(train_config)
        training = None
    else:
        model_file = train_run(train_config, folder, console, config.evaluation.keep_state)
        training = read_json(folder / "training.json", TRAINING, "delete it, and the run is trained again")
        step = stage_step(stage)
        if step is not None:
            model_file = loop.snapshot_path(train_config.output, step)
            if not model_file.is_file():
                raise AblationError(
                    f"{model_file} is missing: the run was trained without a snapshot at step {step} "
                    f"(probe_steps changed afterwards?); delete {folder} to train it again"
                )
        model, _, _ = load_checkpoint(model_file)
    cache = folder / stage / "features"
    benchmarks, timings, fingerprint = evaluate_model(model, sets, config, cache, console)
    result = {
        "variant": variant,
        "seed": seed,
        "stage": stage,
        "step": stage_step(stage) if stage != "trained" else training["global_steps"],
        "model": {
            k: v
            for k, v in asdict(train_config.model).items()
            if k in ("backbone", "se_stages", "se_bias", "init", "se_init")
        },
        "parameters": sum(p.numel() for p in model.encoder.parameters()),
        "fingerprint": fingerprint,
        "training": training,
        "benchmarks": benchmarks,
        "timings": {"benchmarks": timings, "stage_s": time.perf_counter() - t0},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(folder / stage / RESULT, result)
    if not config.evaluation.keep_features:
        shutil.rmtree(cache, ignore_errors=True)
    return result


def jobs(config: AblationConfig) -> list[tuple[str, int, str]]:
    return [(v, s, st) for s in config.seeds for v in config.variants for st in config.stages()]


def run_ablation(config: AblationConfig, command: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run every unfinished (variant, seed, stage), then write the report.

    A failing job is reported and the others go on. Returns ``{"report": path, "done": n,
    "skipped": n, "failed": [(variant, seed, stage, message), ...]}``. Its step lines go to stderr; ``quiet``
    prints nothing.
    """
    console = terminal(stderr=True, quiet=quiet)
    with thread_limit(config.threads):
        return _run(config, command, console)


@contextmanager
def thread_limit(threads: int | None):
    """Cap torch's and the BLAS libraries' threads at ``threads`` (None: no change) while inside;
    the previous settings come back afterwards."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        torch.set_num_threads(before)


def _run(config: AblationConfig, command: str | None, console: Console) -> dict[str, Any]:
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _study(config, out, command, console)


def _study(config: AblationConfig, out: Path, command: str | None, console: Console) -> dict[str, Any]:
    check_devices(config)
    split = pristine_split(config, out)  # a data.pristine that cannot be used: refused before anything is written
    _check_study(config, out)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_start = time.perf_counter()
    entry = _log_invocation(out, command, started)
    split = split_pristine(config, out, split)
    console.print(f"data: {split['rule']}")
    check_probe_steps(config, len(split["train"]))
    sets = prepare_benchmarks(config, out, split["holdout"], console)
    todo = jobs(config)
    done, skipped, failed = 0, 0, []
    for i, (variant, seed, stage) in enumerate(todo, start=1):
        if result_path(out, variant, seed, stage).exists():
            skipped += 1
            continue
        console.rule(f"[{i}/{len(todo)}] {variant}  seed {seed}  {stage}")
        t0 = time.perf_counter()
        try:
            run_one(config, out, variant, seed, stage, sets, console)
        except (StateError, OutputBusy):
            raise
        except Exception as err:  # one failed job must not lose the others
            if (full := out_of_space(err)) is not None:  # but a full disk fails every job after it: stop
                raise full from err
            said = err.going_on(GO_ON) if isinstance(err, TrainingError) else None  # the trainer's line, said whole
            failed.append((variant, seed, stage, f"{type(err).__name__}: {said or err}"))
            console.print(f"failed: {failed[-1][3]}", style="red")
            if said is None:
                console.print(traceback.format_exc())
            continue
        done += 1
        console.print(f"    done in {time.perf_counter() - t0:.1f} s")
    _log_invocation(out, command, started, entry, time.perf_counter() - t_start, done, skipped, failed)
    report = write_report(config, out, made_here=done > 0)
    console.print(f"report: {report}  ({done} run, {skipped} already done, {len(failed)} failed)")
    return {"report": report, "done": done, "skipped": skipped, "failed": failed}


def _log_invocation(out: Path, command, started, entry=None, seconds=None, done=0, skipped=0, failed=()) -> int:
    """Record this invocation in ``runs.json`` when it starts (``seconds`` null until it ends), so that one
    stopped before its end is still listed; returns its index, to complete the entry at the end."""
    path = runs_path(out)
    runs = read_runs(out)
    record = {
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": started,
        "seconds": seconds,
        "done": done,
        "skipped": skipped,
        "failed": [list(f) for f in failed],
    }
    if entry is None:
        entry = len(runs)
        runs.append(record)
    else:
        runs[entry] = record
    write_json(path, runs)
    return entry
