"""Where the ablation keeps its files in the output folder (the runner writes them, the report reads
them), and the stages a run is evaluated at: ``untrained`` (step 0), ``step<k>`` (the snapshot after
global step k, ``evaluation.probe_steps``) and ``trained`` (the final model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.files import parse_json

RESULT = "result.json"


class AblationError(ValueError):
    """An ablation config, data folder or output folder that cannot be used."""


SPLIT_KEYS = ("pristine", "images", "seed", "rule", "holdout", "train")  # of data/split.json
RUN_KEYS = ("command", "started", "seconds", "done", "skipped", "failed")  # of each entry of runs.json


def read_json(path: Path, kind: type, redo: str, keys: tuple[str, ...] = ()) -> Any:
    """The value of one of the study's own JSON files: an object with ``keys`` (``kind`` dict) or a list of
    them (``kind`` list). AblationError naming the file and ``redo`` (what to do) when it is unreadable, damaged,
    nested too deeply or of another shape."""
    try:
        value = parse_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise AblationError(f"{path}: not JSON: not UTF-8 text ({err.reason} at byte {err.start}); {redo}") from None
    except (OSError, ValueError) as err:
        raise AblationError(f"{path}: not readable JSON ({getattr(err, 'strerror', None) or err}); {redo}") from None
    entries = [value] if kind is dict else value if isinstance(value, list) else None
    if entries is None or not all(isinstance(e, dict) and all(k in e for k in keys) for e in entries):
        shape = "an object" if kind is dict else "a list of objects"
        raise AblationError(f"{path}: expected {shape}" + (f" with {', '.join(keys)}" if keys else "") + f"; {redo}")
    return value


def read_split(out: Path) -> dict:
    return read_json(
        split_path(out), dict, "delete it and rerun the study: the seed in the config splits again", SPLIT_KEYS
    )


def read_runs(out: Path) -> list:
    path = runs_path(out)
    return read_json(path, list, "delete it (it lists the study's invocations)", RUN_KEYS) if path.exists() else []


def stages(probe_steps=(), untrained: bool = True) -> tuple[str, ...]:
    """The stages of one run in training order; probe step 0 is the ``untrained`` stage."""
    probes = sorted(set(probe_steps))
    first = ("untrained",) if untrained or 0 in probes else ()
    return (*first, *(f"step{k}" for k in probes if k > 0), "trained")


def stage_step(stage: str) -> int | None:
    """The global step a stage's model has: 0, k, or None for ``trained`` (its training.json says)."""
    if stage == "untrained":
        return 0
    if stage.startswith("step") and stage[4:].isdigit():
        return int(stage[4:])
    return None


def run_folder(out: Path, variant: str, seed: int) -> Path:
    return out / variant / f"seed{seed}"


def result_path(out: Path, variant: str, seed: int, stage: str) -> Path:
    return run_folder(out, variant, seed) / stage / RESULT


def has_runs(out: Path) -> bool:
    """Whether any result or training run exists in ``out`` (results that depend on its settings and split)."""
    patterns = (f"*/seed*/*/{RESULT}", "*/seed*/train/state.pt", "*/seed*/train/model.safetensors")
    return any(next(out.glob(p), None) is not None for p in patterns)


def split_path(out: Path) -> Path:
    """The file split of the pristine images (``data/split.json``)."""
    return out / "data" / "split.json"


def runs_path(out: Path) -> Path:
    """One entry per invocation of the study (``runs.json``)."""
    return out / "runs.json"
