"""Per-crop quality features of a dataset under the evaluation protocol, cached on disk.

Protocol (reference ``test.py``): decode with PIL as RGB (no EXIF rotation); SPAQ only: resize
the shorter side to 512 (bicubic, long side truncated); half scale = PIL bicubic resize of the
whole image to (W//2, H//2); five crops (centre and four corners, zero-filled) per scale;
per crop ``model.quality_features(full, half)`` = [L2-normalised 2048-d, L2-normalised 2048-d].

The cache folder is keyed by the model's identity (a hash of its weights and configuration), the
protocol and the list of image paths, so a second evaluation recomputes nothing. Features go to
a ``.npy`` memmap and a per-image status array is saved after every batch, so an interrupted
run resumes where it stopped; images that fail to decode are retried on the next run. One process at a time
computes the features of a cache folder (:func:`~arniqa.utils.cache.one_maker`): another evaluation of the same
model and images waits for it, then reads its features (or, the first killed, goes on from where it stopped).
A complete entry of a cache this user cannot write (mounted read-only) is read as it is.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..constants import CROP_SIZE
from ..data.images import ImageError, read_image
from ..data.iqa import IQADataset
from ..data.pixels import uint8_view
from ..data.views import five_crops, half_scale
from ..models.arniqa import model_fingerprint
from ..utils.cache import one_maker
from ..utils.console import progress_bar
from ..utils.files import reserve
from ..utils.jsonfile import write_json
from ..utils.messages import say, warning_line
from ..utils.names import count
from ..utils.runtime import autocast, autocast_dtype
from .cache_files import (
    DONE,
    FAILED,
    PENDING,
    allocate,
    file_stamps,
    intact_features,
    npy_array,
    read_stamps,
    read_status,
    save_stamps,
    save_status,
    warn_damaged,
)


class FeatureError(ValueError):
    """Some images could not be turned into features (they are listed; the rest is cached)."""


@dataclass(frozen=True)
class FeatureProtocol:
    """How images become crops: crop size, half-scale method, optional shorter-side pre-resize,
    EXIF rotation (off, as the reference), and autocast on CUDA."""

    crop_size: int = CROP_SIZE
    half: str = "bicubic"
    short_side: int | None = None
    exif: bool = False
    amp: bool = False

    def views(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 crops (5,3,S,S) of the full and the half-scale image at ``path``."""
        img = read_image(path, exif=self.exif)
        if self.short_side:
            img = resize_short_side(img, self.short_side)
        half = half_scale(img, self.half)
        return five_crops(uint8_view(img), self.crop_size), five_crops(uint8_view(half), self.crop_size)


def resize_short_side(img: Image.Image, short: int) -> Image.Image:
    """Bicubic PIL resize so the shorter side is ``short`` (the longer side's size is truncated)."""
    w, h = img.size
    size = (short, int(h * short / w)) if w <= h else (int(w * short / h), short)
    return img.resize(size, Image.Resampling.BICUBIC)


def cache_key(fingerprint: str, protocol: FeatureProtocol, paths: list[Path]) -> str:
    """Folder name for the features of ``paths`` by the model ``fingerprint`` under ``protocol``."""
    proto = hashlib.sha256(json.dumps(asdict(protocol), sort_keys=True).encode()).hexdigest()
    names = "\n".join(str(Path(p).resolve()) for p in paths)
    data = hashlib.sha256(os.fsencode(names)).hexdigest()  # a name's bytes that are not UTF-8 as they are
    return f"{fingerprint[:16]}-{proto[:8]}-{data[:12]}"


class CropItem(NamedTuple):
    """One image's uint8 crops (5,3,S,S) at both scales, or the reason it could not be read."""

    index: int
    full: torch.Tensor | None
    half: torch.Tensor | None
    error: str | None


def read_crops(path, index: int, protocol: FeatureProtocol) -> CropItem:
    """Image ``index``'s crops under ``protocol``, or the reason it could not be read."""
    try:
        full, half = protocol.views(path)
        return CropItem(index, full, half, None)
    except ImageError as e:
        return CropItem(index, None, None, str(e))


