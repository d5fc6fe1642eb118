"""The distortion gallery (arniqa.reports.gallery): each row is the distortion's own calls, level by level."""

import torch
from imaging import textured

from arniqa.degradations import GROUPS, NUM_LEVELS, distort
from arniqa.reports.gallery import distortion_grid, square_tile


def test_gallery_rows_are_the_single_level_calls():
    tile = textured(b=5, h=32, w=32, seed=3)[0]
    grid = distortion_grid(tile, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    assert list(grid) == [n for names in GROUPS.values() for n in names]
    for name, row in grid.items():  # drawn row after row, level after level
        alone = torch.stack([distort(tile, name, level, generator) for level in range(1, NUM_LEVELS + 1)])
        assert torch.equal(row, alone), name


def test_a_tile_is_the_centre_square_alone():
    """The whole image was resized to cover the tile, then cropped: a 1 x 65,000 px strip took 12.8 GB, and the
    antialiasing filter let the parts outside the tile bleed into its edges."""
    strip = torch.rand(3, 1, 2001)
    assert torch.allclose(square_tile(strip, 32), strip[:, :, 1000:1001].expand(3, 32, 32), atol=1e-6)
    framed = torch.zeros(3, 64, 96)  # red bands left and right of a grey centre square
    framed[0, :, :16] = framed[0, :, 80:] = 1
    framed[:, :, 16:80] = 0.5
    assert torch.allclose(square_tile(framed, 32), torch.full((3, 32, 32), 0.5), atol=1e-6)
    square = textured(b=1, h=32, w=32, seed=5)[0]
    assert torch.allclose(square_tile(square, 32), square, atol=1e-6)
