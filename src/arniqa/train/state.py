"""The resumable training state in ``state.pt``: RNG states, the atomic save, and the check that a
run resumes with the settings it was started with."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..utils.files import atomic_write
from .config import Config

STATE_FILE = "state.pt"
# Settings a resumed run must share with the interrupted one: (config section, key).
RESUME_KEYS = (("train", "batch_size"), ("train", "seed"), ("model", "backbone"), ("data", "crop_size"))


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable run folder, incompatible checkpoint)."""


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_state(state: dict, path: Path) -> None:
    """``torch.save`` through :func:`~arniqa.utils.files.atomic_write` (fsync, rename): a crash at
    any moment leaves either the old file or the new one, never a torn one."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_state(path: str | Path, config: Config) -> dict:
    """The state saved at ``path``, checked against ``config`` (:data:`RESUME_KEYS`); TrainingError
    when it cannot be read or was made with other settings."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise TrainingError(f"{path}: cannot read the training state ({err})") from err
    saved = state["config"]
    for section, key in RESUME_KEYS:
        if saved[section][key] != getattr(getattr(config, section), key):
            raise TrainingError(
                f"{path}: {section}.{key} was {saved[section][key]!r} in the interrupted run, "
                f"now {getattr(getattr(config, section), key)!r}; resume with the same setting"
            )
    return state
