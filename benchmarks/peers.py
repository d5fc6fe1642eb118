"""arniqa against pyiqa's ``arniqa-kadid``: the same images, the same weights, whole processes timed in turn.

Installs nothing: needs pyiqa importable by this Python (``pip install pyiqa`` in the benchmark's
environment), else it says so and exits 2. Neither side downloads: random weights in the published
layout (``ARNIQA.pth`` with ``model.*`` and ``projector.*`` keys, a TorchScript
``regressor_kadid10k.pth``) are written into a temporary torch hub cache (``TORCH_HOME``: pyiqa
reads ``hub/checkpoints/ARNIQA.pth`` and ``hub/pyiqa/regressor_kadid10k.pth``) and given to arniqa
with ``--weights-dir``. pyiqa first builds a torchvision ResNet-50 with ImageNet weights that it then
overwrites; the pyiqa process here patches ``torchvision.models.resnet50`` to build it without
weights (in this benchmark's child process, not in pyiqa).

Each round runs pyiqa (``pyiqa.create_metric("arniqa-kadid")`` then ``metric(path)`` per image, as its README
shows) and then each arniqa command (fp32 ONNX Runtime, the defaults; int8; torch) (``arniqa score FOLDER
...``), each as a fresh process (imports, model loading, decoding included). The ratio of a pair is pyiqa's wall
time over the arniqa command's in the same round; the table gives the median over rounds. Score differences: the
pyiqa protocol against pyiqa's scores, the crops protocol against arniqa's fp32 torch crops, the whole protocol
against the whole defaults, and each int8 row against the fp32 ONNX Runtime row (the defaults) of its protocol.
Also measured: the encoder alone (ONNX Runtime on 10 random crops of 224 per image, the crops protocol's network
work), as the compute limit for the crops protocol, and the crops defaults inside one process (no start-up), to
tell the scorer's own overhead from the start-up's.

    python benchmarks/peers.py --images /tmp/photos --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

PYIQA_SCRIPT = r"""
import json, sys, time
import torchvision
_resnet50 = torchvision.models.resnet50
torchvision.models.resnet50 = lambda *a, weights=None, **k: _resnet50(weights=None, **k)  # no ImageNet download
import pyiqa
metric = pyiqa.create_metric("arniqa-kadid", device="cpu")
scores = {p: float(metric(p)) for p in sys.argv[2:]}
json.dump(scores, open(sys.argv[1], "w"))
"""

# name: (protocol, extra options); the first pyiqa-protocol entry is the defaults
ARNIQA_RUNS = {
    "arniqa pyiqa protocol, defaults": ("pyiqa", []),
    "arniqa pyiqa protocol, --engine torch": ("pyiqa", ["--engine", "torch"]),
    "arniqa pyiqa protocol, bf16 + channels_last, batch 1": (
        "pyiqa",
        ["--precision", "bf16", "--channels-last", "--batch-size", "1"],
    ),
    "arniqa pyiqa protocol, int8": ("pyiqa", ["--precision", "int8"]),
    "arniqa whole protocol, defaults": ("whole", []),
    "arniqa whole protocol, int8": ("whole", ["--precision", "int8"]),
    "arniqa crops protocol, defaults": ("crops", []),
    "arniqa crops protocol, int8": ("crops", ["--precision", "int8"]),
    "arniqa crops protocol, --engine torch": ("crops", ["--engine", "torch"]),
}
INT8_REFERENCE = {
    "pyiqa": "arniqa pyiqa protocol, defaults",
    "whole": "arniqa whole protocol, defaults",
    "crops": "arniqa crops protocol, defaults",
}  # int8 rows: the difference to fp32 ONNX Runtime
CROPS_REFERENCE = "arniqa crops protocol, --engine torch"


class _Linear(nn.Module):
    """The published regressors' structure: ``weights`` (1, 4096), 0-d ``biases``, flattened output."""

    def __init__(self, weights: torch.Tensor, biases: torch.Tensor) -> None:
        super().__init__()
        self.weights, self.biases = nn.Parameter(weights), nn.Parameter(biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weights.t() + self.biases).flatten()


