"""What :meth:`Scorer.score` accepts, made into single images: paths, PIL images, arrays, tensors, and
encoded image files (bytes, bytearray, memoryview, a binary file object; :class:`Encoded` bytes with a name;
tar shard members of :mod:`arniqa.inference.shards`).

Files and PIL images follow :mod:`arniqa.data.images` (``open_image``, ``to_rgb``): of an animated or multi-page
file the first frame, with a warning naming the file. uint8
arrays (made into a PIL image: alpha dropped, gray replicated; scored as the file they were decoded from). uint16
arrays are divided by 65535.
Float arrays and tensors must lie in [0, 1] (up to 1e-6), with no NaN. An image with no pixels (0 wide or
0 high) is refused. A (B,H,W,C) array or a (B,3,H,W) tensor is a batch of B images. An input of another
kind is a ValueError that names it and says what to pass.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..data.images import (
    ANIMATED,
    ANIMATED_KIND,
    EXPAND,
    ImageError,
    decode_image,
    first_frame_note,
    open_image,
    to_rgb,
)
from ..utils.messages import file_line, warn_file
from .shards import Member, Unreadable, compressed_shard, is_shard

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Encoded:
    """An image file's bytes (e.g. from object storage) and the name its row carries."""

    name: str
    data: bytes

    def open(self, exif: bool = True, max_pixels: int | None = None):
        return decode_image(self.data, self.name, exif, max_pixels)


NAMED = (Encoded, Member, Unreadable)  # inputs that carry their name and decode themselves
BUFFERS = (bytes, bytearray, memoryview)  # an encoded image file's bytes
KINDS = "a path, bytes, a binary file object, a PIL image, an HxWxC numpy array or a (3,H,W) tensor"
URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")


def _readable(x) -> bool:
    """A file object (``open(p, "rb")``, ``io.BytesIO``, a storage client's file): it has ``read``."""
    return callable(getattr(x, "read", None))


