"""The report's embedded thumbnails (``arniqa report --thumbnails embed``): photos decoded whole, then resized (before),
against photos reduced on load (``read_image(path, draft=DRAFT * size)``: a JPEG at a reduced scale, libjpeg's DCT
scaling; a HEIC's stored thumbnail; a PNG cannot be), in turn.

Rows as ``arniqa score`` writes them, the photos of ``--photos`` repeated up to ``--rows``, written by
:func:`arniqa.reports.html.write_report` with ``--thumbnails embed``, once each way, alternating for ``--rounds``;
then, for each photo once, the mean absolute difference (8-bit levels) of its two thumbnails before they are
encoded as JPEGs, and whether their sizes agree; ``jpeg q70``: the difference the report's own encoding (quality 70)
makes to a thumbnail decoded whole, for scale; ``decode s`` and ``resize s``: a photo's decode whole and its thumbnail
made from it (mean). ``load``: the load average after each report.

``--longer N``: the photos' JPEGs (every ``--every``-th) upscaled first to N px on their longer side (bicubic, saved
at quality 90 in a temporary folder), as a camera's are: the pristine JPEGs are 481x321, too small to be reduced.
``--as png`` or ``--as heic``: saved as PNG, or as HEIC (quality 90) with a thumbnail of 320 px stored in it as a
phone stores one (pillow-heif), instead.

    python benchmarks/thumbnails.py --photos /tmp/photos   # a copy of ../shared/data/pristine
    python benchmarks/thumbnails.py --photos /tmp/photos --longer 4032 --every 5 --rows 400 \
        --out benchmarks/results/thumbnails-cpu-12mp.json
    python benchmarks/thumbnails.py --photos /tmp/photos --longer 4000 --as png --every 100 --rows 40
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from report_size import rows_of

SIZE = 96  # arniqa report's --thumb-size


def thumbnail_pixels(path: Path, draft: int | None) -> np.ndarray:
    from arniqa.data.images import read_image

    image = read_image(path, draft=draft)
    image.thumbnail((SIZE, SIZE))
    return np.asarray(image, dtype=np.float64)


def upscaled(photo: Path, longer: int, folder: Path, suffix: str) -> Path:
    from PIL import Image

    with Image.open(photo) as image:
        scale = longer / max(image.size)
        big = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    path = folder / f"{photo.stem}.{suffix}"
    if suffix == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
        big.save(path, quality=90, thumbnails=[320])
    else:
        big.save(path, quality=90)
    return path


def stages(path: Path) -> tuple[float, float, float]:
    """Seconds to decode ``path`` whole and to make its thumbnail from that, and the mean difference (8-bit levels)
    the report's JPEG (quality 70) makes to that thumbnail."""
    import io

    from PIL import Image

    from arniqa.data.images import read_image

    t = time.perf_counter()
    image = read_image(path)
    decoded = time.perf_counter() - t
    image.thumbnail((SIZE, SIZE))
    resized = time.perf_counter() - t - decoded
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    saved = np.asarray(Image.open(buffer), dtype=np.float64)
    return decoded, resized, float(np.abs(saved - np.asarray(image, dtype=np.float64)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True, help="a folder of photos (searched recursively)")
    ap.add_argument("--rows", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--longer", type=int, help="upscale the JPEGs to this many px on their longer side first")
    ap.add_argument("--every", type=int, default=1, help="with --longer: every n-th JPEG (every n-th photo for --as)")
    ap.add_argument("--as", dest="suffix", choices=["jpg", "png", "heic"], default="jpg", help="with --longer")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "thumbnails-cpu.json")
    args = ap.parse_args()
    from arniqa.data.folders import list_images
    from arniqa.reports import html
    from arniqa.utils.jsonfile import write_json
    from arniqa.utils.runtime import machine_summary

    photos = [p.resolve() for p in list_images(args.photos)]
    made = tempfile.TemporaryDirectory()
    if args.longer:
        sources = photos if args.suffix != "jpg" else [p for p in photos if p.suffix.lower() == ".jpg"]
        photos = [upscaled(p, args.longer, Path(made.name), args.suffix) for p in sources[:: args.every]]
    rows = rows_of(photos, args.rows)
    from arniqa.data.images import read_image

    readers = {"decoded whole": lambda path, draft=None: read_image(path), "reduced scale": read_image}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            for way, reader in readers.items():
                path = Path(tmp) / f"{k}.html"
                with mock.patch.object(html, "read_image", reader):  # the thumbnails' reader, draft or not
                    t = time.perf_counter()
                    html.write_report(rows, path, thumbnails="embed", size=SIZE)
                    seconds = time.perf_counter() - t
                runs.append(
                    {
                        "way": way,
                        "round": k,
                        "seconds": seconds,
                        "bytes": path.stat().st_size,
                        "load": os.getloadavg()[0],
                    }
                )
    quality = {}
    for suffix in sorted({p.suffix.lower() for p in photos}):
        diffs, same_size, timed = [], 0, []
        for p in (p for p in photos if p.suffix.lower() == suffix):
            a, b = thumbnail_pixels(p, None), thumbnail_pixels(p, html.DRAFT * SIZE)
            same_size += a.shape == b.shape
            if a.shape == b.shape:
                diffs.append(float(np.abs(a - b).mean()))
            timed.append(stages(p))
        decode, resize, jpeg = np.mean(timed, axis=0).tolist()
        quality[suffix] = {
            "photos": len(diffs),
            "same_size": same_size,
            "mean_abs_diff": float(np.mean(diffs)),
            "max_mean_abs_diff": float(np.max(diffs)),
            "jpeg_q70_diff": jpeg,
            "decode_seconds": decode,
            "resize_seconds": resize,
        }
    best = {way: min(r["seconds"] for r in runs if r["way"] == way) for way in readers}
    ratio = best["decoded whole"] / best["reduced scale"]
    print(f"{args.rows:,} rows of {len(photos)} photos, --thumbnails embed, {SIZE} px")
    print(f"{'way':<14} {'round':>5} {'s':>8} {'MB':>7} {'load':>5}")
    for r in runs:
        print(f"{r['way']:<14} {r['round']:>5} {r['seconds']:8.2f} {r['bytes'] / 1e6:7.2f} {r['load']:5.2f}")
    print(f"faster: {ratio:.1f}x (best of {args.rounds} each)")
    print(f"{'photos':<8} {'n':>4} {'same size':>9} {'mean |diff|':>11} {'worst':>6} {'jpeg q70':>8}  (8-bit levels)")
    for suffix, q in quality.items():
        print(
            f"{suffix:<8} {q['photos']:>4} {q['same_size']:>9} {q['mean_abs_diff']:11.3f} {q['max_mean_abs_diff']:6.3f}"
            f" {q['jpeg_q70_diff']:8.3f}  decode {q['decode_seconds']:.3f} s, resize {q['resize_seconds']:.3f} s"
        )
    write_json(
        args.out,
        {
            "machine": machine_summary(),
            "photos": str(args.photos),
            "longer": args.longer,
            "as": args.suffix if args.longer else None,
            "every": args.every,
            "rows": args.rows,
            "size": SIZE,
            "runs": runs,
            "faster": ratio,
            "thumbnail_difference": quality,
        },
    )
    made.cleanup()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
