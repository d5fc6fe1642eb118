"""The HTML report (``arniqa report``, ``score --html``): file size and time to write it, per thumbnail mode.

Rows as ``arniqa score`` writes them (an absolute path, ``score``, ``raw_score``, an empty ``error``), the photos
of ``--photos`` repeated up to ``--rows``, written by :func:`arniqa.reports.html.write_report` with thumbnails
``none``, ``link`` and ``embed`` (which decodes every row's photo); ``load``: the load average after each.

    python benchmarks/report_size.py --photos ../shared/data/pristine
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path


def rows_of(photos: list[Path], count: int) -> list[dict]:
    scores = random.Random(0)
    rows = []
    for k in range(count):
        score = scores.random()
        rows.append({"path": str(photos[k % len(photos)]), "score": score, "raw_score": 1 + 4 * score, "error": ""})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True, help="a folder of photos (searched recursively)")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "report-cpu.json")
    args = ap.parse_args()
    from arniqa.data.folders import list_images
    from arniqa.reports.html import write_report
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    rows = rows_of([p.resolve() for p in list_images(args.photos)], args.rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("none", "link", "embed"):
            path = Path(tmp) / f"{mode}.html"
            t = time.perf_counter()
            write_report(rows, path, thumbnails=mode)
            seconds = time.perf_counter() - t
            results.append(
                {"thumbnails": mode, "bytes": path.stat().st_size, "seconds": seconds, "load": os.getloadavg()[0]}
            )
    print(f"{args.rows:,} rows\n{'thumbnails':<10} {'MB':>8} {'s':>8}")
    for r in results:
        print(f"{r['thumbnails']:<10} {r['bytes'] / 1e6:8.2f} {r['seconds']:8.2f}")
    write_json(
        args.out, {"machine": machine_summary(), "photos": str(args.photos), "rows": args.rows, "results": results}
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
