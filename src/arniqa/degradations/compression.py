"""Compression group: jpeg2000 (Pillow/OpenJPEG) and jpeg (torchvision/libjpeg).

Both truncate the image to 8 bits first (floor of x*255, the reference's ``.byte()``), run the
codec per image and return the decoded image / 255. The codecs run on the CPU; results go back to
the input's device.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from .registry import register

JPEG2000_RESOLUTIONS = 8  # wavelet resolutions in the reference; fewer on images under 128 px
PARENT_CHECK_S = 0.5  # how often a codec worker checks that its parent is alive
JPEG_MAX_SIDE = 65500  # libjpeg's JPEG_MAX_DIMENSION; torchvision's encoder crashes the process past it


def to_bytes(x: torch.Tensor) -> torch.Tensor:
    """8-bit truncation: floor(x * 255) as uint8 (values are in [0, 1])."""
    return (x * 255).to(torch.uint8)


def jpeg2000_resolutions(height: int, width: int) -> int:
    """Resolutions OpenJPEG accepts for an image: 8, or fewer when min(H, W) < 128 (each level halves it)."""
    return min(JPEG2000_RESOLUTIONS, min(height, width).bit_length())


def _jpeg2000_one(image: np.ndarray, ratio: int) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(image, "RGB").save(
        out,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[ratio],
        num_resolutions=jpeg2000_resolutions(*image.shape[:2]),
        prog_order="LRCP",
    )
    with Image.open(io.BytesIO(out.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _codec_processes() -> int:
    """Worker processes for the JPEG 2000 codec: torch's thread count on Linux; 1 (no pool) inside
    a daemonic process (a DataLoader worker), which may not start children, and on platforms where
    workers could not be forked (spawning would re-run an unguarded user script)."""
    if not sys.platform.startswith("linux") or multiprocessing.current_process().daemon:
        return 1
    return torch.get_num_threads()


def _exit_with_parent(parent: int) -> None:
    """Pool worker initializer: end the worker once its parent is gone. A parent killed by SIGKILL
    cannot stop its pool, and orphaned workers would hold its pipes (stdout, stderr) open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="arniqa-parent-watch").start()


@lru_cache(maxsize=1)
def _codec_pool(pid: int, workers: int) -> ProcessPoolExecutor:
    """Processes that run :func:`_jpeg2000_one`; a forked child (a new pid) gets its own pool.

    They are forked, as DataLoader workers are: they only run NumPy and Pillow, never torch or
    CUDA, and forking, unlike spawning, does not re-run the user's script.
    """
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with_parent, initargs=(pid,))


def _submit(images: np.ndarray, ratio: int) -> list[Future]:
    pool = _codec_pool(os.getpid(), _codec_processes())
    with warnings.catch_warnings():
        # Python 3.12+ warns when a threaded process forks; the children run no threads of ours.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        return [pool.submit(_jpeg2000_one, image, ratio) for image in images]


def start_jpeg2000(x: torch.Tensor, ratio: float) -> Callable[[], torch.Tensor]:
    """Start :func:`jpeg2000` on ``x``; the returned function waits for it and returns its result.

    With worker processes the images are coded while the caller goes on (``apply_chains`` runs a
    step's other groups meanwhile); otherwise the returned function codes them.
    """
    images = to_bytes(x).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    ratio = int(ratio)
    futures = None
    if min(_codec_processes(), len(images)) > 1:
        try:
            futures = _submit(images, ratio)
        except BrokenProcessPool:
            _codec_pool.cache_clear()

    def finish() -> torch.Tensor:
        decoded = None
        if futures is not None:
            try:
                decoded = [future.result() for future in futures]
            except BrokenProcessPool:  # a worker died (killed, out of memory): here now, a new pool next time
                _codec_pool.cache_clear()
        if decoded is None:
            decoded = [_jpeg2000_one(image, ratio) for image in images]
        return torch.from_numpy(np.stack(decoded)).to(x.device).permute(0, 3, 1, 2).float() / 255

    return finish


