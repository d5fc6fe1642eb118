"""Do quality maps point at the damage? Photos degraded in one half only, mapped, the halves compared.

For each photo (resized and centre-cropped to ``size``) and each distortion: the whole image is distorted (so
a codec sees the whole frame), then only the left or the right half (alternating from photo to photo) is
kept from it. Over the crops that lie wholly inside one half, the map's mean in the degraded half is
compared with the clean half's; the same comparison on the undistorted photo is the control (content alone
makes halves differ).
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean, median

import numpy as np
import torch

from ..constants import SYNTHETIC_SIZE
from ..data.pixels import tensor_to_pil
from ..data.synthetic import prepare
from ..degradations import distort
from ..inference.maps import quality_map
from .samples import rounded_to_8_bits

DISTORTIONS = (("gaublur", 3), ("whitenoise", 3), ("jpeg", 4))


def half_degraded(x: torch.Tensor, name: str, level: int, side: str, seed: int = 0) -> torch.Tensor:
    """``x`` (3, H, W) with the ``side`` half (left or right) replaced by ``distort(x, name, level)``'s."""
    y = distort(x, name, level, generator=torch.Generator().manual_seed(seed)).clamp(0, 1)
    out = x.clone()
    w = x.shape[-1] // 2
    part = slice(0, w) if side == "left" else slice(w, None)
    out[..., part] = y[..., part]
    return rounded_to_8_bits(out)


def half_means(scores: np.ndarray, lefts: list[int], crop: int, width: int) -> tuple[float, float]:
    """Mean map value of the crops wholly in the left half and of those wholly in the right half."""
    half = width // 2
    left = [j for j, x in enumerate(lefts) if x + crop <= half]
    right = [j for j, x in enumerate(lefts) if x >= half]
    if not left or not right:
        raise ValueError(f"no crop of {crop} px lies wholly in a half of a {width} px wide image")
    return float(scores[:, left].mean()), float(scores[:, right].mean())


def localisation(
    scorer,
    photos: list[Path],
    size: tuple[int, int] = SYNTHETIC_SIZE,
    crop: int = 96,
    stride: int = 48,
    distortions=DISTORTIONS,
    batch_size: int = 32,
    progress=None,
) -> dict:
    """Per distortion: the share of photos whose degraded half maps lower than the clean half, the mean
    difference clean minus degraded (map units: the scorer's scaled score), the same difference on the
    undistorted photos (control), and the difference over the map's spread within halves (contrast)."""
    rows = []
    for i, path in enumerate(photos):
        x = prepare(path, size)
        side = "left" if i % 2 == 0 else "right"
        maps = {"pristine": _map(scorer, x, crop, stride, batch_size)}
        for name, level in distortions:
            maps[name] = _map(scorer, half_degraded(x, name, level, side, seed=i), crop, stride, batch_size)
        for key, qmap in maps.items():
            left, right = half_means(qmap.scores, qmap.lefts, qmap.crop, size[0])
            degraded, clean = (left, right) if side == "left" else (right, left)
            rows.append(
                {
                    "photo": str(path),
                    "side": side,
                    "distortion": key,
                    "degraded": degraded,
                    "clean": clean,
                    "spread": float(qmap.scores.std()),
                }
            )
        if progress:
            progress(i + 1, len(photos))
    summary = {}
    control = {r["photo"]: r["clean"] - r["degraded"] for r in rows if r["distortion"] == "pristine"}
    for key in ["pristine", *(name for name, _ in distortions)]:
        part = [r for r in rows if r["distortion"] == key]
        diffs = [r["clean"] - r["degraded"] for r in part]
        summary[key] = {
            "photos": len(part),
            "share_degraded_half_lower": sum(d > 0 for d in diffs) / len(diffs),
            "mean_difference": mean(diffs),
            "median_difference": median(diffs),
            "share_beyond_control": sum(d > control[r["photo"]] for d, r in zip(diffs, part)) / len(diffs),
            "contrast": mean(d / max(r["spread"], 1e-9) for d, r in zip(diffs, part)),
        }
    return {"size": list(size), "crop": crop, "stride": stride, "summary": summary, "rows": rows}


def _map(scorer, x: torch.Tensor, crop: int, stride: int, batch_size: int):
    return quality_map(scorer, tensor_to_pil(x), crop, stride, max_side=None, batch_size=batch_size)
