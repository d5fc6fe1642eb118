"""Alpha search speed: one decomposition per split vs refitting scikit-learn's Ridge per alpha.

Same features for both: (images, 5, 4096) float32, each 2048-d half L2-normalised like the real
quality features, reference-disjoint 70/10/20 splits (KADID layout: 81 references, fewer images per
reference for smaller runs),
the reference grid ``np.geomspace(1e-3, 1e3, 100)`` and 10 splits, alpha = argmax of the median
validation SRCC. The full scikit-learn search is 100 x 10 = 1000 fits; when ``--sklearn-fits`` is
smaller, that many fits are timed and the total is extrapolated (the output says so), and the
same-alpha check runs on ``--check-images`` images where both searches run in full.

    python benchmarks/evaluation.py                       # KADID size (10,125 images)
    python benchmarks/evaluation.py --images 1000 --sklearn-fits 20
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
from scipy import stats
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_info, threadpool_limits

from arniqa.evaluate.probe import crop_rows, evaluate
from arniqa.evaluate.ridge import ALPHAS
from arniqa.evaluate.splits import random_splits
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import cpu_name

CROPS, DIM, REFS = 5, 4096, 81
NOTE = (
    "*_cpu_s: CPU seconds of the process with the BLAS thread count below; *_wall_s: wall-clock on a "
    "machine shared with other jobs; speedup_cpu is the headline"
)


def make_features(n_images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n_images, CROPS, DIM)).astype(np.float32)
    feats[..., :2048] /= np.linalg.norm(feats[..., :2048], axis=-1, keepdims=True)
    feats[..., 2048:] /= np.linalg.norm(feats[..., 2048:], axis=-1, keepdims=True)
    w = rng.normal(size=DIM) * 3
    raw = feats.mean(axis=1) @ w + rng.normal(scale=0.5, size=n_images)
    scores = 1 + 4 * (raw - raw.min()) / (raw.max() - raw.min())  # a KADID-like 1-5 MOS
    refs = max(10, round(REFS * n_images / 10125))  # KADID: 81 references of 125 images
    groups = np.arange(n_images) * refs // n_images
    return feats, scores, random_splits(n_images, n_splits=10, seed=seed, groups=groups)


def sklearn_fit_eval(X, y, scores, split, alpha, dtype):
    rows = crop_rows(split.train, CROPS)
    model = Ridge(alpha=alpha).fit(X[rows].astype(dtype, copy=False), y[rows])
    pred = model.predict(X[crop_rows(split.val, CROPS)].astype(dtype, copy=False)).reshape(-1, CROPS).mean(1)
    return stats.spearmanr(pred, scores[split.val])[0]


def sklearn_search(feats, scores, splits, dtype):
    X, y = feats.reshape(-1, DIM), np.repeat(scores, CROPS)
    val = np.array([[sklearn_fit_eval(X, y, scores, s, a, dtype) for s in splits] for a in ALPHAS])
    return int(np.argmax(np.median(val, axis=1)))


class Clock:
    """CPU seconds of this process (steady on a shared machine with 1 BLAS thread) and wall seconds."""

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def sklearn_timed_subset(feats, scores, splits, fits: int, dtype) -> Clock:
    """Clock of ``fits`` (fit + validation SRCC) runs spread over alphas and splits."""
    X, y = feats.reshape(-1, DIM), np.repeat(scores, CROPS)
    picks = [(ALPHAS[int(i)], splits[k % len(splits)]) for k, i in enumerate(np.linspace(0, 99, fits))]
    with Clock() as clock:
        for a, s in picks:
            sklearn_fit_eval(X, y, scores, s, a, dtype)
    return clock


def run_size(n_images: int, sklearn_fits: int, dtypes) -> list[dict]:
    feats, scores, splits = make_features(n_images)
    with Clock() as ours_clock:
        ours = evaluate(feats, scores, splits, ALPHAS)
    total_fits = len(ALPHAS) * len(splits)
    rows = []
    for dtype in dtypes:
        row = {
            "images": n_images,
            "crop_rows": n_images * CROPS,
            "sklearn_dtype": np.dtype(dtype).name,
            "ours_cpu_s": ours_clock.cpu,
            "ours_wall_s": ours_clock.wall,
            "ours_alpha": ours.alpha,
        }
        if sklearn_fits >= total_fits:
            with Clock() as clock:
                best = sklearn_search(feats, scores, splits, dtype)
            row.update(
                sklearn_cpu_s=clock.cpu,
                sklearn_wall_s=clock.wall,
                sklearn_measured_fits=total_fits,
                extrapolated=False,
                sklearn_alpha=float(ALPHAS[best]),
                same_alpha=bool(best == ours.alpha_index),
            )
        else:
            clock = sklearn_timed_subset(feats, scores, splits, sklearn_fits, dtype)
            scale = total_fits / sklearn_fits
            row.update(
                sklearn_cpu_s=clock.cpu * scale,
                sklearn_wall_s=clock.wall * scale,
                sklearn_measured_fits=sklearn_fits,
                extrapolated=True,
                sklearn_alpha=None,
                same_alpha=None,
            )
        row["speedup_cpu"] = row["sklearn_cpu_s"] / row["ours_cpu_s"]
        row["speedup_wall"] = row["sklearn_wall_s"] / row["ours_wall_s"]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10125, help="images (x5 crop rows) [KADID: 10125]")
    ap.add_argument(
        "--sklearn-fits", type=int, default=10, help="sklearn fits to time at --images (1000 = full search)"
    )
    ap.add_argument("--check-images", type=int, default=250, help="size of the full same-alpha check (0: skip)")
    ap.add_argument(
        "--sklearn-dtype",
        nargs="+",
        default=["float32", "float64"],
        choices=["float32", "float64"],
        help="dtype(s) handed to sklearn when timing (float32: the stored features; ours is float64)",
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS threads for both sides (1 is steadier on a shared machine)"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "evaluation-cpu.json")
    args = ap.parse_args()

    threadpool_limits(args.threads)
    blas = [f"{i.get('internal_api')} {i.get('num_threads')} threads" for i in threadpool_info()]
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {platform.machine()}"
    rows = []
    if args.check_images:
        rows += [r | {"role": "same-alpha check, full search"} for r in run_size(args.check_images, 1000, ["float64"])]
    rows += [r | {"role": "timing"} for r in run_size(args.images, args.sklearn_fits, args.sklearn_dtype)]

    print(
        f"machine: {machine}; BLAS: {', '.join(blas)}; 100 alphas x 10 splits; CPU seconds of this process "
        "(wall seconds in brackets; the machine is shared with other jobs)"
    )
    print(
        f"{'images':>7} {'rows':>7} {'ours s':>15} {'sklearn s':>19} {'dtype':>8} {'speed-up':>9} "
        f"{'same alpha':>10}  role"
    )
    for r in rows:
        note = f" (sklearn extrapolated from {r['sklearn_measured_fits']} of 1000 fits)" if r["extrapolated"] else ""
        same = "n/a" if r["same_alpha"] is None else ("yes" if r["same_alpha"] else "NO")
        print(
            f"{r['images']:>7} {r['crop_rows']:>7} {r['ours_cpu_s']:>7.1f} [{r['ours_wall_s']:>5.0f}] "
            f"{r['sklearn_cpu_s']:>9.1f} [{r['sklearn_wall_s']:>7.0f}] {r['sklearn_dtype']:>8} "
            f"{r['speedup_cpu']:>8.1f}x {same:>10}  {r['role']}{note}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "evaluation alpha search",
        "machine": machine,
        "blas": blas,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "note": NOTE,
        "threads": args.threads,
        "alphas": len(ALPHAS),
        "splits": 10,
        "rows": rows,
    }
    write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
