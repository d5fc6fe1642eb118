"""``arniqa distort`` on a camera-sized photo: the seconds of each of the 24 distortions at one level on a pristine
photo upscaled to ``--size`` (default 4000x3000, 12 MP; bicubic), and of the work around it in the verb (decoding
the PNG, the tensor and back, encoding a PNG and a JPEG output). One process, ``--threads`` torch threads, the
distortions in registry order, each timed once after a warm-up call at 64x64 (first-call costs apart); on a loaded
machine a row moves by tens of percent. ``load``: the load average at the end.

    python benchmarks/distort_large.py --photo ../shared/data/pristine/kodak24/kodim23.png \
        --out benchmarks/results/distort-large-cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return round(time.perf_counter() - start, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, required=True)
    ap.add_argument("--size", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"))
    ap.add_argument("--level", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "distort-large-cpu.json")
    args = ap.parse_args()
    import torch
    from PIL import Image

    from arniqa.data.images import read_image
    from arniqa.data.pixels import pil_to_tensor, tensor_to_pil
    from arniqa.degradations import NAMES, distort
    from arniqa.utils.runtime import machine_summary

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.png"
        with Image.open(args.photo) as photo:
            photo.convert("RGB").resize(tuple(args.size), Image.Resampling.BICUBIC).save(big)
        around = {"decode PNG": seconds(lambda: read_image(big))}
    picture = Image.open(args.photo).convert("RGB").resize(tuple(args.size), Image.Resampling.BICUBIC)
    around["to tensor"] = seconds(lambda: pil_to_tensor(picture))
    x = pil_to_tensor(picture)
    around["to PIL"] = seconds(lambda: tensor_to_pil(x))
    around["encode PNG"] = seconds(lambda: picture.save(io.BytesIO(), format="PNG"))
    around["encode JPEG"] = seconds(lambda: picture.save(io.BytesIO(), format="JPEG"))
    small = torch.rand(3, 64, 64)
    times = {}
    for name in NAMES:
        distort(small, name, args.level, torch.Generator().manual_seed(0))
        times[name] = seconds(lambda: distort(x, name, args.level, torch.Generator().manual_seed(0)))
        print(f"| {name} | {times[name]:.2f} |", flush=True)
    result = {
        "machine": machine_summary(),
        "threads": args.threads,
        "size": list(args.size),
        "level": args.level,
        "seconds": times,
        "around_seconds": around,
        "load": os.getloadavg()[0],
    }
    for what, s in around.items():
        print(f"| ({what}) | {s:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
