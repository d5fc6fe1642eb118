"""``distort``: apply one distortion at one level to an image or a batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from ..utils.names import count
from . import blur, brightness, color, compression, noise, sharpness, spatial  # noqa: F401  (registration)
from .registry import Distortion, check_level, get
from .rng import check_generator

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_images(x: torch.Tensor) -> None:
    """Raise ValueError unless ``x`` is a dense float tensor (3,H,W) or (B,3,H,W) of a dtype in
    :data:`FLOAT_DTYPES`, H and W at least 1, values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        kind = type(x).__name__
        hint = "; make a PIL image one with torchvision.transforms.functional.to_tensor(img.convert('RGB'))"
        if kind == "ndarray":
            hint = _array_hint(x)
        raise ValueError(f"expected a torch.Tensor (3,H,W) or (B,3,H,W) in [0, 1], got {kind}{hint}")
    if x.dtype not in FLOAT_DTYPES:  # torch has no min/max for the others (float8: NotImplementedError)
        names = ", ".join(str(dtype).removeprefix("torch.") for dtype in FLOAT_DTYPES)
        hint = "; divide a uint8 tensor by 255" if x.dtype == torch.uint8 else ""
        raise ValueError(f"expected a tensor of {names} with values in [0, 1], got dtype {x.dtype}{hint}")
    if x.layout != torch.strided or x.is_nested or x.is_meta:
        kind = "nested" if x.is_nested else "meta" if x.is_meta else str(x.layout).removeprefix("torch.")
        raise ValueError(f"expected a dense tensor holding its values, got a {kind} tensor")
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        hint = "; it looks channels-last (H,W,C): pass x.permute(2, 0, 1)" if x.dim() == 3 and x.shape[-1] == 3 else ""
        if x.dim() in (3, 4) and x.shape[-3] == 1:
            hint = "; make a gray image RGB with torch.cat([x] * 3, dim=-3)"
        raise ValueError(f"expected shape (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}{hint}")
    if 0 in x.shape[-2:]:  # torchvision's JPEG encoder crashes the process on it
        raise ValueError(f"expected images of at least 1x1 pixels, got {tuple(x.shape)}")
    if x.numel():
        low, high = (v.item() for v in torch.aminmax(x))
        if math.isnan(low):  # aminmax propagates NaN: one NaN makes the minimum and maximum NaN
            nans = int(torch.isnan(x).sum())
            raise ValueError(f"expected values in [0, 1], got NaN in {nans} of {count(x.numel(), 'value')}")
        if not (low >= 0 and high <= 1):
            hint = "; divide by 255" if low >= 0 and 1.5 < high <= 255 else ""
            if low >= -0.5 and high <= 1.5:  # a little outside, as after a bicubic resize
                hint = "; clamp it with x.clamp(0, 1) (bicubic resizing overshoots)"
            raise ValueError(f"expected values in [0, 1], got min {low:.4g} and max {high:.4g}{hint}")


def _array_hint(a) -> str:
    """How to make the numpy image ``a`` (as OpenCV, imageio or scikit-image read it) a tensor in [0, 1]."""
    channels_last = a.ndim == 3 and a.shape[-1] == 3 and a.shape[0] != 3
    permute, layout = (".permute(2, 0, 1)", "HxWxC ") if channels_last else ("", "")
    scale = {"uint8": " / 255", "uint16": " / 65535"}.get(str(a.dtype), "")
    return f"; make this {layout}{a.dtype} array one with torch.from_numpy(a){permute}{scale}"


@torch.no_grad()
def distort(
    x: torch.Tensor,
    name: str,
    level: int | Sequence[int],
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Apply distortion ``name`` at ``level`` (1..5) to ``x``.

    ``x`` is a float tensor (3,H,W) or (B,3,H,W) in [0, 1] on any device; the result has the same
    shape and dtype, in [0, 1] (the reference's float32 cast and clip after each distortion).
    ``level`` is one level for the batch, or one per sample (a sequence, tensor or numpy array). Random
    internals are drawn per sample from ``generator`` (the global RNG when None), so a seed reproduces the output
    bit for bit and, with one level, a batch equals its samples distorted one after another. ``options`` set a
    distortion's options (its :attr:`~arniqa.degradations.registry.Distortion.options`), e.g.
    ``kernel="matlab"`` for ``lensblur``. The result carries no gradient (the model is not differentiable).
    """
    check_images(x)
    check_generator(generator)
    distortion = get(name)
    unknown = sorted(set(options) - set(distortion.options))
    if unknown:
        offered = ", ".join(distortion.options) or "none"
        raise ValueError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {offered}")
    single = x.dim() == 3
    batch = (x[None] if single else x).float()
    if isinstance(level, torch.Tensor) or type(level).__module__ == "numpy":  # a tensor or numpy array of levels
        level = level.tolist()
    if not isinstance(level, Sequence) or isinstance(level, str):
        out = run(distortion, batch, check_level(level), generator, options)
    else:
        levels = [check_level(v) for v in level]
        if len(levels) != batch.shape[0]:
            raise ValueError(f"got {count(len(levels), 'level')} for a batch of {batch.shape[0]}")
        out = torch.empty_like(batch)
        for value in sorted(set(levels)):
            index = torch.tensor([i for i, v in enumerate(levels) if v == value], device=batch.device)
            out[index] = run(distortion, batch[index], value, generator, options)
    out = out.to(x.dtype)
    return out[0] if single else out


# CPU batches run in chunks of this many samples: a chunk's intermediate tensors stay in cache,
# which made the memory-bound distortions 2-4x cheaper per crop at 224x224 (measured, batch 64).
CPU_CHUNK = 8


def chunks(n: int, device: torch.device) -> Iterator[slice]:
    """Slices covering ``range(n)``: :data:`CPU_CHUNK` rows at a time on the CPU, all at once elsewhere."""
    size = CPU_CHUNK if device.type == "cpu" else max(n, 1)
    for first in range(0, n, size):
        yield slice(first, first + size)


def run(
    distortion: Distortion, batch: torch.Tensor, level: int, generator, options: dict | None = None
) -> torch.Tensor:
    """Apply ``distortion`` at ``level`` (with ``options``) to a checked float32 batch (B,3,H,W), no input checks.

    Draws the batch's internals (one sample after another), applies, casts to float32 and clips
    to [0, 1] as the reference does after every distortion. On the CPU the batch runs in chunks
    of :data:`CPU_CHUNK` samples; the draws and the result are the same as in one piece.
    """
    value = distortion.levels[level - 1]
    options = options or {}
    parts = list(chunks(batch.shape[0], batch.device))
    if len(parts) == 1:
        return _run_once(distortion, batch, value, generator, options)
    out = torch.empty_like(batch, dtype=torch.float32)  # an empty batch has no parts: it stays empty
    for part in parts:
        out[part] = _run_once(distortion, batch[part], value, generator, options)
    return out


def start(distortion: Distortion, batch: torch.Tensor, level: int) -> Callable[[], torch.Tensor]:
    """Start ``distortion`` (one with ``start``) at ``level`` on a checked float32 batch; the
    returned function waits for it and returns what :func:`run` would."""
    finish = distortion.start(batch, distortion.levels[level - 1])
    return lambda: finish().float().clamp_(0, 1)


def _run_once(distortion: Distortion, batch: torch.Tensor, value: float, generator, options: dict) -> torch.Tensor:
    params = distortion.sample(batch, value, generator) if distortion.sample else {}
    return distortion.apply(batch, value, **params, **options).float().clamp_(0, 1)
