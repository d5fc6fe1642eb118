"""The GPU session's first stage: can this machine run the rest? Checks, within seconds, that the
project and what it needs import, that the device answers, that the photos decode and that the disks
have room. Prints one line per check; on the first failure one line ``preflight failed: ...`` and
exit 1.

    python3 benchmarks/preflight.py PHOTOS --device cuda --min-photos 64 --min-free-gb 8 --disk OUT --disk /tmp
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path

# What the session's stages import (optional extras are not among them: pillow-heif, pywuffs, kornia,
# openpyxl and ray may be missing on a GPU host).
MODULES = (
    "numpy",
    "scipy",
    "sklearn",
    "PIL",
    "torch",
    "torchvision",
    "timm",
    "safetensors",
    "onnxruntime",
    "yaml",
    "typer",
    "rich",
    "matplotlib",
    "pandas",
    "pytest",
    "arniqa.cli",
    "arniqa.train.loop",
    "arniqa.inference",
    "arniqa.evaluate.run",
    "arniqa.ablation.runner",
)


class Failed(Exception):
    pass


def check_imports() -> str:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as e:  # any failure to import stops the session
            raise Failed(f"cannot import {name} ({type(e).__name__}: {e})") from None
    import torch

    return f"{len(MODULES)} modules, torch {torch.__version__}"


def check_device(device: str) -> str:
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise Failed("CUDA is not visible to torch (torch.cuda.is_available() is False)")
        x = torch.randn(256, 256, device="cuda")
        if not torch.isfinite(x @ x).all():
            raise Failed("a matrix product on the GPU gave non-finite values")
        return f"{torch.cuda.get_device_name()}, {torch.cuda.device_count()} device(s)"
    return "cpu"


def check_photos(folder: Path, at_least: int) -> str:
    from arniqa.data.folders import training_images
    from arniqa.data.images import open_image

    try:
        files = training_images(folder)
    except ValueError as e:
        raise Failed(f"{folder}: {e}") from None
    if len(files) < at_least:
        raise Failed(f"{folder}: {len(files)} photos, the session needs at least {at_least}")
    for path in files[:: max(1, len(files) // 3)][:3]:
        try:
            open_image(path)
        except ValueError as e:
            raise Failed(str(e)) from None
    return f"{len(files)} photos in {folder}"


def check_disks(disks: list[Path], min_free_gb: float) -> str:
    free = []
    for disk in disks:
        disk.mkdir(parents=True, exist_ok=True)
        gb = shutil.disk_usage(disk).free / 2**30
        if gb < min_free_gb:
            raise Failed(f"{disk}: {gb:.1f} GiB free, the session needs {min_free_gb} GiB")
        free.append(f"{disk} {gb:.0f} GiB")
    return ", ".join(free) + " free"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--min-photos", type=int, default=16)
    ap.add_argument("--min-free-gb", type=float, default=4.0)
    ap.add_argument("--disk", type=Path, action="append", default=[], help="a folder that must have the free space")
    args = ap.parse_args()
    checks = (
        ("imports", check_imports),
        ("device", lambda: check_device(args.device)),
        ("photos", lambda: check_photos(args.photos, args.min_photos)),
        ("disk", lambda: check_disks(args.disk, args.min_free_gb)),
    )
    for name, check in checks:
        start = time.perf_counter()
        try:
            said = check()
        except Failed as e:
            print(f"preflight failed: {name}: {e}", flush=True)
            return 1
        print(f"{name}: ok ({said}; {time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
