"""The two scales and the crops the model sees: half scale, five crops, and named protocols.

Half-scale methods (output size ``(H // 2, W // 2)`` for all three, at least 1 px per side: a 1 px side
stays 1 px, so a 1x1 image has a 1x1 half scale, its one pixel):

* ``"bicubic"``: PIL ``resize((W // 2, H // 2), BICUBIC)`` of the whole image, the reference's training
  and evaluation protocol (``test.py``).
* ``"bilinear_aa"``: ``torchvision.transforms.Resize((H // 2, W // 2))`` on a PIL image, i.e. PIL's
  antialiased ``BILINEAR``; the reference's ``single_image_inference.py``.
* ``"bilinear"``: ``F.interpolate(scale_factor=0.5, mode="bilinear", align_corners=False)`` without
  antialias; pyiqa. A 2x2 box average for even sizes.

PIL images go through PIL itself (bit-exact with the reference). Float tensors go through
``F.interpolate(..., antialias=True)``, which uses PIL's kernels (bicubic a = -0.5) in float
arithmetic and is batched; like PIL it runs a horizontal then a vertical pass and clips to [0, 1]
after each (without the intermediate clip, bicubic overshoot at sharp edges differs from PIL by up
to 8/255). Measured against PIL on 119 photos and on uniform noise, the result differs by at most
1.04/255 per pixel (mean 0.28/255), PIL's 8-bit rounding; the tests hold it to 1.5/255.
``backend="pil"`` gives PIL's exact result for tensors (8-bit rounding, per image).

PIL images need no torch: :meth:`Protocol.arrays` gives their views as numpy arrays (what ``arniqa
score`` feeds ONNX Runtime without importing torch); torch is imported for tensors only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..constants import CROP_SIZE
from .pixels import pil_to_tensor, tensor_to_pil, uint8_array

if TYPE_CHECKING:
    import torch

HALF_SCALE_METHODS = ("bicubic", "bilinear_aa", "bilinear")
_PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear_aa": Image.Resampling.BILINEAR}
_TORCH_MODES = {"bicubic": "bicubic", "bilinear_aa": "bilinear"}


def half_size(h: int, w: int) -> tuple[int, int]:
    """The half-scale size of an h x w image: (h // 2, w // 2), at least 1 px per side."""
    return max(1, h // 2), max(1, w // 2)


def _half_pil(img: Image.Image, method: str) -> Image.Image:
    if method == "bilinear":  # pyiqa's box average is defined on float tensors
        out = half_scale(pil_to_tensor(img), "bilinear")
        return tensor_to_pil(out)
    h, w = half_size(img.height, img.width)
    return img.resize((w, h), _PIL_FILTERS[method])


def half_scale(x: torch.Tensor | Image.Image, method: str = "bicubic", backend: str = "auto"):
    """Half-scale copy of an image: a PIL image, or a float tensor (3,H,W) | (B,3,H,W) in [0, 1].

    ``method`` is one of :data:`HALF_SCALE_METHODS` (see the module docstring). ``backend``:
    ``"auto"`` (PIL for PIL images, torch for tensors), ``"torch"`` or ``"pil"`` (tensors are
    rounded to 8 bit and resized per image by PIL: the reference's exact arithmetic).
    The result has the input's type; its size is :func:`half_size` ``(H // 2, W // 2)``, at least 1 px.
    """
    if method not in HALF_SCALE_METHODS:
        raise ValueError(f"unknown half-scale method {method!r}; expected one of {HALF_SCALE_METHODS}")
    if backend not in ("auto", "torch", "pil"):
        raise ValueError(f"unknown backend {backend!r}; expected 'auto', 'torch' or 'pil'")
    if isinstance(x, Image.Image):
        if backend == "torch":
            raise ValueError("backend='torch' needs a tensor; convert the PIL image first")
        return _half_pil(x, method)
    import torch
    import torch.nn.functional as F

    if not torch.is_tensor(x) or x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(
            f"expected a PIL image or a (3,H,W) or (B,3,H,W) tensor, got {type(x).__name__} "
            f"{tuple(getattr(x, 'shape', ()))}"
        )
    h, w = x.shape[-2:]
    if backend == "pil" and method != "bilinear":
        batch = x if x.dim() == 4 else x[None]
        out = []
        for img in batch:
            out.append(pil_to_tensor(_half_pil(tensor_to_pil(img), method)))
        y = torch.stack(out).to(x.device)
        return y if x.dim() == 4 else y[0]
    batch = x if x.dim() == 4 else x[None]
    hh, hw = half_size(h, w)
    if method == "bilinear" and h > 1 and w > 1:
        y = F.interpolate(batch, scale_factor=0.5, mode="bilinear", align_corners=False)
    elif method == "bilinear":  # a 1 px side: scale_factor would give 0 px
        y = F.interpolate(batch, size=(hh, hw), mode="bilinear", align_corners=False)
    else:  # PIL's order: horizontal pass, clip, vertical pass, clip (the clip matters for bicubic overshoot)
        mode = _TORCH_MODES[method]
        y = F.interpolate(batch, size=(h, hw), mode=mode, align_corners=False, antialias=True).clamp_(0, 1)
        y = F.interpolate(y, size=(hh, hw), mode=mode, align_corners=False, antialias=True).clamp_(0, 1)
    return y if x.dim() == 4 else y[0]


def half_scale_crop(img: Image.Image, top: int, left: int, size: int, method: str = "bicubic") -> Image.Image:
    """``half_scale(img, method).crop((left, top, left + size, top + size))``: the ``size`` x ``size``
    crop at (top, left) of the half-scale image, zero outside it, as PIL's crop.

    When both sides of ``img`` are even (the scale is exactly 2) only the crop's box is resampled
    (PIL's ``resize(box=...)``): PIL's filter coefficients then depend on the output pixel's
    position alone, not on where the box starts, so the pixels are the same, for a fraction of the
    work (87.5 % of it for a 224 px crop of a 512x384 image).
    """
    w, h = img.size
    cw, ch = min(size, w // 2 - left), min(size, h // 2 - top)
    if method not in _PIL_FILTERS or w % 2 or h % 2 or cw < 1 or ch < 1 or top < 0 or left < 0:
        return half_scale(img, method).crop((left, top, left + size, top + size))
    part = img.resize((cw, ch), _PIL_FILTERS[method], box=(2 * left, 2 * top, 2 * (left + cw), 2 * (top + ch)))
    return part.crop((0, 0, size, size))


def crop_boxes(h: int, w: int, size: int = CROP_SIZE) -> list[tuple[int, int]]:
    """Top-left corners (top, left) of the five crops, in the reference order: centre, top-left,
    bottom-left, top-right, bottom-right. Negative or overhanging boxes are zero-filled by :func:`five_crops`."""
    return [(h // 2 - size // 2, w // 2 - size // 2), (0, 0), (h - size, 0), (0, w - size), (h - size, w - size)]


def five_crops(x: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """Five ``size`` x ``size`` crops of (..., C, H, W) -> (..., 5, C, size, size), any dtype.

    Order and positions as :func:`crop_boxes`. Parts of a crop outside the image are zeros (black),
    as in the reference, so images smaller than ``size`` work. Only the crops are copied.
    """
    if x.dim() < 3:
        raise ValueError(f"expected (..., C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    out = x.new_zeros(*x.shape[:-3], 5, x.shape[-3], size, size)
    for i, (top, left) in enumerate(crop_boxes(h, w, size)):
        y0, y1 = max(top, 0), min(top + size, h)
        x0, x1 = max(left, 0), min(left + size, w)
        if y1 > y0 and x1 > x0:
            out[..., i, :, y0 - top : y1 - top, x0 - left : x1 - left] = x[..., y0:y1, x0:x1]
    return out


def _pil_five_crops(img: Image.Image, size: int = CROP_SIZE) -> np.ndarray:
    """:func:`five_crops` of an RGB PIL image as float32 (5,3,size,size); PIL's ``crop`` fills outside with 0."""
    boxes = crop_boxes(img.height, img.width, size)
    crops = np.stack([uint8_array(img.crop((left, top, left + size, top + size))) for top, left in boxes])
    return crops.astype(np.float32) / 255


def _float_array(img: Image.Image) -> np.ndarray:
    """Float32 (1,3,H,W) in [0, 1] of an RGB PIL image (value / 255, as :func:`pil_to_tensor`)."""
    return uint8_array(img)[None].astype(np.float32) / 255


def _half_bilinear(x: np.ndarray) -> np.ndarray:
    """``F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)`` of float32 (N,3,H,W), to
    within one float32 rounding (1.2e-7): every output pixel is the mean of a 2x2 block (weights 0.5 per
    axis; an odd last row or column unused)."""
    if x.shape[-2] < 2 or x.shape[-1] < 2:  # a 1 px side: to half_size, as half_scale does (size, not scale_factor)
        hh, hw = half_size(x.shape[-2], x.shape[-1])
        return _resize_axis(_resize_axis(x, -2, hh), -1, hw)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    rows = x[..., 0:h:2, :w] * np.float32(0.5) + x[..., 1:h:2, :w] * np.float32(0.5)
    return rows[..., 0::2] * np.float32(0.5) + rows[..., 1::2] * np.float32(0.5)


def _resize_axis(x: np.ndarray, axis: int, out: int) -> np.ndarray:
    """``F.interpolate(..., size=out, mode="bilinear", align_corners=False)`` along one axis of float32 ``x``."""
    n = x.shape[axis]
    src = np.maximum((np.arange(out) + 0.5) * (n / out) - 0.5, 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out
    lam = lam.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - lam) + np.take(x, i1, axis=axis) * lam


@dataclass(frozen=True)
class Protocol:
    """How an image becomes model inputs: the half-scale method and whether to take five crops.

    :meth:`views` gives ``(full, half)`` float32 tensors in [0, 1]: (5,3,224,224) each when
    ``crops``, else (1,3,H,W) and (1,3,H//2,W//2). The score of an image is the mean over its views.
    """

    name: str
    half: str
    crops: bool
    description: str

    @property
    def n_views(self) -> int:
        return 5 if self.crops else 1

    def arrays(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """(full, half) views of an RGB PIL image as float32 arrays in [0, 1], without torch."""
        if self.half == "bilinear" and not self.crops:  # pyiqa halves the float image, not the 8-bit one
            full = _float_array(image)
            return full, _half_bilinear(full)
        half = half_scale(image, self.half)
        if self.crops:  # crop in PIL (zero fill outside, as five_crops); only the crops are copied
            return _pil_five_crops(image), _pil_five_crops(half)
        return _float_array(image), _float_array(half)

    def views(self, image: torch.Tensor | Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(full, half) views of one image: an RGB PIL image or a float (3,H,W) tensor in [0, 1]."""
        import torch

        if isinstance(image, Image.Image):
            return tuple(torch.from_numpy(a) for a in self.arrays(image))
        if not torch.is_tensor(image) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a PIL image or a (3,H,W) tensor, got {tuple(getattr(image, 'shape', ()))}")
        half = half_scale(image, self.half)
        if self.crops:
            return five_crops(image), five_crops(half)
        return image[None], half[None]


PROTOCOLS = {
    p.name: p
    for p in (
        Protocol(
            "crops",
            "bilinear_aa",
            True,
            "official single-image script: antialiased bilinear half scale, 5 crops of 224 per scale",
        ),
        Protocol(
            "whole",
            "bilinear_aa",
            False,
            "whole image and its antialiased bilinear half-scale copy (the reference README example)",
        ),
        Protocol("pyiqa", "bilinear", False, "pyiqa: whole image, bilinear x0.5 without antialias"),
        Protocol(
            "eval", "bicubic", True, "reference evaluation (test.py): bicubic PIL half scale, 5 crops of 224 per scale"
        ),
    )
}


def get_protocol(name: str | Protocol) -> Protocol:
    """The :class:`Protocol` called ``name`` (one of ``PROTOCOLS``); a Protocol passes through."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; expected one of {sorted(PROTOCOLS)}") from None
