"""Quality maps: the score (and, with an explanation head, each distortion group's probability) of a grid
of overlapping square crops of one image.

The image is first downscaled (bicubic, aspect kept) so its longer side is at most ``max_side``; crops of
``crop`` px every ``stride`` px cover it, the last row and column flush with the far edges. Each crop is
one view as in the ``crops`` protocol: the crop of the image and the crop of the same size of its half-scale
copy (the scorer's half-scale method) centred on the same point, zeros outside, so a crop's score is on the
scale the regressor was fitted on; ``batch_size`` crops per forward pass, on the scorer's engine. The crop
must fit the mapped image (:func:`check_options`, :func:`fitting`): memory follows the image, not the options.
The image is any one input :meth:`~arniqa.inference.Scorer.score` takes (a path, a PIL image of any mode, an
array, a tensor), read as it reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..constants import CROP_SIZE
from ..data.pixels import pil_to_tensor
from ..data.views import half_scale
from ..utils.names import keyword
from .inputs import as_image, resized, source_name, split_inputs
from .onnx_engine import GraphHead

if TYPE_CHECKING:  # torch is imported where a map is made: arniqa map checks its options first
    import torch

MAX_SIDE = 1024


@dataclass
class QualityMap:
    """``scores`` (R, C): one per crop (scaled when the regressor has a range, else raw); ``tops`` and
    ``lefts``: crop positions in the mapped image of ``size`` (W, H), which is the input downscaled by
    ``scale``; ``groups`` (len(labels), R, C) and ``severity`` (R, C) with an explanation head."""

    scores: np.ndarray
    tops: list[int]
    lefts: list[int]
    crop: int
    size: tuple[int, int]
    scale: float
    labels: tuple[str, ...] = ()
    groups: np.ndarray | None = None
    severity: np.ndarray | None = None


def positions(length: int, crop: int, stride: int) -> list[int]:
    """Starts of crops of ``crop`` every ``stride`` over ``length``, the last one flush with the end."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, stride))
    return starts if starts[-1] == length - crop else [*starts, length - crop]


def bounded(image: Image.Image | torch.Tensor, max_side: int | None) -> tuple[Image.Image | torch.Tensor, float]:
    """``image`` (PIL, or a (3,H,W) tensor) downscaled so its longer side is at most ``max_side``, and the factor
    (<= 1)."""
    w, h = image.size if isinstance(image, Image.Image) else (image.shape[-1], image.shape[-2])
    if max_side is None or max(w, h) <= max_side:
        return image, 1.0
    r = max_side / max(w, h)
    return resized(image, (max(1, round(w * r)), max(1, round(h * r)))), r


def one_image(image, max_pixels: int | None = None) -> Image.Image | torch.Tensor:
    """The one input ``image`` (anything :meth:`~arniqa.inference.Scorer.score` takes for one image) as
    :func:`~arniqa.inference.inputs.as_image` reads it; ValueError for a list or batch of another number."""
    items = split_inputs(image)
    if not isinstance(items, list) or len(items) != 1:
        got = f"{len(items)} images" if isinstance(items, list) else "an iterator"
        raise ValueError(f"a quality map is of one image, got {got}; map each: [quality_map(model, x) for x in images]")
    return as_image(items[0], source_name(items[0], 0), max_pixels)


def check_options(crop: int, stride: int | None, max_side: int | None, say=keyword) -> int:
    """The stride (None: half the crop); ValueError (one line) for options no image can be mapped with: a crop
    under 2 px or over ``max_side`` (the mapped image's longer side), a stride under 1 px or over the crop
    (pixels between crops would be in none). ``say`` names the settings: quality_map()'s keywords
    (:func:`~arniqa.utils.names.keyword`) or the command line's options (``option``)."""
    stride = crop // 2 if stride is None else stride
    if crop < 2 or stride < 1:
        raise ValueError(f"{say('crop')} must be at least 2 and {say('stride')} at least 1, got {crop} and {stride}")
    if max_side is not None and crop > max_side:
        raise ValueError(
            f"the crop ({crop} px) is larger than {say('max_side', max_side)}, the longer side of a mapped image; "
            f"use {say('crop', max_side)} or less"
        )
    if stride > crop:
        raise ValueError(
            f"the stride ({stride} px) is larger than the crop ({crop} px): pixels between crops would be in none; "
            f"use {say('stride', crop)} or less"
        )
    return stride


def fitting(size: tuple[int, int], crop: int, scale: float) -> None:
    """ValueError (one line) when a mapped image of ``size`` (W, H) cannot hold a ``crop`` x ``crop`` crop."""
    if min(size) < crop:
        after = " after downscaling" if scale < 1 else ""
        fix = f"use a crop of at most {min(size)}" if min(size) >= 2 else "it is too small to map"
        raise ValueError(f"the image is {size[0]}x{size[1]} px{after}, smaller than the {crop} px crop; {fix}")


