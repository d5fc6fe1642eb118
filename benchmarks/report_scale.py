"""``arniqa report`` on a photo library's result file: time, peak memory and HTML size, per thumbnail mode and format.

A result file as ``arniqa score`` writes it (an absolute path, ``score``, ``raw_score``, ``error``), in CSV and JSON
Lines: ``--rows`` rows, the photos of ``--photos`` repeated, every 10th row naming a file that is not there and every
100th an error row. Each run is ``python -m arniqa report FILE -o report.html --thumbnails MODE`` in a fresh process,
with the ``arniqa`` of each ``--code NAME=SRC`` in turn on the same machine (a ``src`` folder: ``git archive main src
| tar -x -C /tmp/old``); ``MB peak``: the process's peak resident memory; ``embedded``: thumbnails inside the file;
``longest``: the longest script text in the page, which a browser's script must hold as one string (V8, Chromium's
engine, holds at most 2**29 - 24 characters). ``--lookups``: each run under ``strace -f -c`` instead, counting its
stat-family system calls (each a round trip on a NAS; time and memory are then strace's, not to be compared).

    python benchmarks/report_scale.py --photos /tmp/photos --rows 200000 --modes none,link \
        --code before=/tmp/old/src --code after=src
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

V8_LONGEST = 2**29 - 24  # the longest string V8 makes (characters)


def write_results(photos: list[Path], count: int, folder: Path) -> dict[str, Path]:
    """The result file of ``count`` rows, as CSV and as JSON Lines, in ``folder``."""
    scores = random.Random(0)
    rows = []
    for k in range(count):
        score = scores.random()
        if k % 100 == 7:
            rows.append({"path": str(folder / "gone" / f"{k}.jpg"), "score": None, "raw_score": None, "error": "x"})
        else:
            path = folder / "missing" / f"{k}.jpg" if k % 10 == 3 else photos[k % len(photos)]
            rows.append({"path": str(path), "score": score, "raw_score": 1 + 4 * score, "error": None})
    files = {"csv": folder / "scores.csv", "jsonl": folder / "scores.jsonl"}
    with open(files["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    with open(files["jsonl"], "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return files


LOOKUPS = "stat,lstat,newfstatat,statx"  # the system calls that look a path up


def run(src: str, scores: Path, mode: str, out: Path, lookups: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    command = [sys.executable, "-m", "arniqa", "report", str(scores), "-o", str(out), "--thumbnails", mode]
    trace = out.with_suffix(".strace")
    if lookups:
        command = ["strace", "-f", "-c", "-e", f"trace={LOOKUPS}", "-o", str(trace), *command]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    text = out.read_text(encoding="utf-8") if out.is_file() else ""
    total = trace.read_text().splitlines()[-1].split() if lookups else None  # "100.00 s us/call calls ... total"
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", text, re.S)
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "exit": os.waitstatus_to_exitcode(status),
        "bytes": len(text.encode("utf-8")),
        "embedded": text.count("data:image/jpeg;base64,"),
        "longest": max(map(len, scripts), default=0),
        "stderr_lines": stderr.count("\n"),
        "load": os.getloadavg()[0],
        "lookups": int(total[3]) if total else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True, help="a folder of photos (searched recursively)")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--modes", default="none,link,embed", help="thumbnail modes, comma-separated")
    ap.add_argument("--formats", default="csv,jsonl", help="csv, jsonl or both, comma-separated")
    ap.add_argument("--code", action="append", metavar="NAME=SRC", help="an arniqa src folder to run (repeatable)")
    ap.add_argument("--lookups", action="store_true", help="count stat-family system calls under strace")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "report-scale-cpu.json")
    args = ap.parse_args()
    from arniqa.data.folders import list_images
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    codes = dict(c.split("=", 1) for c in args.code or [f"installed={Path(__file__).parents[1] / 'src'}"])
    photos = [p.resolve() for p in list_images(args.photos)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_results(photos, args.rows, Path(tmp))
        for mode in args.modes.split(","):
            for fmt in args.formats.split(","):
                for name, src in codes.items():  # side by side: each code in turn, for each case
                    r = run(src, files[fmt], mode, Path(tmp) / "report.html", args.lookups)
                    results.append({"code": name, "thumbnails": mode, "format": fmt, **r})
                    print(
                        f"{name:<8} {mode:<6} {fmt:<6} {r['seconds']:8.1f} s {r['peak_mb']:7.0f} MB peak "
                        f"{r['bytes'] / 1e6:8.1f} MB html {r['embedded']:7} embedded, exit {r['exit']}"
                        + (f", {r['lookups'] / args.rows:.2f} lookups a row" if args.lookups else ""),
                        flush=True,
                    )
    print(f"\n{args.rows:,} rows ({len(photos)} photos repeated, 10% missing, 1% errors), {machine_summary()}")
    print(f"{'code':<8} {'thumbs':<6} {'format':<6} {'s':>8} {'MB peak':>8} {'MB html':>8} {'embedded':>8} longest")
    for r in results:
        over = " (over V8's)" if r["longest"] > V8_LONGEST else ""
        over += f", {r['lookups'] / args.rows:.2f} lookups a row" if args.lookups else ""
        print(
            f"{r['code']:<8} {r['thumbnails']:<6} {r['format']:<6} {r['seconds']:8.1f} {r['peak_mb']:8.0f} "
            f"{r['bytes'] / 1e6:8.1f} {r['embedded']:8} {r['longest']:,}{over}"
        )
    write_json(
        args.out,
        {
            "machine": machine_summary(),
            "photos": str(args.photos),
            "rows": args.rows,
            "codes": codes,
            "results": results,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
