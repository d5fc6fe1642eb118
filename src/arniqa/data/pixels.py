"""Pixels between PIL, numpy and torch: a decoded 8-bit RGB image as a channels-first uint8 array or tensor, or a
float tensor in [0, 1] (:func:`pil_to_tensor`, :func:`load_image`), and back (:func:`tensor_to_pil`). Torch is
imported only by the functions that give or take a tensor: decoding and the PIL views run without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .images import PathLike, open_image

if TYPE_CHECKING:
    import torch


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float32 (3, H, W) in [0, 1] (value / 255, as torchvision's ToTensor)."""
    return uint8_view(img).float().div_(255.0)


def uint8_array(img: Image.Image) -> np.ndarray:
    """8-bit RGB PIL image -> uint8 (3, H, W) array (a channels-first view of one copy of the pixels)."""
    if img.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {img.mode}")
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def uint8_view(img: Image.Image) -> torch.Tensor:
    """:func:`uint8_array` as a tensor."""
    import torch  # here: decoding and the PIL views run without torch (arniqa score on an ONNX file)

    return torch.from_numpy(uint8_array(img))


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """Float (3, H, W) tensor in [0, 1] -> 8-bit RGB PIL image: clamped, ``round(value * 255)`` (the
    inverse of :func:`pil_to_tensor` on 8-bit data)."""
    import torch

    pixels = x.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(pixels.numpy()), "RGB")


def load_image(path: PathLike, exif: bool = True) -> torch.Tensor:
    """Decode ``path`` to a float32 (3, H, W) RGB tensor in [0, 1]; :class:`~.images.ImageError` on failure."""
    return pil_to_tensor(open_image(path, exif=exif))
