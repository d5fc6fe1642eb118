"""``arniqa demo``: the README's first command, timed from a fresh process's start to its exit.

Each round runs ``python -m arniqa demo -o DIR`` into an empty folder with an empty ``ARNIQA_CACHE`` (as a first
run does) and records its wall time, the child's peak RSS and the load average after it.

    python benchmarks/demo.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "demo-cpu.json")
    args = ap.parse_args()
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    runs = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), ARNIQA_CACHE=str(Path(tmp) / "cache"))
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "arniqa", "demo", "-o", str(Path(tmp) / "demo")], env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it
            if proc.returncode:
                sys.exit(f"error: arniqa demo exited {proc.returncode}")
            runs.append({"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "load": os.getloadavg()[0]})
    median = statistics.median(r["seconds"] for r in runs)
    for r in runs:
        print(f"arniqa demo: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB, load average {r['load']:.1f}")
    write_json(args.out, {"machine": machine_summary(), "runs": runs, "median_seconds": median})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
