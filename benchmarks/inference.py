"""Scoring speed and peak memory: each protocol, fp32 and faster paths, against a per-image baseline.

For 512x384 (KADID-10k size) and 1024x768 images, saved as JPEG files and scored from their paths
(decoding included), this measures images/s and peak memory of :class:`arniqa.inference.Scorer` in
the ``crops``, ``whole`` and ``pyiqa`` protocols for each precision path (fp32, fp32 + channels_last,
bf16 autocast, bf16 + channels_last), and a straightforward per-image fp32 implementation of the
``crops`` protocol written here (PIL decode, torchvision Resize, PIL crops, one forward of 5 crops per
scale and image, as the official ``single_image_inference.py``).

A path is "accepted" when every scaled score stays within --tolerance (1e-4) of the score the first path of
--paths (the fp32 reference computation) gives the same image. Paths: ``name[@bN][@wN][@tN]`` (batch size,
decode workers, torch threads), e.g. ``fp32@b1,fp32+cl@b8,ort@b1@t2``; ``ort`` is the onnxruntime engine;
``compile`` runs ``torch.compile`` (inductor, needs a C++ compiler) on a copy of the model: its first
pass over the measured files compiles and is reported apart (``compile_seconds``), not timed.
Three more paths are yardsticks rather than ways to score: ``loop`` scores one image at a time with no
decode workers (fp32), as pyiqa's command line does; ``encoder-fp32`` and ``encoder-bf16`` time the
model alone on the same batches, their views made beforehand and already on the device (the limit of
any scoring path); ``nvjpeg-fp32`` and ``nvjpeg-bf16`` decode the JPEG files with
``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA) and make the views there from the tensor,
instead of PIL in decode workers.
By default the weights are random (speed does not depend on them; the regressor is a random
direction with ||w|| given by --weight-norm in scaled units, so the accuracy check is indicative
only); pass --weights-dir with ARNIQA.pth and regressor_kadid10k.pth to check with the published
weights. Peak memory: on CUDA ``max_memory_allocated``; on CPU the growth of the process's peak
resident set (VmHWM, reset through /proc/self/clear_refs before each run, after ``malloc_trim``) over
the resident set before it, i.e. the extra memory the run needed (model weights excluded).

    python benchmarks/inference.py                   # all threads, small repeat counts
    python benchmarks/inference.py --threads 2 --images 4 --repeats 2
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from arniqa.inference import Scorer, load
from arniqa.inference.scorer import _Prepared
from arniqa.models import ARNIQA, Regressor
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import machine_summary, resolve_device

SIZES = ((512, 384), (1024, 768))
PROTOCOLS = ("crops", "whole", "pyiqa")
PATHS = {  # name: Scorer options (the engine is explicit: the CPU default is onnxruntime)
    "fp32": dict(engine="torch", precision="fp32"),
    "fp32+cl": dict(engine="torch", precision="fp32", channels_last=True),
    "bf16": dict(engine="torch", precision="bf16"),
    "bf16+cl": dict(engine="torch", precision="bf16", channels_last=True),
    "fp16": dict(engine="torch", precision="fp16"),
    "fp16+cl": dict(engine="torch", precision="fp16", channels_last=True),
    "ort": dict(engine="onnxruntime"),
    "compile": dict(engine="torch", precision="fp32"),  # torch.compile (inductor) of a copy of the model
    "loop": dict(engine="torch", precision="fp32", batch_size=1, workers=1),  # one image at a time
    "encoder-fp32": dict(engine="torch", precision="fp32"),
    "encoder-bf16": dict(engine="torch", precision="bf16"),
    "nvjpeg-fp32": dict(engine="torch", precision="fp32", workers=1),
    "nvjpeg-bf16": dict(engine="torch", precision="bf16", workers=1),
}
TOLERANCE = 1e-4  # the largest scaled-score change from fp32 that a default may make
BASELINE = "per-image fp32 baseline"


def parse_path(spec: str, batch_size: int, threads: int) -> tuple[dict, int]:
    """``name[@bN][@wN][@tN]`` -> (Scorer options, torch threads): a path of PATHS with an optional batch
    size (images), number of decoding workers and torch thread count (default: --batch-size, --threads)."""
    name, *mods = spec.split("@")
    if name not in PATHS:
        raise SystemExit(f"unknown path {name!r}; expected one of {', '.join(PATHS)} (+ @bN @wN @tN)")
    options = {"batch_size": batch_size, **PATHS[name]}
    for m in mods:
        key, value = m[:1], int(m[1:])
        if key == "b":
            options["batch_size"] = value
        elif key == "w":
            options["workers"] = value
        elif key == "t":
            threads = value
        else:
            raise SystemExit(f"{spec}: unknown modifier @{m} (use @bN, @wN, @tN)")
    return options, threads


class DeviceDecodeScorer(Scorer):
    """A Scorer that decodes JPEG files with ``torchvision.io.decode_jpeg`` on its device (nvJPEG on CUDA)
    and makes the views from the decoded tensor there."""

    def _prepare(self, index, item):
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        name = str(item)
        image = decode_jpeg(read_file(name), mode=ImageReadMode.RGB, device=self.device, apply_exif_orientation=True)
        full, half = self.protocol.views(image.float().div_(255))
        return _Prepared(index, name, full, half)


def _encoder_alone(scorer: Scorer, files, channels_last: bool):
    """A runner of the scorer's engine alone over the batches it would see: views made beforehand, on the
    device."""
    prepared = [scorer._prepare(i, f) for i, f in enumerate(files)]
    batches = [
        tuple(
            torch.cat([torch.as_tensor(getattr(p, view)) for p in group]).to(scorer.device) for view in ("full", "half")
        )
        for group in (prepared[i : i + scorer.batch_size] for i in range(0, len(prepared), scorer.batch_size))
    ]

    def run():
        scorer.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        raw = (
            torch.cat([torch.as_tensor(scorer.engine.run(full, half, False)[0]) for full, half in batches])
            .view(len(files), -1)
            .mean(1)
        )
        return scorer.regressor.scale(raw)  # scaled, as the other paths' scores

    return run


def _baseline(model, regressor, files):
    def run():
        model.to(memory_format=torch.contiguous_format)
        return baseline_crops(model, regressor, files)

    return run


def _scoring(model, scorer, files, channels_last: bool, threads: int):
    """A runner for ``interleaved``: sets the model's memory format (shared by all runners) and the torch
    thread count, scores."""

    def run():
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        torch.set_num_threads(threads)
        return scorer.score(files).scores

    return run


class PeakMemory:
    """Peak extra memory (bytes) of the code inside the ``with`` block."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, None

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            m = re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())
            return int(m.group(1)) * 1024 if m else None
        except OSError:
            return None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            gc.collect()
            try:  # hand freed heap memory back to the OS, so the baseline does not include it
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
            try:
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            except OSError:
                pass
            self.base = self._status("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        elif self.base is not None:
            hwm = self._status("VmHWM")
            self.peak = None if hwm is None else hwm - self.base


def make_images(folder: Path, size: tuple[int, int], n: int, seed: int) -> list[Path]:
    """Photo-like JPEGs: smooth colour fields plus fine texture."""
    w, h = size
    g = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(n):
        base = F.interpolate(torch.rand(1, 3, h // 32, w // 32, generator=g), size=(h, w), mode="bicubic")
        x = (base[0] + 0.15 * torch.rand(3, h, w, generator=g)).clamp(0, 1)
        p = folder / f"img{w}x{h}_{i}.jpg"
        Image.fromarray(x.mul(255).round().byte().permute(1, 2, 0).numpy()).save(p, quality=90)
        paths.append(p)
    return paths


def baseline_crops(model: ARNIQA, regressor: Regressor, paths) -> list[float]:
    """Straightforward per-image fp32 ``crops``: the official single-image script, one image at a time."""
    to_tensor = transforms.ToTensor()
    scores = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        w, h = img.size
        img_ds = transforms.Resize((h // 2, w // 2))(img)

        def crops(im):
            W, H = im.size
            corners = [(W // 2 - 112, H // 2 - 112), (0, 0), (0, H - 224), (W - 224, 0), (W - 224, H - 224)]
            return torch.stack([to_tensor(im.crop((x, y, x + 224, y + 224))) for x, y in corners])

        with torch.no_grad():
            f = torch.cat([model.features(crops(img)), model.features(crops(img_ds))], dim=1)
            scores.append(float(regressor.scale(regressor(f).mean())))
    return scores


def measure(device: torch.device, fn):
    """(seconds, peak bytes, result) of one run of ``fn``."""
    with PeakMemory(device) as mem:
        t = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
    return seconds, mem.peak or 0, out


def interleaved(runners: dict, repeats: int, device: torch.device) -> dict:
    """Best time, peak memory and last result per runner, timed in alternating rounds so that a
    change in machine load hits every runner alike (side by side, not one after the other)."""
    best = {name: (float("inf"), 0, None) for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            t, mem, out = measure(device, fn)
            old_t, old_mem, _ = best[name]
            best[name] = (min(t, old_t), max(mem, old_mem), out)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--images", type=int, default=4, help="images of the first size (the others: half, at least 2)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--paths",
        default=",".join(PATHS),
        help="comma-separated paths: " + ", ".join(PATHS) + ", each with optional @bN (batch), "
        "@wN (decode workers), @tN (torch threads); the first is the fp32 reference",
    )
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated subset of the protocols")
    ap.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="comma-separated WxH image sizes")
    ap.add_argument("--weights-dir", type=Path, default=None, help="use the published weights from this folder")
    ap.add_argument("--weight-norm", type=float, default=10.0, help="||w|| of the random regressor, scaled units")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help="accepted max |scaled score - reference|")
    ap.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the per-image fp32 baseline (crops, CPU)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.weights_dir is not None:
        pub = load("arniqa-kadid10k", device="cpu", weights_dir=args.weights_dir)
        model, regressor, weights = pub.model, pub.regressor, f"published ({args.weights_dir})"
    else:
        model, regressor = ARNIQA("resnet50").eval(), Regressor("kadid10k")
        with torch.no_grad():  # scaled score = (raw - 1) / 4, so ||w_raw|| = 4 * weight_norm
            w = torch.randn(1, 4096)
            regressor.weight.copy_(w / w.norm() * 4 * args.weight_norm)
            regressor.bias.fill_(3.0)
        weights = f"random (regressor direction random, ||w|| = {args.weight_norm} in scaled units)"
    paths_wanted = [p for p in args.paths.split(",") if p]
    load_before = os.getloadavg()
    rows = []
    reference = paths_wanted[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARNIQA_CACHE"] = tmp  # the onnxruntime path exports the model here
        sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
        for size in sizes:
            n = args.images if size == sizes[0] else max(2, args.images // 2)
            files = make_images(Path(tmp), size, n + 1, seed=size[0])
            warm, files = files[:1], files[1:]
            label = f"{size[0]}x{size[1]}"
            for protocol in [p for p in args.protocols.split(",") if p]:
                runners = {}
                if protocol == "crops" and device.type == "cpu" and args.baseline:
                    model.to(memory_format=torch.contiguous_format)
                    baseline_crops(model, regressor, warm)
                    runners[BASELINE] = _baseline(model, regressor, files)
                compile_seconds = {}
                for name in paths_wanted:
                    options, threads = parse_path(name, args.batch_size, args.threads)
                    model.to(memory_format=torch.contiguous_format)
                    torch.set_num_threads(threads)
                    if name.split("@")[0] == "compile":
                        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tmp) / "inductor"))  # cold compiles
                        compiled = copy.deepcopy(model)
                        compiled.features = torch.compile(compiled.features)
                        scorer = Scorer(compiled, regressor, protocol=protocol, device=device, **options)
                        t = time.perf_counter()
                        scorer.score(files)  # compiles for the measured batch shapes
                        compile_seconds[name] = time.perf_counter() - t
                        runners[name] = _scoring(compiled, scorer, files, False, threads)
                        continue
                    kind = name.split("@")[0]
                    make = DeviceDecodeScorer if kind.startswith("nvjpeg") else Scorer
                    scorer = make(model, regressor, protocol=protocol, device=device, **options)
                    scorer.score(warm)
                    if kind.startswith("encoder"):
                        runners[name] = _encoder_alone(scorer, files, scorer.channels_last)
                    else:
                        runners[name] = _scoring(model, scorer, files, scorer.channels_last, threads)
                results = interleaved(runners, args.repeats, device)
                torch.set_num_threads(args.threads)
                ref = results[reference][2]
                for name, (t, mem, scores) in results.items():
                    dev = (
                        None if ref is None or name == BASELINE else float((torch.as_tensor(scores) - ref).abs().max())
                    )
                    rows.append(
                        dict(
                            size=label,
                            protocol=protocol,
                            path=name,
                            images=n,
                            seconds=t,
                            images_per_s=n / t,
                            peak_mb=mem / 2**20,
                            max_dev=dev,
                            accepted=None if dev is None else dev <= args.tolerance,
                            compile_seconds=compile_seconds.get(name),
                        )
                    )
                    extra = f", compiled in {compile_seconds[name]:.0f} s" if name in compile_seconds else ""
                    print(f"{label} {protocol} {name}: {n / t:.2f} img/s, max |d score| {dev}{extra}", flush=True)
    load_after = os.getloadavg()

    base = {r["size"]: r["images_per_s"] for r in rows if r["path"] == BASELINE}
    print()
    print(f"{'size':<9} {'protocol':<8} {'path':<24} {'img/s':>7} {'x base':>7} {'peak MB':>8} {'max|d|':>8}  ok")
    for r in rows:
        ratio = r["images_per_s"] / base[r["size"]] if r["protocol"] == "crops" and r["size"] in base else None
        dev = "" if r["max_dev"] is None else f"{r['max_dev']:.1e}"
        ok = "" if r["accepted"] is None else ("yes" if r["accepted"] else "no")
        print(
            f"{r['size']:<9} {r['protocol']:<8} {r['path']:<24} {r['images_per_s']:7.2f} "
            f"{'' if ratio is None else f'{ratio:.2f}':>7} {r['peak_mb']:8.0f} {dev:>8}  {ok}"
        )
        r["speedup_vs_baseline"] = ratio
    fastest = {}
    for r in rows:
        if r["path"] != BASELINE and (r["accepted"] or r["path"] == reference):
            key = (r["size"], r["protocol"])
            if key not in fastest or r["images_per_s"] > fastest[key]["images_per_s"]:
                fastest[key] = r
    print("\nfastest accepted path per size and protocol:")
    for (size, protocol), r in fastest.items():
        print(f"  {size} {protocol}: {r['path']} ({r['images_per_s']:.2f} img/s)")

    result = {
        "benchmark": "inference",
        "machine": machine_summary(),
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "weights": weights,
        "batch_size_images": args.batch_size,
        "repeats": args.repeats,
        "tolerance": args.tolerance,
        "reference": reference,
        "command": "python benchmarks/inference.py " + " ".join(sys.argv[1:]),
        "load_average_before_after": [load_before, load_after],
        "note": "best of the repeats; decode included (JPEG files); other processes may load the CPU",
        "rows": rows,
        "fastest_accepted": {f"{s} {p}": r["path"] for (s, p), r in fastest.items()},
    }
    out = args.out or Path(__file__).parent / "results" / f"inference-{device.type}.json"
    write_json(out, result)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
