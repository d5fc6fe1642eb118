"""Quality maps (arniqa.inference.maps): crop positions, each crop scored as its own view, per-pixel means."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from arniqa.data.views import half_scale
from arniqa.inference import Scorer
from arniqa.inference.maps import QualityMap, per_pixel, positions, quality_map


def test_positions_cover_the_length_flush_with_the_end():
    for length, crop, stride in [(100, 32, 16), (96, 32, 32), (31, 32, 16), (1000, 224, 112)]:
        p = positions(length, crop, stride)
        assert p[0] == 0 and p[-1] == max(0, length - crop)
        assert all(0 < b - a <= stride for a, b in zip(p, p[1:]))


def test_map_scores_each_crop_as_its_own_view(random_arniqa):
    model, regressor = random_arniqa
    scorer = Scorer(model, regressor, device="cpu", engine="torch", workers=1)
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (56, 80, 3), dtype=np.uint8))
    qmap = quality_map(scorer, image, crop=32, stride=24, max_side=None, batch_size=3)
    assert qmap.tops == [0, 24] and qmap.lefts == [0, 24, 48]
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
    half = F.pad(half_scale(x, "bilinear_aa"), (32, 32, 32, 32))  # zeros outside, as the crops protocol
    for i, t in enumerate(qmap.tops):
        for j, left in enumerate(qmap.lefts):
            cy, cx = (2 * t + 32) // 4, (2 * left + 32) // 4  # the tile's centre at half scale
            full = x[None, :, t : t + 32, left : left + 32]
            halfcrop = half[None, :, 32 + cy - 16 : 32 + cy + 16, 32 + cx - 16 : 32 + cx + 16]
            with torch.no_grad():
                expected = regressor.scale(regressor(model.quality_features(full, halfcrop)))
            assert qmap.scores[i, j] == pytest.approx(float(expected), abs=1e-5)


def test_per_pixel_is_the_mean_of_covering_crops():
    qmap = QualityMap(np.array([[1.0, 3.0]]), [0], [0, 2], crop=4, size=(6, 4), scale=1.0)
    out = per_pixel(qmap.scores, qmap)
    np.testing.assert_allclose(out[0], [1, 1, 2, 2, 3, 3])
