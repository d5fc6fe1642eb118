"""The distortion gallery (arniqa.reports.gallery): each row is the distortion's own calls, level by level."""

import torch
from imaging import textured

from arniqa.degradations import GROUPS, NUM_LEVELS, distort
from arniqa.reports.gallery import distortion_grid


def test_gallery_rows_are_the_single_level_calls():
    tile = textured(b=5, h=32, w=32, seed=3)[0]
    grid = distortion_grid(tile, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    assert list(grid) == [n for names in GROUPS.values() for n in names]
    for name, row in grid.items():  # drawn row after row, level after level
        alone = torch.stack([distort(tile, name, level, generator) for level in range(1, NUM_LEVELS + 1)])
        assert torch.equal(row, alone), name
