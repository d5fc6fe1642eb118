"""How long ``arniqa map`` takes on a 12 MP photo (4000x3000) on the CPU, at the defaults and larger.

The photo is a smooth synthetic picture (timing does not depend on content or on the weights: a random
SE-ResNet50 and a random regressor). Each setting is run ``--repeats`` times after one warm-up; the table
gives the median seconds per photo (decoding excluded, downscaling included), the crops and crops per second.
Writes benchmarks/results/maps-<device>.json.

    python benchmarks/maps.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from arniqa.inference import Scorer
from arniqa.inference.maps import quality_map
from arniqa.models.arniqa import ARNIQA
from arniqa.models.regressor import Regressor
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import describe

# (max_side, crop, stride): the defaults first
SETTINGS = ((1024, 224, 112), (1024, 96, 48), (2048, 224, 112))


def photo(width: int = 4000, height: int = 3000) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    rgb = np.stack([np.sin(9 * x + 2 * y), np.cos(7 * y - 3 * x), np.sin(5 * x * y + 1)], -1)
    return Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", default="torch,onnxruntime")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--settings", type=int, default=len(SETTINGS), help="run the first N settings only")
    parser.add_argument("--full", action="store_true", help="also map at full resolution (no downscaling)")
    parser.add_argument("--photo-size", default="4000x3000", help="WIDTHxHEIGHT of the photo (default 12 MP)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ARNIQA("se_resnet50").eval()
    regressor = Regressor.from_numpy(np.random.default_rng(0).normal(size=4096) * 0.01, 3.0, dataset="kadid10k")
    image = photo(*(int(v) for v in args.photo_size.split("x")))
    settings = SETTINGS[: args.settings] + (((None, 224, 112),) if args.full else ())
    rows = []
    for engine in args.engines.split(","):
        scorer = Scorer(model, regressor, device=args.device, engine=engine, batch_size=1, workers=1)
        for max_side, crop, stride in settings:
            quality_map(scorer, image, crop, stride, max_side, args.batch_size)  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                qmap = quality_map(scorer, image, crop, stride, max_side, args.batch_size)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            crops = qmap.scores.size
            rows.append(
                {
                    "engine": engine,
                    "max_side": max_side,
                    "crop": crop,
                    "stride": stride,
                    "mapped_size": list(qmap.size),
                    "crops": crops,
                    "seconds": seconds,
                    "crops_per_s": crops / seconds,
                    "times": times,
                }
            )
    table = Table(title=f"{args.photo_size} photo, {args.device}, {args.threads} threads, batch {args.batch_size}")
    for col in ("engine", "max side", "crop", "stride", "mapped", "crops", "s/photo", "crops/s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["engine"],
            str(r["max_side"] or "full"),
            str(r["crop"]),
            str(r["stride"]),
            "x".join(map(str, r["mapped_size"])),
            str(r["crops"]),
            f"{r['seconds']:.2f}",
            f"{r['crops_per_s']:.1f}",
        )
    Console().print(table)
    out = args.out or Path(__file__).parent / "results" / f"maps-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "machine": describe(),
        "photo": f"{args.photo_size} synthetic",
    }
    write_json(out, {**meta, "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
