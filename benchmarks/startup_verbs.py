"""Start-up of the verbs beside ``arniqa score`` on an ONNX file (``startup.py``): process start to the first useful
output, and the heavy modules each imports, this tree against an older commit.

Each command runs as a fresh process (``python -c`` calling ``arniqa.cli.main``) and is timed from its start to its
end, or for ``score`` to its first data row; at exit it reports its peak RSS (``VmHWM``) and which of :data:`HEAVY`
it had imported. The verbs: ``distortions``, ``distort`` with gaublur and with jpeg (level 3),
``gallery`` (tiles of 64 px), ``report`` of a 2-row result file, ``score --help``, ``score`` of one image with a
.safetensors checkpoint (the tiny stand-in model of ``tests/tiny_arniqa.py``, its ONNX export cached by an untimed
run first, as ``score``'s engine auto does on a second run) and ``benchmark synthetic`` (``--size 64x48``). The
inputs are the first 2 photos of ``--images``, resized to 96 x 64 PNGs. The older commit's ``src`` is taken with
``git archive`` and run the same way (PYTHONPATH), the two alternating; the table gives the median over --rounds.

    python benchmarks/startup_verbs.py --images /work/shared/data/pristine/bsds500 --before 6c6a2f1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from startup import ROOT, archived_src

# top-level packages (and the scipy subpackages) that cost a second or more to import here
HEAVY = ("torch", "torchvision", "timm", "onnxruntime", "scipy.interpolate", "scipy.stats", "skimage", "matplotlib")

# At exit the child writes its peak RSS (kB; its own: wait4's would count the parent's before exec) and the heavy
# modules it imported as the last line of stderr.
CHILD = f"""
import atexit, json, sys

def report():
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps([hwm, [m for m in {HEAVY!r} if m in sys.modules]]), file=sys.stderr)

atexit.register(report)
from arniqa.cli import main
main()
"""

# The tiny stand-in model for the checkpoint's untimed first run, which exports it to the cache.
PRIME = """
import sys
import tiny_arniqa
import arniqa.models.checkpoint as checkpoint
checkpoint.ARNIQA = lambda name, **options: tiny_arniqa.TinyARNIQA()
from arniqa.cli import main
main()
"""


def timed(src: Path, args: list[str], until_row: bool) -> tuple[float, float, list[str]]:
    """Seconds from the process start to its end (``until_row``: to its first data row), its peak RSS (MB, up to its
    end) and the heavy modules it imported."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONWARNINGS="ignore")
    with tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
        )
        if until_row:
            proc.stdout.readline()  # the header
            proc.stdout.readline()
            seconds = time.perf_counter() - t
        proc.stdout.read()
        _, status = os.waitpid(proc.pid, 0)
        if not until_row:
            seconds = time.perf_counter() - t
        proc.returncode = status  # reaped here: Popen must not wait for it
        err.seek(0)
        lines = err.read().splitlines()
    if status or not lines:
        sys.exit(f"error: {src}: arniqa {' '.join(args)} failed: {lines[-3:]}")
    peak_kb, imported = json.loads(lines[-1])
    return seconds, peak_kb / 1024, imported


def fixtures(images: Path, tmp: Path) -> Path:
    """2 photos of ``images`` as 96 x 64 PNGs, a result file of them and the tiny checkpoint, under ``tmp/inputs``."""
    from PIL import Image

    from arniqa.data.folders import list_images
    from arniqa.utils.messages import error_line

    try:
        photos = list_images(images, required=True)[:2]
    except ValueError as e:
        sys.exit(error_line(str(e)))
    inputs = tmp / "inputs"
    inputs.mkdir()
    for i, photo in enumerate(photos):
        with Image.open(photo) as im:
            im.convert("RGB").resize((96, 64)).save(inputs / f"{i}.png")
    rows = "".join(f"{inputs / f'{i}.png'},0.{5 + i},3.{i},\n" for i in range(len(photos)))
    (tmp / "scores.csv").write_text("path,score,raw_score,error\n" + rows)
    sys.path.insert(0, str(ROOT / "tests"))
    import pytest
    from tiny_arniqa import tiny_checkpoint

    with pytest.MonkeyPatch.context() as patch:
        tiny_checkpoint(tmp / "tiny.safetensors", patch)
    return inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="a folder of photos (the first 2 are taken)")
    ap.add_argument("--before", default="6c6a2f1", help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "startup-verbs-cpu.json")
    args = ap.parse_args()
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = fixtures(args.images, tmp)
        photo, checkpoint = str(inputs / "0.png"), str(tmp / "tiny.safetensors")
        os.environ["ARNIQA_CACHE"] = str(tmp / "cache")
        trees = {f"before ({args.before})": archived_src(args.before, tmp), "after (this tree)": ROOT / "src"}
        score = ["score", photo, "--checkpoint", checkpoint]
        for src in trees.values():  # the checkpoint's export cached, the files read: not timed
            path = os.pathsep.join(map(str, (src, ROOT / "tests")))
            env = dict(os.environ, PYTHONPATH=path, PYTHONWARNINGS="ignore")
            subprocess.run([sys.executable, "-c", PRIME, *score], check=True, capture_output=True, env=env)
        cases = {  # name: (arguments, until the first data row); OUT: a new folder per run
            "distortions": (["distortions"], False),
            "distort -n gaublur": (["distort", photo, "-n", "gaublur", "-l", "3", "-o", "OUT/a.png"], False),
            "distort -n jpeg": (["distort", photo, "-n", "jpeg", "-l", "3", "-o", "OUT/a.png"], False),
            "gallery --size 64": (["gallery", photo, "--size", "64", "-o", "OUT/g.png"], False),
            "report (2 rows)": (["report", str(tmp / "scores.csv"), "-o", "OUT/r.html"], False),
            "score --help": (["score", "--help"], False),
            "score 1 image .safetensors": (score, True),
            "benchmark synthetic (2 photos)": (
                ["benchmark", "synthetic", "--pristine", str(inputs), "--size", "64x48", "-o", "OUT"],
                False,
            ),
        }
        runs = {(case, tree): [] for case in cases for tree in trees}
        for r in range(args.rounds):
            for k, (case, tree) in enumerate(runs):
                out = str(tmp / f"out-{r}-{k}")
                verb, until_row = cases[case]
                runs[case, tree].append(timed(trees[tree], [a.replace("OUT", out) for a in verb], until_row))
    rows = [
        dict(
            verb=case,
            tree=tree,
            seconds=[r[0] for r in timed_runs],
            median_seconds=statistics.median(r[0] for r in timed_runs),
            peak_rss_mb=max(r[1] for r in timed_runs),
            imported=timed_runs[-1][2],
        )
        for (case, tree), timed_runs in runs.items()
    ]
    print(f"{'verb':<31} {'tree':<20} {'median s':>8} {'runs':>17} {'peak MB':>7}  imported")
    for r in rows:
        times = " ".join(f"{s:.2f}" for s in r["seconds"])
        print(
            f"{r['verb']:<31} {r['tree']:<20} {r['median_seconds']:8.2f} {times:>17} {r['peak_rss_mb']:7.0f}  "
            f"{' '.join(r['imported']) or '-'}"
        )
    result = {
        "benchmark": "startup_verbs",
        "command": "python benchmarks/startup_verbs.py " + " ".join(sys.argv[1:]),
        "machine": machine_summary(),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
