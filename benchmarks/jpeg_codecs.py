"""The degradation model's JPEG distortion through the GPU codec (nvJPEG, torchvision's CUDA encode and
decode) against PIL: time per crop, and how far the GPU's pixels are from PIL's.

For ``--crops`` 224 px crops of photos (uint8) at each of the five JPEG levels (qualities 43, 36, 24, 7, 4):

* ``pil``: PIL's ``save(format="JPEG", quality=q)`` and decode, one crop after another (the reference's
  codec; torchvision's CPU codec gives the same bytes);
* ``cpu``: the distortion's CPU path (:func:`arniqa.degradations.compression._jpeg_cpu`, torchvision's
  libjpeg in a thread pool of torch's threads);
* ``gpu``: its CUDA path (``_jpeg_cuda``: a batched encode on the device, a batched decode), crops on the
  device, synchronised.

Pixel difference: GPU result minus PIL's, in 8-bit steps, as a distribution (share of pixels equal, within
1, 2, 4, 8 steps, the mean, 99th percentile and largest |difference|). Measurement only: whether the
device path may drop its CPU round trip is decided elsewhere (``jpeg`` uses the GPU codec only where it
reproduces the CPU bytes, ``_cuda_matches_cpu``).

    python3 benchmarks/jpeg_codecs.py --photos PHOTOS --device cuda --crops 1024 --out results.json
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from arniqa.degradations.compression import _cuda_matches_cpu, _jpeg_cpu, _jpeg_cuda
from arniqa.degradations.registry import LEVELS
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import cpu_name

CROP = 224


def crops_of(photos: Path | None, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` random 224 px uint8 crops (count, 3, 224, 224) of the photos (or of smooth noise)."""
    g = np.random.default_rng(seed)
    if photos is None:
        base = torch.nn.functional.interpolate(torch.rand(count, 3, 28, 28), size=(CROP, CROP), mode="bicubic")
        return (base + 0.1 * torch.rand(count, 3, CROP, CROP)).clamp(0, 1).mul(255).byte()
    from arniqa.data.folders import training_images
    from arniqa.data.images import open_image

    images = [np.asarray(open_image(p)) for p in training_images(photos)[:64]]
    out = []
    for i in range(count):
        im = images[i % len(images)]
        y, x = g.integers(0, im.shape[0] - CROP + 1), g.integers(0, im.shape[1] - CROP + 1)
        out.append(torch.from_numpy(np.ascontiguousarray(im[y : y + CROP, x : x + CROP])).permute(2, 0, 1))
    return torch.stack(out)


def pil_jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=quality)
        out.append(torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1))
    return torch.stack(out)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Best seconds of ``repeats`` runs of ``fn`` (after one warm-up run) and its result."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def distribution(diff: torch.Tensor) -> dict:
    """Shares of |difference| (8-bit steps) equal and within 1, 2, 4, 8; mean, 99th percentile, largest."""
    counts = torch.bincount(diff.abs().flatten().long(), minlength=256).double()
    share = counts.cumsum(0) / counts.sum()
    return {
        "equal": float(share[0]),
        **{f"within_{k}": float(share[k]) for k in (1, 2, 4, 8)},
        "mean": float((counts * torch.arange(len(counts))).sum() / counts.sum()),
        "p99": float(torch.searchsorted(share, torch.tensor([0.99], dtype=share.dtype))[0]),
        "max": float(counts.nonzero().max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--crops", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA device; run on a GPU or pass --device cpu", file=sys.stderr)
        sys.exit(2)
    stand_in = device.type != "cuda"
    images = crops_of(args.photos, args.crops)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 deprecates its codecs
        matches = _cuda_matches_cpu(device) if device.type == "cuda" else None
        on_device = images.to(device)
        for level, quality in enumerate(LEVELS["jpeg"], start=1):
            quality = int(quality)
            t_pil, pil = timed(lambda: pil_jpeg(images, quality), torch.device("cpu"), 1)
            t_cpu, cpu = timed(lambda: _jpeg_cpu(images, quality), torch.device("cpu"), args.repeats)
            if device.type == "cuda":
                t_gpu, gpu = timed(lambda: _jpeg_cuda(on_device, quality), device, args.repeats)
                gpu = gpu.cpu()
            else:  # rehearsal without a GPU: the CPU path stands in, so the table has every column
                t_gpu, gpu = t_cpu, cpu
            row = {  # with no GPU the gpu_* figures are the CPU path's (stand_in in the JSON)
                "level": level,
                "quality": quality,
                "crops": len(images),
                "pil_ms_per_crop": 1e3 * t_pil / len(images),
                "cpu_ms_per_crop": 1e3 * t_cpu / len(images),
                "gpu_ms_per_crop": 1e3 * t_gpu / len(images),
                "cpu_equals_pil": bool(torch.equal(cpu, pil)),
                "gpu_minus_pil": distribution(gpu.int() - pil.int()),
            }
            rows.append(row)
            g = row["gpu_minus_pil"]
            print(
                f"q{quality:>2}: PIL {row['pil_ms_per_crop']:.3f} ms/crop, CPU path {row['cpu_ms_per_crop']:.3f}, "
                f"GPU{' (stand-in: the CPU path)' if stand_in else ''} {row['gpu_ms_per_crop']:.3f}; "
                f"GPU - PIL: {g['equal']:.1%} equal, {g['within_1']:.1%} within 1, "
                f"max {g['max']:.0f}",
                flush=True,
            )
    result = {
        "benchmark": "jpeg_codecs",
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "stand_in": "no GPU: the gpu_* figures are the CPU path's" if stand_in else None,
        "machine": f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "photos": str(args.photos),
        "gpu_codec_reproduces_cpu": matches,
        "rows": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
