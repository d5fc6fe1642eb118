"""Small helpers shared by the tests: a textured test batch, PSNR, strict decrease, photos and image trees."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def textured(b=2, h=48, w=56, seed=0):
    """Smooth colour gradients with a little texture, in (0, 1) (no exact zeros or ones)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(9 * xx + 5 * yy)])
    return (0.05 + 0.85 * base + 0.1 * torch.rand(b, 3, h, w, generator=g)).clamp(0.01, 0.99)


def psnr(a, b):
    return (10 * torch.log10(1 / ((a - b) ** 2).mean())).item()


def falls(values):
    return all(later < earlier for earlier, later in zip(values, values[1:]))


def write_photo(path, w, h, seed):
    """Save a smooth random RGB image of w x h as ``path`` (format from the suffix); returns ``path``."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g), size=(h, w), mode="bilinear")[0]
    arr = x.mul(255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)
    return path


def write_image_tree(folder: Path, sizes, seed: int = 0) -> list[Path]:
    """Random-texture RGB images of the given (h, w) sizes, PNG and JPEG alternately, some in a subfolder."""
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        sub = folder / ("nested" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        smooth = rng.random((h // 4 + 1, w // 4 + 1, 3))
        pixels = np.kron(smooth, np.ones((4, 4, 1)))[:h, :w] * 200 + rng.random((h, w, 3)) * 55
        path = sub / f"img{i:02d}.{'png' if i % 3 else 'jpg'}"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths
