"""Do quality maps point at the damage? Photos degraded in one half (blur, noise, JPEG), mapped, halves compared.

See arniqa.explain.localise for the protocol. Prints a table and writes JSON (default
benchmarks/results/map-localisation.json).

    python benchmarks/map_localisation.py --checkpoint MODEL.safetensors --photos FOLDER [--device cuda]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from arniqa.data.folders import list_images
from arniqa.explain.localise import localisation
from arniqa.inference import load
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import describe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--images", type=int, default=0, help="first N photos (0: all)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "map-localisation.json")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    scorer = load(args.checkpoint, device=args.device, engine="torch")
    photos = list_images(args.photos)[: args.images or None]
    result = localisation(scorer, photos, (w, h), args.crop, args.stride)
    table = Table(title=f"{len(photos)} photos, {w}x{h}, crops {args.crop} every {args.stride} px")
    for col in ("distortion", "degraded half lower", "mean clean - degraded", "beyond control", "contrast"):
        table.add_column(col, justify="right")
    for key, s in result["summary"].items():
        table.add_row(
            key,
            f"{s['share_degraded_half_lower']:.3f}",
            f"{s['mean_difference']:+.4f}",
            f"{s['share_beyond_control']:.3f}",
            f"{s['contrast']:+.3f}",
        )
    Console().print(table)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": args.checkpoint,
        "photos": str(args.photos),
        "machine": describe(),
    }
    write_json(args.out, {**meta, **result})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
