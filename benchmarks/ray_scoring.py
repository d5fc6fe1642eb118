"""``arniqa score`` on Ray against a local run: images/s for a folder of photos and the same photos in tar shards.

Modes: ``local`` (one process, as ``arniqa score`` runs), ``ray1`` and ``ray2`` (``--ray local`` with 1 and 2
actors on this machine: 1 actor holds both CPUs, 2 actors one each), each on the folder (``-dir``) or on the
shards (``-tar``). Each mode scores every photo once, with the default model options (crops protocol and the
device's default engine and batch; the committed figures were measured at batch 8) and random weights in the
published layout (speed does not depend on the values); the ONNX export is made before the first mode, so no
mode pays for it. Reported per mode: ``start_s`` (until the first row comes back: loading the model, and for Ray
starting the actors and the first blocks, whose rows arrive together; the Ray instance is started before),
``total_s`` and ``images_per_s`` over the whole run (what a user waits for). The rows of every mode are checked
against the others' (mean score within 1e-6).

Modes run one after another, each can run alone (``--modes``), and the results are merged by mode into
the JSON, so each timing run stays short::

    python benchmarks/ray_scoring.py --photos /tmp/photos --shards /tmp/shards --modes local-dir
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from arniqa.cli.results import collect_paths
from arniqa.inference import load
from arniqa.integrations.ray import RayScorer, connected
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import machine_summary

MODES = ("local-dir", "local-tar", "ray1-dir", "ray2-dir", "ray2-tar")


def random_weights(folder: Path) -> Path:
    """Random weights in the published layout (peers.py's, also in pyiqa's hub layout), made once."""
    from peers import write_weights  # benchmarks/ is on sys.path when a script here runs

    if not (folder / "regressor_kadid10k.pth").is_file():
        write_weights(folder / "torch", folder)
    return folder


def timed(results) -> tuple[list, float, float]:
    """The rows of the iterator ``results``, the seconds until the first and until the last."""
    t0 = time.perf_counter()
    rows, first = [], None
    for r in results:
        first = first or time.perf_counter() - t0
        rows.append((r.source, r.score, r.error))
    return rows, first, time.perf_counter() - t0


def run_mode(mode: str, items: dict, options: dict) -> tuple[list, float, float]:
    where, kind = mode.split("-")
    if where == "local":
        t0 = time.perf_counter()
        scorer = load("arniqa-kadid10k", **options)
        loaded = time.perf_counter() - t0
        rows, first, total = timed(scorer.iter_scores(items[kind]))
        return rows, loaded + first, loaded + total
    return timed(RayScorer({"model": "arniqa-kadid10k", **options}, workers=int(where[3:])).iter_scores(items[kind]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, required=True, help="folder of photos")
    ap.add_argument("--shards", type=Path, required=True, help="folder of tar shards of the same photos")
    ap.add_argument("--weights", type=Path, default=Path("/tmp/arniqa-bench-weights"))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray-cpu.json")
    args = ap.parse_args()
    modes = args.modes.split(",")
    options = {"weights_dir": str(random_weights(args.weights)), "device": "cpu"}
    items = {"dir": collect_paths([args.photos]).files, "tar": collect_paths(sorted(args.shards.glob("*.tar"))).files}
    load("arniqa-kadid10k", **options)  # the cached ONNX export, before any timing
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    table = {r["mode"]: r for r in previous.get("rows", [])}
    reference = next((r["mean_score"] for r in table.values()), None)  # every mode scores the same photos
    with connected("local") if any(m.startswith("ray") for m in modes) else nullcontext():
        for mode in modes:
            rows, first, total = run_mode(mode, items, options)
            n = len(rows)
            scores = [s for _, s, e in rows if e is None]
            mean = sum(scores) / max(len(scores), 1)  # over the scored images, not the failed ones
            reference = mean if reference is None else reference
            if abs(mean - reference) > 1e-6:  # --photos and --shards (and earlier runs in --out) hold other images
                raise SystemExit(
                    f"error: {mode}: mean score {mean} differs from {reference}; are they the same photos?"
                )
            table[mode] = {
                "mode": mode,
                "images": n,
                "errors": sum(e is not None for _, _, e in rows),
                "mean_score": mean,
                "start_s": round(first, 2),
                "total_s": round(total, 2),
                "images_per_s": round(n / total, 3),
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "load_average": os.getloadavg(),
                "machine": machine_summary(),  # rows of earlier runs keep their own
            }
    out = {
        "benchmark": "ray_scoring",
        "machine": machine_summary(),
        "torch": torch.__version__,
        "options": "crops protocol, onnxruntime, batch 8, random weights",
        "command": "python benchmarks/ray_scoring.py --photos PHOTOS --shards SHARDS --modes MODE (one mode per run, "
        "each under flock -x)",
        "rows": [table[m] for m in MODES if m in table],
    }
    write_json(args.out, out)
    show = Table("mode", "images", "start s", "total s", "images/s")
    for r in out["rows"]:
        show.add_row(
            r["mode"], str(r["images"]), f"{r['start_s']:.1f}", f"{r['total_s']:.1f}", f"{r['images_per_s']:.2f}"
        )
    Console().print(show)


if __name__ == "__main__":
    main()
