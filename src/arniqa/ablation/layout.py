"""Where the ablation keeps its files in the output folder (the runner writes them, the report reads them)."""

from __future__ import annotations

from pathlib import Path

STAGES = ("untrained", "trained")
RESULT = "result.json"


def run_folder(out: Path, variant: str, seed: int) -> Path:
    return out / variant / f"seed{seed}"


def result_path(out: Path, variant: str, seed: int, stage: str) -> Path:
    return run_folder(out, variant, seed) / stage / RESULT


def split_path(out: Path) -> Path:
    """The file split of the pristine images (``data/split.json``)."""
    return out / "data" / "split.json"


def runs_path(out: Path) -> Path:
    """One entry per invocation of the study (``runs.json``)."""
    return out / "runs.json"
