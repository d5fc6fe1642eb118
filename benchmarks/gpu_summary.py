"""The GPU session's summary (``summary.md``: one table of every figure and what it is compared with),
and the curve's plan (batch, where the chains run, steps) from the step stages.

    python3 benchmarks/gpu_summary.py RESULTS > RESULTS/summary.md
    python3 benchmarks/gpu_summary.py RESULTS --curve-plan --seconds 240 --left 300 --smoke 0
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

# The CPU learning curve this project published (docs/results/ablation-cpu-20x: SE-ResNet50, 96 px, batch 8).
CPU_CURVE = (
    Path(__file__).resolve().parents[1] / "docs" / "results" / "ablation-cpu-20x" / "curve" / "se_resnet50" / "seed0"
)
CURVE_OVERHEAD_S = 55  # the curve stage apart from training: the synthetic set, three probes, start-up
EPOCH_OVERHEAD = (
    2.5  # a training step in a run (each epoch starts its workers, saves the state) against the step stage's
)
MIN_STEPS_PER_EPOCH = 8  # each epoch starts its DataLoader workers anew and saves the state: not too few steps
HOLDOUT = 6  # configs/gpu_curve.yaml's held-out photos


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def steps_measured(results: Path) -> list[dict]:
    return [r for p in sorted(results.glob("step-*.json")) if (r := read_json(p)) and r.get("full_samples_per_s")]


def curve_plan(results: Path, seconds: float, left: float, smoke: bool, train_images: int) -> tuple[int, str, int]:
    """(batch, degrade_on, steps): the fastest step per sample among the batches that give an epoch of at
    least :data:`MIN_STEPS_PER_EPOCH` steps, and as many steps as ``seconds`` of training take, within what
    ``left`` allows after the curve's other work."""
    if smoke:
        return 2, "device", 2
    steps = [r for r in steps_measured(results) if train_images // r["batch"] >= MIN_STEPS_PER_EPOCH]
    best = max(steps, key=lambda r: r["full_samples_per_s"], default=None)
    batch, mode, s_per_step = (
        (best["batch"], best["degrade_on"], best["full_s_per_step"]) if best else (64, "workers", 0.5)
    )
    train_s = max(30.0, min(seconds, left - CURVE_OVERHEAD_S))
    return batch, mode, max(20, int(train_s / (EPOCH_OVERHEAD * s_per_step)) // 2 * 2)


def stage_rows(results: Path) -> list[dict]:
    try:
        with open(results / "stages.tsv") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    except OSError:
        return []


def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table(results: Path) -> list[tuple[str, str, str, str, str]]:
    """(figure, measured here, compared with, its value, ratio or remark) rows."""
    rows = []
    pipe = read_json(results / "pipeline.json")
    if pipe:
        rows.append(
            (
                f"DataLoader alone, {pipe['workers']} workers, batch {pipe['batch']} (samples/s)",
                fmt(pipe["pipeline_samples_per_s"], 1),
                "per worker",
                fmt(pipe["per_worker_samples_per_s"], 1),
                "",
            )
        )
    for r in sorted(steps_measured(results), key=lambda r: (r["degrade_on"], r["batch"])):
        rows.append(
            (
                f"training step, degrade_on={r['degrade_on']}, batch {r['batch']}, {r['workers']} workers (s/step)",
                fmt(r["full_s_per_step"]),
                "the encoder alone, same batch",
                fmt(r["encoder_s_per_step"]),
                f"{r['full_s_per_step'] / r['encoder_s_per_step']:.2f}x; {r['full_samples_per_s']:.0f} samples/s",
            )
        )
    scoring = read_json(results / "scoring.json")
    if scoring:
        by = {(r["size"], r["protocol"], r["path"]): r for r in scoring["rows"]}
        for (size, protocol, path), r in by.items():
            if path.startswith("encoder") or path == "loop":
                continue
            precision = "bf16" if "bf16" in path else "fp32"
            batch = next(
                (m[1:] for m in path.split("@")[1:] if m.startswith("b")), str(scoring.get("batch_size_images"))
            )
            encoder = by.get((size, protocol, f"encoder-{precision}@b{batch}")) or by.get(
                (size, protocol, f"encoder-{precision}@b32")
            )
            loop = by.get((size, protocol, "loop"))
            remark = f"{r['images_per_s'] / loop['images_per_s']:.1f}x the one-at-a-time loop" if loop else ""
            if r.get("max_dev") is not None:
                remark += f"; max |d score| {r['max_dev']:.1e} vs fp32"
            rows.append(
                (
                    f"scoring {protocol} {size}, {path} (images/s)",
                    fmt(r["images_per_s"], 1),
                    f"the encoder alone ({encoder['path']})" if encoder else "the encoder alone: not measured",
                    fmt(encoder["images_per_s"], 1) if encoder else "–",
                    (f"{r['images_per_s'] / encoder['images_per_s']:.0%} of it; " if encoder else "") + remark,
                )
            )
        for (size, protocol, path), r in by.items():
            if path == "loop":
                rows.append(
                    (
                        f"scoring {protocol} {size}, one image at a time (images/s)",
                        fmt(r["images_per_s"], 1),
                        "pyiqa's command line does this",
                        "",
                        "",
                    )
                )
    codecs = read_json(results / "jpeg_codecs.json")
    if codecs:
        for r in codecs["rows"]:
            d = r["gpu_minus_pil"]
            rows.append(
                (
                    f"JPEG distortion q{r['quality']}, {r['crops']} crops of 224 (ms/crop)"
                    + (" (no GPU: the CPU path stands in)" if codecs.get("stand_in") else ""),
                    fmt(r["gpu_ms_per_crop"]),
                    "PIL, one crop at a time (CPU path, threads)",
                    f"{fmt(r['pil_ms_per_crop'])} ({fmt(r['cpu_ms_per_crop'])})",
                    f"GPU - PIL: {d['equal']:.1%} of pixels equal, {d['within_1']:.1%} within 1, "
                    f"p99 {d['p99']:.0f}, max {d['max']:.0f}",
                )
            )
        rows.append(
            (
                "GPU JPEG codec reproduces the CPU bytes (jpeg uses it on CUDA)",
                str(codecs["gpu_codec_reproduces_cpu"]),
                "",
                "",
                "",
            )
        )
    rows += curve_rows(results)
    return rows


def curve_rows(results: Path) -> list[tuple]:
    run = results / "curve" / "se_resnet50" / "seed0"
    training = read_json(run / "training.json")
    cpu_training = read_json(CPU_CURVE / "training.json")
    rows = []
    if training:
        cpu = f"{cpu_training['samples'] / cpu_training['seconds']:.1f}" if cpu_training else "–"
        rows.append(
            (
                f"curve training, {training['global_steps']} steps, {training['samples']} samples (samples/s)",
                fmt(training["samples"] / training["seconds"], 1),
                "the CPU curve (96 px, batch 8, 2-core Xeon)",
                cpu,
                f"{training['seconds']:.0f} s of training",
            )
        )
    stages = sorted((p.parent.name, read_json(p)) for p in run.glob("*/result.json"))
    cpu_final = read_json(CPU_CURVE / "trained" / "result.json")
    for name, result in stages:
        if not result:
            continue
        bench = result["benchmarks"]["synthetic"]
        cpu = (
            read_json(CPU_CURVE / name / "result.json")
            if name == "untrained"
            else cpu_final
            if name == "trained"
            else None
        )
        cpu_bench = cpu["benchmarks"]["synthetic"] if cpu else None
        rows.append(
            (
                f"curve probe at step {result['step']}: SRCC (PLCC)",
                f"{bench['srcc']['median']:.3f} ({bench['plcc']['median']:.3f})",
                "the CPU curve" + (f" at step {cpu['step']}" if cpu else ""),
                f"{cpu_bench['srcc']['median']:.3f} ({cpu_bench['plcc']['median']:.3f})" if cpu_bench else "–",
                "",
            )
        )
        for group, g in sorted(bench.get("per_group", {}).items()):
            c = (cpu_bench or {}).get("per_group", {}).get(group)
            rows.append(
                (
                    f"  step {result['step']}, {group} (SRCC within the group)",
                    fmt(g["srcc"]),
                    "the CPU curve",
                    fmt(c["srcc"]) if c else "–",
                    "",
                )
            )
    scores = results / "scores.csv"
    if scores.exists():
        with open(scores) as f:
            got = list(csv.DictReader(f))
        ok = sum(1 for r in got if not r.get("error"))
        rows.append(("the model's bf16 parts scored photos (rows without error)", f"{ok} of {len(got)}", "", "", ""))
    return rows


def summary(results: Path) -> str:
    lines = ["# GPU session", ""]
    machine = (results / "machine.log").read_text(errors="replace") if (results / "machine.log").exists() else ""
    # nvidia-smi's table row ("|   0  NVIDIA H200    On  |  ..."): the name alone, its pipes would cut the line
    gpu = next(
        (m[1] for line in machine.splitlines() if (m := re.search(r"((?:NVIDIA|Tesla) \S+(?: \S+)*?)\s{2,}", line))),
        None,
    )
    cpu = next((line.split(":", 1)[1].strip() for line in machine.splitlines() if line.startswith("Model name")), None)
    lines += [
        f"Machine: {gpu or 'no GPU named'}; CPU: {cpu or 'unknown'}.",
        "",
        "| figure | measured here | compared with | its value | ratio, remark |",
        "|---|---:|---|---:|---|",
    ]
    lines += [f"| {' | '.join(cell.replace('|', chr(92) + '|') for cell in row)} |" for row in table(results)]
    lines += ["", "Stages:", ""] + [
        f"- {r['stage']}: {r['status']} ({r['seconds']} s of {r['limit']})" for r in stage_rows(results)
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--curve-plan", action="store_true")
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--left", type=float, default=300)
    ap.add_argument("--smoke", type=int, default=0)
    ap.add_argument("--photos", type=Path, default=None, help="the curve's pristine folder (its size bounds the batch)")
    args = ap.parse_args()
    if args.curve_plan:
        from arniqa.data.folders import training_images

        train_images = len(training_images(args.photos)) - HOLDOUT if args.photos else 512
        print(*curve_plan(args.results, args.seconds, args.left, bool(args.smoke), train_images))
    else:
        print(summary(args.results), end="")


if __name__ == "__main__":
    main()
