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


def test_options_no_image_can_be_mapped_with_are_refused_before_any_work():
    """`arniqa map --crop 100000` tried a 120 GB allocation per image; a stride over the crop left pixels in no
    crop (the overlay showed them at the map's low end)."""
    from arniqa.inference.maps import check_options

    assert check_options(224, None, 1024) == 112  # half the crop
    assert check_options(1024, 1024, 1024) == 1024
    for crop, stride, max_side, message in [
        (100000, None, 1024, "larger than max_side=1024, .*; use crop=1024 or less"),
        (60, 61, None, "use stride=60 or less"),
        (1, 1, None, "crop must be at least 2"),
        (4, 0, None, "stride at least 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_options(crop, stride, max_side)


def test_an_image_smaller_than_the_crop_is_refused_not_zero_filled():
    """An image smaller than the crop was scored as one crop of mostly zeros, its memory set by the option (a 20 px
    image with a 5000 px crop took 2 GB): it is now an error for that image, the others go on."""
    from tiny_score import load

    scorer = load()
    image = Image.new("RGB", (40, 20), (90, 120, 30))
    with pytest.raises(ValueError, match=r"40x20 px, smaller than the 400 px crop; use a crop of at most 20"):
        quality_map(scorer, image, crop=400, max_side=None)
    with pytest.raises(ValueError, match=r"after downscaling"):
        quality_map(scorer, image, crop=8, max_side=8)  # 8x4 once downscaled
    qmap = quality_map(scorer, image, crop=20, max_side=None)
    assert qmap.scores.shape == (1, len(positions(40, 20, 10)))


def test_group_maps_of_an_onnx_file_with_a_head_are_its_checkpoints(tmp_path, monkeypatch):
    """A map of an ONNX file exported with an explanation head could not explain (the scorer had no head): each
    crop, one view, now gets the file's groups and severity, those of the checkpoint's head in torch."""
    from tiny_arniqa import tiny_checkpoint

    from arniqa.inference import export, load

    checkpoint = tiny_checkpoint(tmp_path / "head.safetensors", monkeypatch)
    onnx = export(tmp_path / "model.onnx", checkpoint, protocol="whole")
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (15, 20, 3), dtype=np.uint8)).resize((80, 60))
    maps = [
        quality_map(load(model, device="cpu", engine=engine), image, crop=32, stride=16, explain=True)
        for model, engine in ((onnx, "auto"), (checkpoint, "torch"))
    ]
    assert maps[0].labels == maps[1].labels and maps[0].groups.shape == (8, 3, 4)
    for name in ("scores", "groups", "severity"):
        np.testing.assert_allclose(getattr(maps[0], name), getattr(maps[1], name), atol=1e-5)
    assert np.ptp(maps[1].groups[:, 0, 0]) > 0.1 and 0 < maps[1].severity.min() <= maps[1].severity.max() < 5


def test_a_map_takes_one_image_as_score_takes_it(tmp_path):
    """quality_map() took only an RGB PIL image: a path was "'str' object has no attribute 'size'", an array or a
    tensor a TypeError, a gray PIL image "expected an RGB image". Now one image of any kind score() takes, read as
    score() reads it; a list is one line."""
    from tiny_score import load

    from arniqa.data.images import ImageError

    scorer = load()
    pixels = np.random.default_rng(4).integers(0, 256, (15, 20, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((80, 60), Image.BICUBIC)
    image.save(tmp_path / "a.png")
    a = np.asarray(image)
    t = torch.from_numpy(a.copy()).permute(2, 0, 1)
    expected = quality_map(scorer, image, crop=32, stride=16).scores
    for item in (tmp_path / "a.png", str(tmp_path / "a.png"), a, a / 255.0, t, t.float() / 255, t[None] / 255):
        np.testing.assert_allclose(quality_map(scorer, item, crop=32, stride=16).scores, expected, atol=1e-6)
    gray = image.convert("L")
    np.testing.assert_allclose(
        quality_map(scorer, gray, crop=32, stride=16).scores,
        quality_map(scorer, gray.convert("RGB"), crop=32, stride=16).scores,
    )
    # a tensor over max_side is downscaled as the PIL image is, to the same grid (torch's bicubic, not PIL's)
    big = quality_map(scorer, t.float() / 255, crop=16, stride=8, max_side=40)
    small = quality_map(scorer, image, crop=16, stride=8, max_side=40)
    assert big.size == small.size == (40, 30) and big.scale == small.scale == 0.5
    np.testing.assert_allclose(big.scores, small.scores, atol=0.02)

    with pytest.raises(ValueError, match=r"a quality map is of one image, got 2 images; map each"):
        quality_map(scorer, [image, image])
    with pytest.raises(ImageError, match="nope.png: no such file"):
        quality_map(scorer, tmp_path / "nope.png")
    with pytest.raises(ValueError, match="no explanation head; fit one with `arniqa explain fit`"):
        quality_map(scorer, image, crop=32, explain=True)