def _is_tensor(x) -> bool:
    """A torch tensor, without importing torch (no tensor exists before it is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(x)


def source_name(item, index: int) -> str:
    """How results and errors name an input: its path or name, else ``<input i>``."""
    if isinstance(item, NAMED):
        return item.name
    if _readable(item) and isinstance(getattr(item, "name", None), str):  # open(path, "rb"): its path
        return item.name
    return str(item) if isinstance(item, (str, os.PathLike)) else f"<input {index}>"


def split_inputs(inputs) -> list | Iterator:
    """Normalise ``score()`` inputs to a list of single images (paths, PIL images, arrays, (3,H,W) tensors);
    an iterator (a stream of inputs) is passed through, to be taken item by item. An empty list, like an empty
    iterator, gives no images (and an empty result), not an error."""
    if isinstance(inputs, (str, os.PathLike, *BUFFERS, Image.Image, *NAMED)) or _readable(inputs):
        return [inputs]  # a file object is one image, not an iterator of lines
    if (isinstance(inputs, np.ndarray) and inputs.ndim != 4) or (_is_tensor(inputs) and inputs.dim() != 4):
        return [inputs]
    if isinstance(inputs, Iterator):
        return inputs
    if isinstance(inputs, Mapping):  # its keys would be taken for paths
        raise ValueError("cannot score a mapping; pass a list of its images (e.g. list(d.values()))")
    if isinstance(inputs, Iterable):  # a list, a (B,H,W,C) array or a (B,3,H,W) tensor: its images (none: no rows)
        return list(inputs)
    raise ValueError(f"cannot score an object of type {type(inputs).__name__}; pass {KINDS}, or a list of them")


def as_image(item, name: str, max_pixels: int | None = None) -> Image.Image | torch.Tensor:
    """One input as an RGB PIL image (paths, PIL images, uint8 arrays) or a (3,H,W) float tensor in [0, 1]
    (other arrays, tensors). Raises :class:`~arniqa.data.images.ImageError` for files (also for encoded
    images of more than ``max_pixels`` pixels, refused before decoding), ValueError otherwise. Of an animated or
    multi-page file, the first frame, with a warning saying so (once: the image returned, when it is not ``item``
    itself, no longer says it has frames)."""
    if isinstance(item, str) and URL.match(item) and not os.path.exists(item):
        raise ValueError(
            file_line(name, "a URL", "arniqa reads local files only: download it and pass its path or its bytes")
        )
    if isinstance(item, (str, os.PathLike)):
        if os.path.isdir(item) or (is_shard(item) and os.path.isfile(item)):  # arniqa score takes them
            kind = "is a directory" if os.path.isdir(item) else "is a tar shard"
            raise ImageError(item, f"{kind}, not an image file; {EXPAND}")
        if why := compressed_shard(item):
            raise ImageError(item, f"a tar shard, not an image file; {why}")
        image = open_image(item, max_pixels=max_pixels)
    elif isinstance(item, NAMED):
        image = item.open(max_pixels=max_pixels)
    elif isinstance(item, BUFFERS):
        image = decode_image(bytes(item), name, max_pixels=max_pixels)
    elif _readable(item):
        data = "" if isinstance(item, io.TextIOBase) else item.read()  # text: decoding an image's bytes would fail
        if isinstance(data, str):
            raise ValueError(
                file_line(
                    name,
                    "a file opened in text mode",
                    "open an image file with open(path, 'rb') or pass its path (to score the paths a list file names, "
                    "pass [line.strip() for line in f])",
                )
            )
        image = decode_image(bytes(data), name, max_pixels=max_pixels)
    elif isinstance(item, Image.Image):
        image = to_rgb(item, name)
    elif isinstance(item, np.ndarray):
        image = _array_image(item, name)
    elif _is_tensor(item):
        image = _tensor_image(item, name)
    else:
        raise ValueError(
            file_line(name, f"cannot score an object of type {type(item).__name__}", f"each input is {KINDS}")
        )
    w, h = image.size if isinstance(image, Image.Image) else (image.shape[-1], image.shape[-2])
    if w == 0 or h == 0:
        raise ValueError(
            file_line(
                name, f"an image of {w}x{h} pixels has nothing to score", "pass one at least 1 pixel wide and high"
            )
        )
    if isinstance(image, Image.Image) and (note := first_frame_note(image, name)):
        if image is not item:  # said once: our decode read again (quality_map of it) is not said of twice
            del image.info[ANIMATED]
        warn_file(note, ANIMATED_KIND, stacklevel=2)
    return image


def resized(image: Image.Image | torch.Tensor, size: tuple[int, int]) -> Image.Image | torch.Tensor:
    """``image`` (a PIL image or a (3,H,W) float tensor in [0, 1], as :func:`as_image` gives) resized to ``size``
    (W, H): PIL's bicubic, or torch's bicubic with antialias (PIL's kernel) clamped to [0, 1]."""
    if isinstance(image, Image.Image):
        return image.resize(size, Image.Resampling.BICUBIC)
    import torch.nn.functional as F

    return F.interpolate(image[None], size=size[::-1], mode="bicubic", antialias=True)[0].clamp_(0, 1)


def _tensor_image(x: torch.Tensor, name: str, what: str = "tensor") -> torch.Tensor:
    """A (3,H,W) float image in [0, 1] from a float or uint8 tensor with 1 or 3 channels (or (H,W): gray)."""
    import torch

    x = x.detach()
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(
            file_line(
                name,
                f"expected an image tensor (3,H,W) or (1,H,W), got shape {tuple(x.shape)}",
                _hint(x) or "pass a (3,H,W) float tensor in [0, 1] or a uint8 one",
            )
        )
    if x.dtype == torch.uint8:
        x = x.float() / 255
    elif not x.is_floating_point():
        raise ValueError(
            file_line(
                name,
                f"expected a float tensor in [0, 1] or uint8, got {x.dtype}",
                "pass x.float() / 255 for 8-bit values, or a float tensor in [0, 1]",
            )
        )
    else:
        x = x.float()
        if x.numel() == 0:
            return x.expand(3, -1, -1)  # as_image refuses it, naming its size
        if x.isnan().any():
            raise ValueError(file_line(name, f"the {what} holds NaN", "pixel values must lie in [0, 1]"))
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            fix = (
                "divide by 255 (or pass uint8)"
                if lo >= 0 and hi <= 255
                else "scale them to [0, 1] (undo any normalisation)"
            )
            raise ValueError(file_line(name, f"{what} values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]", fix))
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def _hint(x) -> str:
    """What to do with an image of the wrong layout (tensors are (C,H,W), arrays (H,W,C)); "" when its shape says
    nothing."""
    tensor, shape = _is_tensor(x), tuple(x.shape)
    if len(shape) == 4:
        return "a batch is scored when passed by itself, not inside a list"
    if len(shape) != 3:
        return ""
    if tensor and shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return "it looks channels-last (H,W,C): pass x.permute(2, 0, 1)"
    if tensor and shape[0] == 4:
        return "drop the alpha channel: x[:3]"
    if not tensor and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        return "it looks channels-first (C,H,W): pass a.transpose(1, 2, 0)"
    return ""


def _array_image(a: np.ndarray, name: str) -> Image.Image | torch.Tensor:
    """An RGB PIL image from an HWC (or HW) uint8 array (an image file's pixels: the views a file gets), a (3,H,W)
    float tensor from a uint16 (/ 65535) or float one (in [0, 1])."""
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(
            file_line(
                name,
                f"expected an HxWxC array with C in (1, 3, 4), got shape {a.shape}",
                _hint(a) or "pass an HxWx3 uint8 array (or HxW gray)",
            )
        )
    if a.dtype == np.uint8:
        return to_rgb(Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a), name)
    import torch

    if a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535
    elif not np.issubdtype(a.dtype, np.floating):
        raise ValueError(
            file_line(
                name,
                f"expected a uint8, uint16 or float array, got {a.dtype}",
                "pass a.astype(np.uint8) for 8-bit values, or a float array in [0, 1]",
            )
        )
    # a copy, alpha dropped: torch warns on a read-only array (a Ray Data block), which its tensor would share
    t = torch.from_numpy(np.array(a[:, :, :3], dtype=np.float32, order="C")).permute(2, 0, 1)
    return _tensor_image(t, name, "array")