def crop_features(
    model, items: list[CropItem], device: torch.device, amp: bool = False
) -> tuple[list[int], np.ndarray | None]:
    """``(indices, features)``: the (n, 5, D) float32 features of the readable ``items``, one forward pass
    (None when no item could be read)."""
    good = [it for it in items if it.error is None]
    if not good:
        return [], None
    with torch.inference_mode():
        full = torch.cat([it.full for it in good]).to(device).float().div_(255.0)
        half = torch.cat([it.half for it in good]).to(device).float().div_(255.0)
        with autocast(device, autocast_dtype("fp16" if amp and device.type == "cuda" else "fp32")):
            out = model.quality_features(full, half)
    return [it.index for it in good], out.float().cpu().numpy().reshape(len(good), -1, out.shape[-1])


class _Crops(torch.utils.data.Dataset):
    def __init__(self, paths, indices, protocol):
        self.paths, self.indices, self.protocol = paths, indices, protocol

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i) -> CropItem:
        index = int(self.indices[i])
        return read_crops(self.paths[index], index, self.protocol)


def _collate(items):
    return items


class FeatureCache:
    """The features of ``n`` images and each image's status (pending, done, failed, with the error),
    in memory or in ``folder``: ``features.npy`` (a memmap), ``status.npy`` and ``errors.json``."""

    def __init__(self, folder: Path | None, n: int) -> None:
        self.folder, self.n = folder, n
        self.status = np.zeros(n, dtype=np.uint8)
        self.errors: dict[str, str] = {}
        self.features: np.ndarray | None = None
        self.kept: int | None = None  # the full length of a cached features file holding intact images

    def load(self) -> None:
        """Resume from the folder's features and status. An image whose cached features are not exactly what
        this run writes (a damaged or foreign file, cut off, not finite) is computed again, with one warning
        line; the features of the other images are kept (mapped on the first :meth:`store`). ValueError: a file of
        the entry is a folder or a symbolic link."""
        folder = self.folder
        if folder is None:
            return
        for name in ("status.npy", "features.npy", "stamps.npy", "errors.json", "meta.json"):
            path = folder / name  # features would be written into the file a link names
            odd = (
                "a symbolic link" if path.is_symlink() else "not a file" if path.exists() and not path.is_file() else ""
            )
            if odd:
                raise ValueError(f"{folder}: damaged feature cache ({name} is {odd}); delete that folder and rerun")
        if not (folder / "status.npy").exists():
            return
        try:
            status = read_status(folder / "status.npy", self.n)
        except ValueError as e:
            warn_damaged(folder, str(e), self.n)
            return
        done = status == DONE
        path, length = folder / "features.npy", None
        try:
            intact, why, length = intact_features(path, done)
        except ValueError as e:
            intact, why = np.zeros(self.n, dtype=bool), str(e)
        if why and done.any():
            status[done & ~intact] = PENDING
            warn_damaged(folder, why, int((done & ~intact).sum()))
            save_status(folder, status)  # before the features file is filled up or replaced
        self.status = status
        if length is not None and intact.any():
            self.kept = length

    def restamp(self, paths: list[Path]) -> None:
        """Compute again the images whose file changed (size or modification time) since their features were
        cached, with one warning line; then save the files' stamps, before any image is computed."""
        if self.folder is None:
            return
        stamps = file_stamps(paths)
        try:
            saved = read_stamps(self.folder / "stamps.npy", self.n)
            why = "image files changed (size or modification time) since their features were cached"
        except ValueError as e:
            saved, why = np.full_like(stamps, -2), f"damaged feature cache ({e})"
        if saved is None:  # a cache from before stamps were kept: its features are taken as they are
            saved = stamps
        changed = (self.status == DONE) & (saved != stamps).any(axis=1)
        if changed.any():
            self.status[changed] = PENDING
            again = int(np.sum(changed))
            say(warning_line(f"{self.folder}: {why}; computing {count(again, 'image')} again"))
            save_status(self.folder, self.status)
        save_stamps(self.folder, stamps)

    def todo(self) -> np.ndarray:
        """Indices of the images without features yet (pending or failed)."""
        return np.flatnonzero(self.status != DONE)

    def store(self, indices: np.ndarray, out: np.ndarray) -> None:
        """Features ``out`` (len(indices), 5, D) of the images ``indices``."""
        if self.features is None:
            self.features = self._open(out.shape[1:]) if self.kept else allocate(self.folder, self.n, out.shape[1:])
        self.features[indices] = out
        self.status[indices] = DONE
        for i in indices:
            self.errors.pop(str(i), None)

    def _open(self, shape: tuple[int, ...]) -> np.ndarray:
        """The cached features file, grown to all images, once its features are known to be of ``shape`` (a
        header declaring a huge width is never grown to)."""
        path = self.folder / "features.npy"
        found, _, _ = npy_array(path, np.float32, (self.n, 5, None))
        if found[1:] != shape:  # a cache written by another model under this one's key
            raise ValueError(
                f"{self.folder}: damaged feature cache (features of shape {found[1:]}, this model gives {shape}); "
                "delete that folder and rerun"
            )
        if path.stat().st_size < self.kept:
            os.truncate(path, self.kept)  # zeros for the images cut off, now pending
        reserve(path, self.kept)
        return np.load(path, mmap_mode="r+")

    def fail(self, index: int, message: str) -> None:
        self.status[index] = FAILED
        self.errors[str(index)] = message

    def flush(self) -> None:
        """Write the features to disk and replace ``status.npy`` and ``errors.json`` atomically."""
        if self.folder is None:
            return
        if self.features is not None:
            self.features.flush()
        save_status(self.folder, self.status)
        write_json(self.folder / "errors.json", self.errors)


