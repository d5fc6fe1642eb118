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
to show where the time goes (the projector, also in the full step, is not timed apart). Images:
synthetic 512x384 PNGs (KADIS-700k size) in a temporary folder unless ``--images`` is given.
Writes ``benchmarks/results/training-<device>.json``.

    python benchmarks/training.py --batch 2 --crop-size 224 --steps 3          # CPU, small
    python benchmarks/training.py --device cuda --batch 16 --steps 30 --workers 8   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from arniqa.utils.runtime import cpu_name


def make_images(folder: Path, count: int, size=(384, 512), seed: int = 0) -> None:
    """Photo-like test images: smooth colour fields plus fine texture, as PNG."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        coarse = rng.random((h // 32 + 1, w // 32 + 1, 3))
        smooth = np.kron(coarse, np.ones((32, 32, 1)))[:h, :w]
        pixels = smooth * 200 + rng.random((h, w, 3)) * 55
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:04d}.png")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_step(trainer, x: torch.Tensor) -> None:
    """The encoder's two passes + backward on ``x`` (4B crops on the device); nothing else."""
    encoder = trainer.model.encoder
    half = x.shape[0] // 2
    dtype = trainer.autocast_dtype
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        out = encoder(x[:half]).float().sum() + encoder(x[half:]).float().sum()
    encoder.zero_grad(set_to_none=True)  # as the training step: fresh gradients, no accumulation
    out.backward()


def time_interleaved(trainer, steps: int, warmup: int) -> tuple[float, float, dict]:
    """Median seconds per step of the full step and of the encoder alone, alternating on the same
    batches (so that other load on the machine hits both alike); returns the last batch too."""
    from arniqa.data.pristine import stack_crops

    loader = iter(trainer._loader(0, 0))
    full, encoder = [], []
    for step in range(warmup + steps):
        sync(trainer.device)
        t = time.perf_counter()
        batch = next(loader)
        trainer.train_step(batch, 0, step)
        sync(trainer.device)
        t_full = time.perf_counter() - t
        x = stack_crops(batch, trainer.device)[0].contiguous(memory_format=trainer.memory_format)
        sync(trainer.device)
        t = time.perf_counter()
        encoder_step(trainer, x)
        sync(trainer.device)
        if step >= warmup:
            full.append(t_full)
            encoder.append(time.perf_counter() - t)
    return float(np.median(full)), float(np.median(encoder)), batch


def time_components(trainer, batch: dict, repeats: int) -> dict[str, float]:
    """Seconds per step of the parts the encoder does not include, each alone."""
    from arniqa.data.pristine import stack_crops
    from arniqa.degradations.sampler import apply_chains
    from arniqa.train.loop import degradation_generator
    from arniqa.train.loss import nt_xent

    device = trainer.device
    b = batch["A_full"].shape[0]
    t = time.perf_counter()
    for i in range(repeats):
        for j in range(b):
            trainer.dataset[(0, j)]
    decode = (time.perf_counter() - t) / repeats
    x, chains = stack_crops(batch, device)
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
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        trainer.optimizer.step()
    sync(device)
    optimizer = (time.perf_counter() - t) / repeats
    return {"decode_and_crops_s": decode, "degradations_s": degrade, "loss_s": loss, "optimizer_s": optimizer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--batch", type=int, default=2, help="samples per step (4 crops each)")
    parser.add_argument("--crop-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--backbone", default="se_resnet50", choices=("resnet50", "se_resnet50"))
    parser.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (as train.precision)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--images", type=Path, help="a folder of images (default: synthetic 512x384 PNGs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from arniqa.train import load_config
    from arniqa.train.loop import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.images
        needed = args.batch * (args.warmup + args.steps + 1)
        if folder is None:
            folder = Path(tmp) / "images"
            folder.mkdir()
            make_images(folder, needed, seed=args.seed)
        config = load_config(None, [
            f"data.root={folder}", f"data.crop_size={args.crop_size}", f"data.num_workers={args.workers}",
            f"model.backbone={args.backbone}", "model.init=random", f"train.batch_size={args.batch}",
            f"train.device={args.device}", f"train.precision={args.precision}", f"train.seed={args.seed}",
            f"output={Path(tmp) / 'run'}", "log.progress=false", "log.tensorboard=false",
        ])  # fmt: skip
        trainer = Trainer(config)
        trainer.net.train()
        full, encoder, batch = time_interleaved(trainer, args.steps, args.warmup)
        parts = time_components(trainer, batch, max(1, args.steps))

    device = trainer.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    result = {
        "device": str(device), "device_name": name, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "backbone": args.backbone, "batch": args.batch, "crop_size": args.crop_size,
        "precision": args.precision, "autocast": str(trainer.autocast_dtype), "workers": args.workers,
        "steps": args.steps, "warmup": args.warmup,
        "encoder_s_per_step": encoder, "full_s_per_step": full,
        "encoder_samples_per_s": args.batch / encoder, "full_samples_per_s": args.batch / full,
        "overhead": full / encoder - 1, **parts,
    }  # fmt: skip
    print(f"{args.backbone}, batch {args.batch} ({4 * args.batch} crops of {args.crop_size} px), {device} ({name}), "
          f"{torch.get_num_threads()} threads, {args.workers} workers, precision {args.precision}")  # fmt: skip
    print(f"{'':30} {'s/step':>8} {'samples/s':>10}")
    print(f"{'encoder forward+backward':30} {encoder:8.3f} {args.batch / encoder:10.2f}")
    print(f"{'full training step':30} {full:8.3f} {args.batch / full:10.2f}")
    print(f"overhead of the full step: {100 * (full / encoder - 1):+.1f} % (target <= 15 %)")
    print("components alone (s/step): " + ", ".join(f"{k[:-2]} {v:.3f}" for k, v in parts.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"training-{device.type}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
