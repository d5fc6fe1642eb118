"""``arniqa score`` on an ONNX file: process start to the first row, this tree against an older commit.

A ResNet50 with random weights and a KADID-10k regressor is exported once (``arniqa export``); each
command (``python -m arniqa.cli score FILES --checkpoint model.onnx``, the defaults: ONNX Runtime, crops
protocol, CSV on stdout) runs as a fresh process and is timed from its start to the first data row on
its stdout, then stopped. The older commit's ``src`` is taken with ``git archive`` and run the same way
(PYTHONPATH), the two alternating, for 1 image and for 100 images; the table gives the median over
--rounds, the largest peak RSS (to the first row) and whether torch was imported (read from the process's loaded
libraries).

With ``--checkpoint FILE`` (a checkpoint of this project, e.g. ``arniqa demo``'s ``model.safetensors``) it times
one image scored with that checkpoint instead: as it is (engine auto, its export in a private cache made before
the timed runs), with ``--engine torch``, and as its own ``arniqa export`` file, all interleaved.

    python benchmarks/startup.py --images /work/shared/data/pristine/bsds500 --before 2cba683
    python benchmarks/startup.py --images /work/shared/data/pristine/bsds500 --before main \
        --checkpoint /tmp/demo/model.safetensors --out benchmarks/results/startup-checkpoint-cpu.json
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


def archived_src(commit: str, into: Path) -> Path:
    """The ``src`` folder of ``commit`` (``git archive``) under ``into``; exits with one line if it is no commit."""
    archive = f"set -o pipefail; git -C {ROOT} archive {shlex.quote(commit)} src | tar -x -C {shlex.quote(str(into))}"
    if subprocess.run(["bash", "-c", archive]).returncode:
        sys.exit(f"error: --before {commit}: git archive failed; name a commit of this repository")
    return into / "src"


def commit_label(commit: str) -> str:
    """``commit`` as a table names it: ``main b32371e`` (its short hash)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", commit], capture_output=True, text=True)
    return f"{commit} {sha.stdout.strip()}"


def first_row(src: Path, files: list[str], model: Path, options: tuple = ()) -> tuple[float, bool, float]:
    """Seconds from the process start to its first data row, whether it had loaded torch by then, and its peak RSS
    (MB) by then."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "arniqa.cli", "score", *files, "--checkpoint", str(model), *options],
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
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9  # reaped here: Popen must not wait for it
    if not row:
        raise SystemExit(f"no row from {src}")
    return seconds, "libtorch" in maps, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--images",
        type=Path,
        required=True,
        help="a folder with at least 100 photos (searched as arniqa score searches one)",
    )
    ap.add_argument("--before", default="2cba683", help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--checkpoint", type=Path, help="a checkpoint of this project: time it instead (1 image)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "startup-cpu.json")
    args = ap.parse_args()
    from arniqa.data.folders import list_images
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.messages import error_line
    from arniqa.utils.runtime import machine_summary

    try:
        photos = [str(p) for p in list_images(args.images, required=True)[:100]]  # those arniqa score takes
    except ValueError as e:
        sys.exit(error_line(str(e)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = archived_src(args.before, tmp)
        os.environ["ARNIQA_CACHE"] = str(tmp / "cache")  # the checkpoint's export: made here, not taken from elsewhere
        export = [sys.executable, "-m", "arniqa.cli", "export", "-o", str(tmp / "model.onnx")]
        if args.checkpoint is None:
            weights = tmp / "weights"
            sys.path.insert(0, str(Path(__file__).parent))
            from peers import write_weights  # random weights in the published layout

            write_weights(tmp / "torch", weights)
            export += ["--weights-dir", str(weights)]
            cases = [(n, "model.onnx", tmp / "model.onnx", ()) for n in sorted({1, len(photos)})]
        else:
            export += ["--checkpoint", str(args.checkpoint)]
            cases = [
                (1, args.checkpoint.name, args.checkpoint, ()),
                (1, args.checkpoint.name + " --engine torch", args.checkpoint, ("--engine", "torch")),
                (1, "its export (.onnx)", tmp / "model.onnx", ()),
            ]
        subprocess.run(export, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
        trees = {f"before ({args.before})": before, "after (this tree)": ROOT / "src"}
        runs = {(case, tree): [] for case in cases for tree in trees}
        for src in trees.values():  # a run of each tree, not timed: a checkpoint's export cached, the files read
            first_row(src, photos[:1], args.checkpoint or tmp / "model.onnx")
        for _ in range(args.rounds):
            for case, tree in runs:
                runs[case, tree].append(first_row(trees[tree], photos[: case[0]], case[2], case[3]))
    rows = [
        dict(
            images=case[0],
            model=case[1],
            tree=tree,
            seconds=[r[0] for r in timed],
            median_seconds=statistics.median(r[0] for r in timed),
            peak_rss_mb=max(r[2] for r in timed),
            torch_imported=timed[-1][1],
        )
        for (case, tree), timed in runs.items()
    ]
    print(f"{'images':>6} {'model':<40} {'tree':<22} {'median s':>8} {'runs':>20} {'peak MB':>8} torch")
    for r in rows:
        times = " ".join(f"{s:.2f}" for s in r["seconds"])
        print(
            f"{r['images']:>6} {r['model']:<40} {r['tree']:<22} {r['median_seconds']:8.2f} {times:>20} "
            f"{r['peak_rss_mb']:8.0f} {r['torch_imported']}"
        )
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
