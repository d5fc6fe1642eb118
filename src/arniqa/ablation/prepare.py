"""The ablation's data: the file split of the pristine images (the training part linked into
``data/train``) and the benchmarks every run is evaluated on (the synthetic one of the held-out images,
built once and resumable, and the labelled sets of the config)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..data.folders import list_images
from ..data.iqa import IQADataset, load_dataset
from ..degradations.registry import NUM_LEVELS
from ..utils.jsonfile import write_json
from ..utils.names import count
from .config import SYNTHETIC, AblationConfig, AblationError
from .layout import has_runs, read_split, split_path


def pristine_split(config: AblationConfig, out: Path) -> dict[str, Any]:
    """Split the pristine files by file: a seeded permutation of the sorted list; its first
    ``holdout`` files are held out, the next ``train_images`` (default: all the rest) train. Writes nothing and
    imports no torch: a ``data.pristine`` that cannot be split is refused before the study writes anything (and,
    by ``arniqa ablate``, before torch is imported)."""
    d = config.data
    if not d.pristine.strip():  # Path("") is the working folder: its photos, whatever they are, would be the data
        raise AblationError("data.pristine is not set; give the pristine photos with --set data.pristine=FOLDER")
    try:
        files = list_images(d.pristine, exclude=out, required=True)  # an output inside: images of its own
    except ValueError as err:
        raise AblationError(f"data.pristine: {err}") from None
    n = len(files)
    holdout = d.holdout_images if d.holdout_images is not None else int(round(d.holdout_fraction * n))
    if not 1 <= holdout < n:
        raise AblationError(
            f"data.pristine: {count(n, 'image')} cannot give {count(holdout, 'held-out image')} and a training part"
        )
    order = np.random.default_rng(d.seed).permutation(n)
    held = sorted(files[i] for i in order[:holdout])
    train = sorted(files[i] for i in order[holdout : holdout + (d.train_images or n)])
    split = {
        "pristine": str(Path(d.pristine).resolve()),
        "images": n,
        "seed": d.seed,
        "rule": (
            f"{holdout} held out "
            f"({'holdout_images' if d.holdout_images is not None else f'holdout_fraction {d.holdout_fraction}'})"
            f"; training: "
            + (
                f"{len(train)} of the other {n - holdout}, the next in the same permutation"
                if d.train_images
                else f"the other {n - holdout}"
            )
        ),
        "holdout": [str(p) for p in held],
        "train": [str(p) for p in train],
    }
    return split


def split_pristine(config: AblationConfig, out: Path, split: dict[str, Any] | None = None) -> dict[str, Any]:
    """The :func:`pristine_split` (or ``split``, one made before): links the training files into
    ``out/data/train`` and records the split in ``split.json``."""
    d = config.data
    split = split or pristine_split(config, out)
    train = [Path(p) for p in split["train"]]
    previous = split_path(out)
    if previous.exists():
        before = read_split(out)
        if (before["train"], before["holdout"]) != (split["train"], split["holdout"]):
            if has_runs(out):
                raise AblationError(
                    f"{d.pristine}: the file split differs from {previous} (were images added or "
                    "removed?); finished results depend on it: use another output folder"
                )
            shutil.rmtree(out / "benchmarks", ignore_errors=True)
    folder = out / "data" / "train"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, path in enumerate(train):
        target = folder / f"{i:05d}_{path.name}"
        try:
            target.symlink_to(path.resolve())
        except OSError:  # no symlinks here (some file systems): copy
            shutil.copyfile(path, target)
    write_json(previous, split)
    return split


def prepare_benchmarks(
    config: AblationConfig, out: Path, holdout: list[str], console: Console
) -> dict[str, IQADataset]:
    """The synthetic benchmark of the held-out images (built once, resumable) and the labelled sets."""
    from ..data.synthetic import KADID_TYPES, build_synthetic  # here: it imports torch

    types = tuple(config.synthetic.types or KADID_TYPES)
    root = out / "benchmarks" / SYNTHETIC
    t0 = time.perf_counter()
    build_synthetic([Path(p) for p in holdout], root, config.size, config.synthetic.seed, types)
    console.print(
        f"benchmark synthetic: {count(len(holdout), 'reference')} x {count(len(types), 'type')} x {NUM_LEVELS} levels "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    sets = {SYNTHETIC: load_dataset("kadid10k", root)}
    for entry in config.datasets:  # their names told apart when the config was checked
        name = str(entry["name"])
        sets[name] = load_dataset(name, entry["root"])
    return sets
