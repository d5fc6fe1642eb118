"""The whole degradation model at a glance: one image under 24 distortions x 5 levels, labelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from ..data.pixels import tensor_to_pil
from ..degradations.registry import GROUP_OF, GROUPS, LEVELS, NUM_LEVELS

if TYPE_CHECKING:  # torch is imported where a tile is made: arniqa gallery checks its options first
    import torch

LABEL_WIDTH = 170  # left column: distortion name and group
HEADER = 30  # top row: level numbers
CAPTION = 18  # under each tile: the level's value
GAP = 6
MIN_SIZE = 16
MAX_SIZE = 1024


def check_tile_size(size: int) -> None:
    """ValueError unless ``size`` is from :data:`MIN_SIZE` to :data:`MAX_SIZE` px."""
    if not MIN_SIZE <= size <= MAX_SIZE:  # 24 x 5 tiles of 1024 px: a 377 MB picture
        raise ValueError(f"tile size must be {MIN_SIZE} to {MAX_SIZE} px, got {size}")


def square_tile(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centre square of ``image`` (3,H,W), as wide as its short side, resized to ``size`` x ``size`` (antialiased
    bilinear). Only that square is resized: a 1 x 65,000 px strip, resized whole, took 12.8 GB."""
    import torch.nn.functional as F

    from ..degradations.apply import check_images

    check_images(image)
    if image.dim() != 3:
        raise ValueError(f"expected one image (3, H, W), got {tuple(image.shape)}")
    check_tile_size(size)
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[None, :, top : top + side, left : left + side].float()
    return F.interpolate(square, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def distortion_grid(tile: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``{name: (5, 3, s, s)}``: ``tile`` under every distortion at levels 1..5, names in group order."""
    from ..degradations import distort

    batch = tile[None].expand(NUM_LEVELS, -1, -1, -1)
    levels = list(range(1, NUM_LEVELS + 1))
    return {name: distort(batch, name, levels, generator) for names in GROUPS.values() for name in names}


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (Pillow >= 10.1, FreeType)


def draw_gallery(image: torch.Tensor, size: int = 128, generator: torch.Generator | None = None) -> Image.Image:
    """Draw the labelled grid: one row per distortion (grouped), one column per level.

    ``image`` (3,H,W) in [0, 1] is made a ``size`` x ``size`` tile (see :func:`square_tile`).
    Each row is labelled with the distortion and its group, each column with the level, and each
    tile with the level's value. The picture is ``LABEL_WIDTH + 5*(size+GAP) + GAP`` px wide and
    ``HEADER + 24*(size+CAPTION+GAP) + GAP`` px tall.
    """
    tile = square_tile(image, size)
    rows = distortion_grid(tile, generator)
    cell_w, cell_h = size + GAP, size + CAPTION + GAP
    canvas = Image.new("RGB", (LABEL_WIDTH + NUM_LEVELS * cell_w + GAP, HEADER + len(rows) * cell_h + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    title, label, small = _font(16), _font(14), _font(11)
    for level in range(1, NUM_LEVELS + 1):
        x = LABEL_WIDTH + (level - 1) * cell_w + GAP + size // 2
        draw.text((x, HEADER // 2), f"level {level}", fill="black", font=title, anchor="mm")
    previous_group = None
    for row, (name, images) in enumerate(rows.items()):
        y = HEADER + row * cell_h + GAP
        group = GROUP_OF[name]
        if group != previous_group and row:
            draw.line([(0, y - GAP // 2), (canvas.width, y - GAP // 2)], fill=(150, 150, 150), width=1)
        previous_group = group
        draw.text((GAP, y + size // 2), name, fill="black", font=label, anchor="lm")
        draw.text((GAP, y + size // 2 + 16), group, fill=(110, 110, 110), font=small, anchor="lm")
        for level, (value, picture) in enumerate(zip(LEVELS[name], images), start=1):
            x = LABEL_WIDTH + (level - 1) * cell_w + GAP
            canvas.paste(tensor_to_pil(picture), (x, y))
            draw.text((x + size // 2, y + size + CAPTION // 2), f"{value:g}", fill="black", font=small, anchor="mm")
    return canvas
