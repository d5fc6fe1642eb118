"""Where the ablation keeps its files in the output folder (the runner writes them, the report reads
them), and the stages a run is evaluated at: ``untrained`` (step 0), ``step<k>`` (the snapshot after
global step k, ``evaluation.probe_steps``) and ``trained`` (the final model)."""

from __future__ import annotations

from pathlib import Path

RESULT = "result.json"


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
