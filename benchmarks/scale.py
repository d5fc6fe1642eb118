"""``arniqa score`` at 10k, 100k and 1M inputs: items/s and peak memory, where the listing and the bookkeeping dominate.

Each input is one tiny PNG (16x12): the lines of a ``--files-from`` list name --distinct hard links of it
in turn. The model is a tiny exported graph (a 3x3 convolution and a linear head; ONNX Runtime, no torch
in the scoring process), the protocol ``whole``, batches of 64, rows written to a CSV file. Each size
runs as a fresh process; its wall time and peak resident set (``VmHWM`` of the child, which unlike
``ru_maxrss`` does not carry the parent's peak over ``exec``) are reported, so the table shows whether
memory grows with the number of inputs (the goal: peak RSS at the largest size within 1.5x of the
smallest). Also timed: ``--resume`` over the finished output of the largest size with 1000 more lines.

    python benchmarks/scale.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from arniqa.inference.onnx_export import export_onnx
from arniqa.models import Regressor
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import machine_summary

# arniqa's command line; at exit (after its SystemExit too) its peak resident set and whether it imported torch.
CHILD = r"""
import atexit, json, sys

def report():
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": hwm / 1024, "torch": "torch" in sys.modules}), file=sys.stderr)

atexit.register(report)
from arniqa.cli import main
main()
"""


class Tiny(torch.nn.Module):
    """The interface export_onnx needs: 8-d quality features from a 3x3 convolution, averaged."""

    backbone_name = "tiny"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def quality_features(self, full, half):
        return torch.cat([self.conv(full).mean((2, 3)), self.conv(half).mean((2, 3))], dim=1)


def tiny_library(folder: Path, distinct: int) -> tuple[Path, Path]:
    """In ``folder``: the ONNX file of :class:`Tiny` with a fixed regressor, and ``images/`` holding ``distinct``
    names (0.png, 1.png, ...) of one small PNG (hard links: a library of many files at no cost of disk)."""
    regressor = Regressor("kadid10k", in_features=8)
    with torch.no_grad():
        regressor.weight.fill_(0.1)
        regressor.bias.fill_(3.0)
    model = export_onnx(Tiny().eval(), regressor, folder / "tiny.onnx", protocol="whole")
    images = folder / "images"
    images.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(images / "0.png")
    for i in range(1, distinct):
        os.link(images / "0.png", images / f"{i}.png")
    return model, images


def run(args: list[str], env: dict) -> dict:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"arniqa score failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return {**report, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--distinct", type=int, default=1000, help="hard links of the image the lines cycle through")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale-cpu.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, images = tiny_library(tmp, args.distinct)
        names = [str(images / f"{i}.png") for i in range(args.distinct)]
        common = ["--checkpoint", str(model), "--protocol", "whole", "--batch-size", "64"]
        for n in sizes:
            listing = tmp / f"list-{n}.txt"
            with open(listing, "w") as f:
                for i in range(n):
                    f.write(names[i % args.distinct] + "\n")
            out = tmp / f"scores-{n}.csv"
            r = run(["score", "--files-from", str(listing), *common, "-o", str(out)], env)
            with open(out) as f:
                lines = sum(1 for _ in f) - 1
            assert lines == n, (lines, n)
            rows.append(
                dict(
                    inputs=n,
                    seconds=r["seconds"],
                    items_per_s=n / r["seconds"],
                    peak_rss_mb=r["peak_rss_mb"],
                    torch_imported=r["torch"],
                )
            )
            print(
                f"{n:>9} inputs: {r['seconds']:7.1f} s, {n / r['seconds']:7.0f} items/s, "
                f"peak RSS {r['peak_rss_mb']:6.1f} MB, torch imported: {r['torch']}",
                flush=True,
            )
        n = sizes[-1]
        listing, out = tmp / f"list-{n}.txt", tmp / f"scores-{n}.csv"
        with open(listing, "a") as f:
            for i in range(1000):
                f.write(names[i % args.distinct] + "\n")
        r = run(["score", "--files-from", str(listing), *common, "-o", str(out), "--resume"], env)
        resume = dict(inputs=n + 1000, finished=n, seconds=r["seconds"], peak_rss_mb=r["peak_rss_mb"])
        print(
            f"--resume over {n} finished rows + 1000 new lines: {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_rss_mb']:.1f} MB"
        )
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS at {rows[-1]['inputs']} / at {rows[0]['inputs']}: {ratio:.2f} (goal <= 1.5)")
    result = {
        "benchmark": "scale",
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "machine": machine_summary(),
        "rows": rows,
        "resume": resume,
        "peak_rss_ratio_last_to_first": ratio,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
