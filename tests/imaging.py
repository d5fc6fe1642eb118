"""Small helpers shared by the tests: a textured test batch, PSNR, strict decrease, photos (phone formats too),
image trees, a PNG header declaring any size, and the decoding tests' patterns, chunks and error check."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, features


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


def write_phone_photos(folder, w=40, h=24):
    """A HEIC and an AVIF photo of w x h in ``folder`` (:func:`write_photo`), skipping the test without
    pillow-heif or Pillow's AVIF plugin; returns {path: its RGB pixels as pillow-heif or Pillow decode them}."""
    pillow_heif = pytest.importorskip("pillow_heif")
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF plugin")
    pillow_heif.register_heif_opener()  # to write the HEIC file
    folder.mkdir(parents=True, exist_ok=True)
    heic, avif = write_photo(folder / "phone.heic", w, h, 1), write_photo(folder / "phone.avif", w, h, 2)
    heif = pillow_heif.open_heif(heic)  # held while copied: before pillow-heif 1.6 an array of it outlived its pixels
    return {heic: np.array(heif), avif: np.asarray(Image.open(avif).convert("RGB"))}


def write_photo(path, w, h, seed):
    """Save a smooth random RGB image of w x h as ``path`` (format from the suffix); returns ``path``."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g), size=(h, w), mode="bilinear")[0]
    arr = x.mul(255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)
    return path


def write_jpeg(path, w, h, orientation=None, mode="RGB"):
    """A photo-like JPEG (``mode`` RGB or CMYK) of w x h: random colours at about 1/16 of its size, smoothly
    interpolated, and a little noise in every pixel; with an EXIF ``orientation`` if given. Returns ``path``."""
    g = torch.Generator().manual_seed(w + h)
    x = F.interpolate(torch.rand(1, 3, h // 100 + 2, w // 100 + 2, generator=g), size=(h, w), mode="bicubic")[0]
    x = x + 0.02 * torch.randn(3, h, w, generator=g)
    photo = Image.fromarray(x.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()).convert(mode)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    photo.save(path, quality=90, exif=exif)
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


# A valid EPS file: Pillow identifies it from its first bytes, whatever its name, and renders it by running
# its PostScript through Ghostscript.
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n0 0 moveto 8 8 lineto stroke\nshowpage\n"

# What a Mac writes as ._NAME beside a file it copies to a share or a FAT disk (AppleDouble, RFC 1740): magic,
# version, 16 filler bytes, the number of entries, one entry; padded to its usual 4 KiB. No image.
APPLE_DOUBLE = (
    bytes.fromhex("00051607 00020000") + b"Mac OS X        " + bytes.fromhex("0001 00000009 00000026 00000020")
).ljust(4096, b"\0")


def fake_ghostscript(monkeypatch, folder: Path) -> Path:
    """Pillow's Ghostscript made a script that leaves a marker file when run; the marker's path."""
    from PIL import EpsImagePlugin

    marker, script = folder / "ghostscript-ran", folder / "gs"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", str(script))
    return marker


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header declares w x h RGB pixels, with one row of data: decoding it would need 3 w h bytes."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * (3 * w + 1)))
        + png_chunk(b"IEND", b"")
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: its length, ``kind``, ``data`` and their CRC-32."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pattern():
    """An asymmetric 32x48 uint8 RGB image of flat blocks on the 8x8 JPEG grid (round trips stay close)."""
    a = np.zeros((32, 48, 3), np.uint8)
    a[:16, :24] = (220, 30, 30)
    a[:16, 24:] = (30, 200, 40)
    a[16:, :8] = (20, 40, 210)
    a[16:, 8:] = (240, 240, 40)
    return a


def noise(h, w, seed=0):
    """Uniform random uint8 RGB pixels of h x w."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def as_hwc(t: torch.Tensor) -> np.ndarray:
    """A decoded float32 (3, H, W) tensor in [0, 1] (checked) as an (H, W, 3) array."""
    assert t.dtype == torch.float32 and t.dim() == 3 and t.shape[0] == 3
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    return t.permute(1, 2, 0).numpy()


def expect_error(path, fragment):
    """Decoding ``path`` raises an ImageError (a ValueError) naming it, whose reason holds ``fragment``."""
    from arniqa.data.images import ImageError
    from arniqa.data.pixels import load_image

    with pytest.raises(ImageError) as e:
        load_image(path)
    assert isinstance(e.value, ValueError)
    assert str(path) in str(e.value) and e.value.path == str(path)
    assert fragment in e.value.reason
