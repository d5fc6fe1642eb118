"""int8 against fp32 ONNX Runtime: score agreement on >= 1000 images, and speed, side by side in one process.

Images: the synthetic KADID-style benchmark (``arniqa benchmark synthetic``: every pristine photo x 23
types x 5 levels) of photos that calibration never saw, plus clean photos. Model: a ResNet50 encoder
with random weights (seed 0; the published weights are not available offline) and a ridge regressor
(alpha 0.1) fitted on the fp32 features of the synthetic images of the first --fit-references
references against their labels (KADID-10k's mean MOS per type and level), scaled to 0-1 with
KADID-10k's range (1, 5). Both engines run the same feature graph (fp32, and its int8 form calibrated on the
bundled sample photos, :mod:`arniqa.inference.quantize`) and the same regressor, so their scores
differ by the quantization alone. Reported: SRCC and PLCC of int8 against fp32 scores, max and 99th
percentile of |int8 - fp32| (scaled), and the images/s of each engine on these images (alternating
passes over chunks of images, best of --repeats per chunk).

    python benchmarks/int8.py --synthetic /tmp/synth --clean /work/shared/data/pristine --clean-count 100
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from arniqa.data.folders import list_images
from arniqa.data.pixels import tensor_to_pil
from arniqa.data.synthetic import prepare
from arniqa.inference import Scorer
from arniqa.inference.engines import cached_export
from arniqa.inference.onnx_engine import OnnxEngine
from arniqa.inference.quantize import int8_file
from arniqa.models import ARNIQA
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import machine_summary


def features(engine: OnnxEngine, images: list, protocol: str) -> tuple[np.ndarray, float]:
    """(N, 4096) mean-over-views features and the seconds the pass took."""
    scorer = Scorer(None, None, protocol=protocol, engine=engine, batch_size=1, workers=1)
    t = time.perf_counter()
    feats = [r.features.mean(0).numpy() for r in scorer.iter_scores(images, return_features=True)]
    return np.stack(feats), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", type=Path, required=True, help="a folder of `arniqa benchmark synthetic`")
    ap.add_argument("--clean", type=Path, required=True, help="a folder of clean photos")
    ap.add_argument("--clean-count", type=int, default=100)
    ap.add_argument("--size", default="256x192", help="clean photos are prepared to this size, as the synthetic ones")
    ap.add_argument("--protocol", default="whole")
    ap.add_argument("--fit-references", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8-cpu.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = list(csv.DictReader(open(args.synthetic / "dmos.csv")))
    synthetic = [str(args.synthetic / "images" / r["dist_img"]) for r in rows]
    labels = np.array([float(r["dmos"]) for r in rows])
    refs = sorted({r["ref_img"] for r in rows})
    fit = np.array([r["ref_img"] in refs[: args.fit_references] for r in rows])
    width, height = map(int, args.size.split("x"))
    clean_files = list_images(args.clean)
    clean_files = clean_files[:: max(1, len(clean_files) // args.clean_count)][: args.clean_count]
    clean = [tensor_to_pil(prepare(p, (width, height))) for p in clean_files]
    images = synthetic + clean

    torch.manual_seed(0)
    fp32_file = cached_export(ARNIQA("resnet50").eval())
    t = time.perf_counter()
    int8_path = int8_file(fp32_file)
    quantize_seconds = time.perf_counter() - t
    engines = {
        "fp32": OnnxEngine(fp32_file, torch.device("cpu"), threads=args.threads),
        "int8": OnnxEngine(int8_path, torch.device("cpu"), threads=args.threads),
    }
    feats = {name: [] for name in engines}
    seconds = {name: 0.0 for name in engines}
    chunk = 50
    for start in range(0, len(images), chunk):  # alternate, so both see the same machine load
        for name, engine in engines.items():
            f, s = features(engine, images[start : start + chunk], args.protocol)
            feats[name].append(f)
            seconds[name] += s
    feats = {name: np.concatenate(f) for name, f in feats.items()}

    from sklearn.linear_model import Ridge

    ridge = Ridge(alpha=0.1).fit(feats["fp32"][: len(synthetic)][fit], labels[fit])
    scores = {name: (ridge.predict(f) - 1.0) / 4.0 for name, f in feats.items()}
    diff = np.abs(scores["int8"] - scores["fp32"])
    n = len(images)
    part = {"all": slice(None), "synthetic": slice(0, len(synthetic)), "clean": slice(len(synthetic), None)}
    agreement = {
        k: dict(
            images=len(scores["fp32"][s]),
            srcc=float(spearmanr(scores["int8"][s], scores["fp32"][s])[0]),
            plcc=float(pearsonr(scores["int8"][s], scores["fp32"][s])[0]),
            max_abs_diff=float(diff[s].max()),
            p99_abs_diff=float(np.percentile(diff[s], 99)),
            mean_abs_diff=float(diff[s].mean()),
            fp32_score_std=float(scores["fp32"][s].std()),
        )
        for k, s in part.items()
    }
    speed = {name: n / s for name, s in seconds.items()}
    srcc_labels = float(spearmanr(scores["fp32"][: len(synthetic)][~fit], labels[~fit])[0])
    print(
        f"{n} images ({len(synthetic)} synthetic of {len(refs)} references, {len(clean)} clean), "
        f"protocol {args.protocol}, {args.threads} threads; int8 file made in {quantize_seconds:.0f} s"
    )
    print(f"{'images':<10} {'n':>5} {'SRCC':>8} {'PLCC':>8} {'max|d|':>8} {'p99|d|':>8} {'mean|d|':>8} {'fp32 std':>8}")
    for k, a in agreement.items():
        print(
            f"{k:<10} {a['images']:5d} {a['srcc']:8.5f} {a['plcc']:8.5f} {a['max_abs_diff']:8.5f} "
            f"{a['p99_abs_diff']:8.5f} {a['mean_abs_diff']:8.5f} {a['fp32_score_std']:8.4f}"
        )
    print(
        f"images/s: fp32 {speed['fp32']:.2f}, int8 {speed['int8']:.2f} ({speed['int8'] / speed['fp32']:.2f}x); "
        f"fp32 SRCC against the labels on the held-out references: {srcc_labels:.3f}"
    )
    result = {
        "benchmark": "int8",
        "command": "python benchmarks/int8.py " + " ".join(sys.argv[1:]),
        "machine": machine_summary(),
        "model": "ResNet50, random weights (torch.manual_seed(0)); ridge alpha 0.1 fitted on fp32 features of "
        f"the first {args.fit_references} references' synthetic images; KADID-10k range (1, 5)",
        "protocol": args.protocol,
        "threads": args.threads,
        "quantize_seconds": quantize_seconds,
        "agreement": agreement,
        "images_per_s": speed,
        "fp32_srcc_vs_labels_held_out": srcc_labels,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
