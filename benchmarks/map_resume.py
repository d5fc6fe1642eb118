"""``arniqa map --resume`` with nothing left to do: reading maps.csv and checking that each listed image's files are
whole (``_earlier_rows`` and ``_earlier_maps`` of ``arniqa.cli.map``), this tree against an older commit.

A folder of --images mapped images is written once (a 14x19 float32 grid as .npy and a small PNG each, and
maps.csv listing them). Each round reads it in a
fresh process per entry (one warm-up pass, then the timed one: the files in the page cache, as on a rerun), the
entries alternating: the --before commit's ``src`` (``git archive``) and this tree's. The table gives the median
seconds over --rounds, per image, and the ratio to this tree.

    python benchmarks/map_resume.py --before main
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from startup import ROOT, archived_src, commit_label

CHECK = """
import sys, time
from pathlib import Path
from arniqa.cli.map import _earlier_maps, _earlier_rows, _suffixes

def check(folder):
    rows, _ = _earlier_rows(folder / "maps.csv")
    return _earlier_maps(rows, set(rows), folder, _suffixes(None))[2]

folder = Path(sys.argv[1])
check(folder)
t = time.perf_counter()
whole = check(folder)
print(time.perf_counter() - t, len(whole))
"""


def write_maps(folder: Path, images: int) -> None:
    from arniqa.utils.textfiles import csv_line

    grid = np.random.default_rng(0).random((14, 19), dtype=np.float32)
    png = io.BytesIO()
    Image.new("RGB", (76, 56), (200, 90, 40)).save(png, "PNG")
    with open(folder / "maps.csv", "w", encoding="utf-8") as listing:
        listing.write(csv_line(["path", "map", "mean", "min", "max", "rows", "cols", "error", "note"]))
        for k in range(images):
            stem = f"IMG_{k:06d}"
            np.save(folder / f"{stem}.map.npy", grid)
            (folder / f"{stem}.map.png").write_bytes(png.getvalue())
            listing.write(csv_line([f"/photos/{stem}.jpg", f"{stem}.map.png", 0.5, 0.1, 0.9, 14, 19, "", ""]))


def seconds(src: Path, folder: Path, images: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(folder)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    if int(out[1]) != images:
        raise SystemExit(f"{src}: {out[1]} images whole, not {images}")
    return float(out[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="main", help="the commit to compare with")
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "map-resume-cpu.json")
    args = ap.parse_args()
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = archived_src(args.before, tmp)
        folder = tmp / "maps"
        folder.mkdir()
        write_maps(folder, args.images)
        entries = {commit_label(args.before): before, "this tree": ROOT / "src"}
        times: dict[str, list[float]] = {name: [] for name in entries}
        for _ in range(args.rounds):
            for name, src in entries.items():
                times[name].append(seconds(src, folder, args.images))
    mine = statistics.median(times["this tree"])
    rows = {
        name: {"median_s": statistics.median(t), "per_image_us": statistics.median(t) / args.images * 1e6, "all_s": t}
        for name, t in times.items()
    }
    print(f"{machine_summary()}; {args.images} mapped images (a .npy and a PNG each), median of {args.rounds} rounds")
    print(f"{'':20} {'seconds':>8} {'us/image':>9} {'/ this tree':>12}")
    for name, row in rows.items():
        print(f"{name:20} {row['median_s']:8.3f} {row['per_image_us']:9.1f} {row['median_s'] / mine:12.2f}")
    write_json(args.out, {"machine": machine_summary(), "images": args.images, "rounds": args.rounds, **rows})


if __name__ == "__main__":
    main()
