"""Lens blur with the reference's kernels (the default) against MATLAB's disk, side by side.

Both kernels run on the same 224x224 photo crops at every level, in alternating rounds (reference,
MATLAB, reference, ...), 1 thread by default; the median of the rounds is reported with the
ratio. Writes benchmarks/results/lensblur-kernels-<device>.json.

    python benchmarks/lensblur_kernels.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch
from degradations import photo_crops, time_call
from rich.console import Console
from rich.table import Table

from arniqa.constants import CROP_SIZE
from arniqa.degradations import LEVELS, NUM_LEVELS, distort
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import cpu_name

KERNELS = ("reference", "matlab")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--batch", type=int, default=4, help="crops per call (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round (median)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    crops = photo_crops(args.batch, CROP_SIZE, seed=0).to(device)

    rounds: dict[str, list[list[float]]] = {k: [[] for _ in range(NUM_LEVELS)] for k in KERNELS}
    for _ in range(args.rounds):
        for level in range(1, NUM_LEVELS + 1):
            for kernel in KERNELS:
                wall, _ = time_call(lambda: distort(crops, "lensblur", level, kernel=kernel), device, args.repeats)
                rounds[kernel][level - 1].append(1000 * wall / args.batch)
    median = {k: [statistics.median(r) for r in rounds[k]] for k in KERNELS}

    table = Table(
        title=f"lensblur, ms per {CROP_SIZE}x{CROP_SIZE} crop, batch {args.batch}, {device.type}, "
        f"{args.threads} threads, median of {args.rounds} alternating rounds"
    )
    table.add_column("level (radius)")
    for kernel in KERNELS:
        table.add_column(kernel, justify="right")
    table.add_column("reference / matlab", justify="right")
    for level in range(NUM_LEVELS):
        ref, mat = median["reference"][level], median["matlab"][level]
        table.add_row(f"{level + 1} ({LEVELS['lensblur'][level]})", f"{ref:.3f}", f"{mat:.3f}", f"{ref / mat:.2f}")
    Console().print(table)

    out = args.out or Path(__file__).parent / "results" / f"lensblur-kernels-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "what": "lensblur ms per crop, reference kernels (default) vs MATLAB disk, alternating rounds",
        "machine": {
            "cpu": cpu_name(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(device),
            "threads": args.threads,
        },
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "batch": args.batch,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "ms_per_crop_median": median,
        "ms_per_crop_rounds": rounds,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    write_json(out, record)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
