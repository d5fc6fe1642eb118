"""Training step speed: the full step against the encoder's forward and backward alone.

Both on the same batch size, crop size, device and precision:

* ``encoder``: the two encoder passes of a step (inputs_A and inputs_B, 2B crops each, already on
  the device) with backward; nothing else. This is the floor: what the network itself costs.
* ``full step``: what :class:`arniqa.train.loop.Trainer` does per step, timed end to end: waiting
  for the DataLoader (decoding, full and half-scale crops, in worker processes), moving the crops,
  the degradation chains on the 4B crops (batched, on the training device), both passes through
  encoder and projector, NT-Xent, backward, SGD and the scheduler.

The two alternate step by step on the same batches (other load on the machine hits both alike);
the overhead is ``full / encoder - 1`` in median time per step (target on 2 CPU cores: <= 15 %). The
components are timed apart too (decode+crops per sample in this process, chains, loss, SGD step)
to show where the time goes (the projector, also in the full step, is not timed apart); the SGD step
of the trainer (fused where torch has the kernel) in turn with torch's default for-each SGD.
``--degrade-on`` says where the chains run (``data.degrade_on``: ``device`` or ``workers``).

``--pipeline-only``: no model. The samples/s the DataLoader delivers with ``--degrade-on workers``
and ``--workers N`` (decoding, crops, half scale and chains, all in the workers), the figure per
worker, where a sample's time goes in one thread (decode, half scale, crops, each distortion group),
and the GPU step it projects: max(encoder step, batch / throughput of 15 such workers) for each
recorded encoder figure in ``benchmarks/results/training-cuda-*.json``.

The process runs as ``arniqa train`` does (DataLoader workers inherit both): CPU tensors on
transparent huge pages (``THP_MEM_ALLOC_ENABLE=1`` unless set; ``=0`` opts out) and glibc keeping
freed memory for reuse (:func:`arniqa.utils.runtime.keep_freed_memory`; ``ARNIQA_KEEP_FREED_MEMORY=0``
opts out); the JSON records both.

Images: synthetic 512x384 PNGs (KADIS-700k size) in a temporary folder, or ``--images DIR`` as they
are, or ``--photos DIR``: the photos of DIR resized to cover 512x384, centre-cropped, as PNG (KADIS-like).
Writes the JSON file ``--out`` (default ``benchmarks/results/training-<device>.json``, with ``--pipeline-only``
``benchmarks/results/pipeline-cpu-<N>workers.json``).

    python benchmarks/training.py --batch 2 --crop-size 224 --steps 3          # CPU, small
    python benchmarks/training.py --device cuda --batch 16 --steps 30 --workers 8   # a GPU
    python benchmarks/training.py --pipeline-only --workers 1 --photos ../shared/data/pristine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# As ``arniqa train`` (arniqa/cli/__init__.py): PyTorch reads this at its first CPU allocation.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import numpy as np
import torch
from PIL import Image

from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import autocast, cpu_name, keep_freed_memory


def make_images(folder: Path, count: int, size=(384, 512), seed: int = 0) -> None:
    """Photo-like test images: smooth colour fields plus fine texture, as PNG."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        coarse = rng.random((h // 32 + 1, w // 32 + 1, 3))
        smooth = np.kron(coarse, np.ones((32, 32, 1)))[:h, :w]
        pixels = smooth * 200 + rng.random((h, w, 3)) * 55
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:04d}.png")


def make_photos(source: Path, folder: Path, count: int, size=(512, 384)) -> None:
    """The first ``count`` images under ``source``, resized to cover ``size`` (W, H) and
    centre-cropped, as PNG: KADIS-700k-sized photos."""
    from arniqa.data.folders import training_images
    from arniqa.data.images import open_image

    w, h = size
    for i, path in enumerate(training_images(source)[:count]):
        image = open_image(path)
        scale = max(w / image.width, h / image.height)
        image = image.resize((max(w, round(image.width * scale)), max(h, round(image.height * scale))), Image.BICUBIC)
        left, top = (image.width - w) // 2, (image.height - h) // 2
        image.crop((left, top, left + w, top + h)).save(folder / f"photo{i:04d}.png")