def write_weights(torch_home: Path, weights_dir: Path) -> None:
    """Random weights in the published layout, in pyiqa's hub cache and in ``weights_dir``."""
    torch.manual_seed(0)
    body = nn.Sequential(*list(torchvision.models.resnet50().children())[:-1])
    state = {f"model.{k}": v for k, v in body.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    state.update(
        {
            "projector.0.weight": 0.02 * torch.randn(2048, 2048, generator=g),
            "projector.0.bias": torch.zeros(2048),
            "projector.2.weight": 0.02 * torch.randn(128, 2048, generator=g),
            "projector.2.bias": torch.zeros(128),
        }
    )
    w = torch.randn(1, 4096, generator=g)
    regressor = _Linear(w / w.norm() * 40.0, torch.tensor(3.0))  # ||w|| = 10 in scaled units
    for folder, reg_folder in (
        (torch_home / "hub" / "checkpoints", torch_home / "hub" / "pyiqa"),
        (weights_dir, weights_dir),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        reg_folder.mkdir(parents=True, exist_ok=True)
        torch.save(state, folder / "ARNIQA.pth")
        torch.jit.script(regressor).save(str(reg_folder / "regressor_kadid10k.pth"))


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return seconds


def read_csv_scores(path: Path) -> dict[str, float]:
    with open(path, newline="") as f:
        return {r["path"]: float(r["score"]) for r in csv.DictReader(f)}


def encoder_limit(files: list[Path], repeats: int = 3) -> float:
    """Images/s of the network alone in the crops protocol: ONNX Runtime on 10 crops of 224 per image."""
    from arniqa.inference.engines import cached_export
    from arniqa.inference.onnx_engine import OnnxEngine
    from arniqa.models import ARNIQA

    engine = OnnxEngine(cached_export(ARNIQA("resnet50").eval()), torch.device("cpu"))
    crops = torch.rand(5, 3, 224, 224)
    engine.run(crops, crops, False)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        engine.run(crops, crops, False)
        best = min(best, time.perf_counter() - t)
    return 1.0 / best


def scorer_in_process(files: list[Path], weights_dir: Path, repeats: int = 2) -> float:
    """Images/s of ``arniqa.load`` defaults in the crops protocol inside one process (decoding, views and
    network; no start-up): the whole-process figure less the imports and model loading."""
    from arniqa.inference import load

    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=weights_dir, protocol="crops")
    scorer.score(files[:2])
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        scorer.score(files)
        best = min(best, time.perf_counter() - t)
    return len(files) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="folder of photos (scored by both sides)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of pyiqa, then every arniqa command")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers-cpu.json")
    args = ap.parse_args()
    if importlib.util.find_spec("pyiqa") is None:
        print(f"pyiqa is not importable by {sys.executable}; install it in this environment (pip install pyiqa)")
        raise SystemExit(2)
    import pyiqa

    from arniqa.cli.results import collect_paths
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    files = collect_paths([args.images]).files
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_weights(tmp / "torch", tmp / "weights")
        env = dict(
            os.environ,
            TORCH_HOME=str(tmp / "torch"),
            ARNIQA_CACHE=str(tmp / "cache"),
            HF_HUB_OFFLINE="1",
            PYTHONWARNINGS="ignore",
        )
        os.environ["ARNIQA_CACHE"] = env["ARNIQA_CACHE"]
        pyiqa_out = tmp / "pyiqa.json"
        pyiqa_cmd = [sys.executable, "-c", PYIQA_SCRIPT, str(pyiqa_out), *map(str, files)]
        arniqa_cmds = {
            name: [
                sys.executable,
                "-m",
                "arniqa.cli",
                "score",
                str(args.images),
                "--weights-dir",
                str(tmp / "weights"),
                "--regressor",
                "kadid10k",
                "--protocol",
                protocol,
                *extra,
                "-o",
                str(tmp / f"{i}.csv"),
            ]
            for i, (name, (protocol, extra)) in enumerate(ARNIQA_RUNS.items())
        }
        first_run = timed(arniqa_cmds["arniqa pyiqa protocol, defaults"], env)  # exports into the empty cache
        first_int8_run = timed(arniqa_cmds["arniqa pyiqa protocol, int8"], env)  # quantizes into the cache
        times: dict[str, list[float]] = {"pyiqa arniqa-kadid": [], **{n: [] for n in arniqa_cmds}}
        for _ in range(args.rounds):
            times["pyiqa arniqa-kadid"].append(timed(pyiqa_cmd, env))
            for name, cmd in arniqa_cmds.items():
                times[name].append(timed(cmd, env))
        pyiqa_scores = json.loads(pyiqa_out.read_text())
        scores = {name: read_csv_scores(Path(cmd[-1])) for name, cmd in arniqa_cmds.items()}
        limit = encoder_limit(files)
        in_process = scorer_in_process(files, tmp / "weights")

    n = len(files)
    from PIL import Image

    dims = sorted({Image.open(f).size for f in files})
    sizes = f"{len(dims)} sizes, {dims[0][0]}x{dims[0][1]} to {dims[-1][0]}x{dims[-1][1]}"
    rows = []
    for name, ts in times.items():
        protocol = ARNIQA_RUNS[name][0] if name in ARNIQA_RUNS else "pyiqa"
        ratios = [p / t for p, t in zip(times["pyiqa arniqa-kadid"], ts)]
        against = (
            INT8_REFERENCE[protocol]
            if "int8" in name
            else "pyiqa"
            if protocol == "pyiqa"
            else "arniqa whole protocol, defaults"
            if protocol == "whole"
            else CROPS_REFERENCE
        )
        ref = pyiqa_scores if against == "pyiqa" else scores[against]
        mine = pyiqa_scores if name not in scores else scores[name]
        diff = max(abs(mine[p] - ref[p]) for p in ref)
        rows.append(
            dict(
                run=name,
                protocol=protocol,
                seconds=ts,
                images_per_s=[n / t for t in ts],
                speed_vs_pyiqa_per_round=ratios,
                median_speed_vs_pyiqa=statistics.median(ratios),
                max_score_diff=diff,
                diff_against=against,
            )
        )
    print(
        f"{n} images, {args.rounds} rounds; first arniqa run (exports into the cache) {first_run:.1f} s, "
        f"first int8 run (quantizes into the cache) {first_int8_run:.1f} s"
    )
    print(f"{'run':<56} {'median s':>8} {'img/s':>6} {'x pyiqa (per round)':>26} {'median':>6} {'max|d|':>8}")
    for r in rows:
        per = " ".join(f"{x:.2f}" for x in r["speed_vs_pyiqa_per_round"])
        print(
            f"{r['run']:<56} {statistics.median(r['seconds']):8.2f} {statistics.median(r['images_per_s']):6.2f} "
            f"{per:>26} {r['median_speed_vs_pyiqa']:6.2f} {r['max_score_diff']:8.1e}"
        )
    crops = next(r for r in rows if r["run"] == "arniqa crops protocol, defaults")
    print(
        f"encoder alone (ONNX Runtime, 10 crops of 224 per image): {limit:.2f} img/s; crops defaults reach "
        f"{statistics.median(crops['images_per_s']) / limit:.2f} of it (whole processes, start-up included); "
        f"in one process the crops defaults score {in_process:.2f} img/s, {in_process / limit:.2f} of it"
    )
    result = {
        "benchmark": "peers",
        "command": "python benchmarks/peers.py " + " ".join(sys.argv[1:]),
        "machine": machine_summary(),
        "python": sys.executable,
        "torch": torch.__version__,
        "pyiqa": pyiqa.__version__,
        "images": n,
        "image_sizes": sizes,
        "weights": "random, published layout, same files for both",
        "rounds": args.rounds,
        "first_arniqa_run_seconds_with_export": first_run,
        "first_int8_run_seconds_with_quantization": first_int8_run,
        "encoder_alone_crops_images_per_s": limit,
        "crops_defaults_in_process_images_per_s": in_process,
        "rows": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
