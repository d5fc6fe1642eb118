"""Listing a WebDataset tar shard (``arniqa.inference.shards.shard_items``): this tree against an older commit and
the extension-only rule.

A shard of --samples samples (a tiny JPEG, a ``.cls`` label, a ``.json`` record each: three members a sample) is
written once. Each round lists it, in a fresh process per entry (one warm-up listing, then the timed one), the
entries alternating: the extension-only rule (``tarfile`` and :func:`~arniqa.data.images.is_image_file`, what
shards took before they followed the folder walk's rule), the --before commit's ``src`` (``git archive``) and this
tree's. The table gives the median seconds over --rounds and the ratio to this tree.

    python benchmarks/shard_listing.py --before main
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from startup import ROOT, archived_src, commit_label

LIST = """
import sys, tarfile, time
from arniqa.data.images import is_image_file
from arniqa.inference.shards import shard_items

def by_extension(shard):
    with tarfile.open(shard, "r:") as tar:
        return sum(1 for info in tar if info.isfile() and is_image_file(info.name))

def listed(shard):
    return by_extension(shard) if sys.argv[1] == "ext" else sum(1 for _ in shard_items(shard))

listed(sys.argv[2])
t = time.perf_counter()
n = listed(sys.argv[2])
print(time.perf_counter() - t, n)
"""


def write_shard(path: Path, samples: int) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, "JPEG")
    photo = buf.getvalue()
    with tarfile.open(path, "w") as tar:
        for k in range(samples):
            key = f"n01440764_{k:06d}"
            record = json.dumps({"key": key, "label": k % 1000, "caption": "a tench held by an angler"}).encode()
            for ext, data in ((".jpg", photo), (".cls", f"{k % 1000}\n".encode()), (".json", record)):
                info = tarfile.TarInfo(key + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def seconds(entry: str, src: Path, shard: Path, samples: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-c", LIST, entry, str(shard)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    if int(out[1]) != samples:
        raise SystemExit(f"{entry} {src}: listed {out[1]} members, not {samples}")
    return float(out[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="main", help="the commit to compare with")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shard-listing-cpu.json")
    args = ap.parse_args()
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = archived_src(args.before, tmp)
        shard = tmp / "000000.tar"
        write_shard(shard, args.samples)
        entries = {
            "extension only": ("ext", ROOT / "src"),
            commit_label(args.before): ("items", before),
            "this tree": ("items", ROOT / "src"),
        }
        times: dict[str, list[float]] = {name: [] for name in entries}
        for _ in range(args.rounds):
            for name, (entry, src) in entries.items():
                times[name].append(seconds(entry, src, shard, args.samples))
    mine = statistics.median(times["this tree"])
    rows = {
        name: {"median_s": statistics.median(t), "per_sample_us": statistics.median(t) / args.samples * 1e6, "all_s": t}
        for name, t in times.items()
    }
    print(f"{machine_summary()}; a shard of {args.samples} samples (jpg, cls, json), median of {args.rounds} rounds")
    print(f"{'':20} {'seconds':>8} {'us/sample':>10} {'/ this tree':>12}")
    for name, row in rows.items():
        print(f"{name:20} {row['median_s']:8.3f} {row['per_sample_us']:10.1f} {row['median_s'] / mine:12.2f}")
    write_json(args.out, {"machine": machine_summary(), "samples": args.samples, "rounds": args.rounds, **rows})


if __name__ == "__main__":
    main()