def lscpu() -> dict[str, str]:
    """The machine as lscpu describes it (model, CPUs, threads per core, caches), or {}."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    keep = (
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Core(s) per socket",
        "Socket(s)",
        "L2 cache",
        "L3 cache",
        "Hypervisor vendor",
        "CPU max MHz",
    )
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs if k.strip() in keep}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def crops(batch: dict, device: torch.device) -> torch.Tensor:
    """The 4B crops of a batch of either loader on ``device`` (undegraded ones for the device path)."""
    from arniqa.data.pristine import stack_crops

    return batch["x"].to(device) if "x" in batch else stack_crops(batch, device)[0]


def encoder_step(trainer, x: torch.Tensor) -> None:
    """The encoder's two passes + backward on ``x`` (4B crops on the device); nothing else."""
    encoder = trainer.model.encoder
    half = x.shape[0] // 2
    with autocast(x.device, trainer.autocast_dtype):
        out = encoder(x[:half]).float().sum() + encoder(x[half:]).float().sum()
    encoder.zero_grad(set_to_none=True)  # as the training step: fresh gradients, no accumulation
    out.backward()


def time_interleaved(trainer, steps: int, warmup: int) -> tuple[float, float]:
    """Median seconds per step of the full step and of the encoder alone, alternating on the same
    batches (so that other load on the machine hits both alike)."""
    loader = iter(trainer._loader(trainer._samples(0, 0)))
    full, encoder = [], []
    for step in range(warmup + steps):
        sync(trainer.device)
        t = time.perf_counter()
        batch = next(loader)
        trainer.train_step(batch, 0, step)
        sync(trainer.device)
        t_full = time.perf_counter() - t
        x = crops(batch, trainer.device).contiguous(memory_format=trainer.memory_format)
        sync(trainer.device)
        t = time.perf_counter()
        encoder_step(trainer, x)
        sync(trainer.device)
        if step >= warmup:
            full.append(t_full)
            encoder.append(time.perf_counter() - t)
    return float(np.median(full)), float(np.median(encoder))


