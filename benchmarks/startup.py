"""``arniqa score`` on an ONNX file: process start to the first row, this tree against an older commit.

A ResNet50 with random weights and a KADID-10k regressor is exported once (``arniqa export``); each
command (``python -m arniqa.cli score FILES --checkpoint model.onnx``, the defaults: ONNX Runtime, crops
protocol, CSV on stdout) runs as a fresh process and is timed from its start to the first data row on
its stdout, then stopped. The older commit's ``src`` is taken with ``git archive`` and run the same way
(PYTHONPATH), the two alternating, for 1 image and for 100 images; the table gives the median over
--rounds and whether torch was imported (read from the process's loaded libraries).

    python benchmarks/startup.py --images /work/shared/data/pristine/bsds500 --before 2cba683
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_row(src: Path, files: list[str], model: Path) -> tuple[float, bool]:
    """Seconds from the process start to its first data row, and whether it had loaded torch by then."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "arniqa.cli", "score", *files, "--checkpoint", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    proc.stdout.readline()  # the header
    row = proc.stdout.readline()
    seconds = time.perf_counter() - t
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    proc.kill()
    proc.wait()
    if not row:
        raise SystemExit(f"no row from {src}")
    return seconds, "libtorch" in maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="a folder with at least 100 photos")
    ap.add_argument("--before", default="2cba683", help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "startup-cpu.json")
    args = ap.parse_args()
    from arniqa.utils.files import write_json
    from arniqa.utils.runtime import machine_summary

    photos = sorted(str(p) for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:100]
    if not photos:
        sys.exit(f"error: {args.images}: no .jpg or .png photos")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = f"set -o pipefail; git -C {ROOT} archive {shlex.quote(args.before)} src | tar -x -C {tmp}"
        if subprocess.run(["bash", "-c", archive]).returncode:
            sys.exit(f"error: --before {args.before}: git archive failed; name a commit of this repository")
        weights = tmp / "weights"
        sys.path.insert(0, str(Path(__file__).parent))
        from peers import write_weights  # random weights in the published layout

        write_weights(tmp / "torch", weights)
        model = tmp / "model.onnx"
        subprocess.run(
            [sys.executable, "-m", "arniqa.cli", "export", "-o", str(model), "--weights-dir", str(weights)],
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
        )
        trees = {f"before ({args.before})": tmp / "src", "after (this tree)": ROOT / "src"}
        rows = []
        for n in sorted({1, len(photos)}):  # 1 and up to 100 images
            times: dict[str, list[float]] = {name: [] for name in trees}
            torch_loaded = {}
            for _ in range(args.rounds):
                for name, src in trees.items():
                    seconds, torch_loaded[name] = first_row(src, photos[:n], model)
                    times[name].append(seconds)
            for name in trees:
                rows.append(
                    dict(
                        images=n,
                        tree=name,
                        seconds=times[name],
                        median_seconds=statistics.median(times[name]),
                        torch_imported=torch_loaded[name],
                    )
                )
    print(f"{'images':>6} {'tree':<22} {'median s':>8} {'runs':>20} torch")
    for r in rows:
        runs = " ".join(f"{s:.2f}" for s in r["seconds"])
        print(f"{r['images']:>6} {r['tree']:<22} {r['median_seconds']:8.2f} {runs:>20} {r['torch_imported']}")
    result = {
        "benchmark": "startup",
        "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
        "machine": machine_summary(),
        "rows": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
