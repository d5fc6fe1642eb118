"""Degradation-model throughput: crops/s for every distortion and level, and for the sampler's mix.

Every distortion runs on batches of 224x224 crops (batch 64) cut from scikit-image sample photos.
The mix samples one chain per training sample with ``sample_chain`` and applies it to that
sample's 4 crops with ``apply_chains`` (16 samples x 4 crops per batch), as training does. On the
CPU the mix also runs in ``--processes`` 1-thread processes at once (default 2, as DataLoader
workers on a 2-core machine would), each on its own crops; their crops/s together, counted while
all of them are working, are the machine's throughput. On a GPU the distortions draw their
random internals from a generator on the GPU, as training does.
Reference costs (ms per crop, the reference code on a 2-core x86-64 CPU, arniqa-reference.md
section 7) give the speed-up. Writes benchmarks/results/degradations-<device>.json.

    python benchmarks/degradations.py --threads 2            # CPU
    python benchmarks/degradations.py --device cuda          # GPU, when there is one
    THP_MEM_ALLOC_ENABLE=1 python benchmarks/degradations.py --keep-freed-memory  # as `arniqa train` runs
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from arniqa.constants import CROP_SIZE
from arniqa.degradations import GROUP_OF, GROUPS, NAMES, NUM_LEVELS, distort
from arniqa.degradations.sampler import apply_chains, level_probs, sample_chain
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import cpu_name, keep_freed_memory

# Reference ms per crop at levels 1..5: {threads: {name: (...)}} (arniqa-reference.md section 7).
REFERENCE_MS = {
    1: {
        "gaublur": (1.1, 1.1, 1.8, 4.5, 20.0),
        "lensblur": (1.3, 2.3, 4.7, 9.1, 13.8),
        "motionblur": (0.6, 1.8, 2.1, 2.2, 3.6),
        "colordiff": (14.1, 28.4, 61.1, 95.0, 197.4),
        "colorshift": (9.8, 9.7, 11.5, 11.1, 9.3),
        "colorsat1": (2.2, 2.1, 2.2, 2.2, 2.1),
        "colorsat2": (3.7, 3.8, 3.6, 3.6, 3.8),
        "jpeg2000": (20.6, 19.9, 19.7, 19.3, 19.3),
        "jpeg": (0.8, 0.7, 0.6, 0.6, 0.6),
        "whitenoise": (0.6, 0.6, 0.6, 0.6, 0.6),
        "whitenoiseCC": (0.9, 0.9, 0.9, 0.9, 0.9),
        "impulsenoise": (0.1, 0.1, 0.2, 0.2, 0.2),
        "multnoise": (0.6, 0.6, 0.6, 0.6, 0.6),
        "brighten": (7.1, 6.8, 7.0, 7.0, 6.5),
        "darken": (4.3, 4.5, 4.4, 4.1, 4.3),
        "meanshift": (0.2, 0.3, 0.3, 0.2, 0.2),
        "jitter": (37.9, 38.4, 39.3, 41.2, 37.9),
        "noneccpatch": (0.3, 0.5, 0.8, 1.1, 1.2),
        "pixelate": (0.2, 0.2, 0.2, 0.1, 0.1),
        "quantization": (3.3, 2.9, 2.5, 2.8, 1.8),
        "colorblock": (0.1, 0.2, 0.2, 0.3, 0.6),
        "highsharpen": (8.7, 8.1, 7.4, 7.2, 7.3),
        "lincontrchange": (6.8, 6.7, 8.7, 6.6, 7.0),
        "nonlincontrchange": (0.3, 0.3, 0.3, 0.3, 0.3),
    },
    2: {
        "gaublur": (0.7, 0.7, 1.1, 2.5, 10.8),
        "lensblur": (1.3, 1.8, 3.0, 5.2, 7.8),
        "motionblur": (1.4, 0.8, 1.3, 1.3, 2.1),
        "colordiff": (7.6, 14.7, 33.3, 50.4, 96.9),
        "colorshift": (5.1, 5.6, 5.5, 5.5, 5.9),
        "colorsat1": (1.9, 1.9, 2.3, 1.3, 1.3),
        "colorsat2": (2.1, 2.2, 2.4, 2.7, 3.1),
        "jpeg2000": (24.0, 25.4, 21.6, 23.7, 19.6),
        "jpeg": (0.6, 0.6, 0.6, 0.5, 0.5),
        "whitenoise": (0.6, 0.6, 0.6, 0.6, 0.6),
        "whitenoiseCC": (0.8, 0.9, 0.8, 0.9, 1.0),
        "impulsenoise": (0.1, 0.2, 0.2, 0.2, 0.2),
        "multnoise": (0.6, 0.6, 0.6, 0.6, 0.7),
        "brighten": (4.4, 4.1, 4.4, 3.9, 3.8),
        "darken": (2.3, 2.3, 2.5, 2.4, 2.5),
        "meanshift": (0.1, 0.2, 0.2, 0.1, 0.2),
        "jitter": (21.8, 23.4, 22.0, 26.9, 31.1),
        "noneccpatch": (0.3, 0.5, 0.4, 0.6, 0.7),
        "pixelate": (0.1, 0.1, 0.1, 0.1, 0.1),
        "quantization": (1.6, 1.5, 1.4, 1.3, 1.2),
        "colorblock": (0.1, 0.1, 0.2, 0.3, 0.3),
        "highsharpen": (3.9, 4.0, 4.0, 4.7, 4.0),
        "lincontrchange": (4.2, 4.0, 4.7, 4.4, 3.8),
        "nonlincontrchange": (0.3, 0.2, 0.3, 0.3, 0.3),
    },
}
REFERENCE_MIX_MS = {1: 16.8, 2: 11.7}  # expected cost per crop under the reference sampler
REFERENCE_SOURCE = (
    "quoted, not measured in this run: the reference code on a 2-core AMD EPYC, torch 2.14.1"
    " (arniqa-reference.md section 7); 'in as many processes' is projected as the 1-thread cost / processes"
)
CROPS_PER_SAMPLE = 4
MAX_DISTORTIONS, PRISTINE_PROB = 4, 0.05  # the training sampler's defaults


def mix_weight(name: str) -> float:
    """Expected number of times ``name`` is applied to a crop: P(distorted) * E[k]/7 / group size."""
    mean_k = (1 + MAX_DISTORTIONS) / 2
    return (1 - PRISTINE_PROB) * mean_k / len(GROUPS) / len(GROUPS[GROUP_OF[name]])


def mix_share(name: str, ms: list[float]) -> float:
    """Expected ms per crop that ``name`` adds to the sampler's mix, from its per-level costs."""
    return mix_weight(name) * sum(p * t for p, t in zip(level_probs(), ms))