def quality_map(
    scorer,
    image,
    crop: int = CROP_SIZE,
    stride: int | None = None,
    max_side: int | None = MAX_SIDE,
    batch_size: int = 16,
    explain: bool = False,
) -> QualityMap:
    """The :class:`QualityMap` of one ``image`` (a path, a PIL image, an array, a tensor: as
    :meth:`~arniqa.inference.Scorer.score` takes one; raises its error) under ``scorer`` (its engine, regressor,
    half-scale method and, with ``explain``, its explanation head). ``stride`` None: half the crop."""
    import torch  # no gradients: the engines give arrays, and explain_features runs the head without them

    from .explaining import explain_features, explain_views
    from .scorer import explainer_missing

    stride = check_options(crop, stride, max_side)
    if explain and scorer.explainer is None:
        raise ValueError(explainer_missing(scorer.engine))
    mapped, scale = bounded(one_image(image, scorer.max_pixels), max_side)
    x = pil_to_tensor(mapped) if isinstance(mapped, Image.Image) else mapped
    h, w = x.shape[-2:]
    fitting((w, h), crop, scale)
    half = half_scale(x, scorer.protocol.half)
    tops, lefts = positions(h, crop, stride), positions(w, crop, stride)
    boxes = [(t, left) for t in tops for left in lefts]
    graph = explain and isinstance(scorer.explainer, GraphHead)  # the ONNX file's own head: its outputs per crop
    raw, explained = [], []
    for i in range(0, len(boxes), batch_size):
        part = boxes[i : i + batch_size]
        full = torch.stack([_crop(x, t, left, crop) for t, left in part])
        halves = torch.stack(
            [_crop(half, (2 * t + crop) // 4 - crop // 2, (2 * left + crop) // 4 - crop // 2, crop) for t, left in part]
        )
        # numpy arrays (the engines are torch-free at the boundary)
        r, f, outputs = scorer.engine.run(full, halves, explain and not graph, graph)
        raw.append(torch.as_tensor(r))
        if graph:  # each crop is one view
            explained += [explain_views(logits[None], severity[None]) for logits, severity in zip(*outputs)]
        elif explain:  # the head per batch: the crops' features are never all held at once
            explained += [explain_features(scorer.explainer, v[None]) for v in torch.as_tensor(f)]
    raw = torch.cat(raw)
    can_scale = scorer.regressor is not None and scorer.regressor.score_range is not None
    scores = (scorer.regressor.scale(raw) if can_scale else raw).numpy().reshape(len(tops), len(lefts))
    result = QualityMap(scores.astype(np.float32), tops, lefts, crop, (w, h), scale)
    if explain:
        probs = torch.stack([p for p, _ in explained]).numpy()
        result.labels = scorer.explainer.labels
        result.groups = probs.T.reshape(len(result.labels), len(tops), len(lefts)).astype(np.float32)
        result.severity = np.array([s for _, s in explained], dtype=np.float32).reshape(len(tops), len(lefts))
    return result


def _crop(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The ``size`` x ``size`` crop of (3, H, W) at (top, left), zeros outside (as five_crops)."""
    out = x.new_zeros(3, size, size)
    h, w = x.shape[-2:]
    y0, y1, x0, x1 = max(top, 0), min(top + size, h), max(left, 0), min(left + size, w)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = x[:, y0:y1, x0:x1]
    return out


def per_pixel(values: np.ndarray, qmap: QualityMap) -> np.ndarray:
    """``values`` (R, C) spread over the mapped image (H, W): each pixel the mean of the crops that cover it."""
    w, h = qmap.size
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for i, t in enumerate(qmap.tops):
        for j, left in enumerate(qmap.lefts):
            total[t : t + qmap.crop, left : left + qmap.crop] += values[i, j]
            count[t : t + qmap.crop, left : left + qmap.crop] += 1
    return total / np.maximum(count, 1)


# Red (low) - yellow - green (high), the usual reading of a quality map.
_RAMP = np.array([[215, 48, 39], [254, 224, 139], [26, 152, 80]], dtype=np.float64)


def colour(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` (H, W) as RGB uint8 on the red-yellow-green ramp, ``low`` red and ``high`` green."""
    v = np.clip((values - low) / (high - low), 0, 1) if high > low else np.full(values.shape, 0.5)
    pos = v * (len(_RAMP) - 1)
    i = np.minimum(pos.astype(int), len(_RAMP) - 2)
    f = (pos - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).round().astype(np.uint8)


def overlay(
    image: Image.Image, values: np.ndarray, qmap: QualityMap, low: float, high: float, alpha: float = 0.5
) -> Image.Image:
    """The map's ``values`` (R, C) coloured (:func:`colour`) over ``image`` downscaled as the map was."""
    base = np.asarray(bounded(image, max(qmap.size))[0].convert("RGB"), dtype=np.float64)
    heat = colour(per_pixel(values, qmap), low, high).astype(np.float64)
    return Image.fromarray(((1 - alpha) * base + alpha * heat).round().astype(np.uint8))
