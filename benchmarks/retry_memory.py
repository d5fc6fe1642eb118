"""Peak memory of ``arniqa score --resume`` and ``--resume --retry-failed`` over a result file of --rows rows, and of
``arniqa map`` over a maps.csv of as many error rows: this tree against an older commit (--before, its ``src`` from
``git archive``), each run a fresh process.

The result file is synthetic, in CSV: --rows rows, all of them error rows (or, for the first case, all scored),
whose paths name --distinct hard links of one tiny PNG (16x12) in turn, then files that are not there; the
``--files-from`` list names the same paths in the same order. A retry scores the images again and finds the missing
files missing again, so every row is rewritten in its place. The model is scale.py's tiny exported graph (ONNX
Runtime), the protocol ``whole``. Each run gets a fresh copy of the file; its peak resident set (``VmHWM``) and wall
time are reported, and the retried file is checked: the same paths in the same order, the images' rows scored.
``arniqa map`` maps the same paths, given as its arguments (read by the child from a file) or, in the case that
says so, by the --files-from list (a tree whose map has no --files-from is passed over), with --crop 4 into a folder
whose maps.csv lists them all as failed (or none, afresh); mapping imports torch, which a --resume with nothing left
to map does not.

    python benchmarks/retry_memory.py --before main
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale import CHILD, tiny_library
from startup import ROOT, archived_src, commit_label

from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import machine_summary

CASES = {
    "--resume, all rows scored": ("scored", ["--resume"]),
    "--resume, all rows failed": ("failed", ["--resume"]),
    "--resume --retry-failed, all failed": ("failed", ["--resume", "--retry-failed"]),
    "map, afresh": (None, []),
    "map --files-from, afresh": (None, ["--files-from"]),
    "map --resume, all rows failed": ("failed", ["--resume"]),
    "map --resume --retry-failed, all failed": ("failed", ["--resume", "--retry-failed"]),
}
ARGS_CHILD = 'import sys\nsys.argv[1:] = open(sys.argv[1], encoding="utf-8").read().split("\\0")\n' + CHILD
MAP_COLUMNS = ["path", "map", "mean", "min", "max", "rows", "cols", "error"]


def peak(src: Path, args: list[str], env: dict, child: str = CHILD) -> dict:
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env={**env, "PYTHONPATH": str(src)}
    )
    seconds = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"arniqa failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return {**json.loads(done.stderr.strip().splitlines()[-1]), "seconds": seconds, "exit": done.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="main", help="the commit to compare with")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--distinct", type=int, default=100, help="hard links of the image (the other paths: missing)")
    ap.add_argument("--cases", default="", help="only the cases whose name holds this (map: arniqa map's)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "retry-memory-cpu.json")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = archived_src(args.before, tmp)
        trees = {commit_label(args.before): before, "this tree": ROOT / "src"}
        model, images = tiny_library(tmp, args.distinct)
        names = [str(images / f"{i}.png") for i in range(args.rows)]  # past --distinct: not there
        listing = tmp / "list.txt"
        listing.write_text("".join(f"{name}\n" for name in names))
        files = {}
        for kind in ("scored", "failed"):
            files[kind] = tmp / f"{kind}.csv"
            with open(files[kind], "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["path", "score", "raw_score", "error"])
                for name in names:
                    w.writerow([name, 0.5, 3.0, ""] if kind == "scored" else [name, "", "", "image file is truncated"])
        common = ["score", "--files-from", str(listing), "--checkpoint", str(model), "--protocol", "whole"]
        maps_csv = tmp / "maps.csv"
        with open(maps_csv, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerows([MAP_COLUMNS, *([name, "", "", "", "", "", "", "image file is truncated"] for name in names)])
        runs = []
        cases = [case for case in CASES if args.cases in case]
        for case in cases:
            kind, flags = CASES[case]
            for tree, src in trees.items():
                listed = "--files-from" in flags
                if listed and "files_from" not in (src / "arniqa" / "cli" / "map.py").read_text():
                    print(f"{case:40} {tree:14} (no map --files-from)", flush=True)
                    continue
                if case.startswith("map"):
                    out = tmp / "maps"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    if kind is not None:
                        shutil.copyfile(maps_csv, out / "maps.csv")
                    argv = tmp / "argv"
                    model_args = ["--checkpoint", str(model), "--crop", "4", "--stride", "4"]
                    given = ["--files-from", str(listing)] if listed else names  # the flag's value: the list
                    rest = [flag for flag in flags if flag != "--files-from"]
                    argv.write_text("\0".join(["map", *given, "-o", str(out), *model_args, *rest]), encoding="utf-8")
                    r = peak(src, [str(argv)], env, ARGS_CHILD)
                    with open(out / "maps.csv", newline="") as f:
                        rows = list(csv.DictReader(f))
                    mapped = "--retry-failed" in flags or kind is None
                    if [row["path"] for row in rows] != names:
                        sys.exit(f"{tree}, {case}: the rows are not the inputs' paths in order")
                    if mapped and not all(row["map"] for row in rows[: args.distinct]):
                        sys.exit(f"{tree}, {case}: the images were not mapped")
                else:
                    out = tmp / "scores.csv"
                    shutil.copyfile(files[kind], out)
                    r = peak(src, [*common, "--batch-size", "64", "-o", str(out), *flags], env)
                    with open(out, newline="") as f:
                        rows = list(csv.DictReader(f))
                    if [row["path"] for row in rows] != names:
                        sys.exit(f"{tree}, {case}: the rows are not the inputs' paths in order")
                    if "--retry-failed" in flags and not all(row["score"] for row in rows[: args.distinct]):
                        sys.exit(f"{tree}, {case}: the images' rows were not scored again")
                runs.append({"case": case, "tree": tree, **r})
                print(f"{case:40} {tree:14} {r['peak_rss_mb']:7.1f} MB {r['seconds']:6.1f} s", flush=True)
    print(f"\n{machine_summary()}; {args.rows:,} rows, peak resident set (MB)")
    print(f"{'':40} " + " ".join(f"{tree:>14}" for tree in trees))
    for case in cases:
        peaks = {r["tree"]: f"{r['peak_rss_mb']:14.1f}" for r in runs if r["case"] == case}
        print(f"{case:40} " + " ".join(peaks.get(tree, f"{'-':>14}") for tree in trees))
    write_json(
        args.out,
        {
            "benchmark": "retry_memory",
            "command": "python benchmarks/retry_memory.py " + " ".join(sys.argv[1:]),
            "machine": machine_summary(),
            "rows": args.rows,
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
