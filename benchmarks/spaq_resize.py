"""SPAQ's pre-resize (``FeatureProtocol(short_side=512)``): a photo decoded whole, then resized (the reference
protocol, what ``evaluate.features`` does), against the JPEG decoded at a reduced scale first (libjpeg's DCT
scaling, ``read_image(path, draft=...)``, the smallest of 1/2, 1/4, 1/8 that leaves the shorter side >= 512), then
resized the same way.

The pristine JPEGs (every ``--every``-th) are upscaled to ``--longer`` px on their longer side (bicubic, quality 90,
in a temporary folder), as SPAQ's ~4000x3000 phone photos are. Per photo: the time of each way, alternating for
``--rounds``; the peak memory (max RSS over a child process's baseline) of each way on the first photo; and the
difference of the two resized images and of the 10 crops the features are computed from (mean absolute difference
in 8-bit levels, largest, PSNR). ``load``: the load average at the end.

    python benchmarks/spaq_resize.py --photos ../shared/data/pristine --out benchmarks/results/spaq-resize-cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from thumbnails import upscaled

SHORT = 512  # SPAQ's shorter side (reference data/dataset_spaq.py)


def resized(path: Path, draft: bool):
    """``path`` at SPAQ's size: the reference's way (decoded whole), or decoded at a reduced scale first and resized to
    the size the whole image gets (the reduced image's own size would round the longer side differently:
    4000x2669 becomes 1000x668 at 1/4, whose longer side at 512 is 766 px, not 767)."""
    from PIL import Image

    from arniqa.data.images import read_image
    from arniqa.evaluate.features import resize_short_side

    if not draft:
        return resize_short_side(read_image(path, exif=False), SHORT)
    with Image.open(path) as header:
        w, h = header.size
    size = (SHORT, int(h * SHORT / w)) if w <= h else (int(w * SHORT / h), SHORT)  # as resize_short_side's
    longer = math.ceil(SHORT * max(w, h) / min(w, h))  # read_image's draft bounds the longer side
    return read_image(path, exif=False, draft=longer).resize(size, Image.Resampling.BICUBIC)


def crops(image) -> np.ndarray:
    from arniqa.data.pixels import uint8_view
    from arniqa.data.views import five_crops, half_scale

    full, half = five_crops(uint8_view(image), 224), five_crops(uint8_view(half_scale(image, "bicubic")), 224)
    return np.concatenate([full.numpy(), half.numpy()]).astype(np.float64)


def difference(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a - b)
    mse = float((d**2).mean())
    return {"mean_abs": float(d.mean()), "max_abs": float(d.max()), "psnr_db": 10 * math.log10(255**2 / mse)}


def peak_mb(path: Path, small: Path, draft: bool) -> float:
    """The peak RSS a child process adds when it resizes ``path`` one way: its peak is reset (Linux's
    ``/proc/self/clear_refs``) after the imports and a warm-up on a small photo."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from spaq_resize import resized; "
        "resized(Path(sys.argv[4]), sys.argv[3] == '1'); "
        "rss = lambda key: next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key)); "
        "open('/proc/self/clear_refs', 'w').write('5'); base = rss('VmRSS:'); "
        "resized(Path(sys.argv[2]), sys.argv[3] == '1'); print((rss('VmHWM:') - base) / 1024)"
    )
    args = [sys.executable, "-c", code, str(Path(__file__).parent), str(path), "1" if draft else "0", str(small)]
    return float(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    from arniqa.utils.runtime import machine_summary

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True, help="a folder of photos (searched recursively)")
    ap.add_argument("--longer", type=int, default=4000)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "spaq-resize-cpu.json")
    args = ap.parse_args()
    jpegs = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[:: args.every]
    with tempfile.TemporaryDirectory() as tmp:
        photos = [upscaled(p, args.longer, Path(tmp)) for p in jpegs]
        times = {"whole": [], "draft": []}
        for _ in range(args.rounds):
            for way in times:  # alternating: a busy spell hits both
                start = time.perf_counter()
                for photo in photos:
                    resized(photo, way == "draft")
                times[way].append((time.perf_counter() - start) / len(photos))
        peaks = {way: peak_mb(photos[0], jpegs[0], way == "draft") for way in times}
        images = [(np.asarray(resized(p, False), np.float64), np.asarray(resized(p, True), np.float64)) for p in photos]
        crop_pairs = [(crops(resized(p, False)), crops(resized(p, True))) for p in photos]
    result = {
        "machine": machine_summary(),
        "photos": len(photos),
        "longer": args.longer,
        "ms_per_photo": {way: [round(1000 * t, 1) for t in ts] for way, ts in times.items()},
        "median_ms_per_photo": {way: round(1000 * float(np.median(ts)), 1) for way, ts in times.items()},
        "peak_rss_mb_first_photo": {way: round(mb, 1) for way, mb in peaks.items()},
        "resized_difference": difference(*(np.concatenate([pair[k].ravel() for pair in images]) for k in (0, 1))),
        "crops_difference": difference(*(np.concatenate([pair[k].ravel() for pair in crop_pairs]) for k in (0, 1))),
        "load": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    med = result["median_ms_per_photo"]
    print(f"| way | ms per photo (median of {args.rounds}) | peak RSS over baseline, MB |")
    print("|---|---|---|")
    for way in times:
        print(f"| {way} | {med[way]} | {result['peak_rss_mb_first_photo'][way]} |")
    for what in ("resized_difference", "crops_difference"):
        d = result[what]
        print(f"{what}: mean {d['mean_abs']:.3f}, max {d['max_abs']:.0f} levels, PSNR {d['psnr_db']:.1f} dB")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