def extract_features(
    model: torch.nn.Module,
    paths: list[Path],
    protocol: FeatureProtocol | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    progress: bool = True,
    fingerprint: str | None = None,
    runner: Callable | None = None,
) -> np.ndarray:
    """Features (images, 5, D) float32 for ``paths`` (a read-only memmap when cached).

    ``batch_size`` counts images (each gives 5 crops per scale). Without ``cache_dir`` the features
    live in memory only. ``fingerprint`` overrides :func:`~arniqa.models.arniqa.model_fingerprint` (hashing the weights
    takes a fraction of a second). ``runner``: computes the features elsewhere instead of here, as
    ``runner(paths, todo, protocol, cache, advance=...)`` storing into the :class:`FeatureCache`
    (:func:`arniqa.integrations.ray.extract_features_on_ray`: on a Ray cluster). Raises
    :class:`FeatureError` listing undecodable images after all others are done.
    """
    protocol = protocol or FeatureProtocol()
    paths = [Path(p) for p in paths]
    if cache_dir is None:
        return _extract(model, paths, protocol, None, batch_size, device, num_workers, progress, runner)
    folder = Path(cache_dir) / cache_key(fingerprint or model_fingerprint(model), protocol, paths)
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        unwritable = None  # a shared cache this user may only read
        try:
            locked = stack.enter_context(one_maker(folder, "computing the features in"))  # a sweep's jobs: once
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            locked, unwritable = False, e
        if not locked:
            # A complete entry is read as it is. Else the features are computed in memory: two jobs writing one
            # features.npy without a lock could leave zeros marked done.
            if (cached := _complete(folder, paths)) is not None:
                return cached
            if unwritable is not None:
                raise unwritable
            say(
                warning_line(
                    f"{folder}: the file system has no locks; computing the features without caching them (a cache "
                    "folder on a local disk keeps them)"
                )
            )
            folder = None
        return _extract(model, paths, protocol, folder, batch_size, device, num_workers, progress, runner)


def _complete(folder: Path, paths: list[Path]) -> np.ndarray | None:
    """The features of all ``paths`` in the cache entry ``folder`` (a read-only memmap) when it holds them all,
    intact, of the image files as they are now; else None. Nothing is written."""
    n = len(paths)
    if any((folder / name).is_symlink() for name in ("status.npy", "features.npy", "stamps.npy")):
        return None
    try:
        done = read_status(folder / "status.npy", n) == DONE
        intact, _, _ = intact_features(folder / "features.npy", done)
        stamps = read_stamps(folder / "stamps.npy", n)
    except (OSError, ValueError):
        return None
    if not intact.all() or (stamps is not None and (stamps != file_stamps(paths)).any()):
        return None
    return np.load(folder / "features.npy", mmap_mode="r")