def jpeg2000(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """JPEG 2000 at compression ``ratio`` (16, 32, 45, 120, 170): Pillow's OpenJPEG encoder with
    quality_mode='rates', quality_layers=[ratio], 8 resolutions, LRCP order, reversible wavelet.

    Images smaller than 128 px on a side, which OpenJPEG refuses at 8 resolutions, use the most it
    accepts. The codec costs about 16 ms of CPU per 224 x 224 crop and Pillow holds the GIL while
    it runs, so on Linux a batch runs in ``torch.get_num_threads()`` forked worker processes
    (started once, started again if one dies); with one thread, in a daemonic process or on other
    platforms it runs here. The bytes are the same either way.
    """
    return start_jpeg2000(x, ratio)()


@lru_cache(maxsize=1)
def _pool(pid: int) -> ThreadPoolExecutor:
    """A thread pool for this process (a forked child, e.g. a DataLoader worker, gets its own)."""
    return ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="arniqa-jpeg")


@lru_cache(maxsize=1)
def _codec() -> tuple[Callable, Callable]:
    """torchvision's JPEG encoder and decoder, imported on first use: torchvision's package imports its models and
    torch._dynamo (2.5-3 s), which the other distortions, and the verbs and DataLoader workers using them, go
    without."""
    from torchvision.io import decode_jpeg, encode_jpeg

    return encode_jpeg, decode_jpeg


def _jpeg_one(image: torch.Tensor, quality: int) -> torch.Tensor:
    encode_jpeg, decode_jpeg = _codec()
    return decode_jpeg(encode_jpeg(image, quality=quality))


def _jpeg_cpu(images: torch.Tensor, quality: int) -> torch.Tensor:
    if images.shape[0] == 1 or torch.get_num_threads() == 1:
        return torch.stack([_jpeg_one(image, quality) for image in images])
    # torchvision's codec releases the GIL, so the per-image calls overlap in threads.
    return torch.stack(list(_pool(os.getpid()).map(_jpeg_one, images, [quality] * images.shape[0])))


def _jpeg_cuda(images: torch.Tensor, quality: int) -> torch.Tensor:
    encode_jpeg, decode_jpeg = _codec()
    encoded = encode_jpeg(list(images), quality=quality)  # GPU encoder: the bytes land on the GPU
    # torchvision's batched GPU decoder reads the bytes from host memory only.
    return torch.stack(decode_jpeg([data.cpu() for data in encoded], device=images.device))


@lru_cache(maxsize=None)
def _cuda_matches_cpu(device: torch.device) -> bool:
    """Whether torchvision's GPU codec works on ``device`` and decodes exactly what libjpeg does."""
    probe = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 40, 56, generator=probe)
    images = to_bytes(torch.nn.functional.interpolate(images, scale_factor=2, mode="bilinear"))
    try:
        gpu = _jpeg_cuda(images.to(device), 36).cpu()
    except (RuntimeError, NotImplementedError, ValueError):  # no GPU codec, or an API it lacks
        return False
    return torch.equal(gpu, _jpeg_cpu(images, 36))


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """JPEG at ``quality`` (43, 36, 24, 7, 4) with libjpeg defaults (4:2:0), via torchvision.

    Byte-identical to a Pillow JPEG save at the same quality. On CUDA the GPU codec is used when it
    reproduces the CPU result exactly (checked once per device), otherwise images round-trip
    through the CPU. Images over :data:`JPEG_MAX_SIDE` px on a side raise ValueError.
    """
    if max(x.shape[-2:]) > JPEG_MAX_SIDE:
        side = f"at most {JPEG_MAX_SIDE} px on a side, got {tuple(x.shape[-2:])}"
        raise ValueError(f"jpeg codes images of {side}; downscale or crop it")
    images = to_bytes(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 deprecates its codecs
        _codec()  # imported here, not in a codec thread
        if x.is_cuda and _cuda_matches_cpu(x.device):
            out = _jpeg_cuda(images, int(quality))
        else:
            out = _jpeg_cpu(images.cpu(), int(quality)).to(x.device)
    return out.float() / 255


register("jpeg2000", jpeg2000, start=start_jpeg2000)
register("jpeg", jpeg)