def time_components(trainer, b: int, repeats: int) -> dict[str, float]:
    """Seconds per step of the parts the encoder does not include, each alone (chains on the
    training device, as ``--degrade-on device`` runs them)."""
    from arniqa.data.pristine import collate, stack_crops
    from arniqa.degradations.sampler import apply_chains
    from arniqa.train.batches import degradation_generator
    from arniqa.train.loss import nt_xent

    device = trainer.device
    t = time.perf_counter()
    for i in range(repeats):
        samples = [trainer.dataset[(0, j)] for j in range(b)]
    decode = (time.perf_counter() - t) / repeats
    x, chains = stack_crops(collate(samples), device)
    sync(device)
    t = time.perf_counter()
    for i in range(repeats):
        apply_chains(x, chains, degradation_generator(0, 0, i, 0, device))
    sync(device)
    degrade = (time.perf_counter() - t) / repeats
    a = torch.randn(2 * b, 128, device=device, requires_grad=True)
    c = torch.randn(2 * b, 128, device=device, requires_grad=True)
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        nt_xent(a, c).backward()
    sync(device)
    loss = (time.perf_counter() - t) / repeats
    for p in trainer.model.parameters():
        p.grad = torch.zeros_like(p)  # every parameter has a gradient in a real step
    # the trainer's optimiser (fused where torch has the kernel) and torch's default for-each path with
    # the same settings, stepped in turn on the same gradients
    foreach = type(trainer.optimizer)(
        trainer.model.parameters(), **dict(trainer.optimizer.defaults, fused=False, foreach=True)
    )
    foreach.step()  # makes its momentum buffers, as the trainer's first steps did
    seconds = {trainer.optimizer: 0.0, foreach: 0.0}
    for _ in range(repeats):
        for optimizer in seconds:
            sync(device)
            t = time.perf_counter()
            optimizer.step()
            sync(device)
            seconds[optimizer] += time.perf_counter() - t
    return {
        "decode_and_crops_s": decode,
        "degradations_s": degrade,
        "loss_s": loss,
        "optimizer_s": seconds[trainer.optimizer] / repeats,
        "optimizer_foreach_s": seconds[foreach] / repeats,
        "optimizer_fused": bool(trainer.optimizer.defaults.get("fused")),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (Linux /proc), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_pipeline(dataset, batch: int, workers: int, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """Samples/s the ``workers`` DataLoader delivers (``degrade_on=workers``, no model), timed
    from the ``warmup``-th batch (the workers' start-up excluded) over ``steps`` batches, and the
    workers' CPU seconds per delivered sample meanwhile (all their threads: building the batches and
    handing them over), which other load on the machine changes less than the first."""
    from arniqa.data.pristine import EpochSampler
    from arniqa.train.batches import make_loader

    samples = EpochSampler(len(dataset), batch, 0, seed)
    if warmup + steps > samples.steps_per_epoch:
        raise SystemExit(
            f"{len(dataset)} images give {samples.steps_per_epoch} batches of {batch}, "
            f"fewer than --warmup {warmup} + --steps {steps}"
        )
    loader = iter(make_loader(dataset, "workers", samples, workers, pin_memory=False))
    pids = [w.pid for w in getattr(loader, "_workers", [])] or [os.getpid()]
    start, cpu_start = time.perf_counter(), sum(map(cpu_seconds, pids))  # --warmup 0
    for k in range(warmup + steps):
        next(loader)
        if k == warmup - 1:
            start, cpu_start = time.perf_counter(), sum(map(cpu_seconds, pids))
    wall, cpu = time.perf_counter() - start, sum(map(cpu_seconds, pids)) - cpu_start
    return steps * batch / wall, cpu / (steps * batch)


def profile_samples(dataset, count: int, batch: int) -> dict[str, float]:
    """Milliseconds per sample in one thread (as in a worker): decoding A and B, their half-scale
    crops, the four crops, stacking them, and the chains on the four crops by distortion group
    (batches of ``batch`` samples, as a worker applies them), plus what ``apply_chains`` spends
    outside the distortions (input check, regrouping crops between positions)."""
    import arniqa.degradations.sampler as sampler
    from arniqa.data.images import open_image
    from arniqa.data.pixels import uint8_view
    from arniqa.data.pristine import CROPS, crop_position, random_crop, stack_crops
    from arniqa.data.views import half_scale_crop
    from arniqa.degradations.registry import GROUP_OF
    from arniqa.train.batches import degradation_generator

    seconds = defaultdict(float)

    def timed(key, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        seconds[key] += time.perf_counter() - t
        return out

    real_run, real_start = sampler.run, sampler.start

    def run(distortion, x, level, generator, options=None):
        return timed(GROUP_OF[distortion.name], real_run, distortion, x, level, generator, options)

    def start(distortion, x, level):
        finish = timed(GROUP_OF[distortion.name], real_start, distortion, x, level)
        return lambda: timed(GROUP_OF[distortion.name], finish)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sampler.run, sampler.start = run, start
    size = dataset.crop_size
    try:
        rng = np.random.default_rng(0)
        for first in range(0, count, batch):
            crops = {name: [] for name in CROPS}
            chains = []
            for index in range(first, min(first + batch, count)):
                for tag, i in (("A", index), ("B", dataset.other(0, index))):
                    image = timed("decode", open_image, dataset.files[i])
                    crops[f"{tag}_full"].append(timed("crops", random_crop, image, size, rng))
                    top, left = crop_position(image.height // 2, image.width // 2, size, rng)
                    half = timed("half_scale", half_scale_crop, image, top, left, size, "bicubic")
                    crops[f"{tag}_half"].append(timed("crops", uint8_view, half))
                chains.append(timed("chain_draw", dataset.chain, 0, index))
            stacked = {name: timed("stack", torch.stack, v) for name, v in crops.items()}
            x, per_crop = timed("to_float", stack_crops, stacked | {"chain": chains})
            before = sum(seconds.values())
            t = time.perf_counter()
            sampler.apply_chains(x, per_crop, degradation_generator(0, 0, first, 0, x.device))
            distortions = sum(seconds.values()) - before  # what the groups' timers took meanwhile
            seconds["chains_regrouping"] += time.perf_counter() - t - distortions
    finally:
        sampler.run, sampler.start = real_run, real_start
        torch.set_num_threads(threads)
    return {key: 1000 * value / count for key, value in sorted(seconds.items(), key=lambda kv: -kv[1])}


def projection(per_worker: float, batch: int, results: Path, workers: int = 15) -> list[dict]:
    """The GPU step max(encoder step, batch / (workers x per_worker)) for each recorded CUDA
    encoder figure (``results/training-cuda-*.json`` at this batch)."""
    rows = []
    for path in sorted(results.glob("training-cuda-*.json")):
        recorded = json.loads(path.read_text())
        if recorded.get("batch") != batch or "encoder_s_per_step" not in recorded:
            continue
        encoder = recorded["encoder_s_per_step"]
        feed = batch / (workers * per_worker)
        rows.append(
            {
                "recorded": path.name,
                "device_name": recorded["device_name"],
                "backbone": recorded["backbone"],
                "encoder_s_per_step": encoder,
                "feed_s_per_step": feed,
                "projected_s_per_step": max(encoder, feed),
                "projected_over_encoder": max(encoder, feed) / encoder,
                "recorded_full_s_per_step": recorded["full_s_per_step"],
            }
        )
    return rows


def pipeline_main(args, folder: Path) -> None:
    from arniqa.data.folders import training_images
    from arniqa.data.pristine import PristinePairs

    dataset = PristinePairs(training_images(folder), args.crop_size, seed=args.seed)
    load_before = os.getloadavg()
    rate, cpu_per_sample = time_pipeline(dataset, args.batch, args.workers, args.steps, args.warmup, args.seed)
    load_after = os.getloadavg()
    per_worker = rate / max(args.workers, 1)
    profiled = min(args.profile_samples, len(dataset))  # one sample per image at most
    parts = profile_samples(dataset, profiled, args.batch) if profiled else {}
    rows = projection(per_worker, args.batch, Path(__file__).parent / "results")
    result = {
        "mode": "pipeline-only",
        "degrade_on": "workers",
        "workers": args.workers,
        "batch": args.batch,
        "crop_size": args.crop_size,
        "images": len(dataset),
        "image_source": args.source,
        "steps": args.steps,
        "warmup": args.warmup,
        "pipeline_samples_per_s": rate,
        "pipeline_crops_per_s": 4 * rate,
        "per_worker_samples_per_s": per_worker,
        "target_per_worker_samples_per_s": 30,
        "worker_cpu_ms_per_sample": 1000 * cpu_per_sample,
        "samples_per_worker_cpu_s": 1 / cpu_per_sample if cpu_per_sample else None,  # None: under a clock tick
        "profiled_samples": profiled,
        "ms_per_sample_one_thread": parts,
        "ms_per_sample_one_thread_total": sum(parts.values()),
        "projected_gpu_step_15_workers": rows,
        "target_projected_over_encoder": 1.15,
        "cpu": cpu_name(),
        "lscpu": lscpu(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "load_average_before_after": [load_before[0], load_after[0]],
        **args.runtime,
    }
    print(
        f"pipeline, degrade_on=workers, {args.workers} workers, batch {args.batch}, {args.crop_size} px, "
        f"{len(dataset)} images ({args.source}), {cpu_name()}"
    )
    print(
        f"delivered: {rate:.1f} samples/s ({4 * rate:.0f} crops/s), "
        f"{per_worker:.1f} samples/s per worker (target >= 30); "
        f"workers' CPU {1000 * cpu_per_sample:.1f} ms per sample"
        + (f", {1 / cpu_per_sample:.1f} samples per CPU second" if cpu_per_sample else "")
    )
    if parts:
        print(
            "one thread, ms per sample: "
            + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
            + f"; total {sum(parts.values()):.1f}"
        )
    for row in rows:
        print(
            f"projected GPU step ({row['backbone']}, {row['recorded']}): encoder {row['encoder_s_per_step']:.3f} s, "
            f"15 workers feed a batch in {row['feed_s_per_step']:.3f} s -> {row['projected_s_per_step']:.3f} s "
            f"({row['projected_over_encoder']:.2f}x the encoder; target <= 1.15x)"
        )
    write(args, result, f"pipeline-cpu-{args.workers}workers")


def write(args, result: dict, default_name: str) -> None:
    path = args.out or Path(__file__).parent / "results" / f"{default_name}.json"
    write_json(path, result)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--batch", type=int, default=2, help="samples per step (4 crops each)")
    parser.add_argument("--crop-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--backbone", default="se_resnet50", choices=("resnet50", "se_resnet50"))
    parser.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (as train.precision)")
    parser.add_argument("--channels-last", default=True, action=argparse.BooleanOptionalAction)
    parser.add_argument("--degrade-on", default="device", choices=("device", "workers"), help="data.degrade_on")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument(
        "--pipeline-only", action="store_true", help="time the DataLoader with degrade_on=workers alone"
    )
    parser.add_argument(
        "--profile-samples", type=int, default=32, help="samples profiled in one thread (--pipeline-only)"
    )
    parser.add_argument("--images", type=Path, help="a folder of images, used as they are")
    parser.add_argument("--photos", type=Path, help="make 512x384 PNGs from the photos of this folder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    args.runtime = {
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "keep_freed_memory": keep_freed_memory(),
    }
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder, args.source = args.images, str(args.images)
        needed = args.batch * (args.warmup + args.steps + 1)
        if folder is None:
            folder = Path(tmp) / "images"
            folder.mkdir()
            if args.photos:
                make_photos(args.photos, folder, needed)
                args.source = f"512x384 PNGs made from {args.photos}"
            else:
                make_images(folder, needed, seed=args.seed)
                args.source = "synthetic 512x384 PNGs"
        if args.pipeline_only:
            pipeline_main(args, folder)
        else:
            step_main(args, folder, Path(tmp))


def step_main(args, folder: Path, tmp: Path) -> None:
    from arniqa.train import load_config
    from arniqa.train.loop import Trainer

    config = load_config(
        None,
        [
            f"data.root={folder}",
            f"data.crop_size={args.crop_size}",
            f"data.num_workers={args.workers}",
            f"data.degrade_on={args.degrade_on}",
            f"model.backbone={args.backbone}",
            "model.init=random",
            f"train.batch_size={args.batch}",
            f"train.device={args.device}",
            f"train.precision={args.precision}",
            f"train.channels_last={str(args.channels_last).lower()}",
            f"train.seed={args.seed}",
            f"output={tmp / 'run'}",
            "log.progress=false",
            "log.tensorboard=false",
        ],
    )
    trainer = Trainer(config)
    trainer.net.train()
    full, encoder = time_interleaved(trainer, args.steps, args.warmup)
    parts = time_components(trainer, args.batch, min(3, max(1, args.steps)))

    device = trainer.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    result = {
        "device": str(device),
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "backbone": args.backbone,
        "batch": args.batch,
        "crop_size": args.crop_size,
        "precision": args.precision,
        "autocast": str(trainer.autocast_dtype),
        "channels_last": args.channels_last,
        "degrade_on": args.degrade_on,
        "workers": args.workers,
        "images": args.source,
        "steps": args.steps,
        "warmup": args.warmup,
        "encoder_s_per_step": encoder,
        "full_s_per_step": full,
        "encoder_samples_per_s": args.batch / encoder,
        "full_samples_per_s": args.batch / full,
        "overhead": full / encoder - 1,
        **parts,
        **args.runtime,
    }
    print(
        f"{args.backbone}, batch {args.batch} ({4 * args.batch} crops of {args.crop_size} px), {device} ({name}), "
        f"{torch.get_num_threads()} threads, {args.workers} workers, degrade_on {args.degrade_on}, "
        f"precision {args.precision}"
    )
    print(f"{'':30} {'s/step':>8} {'samples/s':>10}")
    print(f"{'encoder forward+backward':30} {encoder:8.3f} {args.batch / encoder:10.2f}")
    print(f"{'full training step':30} {full:8.3f} {args.batch / full:10.2f}")
    print(f"overhead of the full step: {100 * (full / encoder - 1):+.1f} % (target <= 15 %)")
    times = ", ".join(f"{k[:-2]} {v:.3f}" for k, v in parts.items() if k.endswith("_s"))
    print(f"components alone (s/step): {times}")
    write(args, result, f"training-{device.type}")


if __name__ == "__main__":
    main()
