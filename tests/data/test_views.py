"""Half scale against PIL / torchvision / closed forms; five crops against hand-computed slices; protocols."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from arniqa.data.views import PROTOCOLS, five_crops, get_protocol, half_scale


def _photo(h, w, seed=0):
    """A smooth-ish 8-bit RGB PIL image with detail (upsampled noise), so resampling filters matter."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g), size=(h, w), mode="bicubic")
    x = (x + 0.1 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)[0]
    return Image.fromarray(x.mul(255).round().byte().permute(1, 2, 0).numpy(), "RGB")


def _t(img):
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("size", [(64, 80), (77, 101)])
def test_pil_paths_are_the_reference_resizes(size):
    h, w = size
    img = _photo(h, w)
    bic = half_scale(img, "bicubic")
    assert np.array_equal(np.asarray(bic), np.asarray(img.resize((w // 2, h // 2), Image.BICUBIC)))
    aa = half_scale(img, "bilinear_aa")  # the official script: torchvision Resize((h//2, w//2)) on PIL
    assert np.array_equal(np.asarray(aa), np.asarray(transforms.Resize((h // 2, w // 2))(img)))


@pytest.mark.parametrize("method,pil_filter", [("bicubic", Image.BICUBIC), ("bilinear_aa", Image.BILINEAR)])
@pytest.mark.parametrize("size", [(64, 80), (77, 101)])
def test_tensor_path_within_tolerance_of_pil(method, pil_filter, size):
    h, w = size
    img = _photo(h, w, seed=1)
    ref = _t(img.resize((w // 2, h // 2), pil_filter))
    out = half_scale(_t(img), method)
    assert out.shape == (3, h // 2, w // 2)
    assert (out - ref).abs().max() <= 1.5 / 255  # documented tolerance
    assert (out - ref).abs().mean() <= 0.5 / 255
    exact = half_scale(_t(img), method, backend="pil")
    assert torch.equal(exact, ref)


def test_pyiqa_bilinear_is_box_average_for_even_sizes():
    x = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(2))
    box = (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 4
    torch.testing.assert_close(half_scale(x, "bilinear"), box, atol=1e-6, rtol=0)


def test_pyiqa_bilinear_odd_size_matches_interpolate_scale_factor():
    x = torch.rand(3, 9, 13, generator=torch.Generator().manual_seed(3))
    ref = F.interpolate(x[None], scale_factor=0.5, mode="bilinear", align_corners=False)[0]
    out = half_scale(x, "bilinear")
    assert out.shape == (3, 4, 6)
    assert torch.equal(out, ref)


def test_half_scale_batch_equals_single():
    x = torch.rand(3, 3, 30, 42, generator=torch.Generator().manual_seed(4))
    for method in ("bicubic", "bilinear_aa", "bilinear"):
        b = half_scale(x, method)
        for i in range(3):
            torch.testing.assert_close(b[i], half_scale(x[i], method), atol=1e-6, rtol=0)


def test_half_scale_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        half_scale(torch.rand(3, 8, 8), "nearest")
    with pytest.raises(ValueError, match="tensor"):
        half_scale(torch.rand(8, 8), "bicubic")


def test_five_crops_order_and_positions():
    h, w = 300, 260
    x = torch.arange(3 * h * w, dtype=torch.float32).reshape(3, h, w)
    c = five_crops(x)
    assert c.shape == (5, 3, 224, 224)
    expected = [
        x[:, 150 - 112 : 150 + 112, 130 - 112 : 130 + 112],  # centre
        x[:, :224, :224],  # top-left
        x[:, h - 224 :, :224],  # bottom-left
        x[:, :224, w - 224 :],  # top-right
        x[:, h - 224 :, w - 224 :],  # bottom-right
    ]
    for i, e in enumerate(expected):
        assert torch.equal(c[i], e), i


def test_five_crops_zero_fill_small_image():
    h, w = 100, 150
    x = torch.rand(3, h, w, generator=torch.Generator().manual_seed(5)) + 1  # strictly positive
    c = five_crops(x)
    # where the image lands inside each 224x224 crop, worked out by hand
    placed = [(62, 37), (0, 0), (124, 0), (0, 74), (124, 74)]
    for i, (r, q) in enumerate(placed):
        canvas = torch.zeros(3, 224, 224)
        canvas[:, r : r + h, q : q + w] = x
        assert torch.equal(c[i], canvas), i


def test_five_crops_batched_and_dtype():
    x = torch.randint(0, 256, (2, 3, 230, 250), dtype=torch.uint8)
    c = five_crops(x)
    assert c.shape == (2, 5, 3, 224, 224) and c.dtype == torch.uint8
    for i in range(2):
        assert torch.equal(c[i], five_crops(x[i]))
    assert five_crops(torch.rand(3, 40, 40), size=16).shape == (5, 3, 16, 16)


def test_protocol_views_match_reference_steps():
    img = _photo(250, 300, seed=6)
    x = _t(img)
    # crops: the official script, done here with torchvision on the PIL image
    full, half = PROTOCOLS["crops"].views(img)
    assert torch.equal(full, five_crops(x))
    assert torch.equal(half, five_crops(_t(transforms.Resize((125, 150))(img))))
    # eval: bicubic PIL half scale of the whole image
    _, half = get_protocol("eval").views(img)
    assert torch.equal(half, five_crops(_t(img.resize((150, 125), Image.BICUBIC))))
    # whole: no crops
    full, half = PROTOCOLS["whole"].views(img)
    assert torch.equal(full, x[None]) and torch.equal(half, _t(transforms.Resize((125, 150))(img))[None])
    # pyiqa: float bilinear x0.5 of the whole image, from PIL or tensor alike
    full, half = PROTOCOLS["pyiqa"].views(img)
    ref = F.interpolate(x[None], scale_factor=0.5, mode="bilinear", align_corners=False)
    assert torch.equal(full, x[None]) and torch.allclose(half, ref, rtol=0, atol=2e-7)  # PIL: numpy, one rounding
    assert torch.equal(PROTOCOLS["pyiqa"].views(x)[1], ref)


def test_views_per_image_and_an_unknown_protocol():
    assert PROTOCOLS["crops"].n_views == 5 and PROTOCOLS["whole"].n_views == 1
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("bogus")


@pytest.mark.parametrize("size", [(64, 80), (77, 101), (64, 81), (30, 40)])
def test_half_scale_crop_is_the_crop_of_the_half_scale_image(size):
    from arniqa.data.views import half_scale_crop

    h, w = size
    img = _photo(h, w, seed=4)
    for method in ("bicubic", "bilinear_aa"):
        half = half_scale(img, method)
        # inside, touching each edge, and larger than the half image (zero fill)
        for top, left, side in [
            (0, 0, 16),
            (3, 5, 16),
            (h // 2 - 16, w // 2 - 16, 16),
            (7, 2, 20),
            (0, 0, 64),
            (5, 9, 64),
        ]:
            ref = np.asarray(half.crop((left, top, left + side, top + side)))
            out = np.asarray(half_scale_crop(img, top, left, side, method))
            assert out.shape == (side, side, 3)
            np.testing.assert_array_equal(out, ref, err_msg=f"{method} {size} at {(top, left, side)}")