@dataclass
class Extraction:
    """How to compute features: cache folder, batch size (images), device, crop size, autocast, workers,
    and a runner that computes them elsewhere (see :func:`extract_features`)."""

    cache_dir: Path | None = None
    batch_size: int = 8
    device: str = "cpu"
    crop_size: int = CROP_SIZE
    amp: bool = False
    num_workers: int = 0
    progress: bool = True
    runner: Callable | None = None


def dataset_features(model, dataset: IQADataset, extraction: Extraction, fingerprint: str | None = None) -> np.ndarray:
    """Per-crop features (images, 5, D) of ``dataset`` under the evaluation protocol (its ``short_side`` included),
    computed as ``extraction`` says."""
    protocol = FeatureProtocol(crop_size=extraction.crop_size, short_side=dataset.short_side, amp=extraction.amp)
    return extract_features(
        model,
        dataset.paths,
        protocol,
        cache_dir=extraction.cache_dir,
        batch_size=extraction.batch_size,
        device=extraction.device,
        num_workers=extraction.num_workers,
        progress=extraction.progress,
        fingerprint=fingerprint,
        runner=extraction.runner,
    )


def _extract(model, paths, protocol, folder, batch_size, device, num_workers, progress, runner) -> np.ndarray:
    n = len(paths)
    cache = FeatureCache(folder, n)
    cache.load()
    cache.restamp(paths)
    todo = cache.todo()
    if len(todo) and runner is not None:
        with _bar(progress) as bar:
            task = bar.add_task("features", total=n, completed=n - len(todo))
            runner(paths, todo, protocol, cache, advance=lambda k: bar.advance(task, k))
    elif len(todo):
        _run(
            model,
            paths,
            todo,
            protocol,
            cache,
            batch_size=batch_size,
            device=device,
            num_workers=num_workers,
            progress=progress,
        )
    if folder is not None:
        cache.flush()
        write_json(
            folder / "meta.json", {"images": n, "protocol": asdict(protocol), "first": str(paths[0]) if n else None}
        )
    failed = np.flatnonzero(cache.status == FAILED)
    if len(failed):
        shown = "; ".join(cache.errors.get(str(i), str(paths[i])) for i in failed[:5])
        if len(failed) > 5:  # the others: in the cache's errors.json, where there is one
            shown += f"; and {len(failed) - 5} more" + (f" (all in {folder / 'errors.json'})" if folder else "")
        raise FeatureError(
            f"{len(failed)} of {count(n, 'image')} could not be read: {shown}"
            + (" (the other features are cached; a rerun retries only these)" if folder else "")
        )
    if not n:
        raise ValueError("no images to extract features from")
    return np.load(folder / "features.npy", mmap_mode="r") if folder is not None else cache.features


def _run(
    model, paths, todo, protocol: FeatureProtocol, cache: FeatureCache, *, batch_size, device, num_workers, progress
) -> None:
    """Features of the images ``todo`` into ``cache``, saved after every batch."""
    device = torch.device(device)
    model.eval().to(device)
    loader = torch.utils.data.DataLoader(
        _Crops(paths, todo, protocol), batch_size=batch_size, num_workers=num_workers, collate_fn=_collate
    )
    with _bar(progress) as bar:
        task = bar.add_task("features", total=len(paths), completed=len(paths) - len(todo))
        for items in loader:
            for it in items:
                if it.error is not None:
                    cache.fail(it.index, it.error)
            indices, out = crop_features(model, items, device, protocol.amp)
            if indices:
                cache.store(np.array(indices), out)
            cache.flush()
            bar.advance(task, len(items))


def _bar(progress: bool) -> Progress:
    """The features' progress bar (stdout carries the results table)."""
    columns = (TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return progress_bar(*columns, show=progress)