def photo_crops(count: int, size: int, seed: int) -> torch.Tensor:
    """``count`` random size x size crops of scikit-image's colour sample photos, float (count, 3, size, size)."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    g = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(count):
        photo = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1)
        top = int(torch.randint(0, photo.shape[1] - size + 1, (), generator=g))
        left = int(torch.randint(0, photo.shape[2] - size + 1, (), generator=g))
        crops.append(photo[:, top : top + size, left : left + size])
    return torch.stack(crops).float() / 255


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of ``repeats`` calls after one warm-up call."""
    fn()
    synchronize(device)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def bench_distortion(crops, device, repeats, name, generator) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU ms per crop at every level."""
    times = [time_call(lambda: distort(crops, name, level, generator), device, repeats) for level in range(1, 6)]
    return [1000 * w / crops.shape[0] for w, _ in times], [1000 * c / crops.shape[0] for _, c in times]


def chains_for(samples: int, generator) -> list:
    """One sampled chain per sample, repeated for its 4 crops."""
    return [c for c in (sample_chain(generator) for _ in range(samples)) for _ in range(CROPS_PER_SAMPLE)]


def bench_mix(crops, device, batches, generator) -> tuple[float, float]:
    """Mean wall-clock and CPU ms per crop over ``batches`` batches, fresh chains for each. As in
    training, chains come from a CPU generator and the internals from ``generator``."""
    samples = crops.shape[0] // CROPS_PER_SAMPLE
    chain_generator = torch.Generator().manual_seed(1)
    apply_chains(crops, chains_for(samples, chain_generator), generator)
    synchronize(device)
    wall = cpu = 0.0
    for _ in range(batches):
        chains = chains_for(samples, chain_generator)
        start, start_cpu = time.perf_counter(), time.process_time()
        apply_chains(crops, chains, generator)
        synchronize(device)
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    n = batches * crops.shape[0]
    return 1000 * wall / n, 1000 * cpu / n


def _mix_worker(seed: int, batches: int, batch: int, keep_freed: bool, barrier, results) -> None:
    """One 1-thread worker process of ``bench_mix_processes``: warm up, wait for the others, time
    its batches (the time at which each ends) and its CPU time."""
    if keep_freed:
        keep_freed_memory()
    torch.set_num_threads(1)
    crops = photo_crops(batch, CROP_SIZE, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    samples = batch // CROPS_PER_SAMPLE
    apply_chains(crops, chains_for(samples, generator), generator)
    barrier.wait()
    start_cpu = time.process_time()
    timeline = [(time.perf_counter(), 0)]
    for i in range(batches):
        apply_chains(crops, chains_for(samples, generator), generator)
        timeline.append((time.perf_counter(), (i + 1) * batch))
    results.put((timeline, time.process_time() - start_cpu))


def crops_done(timeline: list[tuple[float, int]], t: float) -> float:
    """Crops a worker had finished at time ``t``, the batch in progress counted pro rata; the
    timeline lists (time, crops finished) from its start, one entry per batch."""
    for (t0, n0), (t1, n1) in itertools.pairwise(timeline):
        if t <= t1:
            return n0 + (n1 - n0) * max(0.0, t - t0) / (t1 - t0)
    return timeline[-1][1]


def busy_ms_per_crop(timelines: list[list[tuple[float, int]]]) -> float:
    """Wall ms per crop of all workers together while every one of them was working, from the
    last start to the first finish: the steady rate of workers that are always given more work
    (DataLoader workers are), free of the tail where the last ones run alone."""
    start = max(t[0][0] for t in timelines)
    end = min(t[-1][0] for t in timelines)
    crops = sum(crops_done(t, end) - crops_done(t, start) for t in timelines)
    return 1000 * (end - start) / crops


def bench_mix_processes(processes: int, batches: int, batch: int, keep_freed: bool) -> dict:
    """The mix in ``processes`` worker processes at once (as DataLoader workers would run it), each
    with its own crops and chains: wall ms per crop of all of them together while all were busy
    (``ms_per_crop``) and until the last one finished, and CPU ms per crop."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_mix_worker, args=(seed, batches, batch, keep_freed, barrier, results))
        for seed in range(processes)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    timelines = [timeline for timeline, _ in reports]
    crops = sum(t[-1][1] for t in timelines)
    until_last = max(t[-1][0] for t in timelines) - min(t[0][0] for t in timelines)
    return {
        "ms_per_crop": busy_ms_per_crop(timelines),
        "ms_per_crop_until_last_finished": 1000 * until_last / crops,
        "cpu_ms_per_crop": 1000 * sum(cpu for _, cpu in reports) / crops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per distortion and level (median)")
    parser.add_argument("--batch", type=int, default=64, help="crops per batch (default 64)")
    parser.add_argument("--mix-batches", type=int, default=30, help="batches of 16 samples x 4 crops for the mix")
    parser.add_argument(
        "--names",
        nargs="*",
        default=list(NAMES),
        choices=NAMES,
        metavar="NAME",
        help="distortions to time (default all)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="CPU: also time the mix in this many 1-thread processes at once (0: skip)",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc keeps freed memory for reuse, as arniqa train does (arniqa/utils/runtime.py)",
    )
    parser.add_argument("--quick", action="store_true", help="batch 16, 1 repeat, 5 mix batches")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats, args.mix_batches = 16, 1, 5
    keep_freed = args.keep_freed_memory and keep_freed_memory()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    console = Console(width=None if sys.stdout.isatty() else 150)  # keep the table whole in logs
    crops = photo_crops(args.batch, CROP_SIZE, seed=0).to(device)
    generator = torch.Generator(device=device).manual_seed(0)  # on the GPU as training's
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    per_level, cpu_per_level = {}, {}
    with console.status("timing distortions") as status:
        for name in args.names:
            status.update(f"timing {name}")
            per_level[name], cpu_per_level[name] = bench_distortion(crops, device, args.repeats, name, generator)
        status.update("timing the sampler's mix")
        mix_crops = crops[: (args.batch // CROPS_PER_SAMPLE) * CROPS_PER_SAMPLE]
        mix_ms, mix_cpu_ms = bench_mix(mix_crops, device, args.mix_batches, generator)
        processes = args.processes if device.type == "cpu" else 0
        if processes:
            status.update(f"timing the mix in {processes} processes")
            procs = bench_mix_processes(processes, args.mix_batches, mix_crops.shape[0], keep_freed)
            procs_ms = procs["ms_per_crop"]
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    reference = REFERENCE_MS.get(args.threads) if device.type == "cpu" else None
    title = f"ms per {CROP_SIZE}x{CROP_SIZE} crop, batch {args.batch}, {device.type}, {args.threads} threads"
    table = Table(title=title)
    table.add_column("distortion", style="bold", no_wrap=True)
    for level in range(1, NUM_LEVELS + 1):
        table.add_column(f"L{level}", justify="right")
    table.add_column("crops/s", justify="right")
    table.add_column("cpu ms", justify="right")
    table.add_column("in mix", justify="right")
    if reference:
        table.add_column("vs ref", justify="right")
    for name, ms in per_level.items():
        mean = statistics.mean(ms)
        row = [
            name,
            *(f"{v:.2f}" for v in ms),
            f"{1000 / mean:.0f}",
            f"{statistics.mean(cpu_per_level[name]):.2f}",
            f"{mix_share(name, ms):.2f}",
        ]
        if reference:
            row.append(f"{statistics.mean(reference[name]) / mean:.1f}x")
        table.add_row(*row)
    console.print(table)
    console.print(
        "L1..L5: wall-clock ms per crop; crops/s: from their mean; cpu ms: process CPU time per crop;"
        " in mix: expected wall ms it adds per crop of the sampler's mix; vs ref: reference mean ms / ours;"
        f" reference figures {REFERENCE_SOURCE}",
        highlight=False,
    )
    if set(per_level) == set(NAMES):
        predicted = sum(mix_share(n, ms) for n, ms in per_level.items())
        console.print(f"mix predicted from the table: {predicted:.2f} ms/crop", highlight=False)
    ref_mix = REFERENCE_MIX_MS.get(args.threads) if device.type == "cpu" else None
    line = (
        f"sampler mix (16 samples x 4 crops, {args.mix_batches} batches): {mix_ms:.2f} ms/crop wall"
        f" ({1000 / mix_ms:.0f} crops/s), {mix_cpu_ms:.2f} ms/crop CPU"
    )
    if ref_mix:
        line += f"; reference {ref_mix} ms/crop ({args.threads} threads) -> {ref_mix / mix_ms:.1f}x"
    console.print(line, highlight=False)
    if processes:
        # The reference, run the same way (one 1-thread process per core), would cost 16.8 / P ms per crop.
        ref_procs = REFERENCE_MIX_MS[1] / processes
        console.print(
            f"sampler mix in {processes} 1-thread processes at once: {procs_ms:.2f} ms/crop wall"
            f" ({1000 / procs_ms:.0f} crops/s) while all were busy"
            f" ({procs['ms_per_crop_until_last_finished']:.2f} until the last finished),"
            f" {procs['cpu_ms_per_crop']:.2f} ms/crop CPU; reference"
            f" {REFERENCE_MIX_MS[2]} ms/crop (2 threads) -> {REFERENCE_MIX_MS[2] / procs_ms:.1f}x;"
            f" reference in {processes} 1-thread processes {ref_procs:.1f} ms/crop ->"
            f" {ref_procs / procs_ms:.1f}x",
            highlight=False,
        )
    console.print(
        f"1-min load average: {load_before} before, {load_after} after ({os.cpu_count()} CPUs);"
        f" THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}, keep freed memory: {keep_freed}",
        highlight=False,
    )
    slowest = sorted(per_level, key=lambda n: -mix_share(n, per_level[n]))[:5]
    shares = ", ".join(f"{n} {mix_share(n, per_level[n]):.2f} ms" for n in slowest)
    console.print(f"largest shares of the mix: {shares}", highlight=False)

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "load_average_1min_before": load_before,
            "load_average_1min_after": load_after,
            "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
            "keep_freed_memory": keep_freed,
        },
        "torch": torch.__version__,
        "threads": args.threads,
        "device": device.type,
        "crop_size": CROP_SIZE,
        "batch": args.batch,
        "repeats": args.repeats,
        "ms_per_crop": per_level,
        "cpu_ms_per_crop": cpu_per_level,
        "crops_per_s": {n: [1000 / v for v in ms] for n, ms in per_level.items()},
        "mix_share_ms_per_crop": {n: mix_share(n, ms) for n, ms in per_level.items()},
        "mix": {
            "ms_per_crop": mix_ms,
            "cpu_ms_per_crop": mix_cpu_ms,
            "crops_per_s": 1000 / mix_ms,
            "batches": args.mix_batches,
            "reference_ms_per_crop": ref_mix,
            "speedup_vs_reference": ref_mix / mix_ms if ref_mix else None,
        },
        "mix_processes": {
            "processes": processes,
            "threads_per_process": 1,
            **procs,
            "crops_per_s": 1000 / procs_ms,
            "speedup_vs_reference_2_threads": REFERENCE_MIX_MS[2] / procs_ms,
            "speedup_vs_reference_in_as_many_processes": REFERENCE_MIX_MS[1] / processes / procs_ms,
        }
        if processes
        else None,
        "reference_ms_per_crop": reference,
        "reference_source": REFERENCE_SOURCE if device.type == "cpu" else None,
    }
    path = args.out or Path(__file__).parent / "results" / f"degradations-{device.type}.json"
    write_json(path, result)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
