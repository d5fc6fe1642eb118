"""The fast Lab round trip against kornia's, the channel swap, and the grey mix against kornia's."""

import torch
from kornia.color import lab_to_rgb as kornia_lab_to_rgb
from kornia.color import rgb_to_grayscale
from kornia.color import rgb_to_lab as kornia_rgb_to_lab

from arniqa.degradations.colorspace import LUMA, from_swapped_lab, mix, to_swapped_lab, trunc8_

BGR = [2, 1, 0]


def colours():
    """Random colours plus the cube's corners, greys and values either side of the sRGB knee."""
    x = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    corners = [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]]
    x[0, :, 0, :8] = torch.tensor(corners).float()
    x[0, :, 1] = torch.linspace(0, 0.08, 32)
    return x


def test_from_swapped_lab_matches_kornia_out_of_gamut_too():
    lab = kornia_rgb_to_lab(colours())
    for scale in (1.0, 3.0, 12.0, -0.4):  # chroma scalings of colordiff / colorsat2, overshooting
        stretched = torch.cat([lab[:, :1], lab[:, 1:] * scale], 1)
        assert torch.allclose(from_swapped_lab(stretched), kornia_lab_to_rgb(stretched)[:, BGR], atol=2e-5)
    stretched = lab.clone()
    stretched[:, 0] = stretched[:, 0] * 1.3 - 10  # lightness past 100 and below 0
    assert torch.allclose(from_swapped_lab(stretched), kornia_lab_to_rgb(stretched)[:, BGR], atol=2e-5)


def test_swapped_round_trip_is_identity_and_uses_bgr():
    x = colours()
    assert torch.allclose(from_swapped_lab(to_swapped_lab(x)), x, atol=2e-5)
    assert torch.allclose(to_swapped_lab(x), kornia_rgb_to_lab(x[:, BGR]), atol=5e-4)
    assert (to_swapped_lab(x)[:, 0] - kornia_rgb_to_lab(x)[:, 0]).abs().max() > 1  # not plain Lab


def test_trunc8_in_place():
    x = torch.tensor([0.0, 1 / 255 - 1e-4, 1 / 255 + 1e-6, 0.5, 1.0])
    out = trunc8_(x)
    assert out is x
    assert torch.equal(x, torch.tensor([0.0, 0.0, 1 / 255, 127 / 255, 1.0]))


def test_grey_mix_matches_kornias_rgb_to_grayscale():
    x = colours()
    grey = mix(x, (LUMA,))
    assert grey.shape == (2, 1, 24, 32) and grey.is_contiguous()
    # 2 float32 roundings apart at most: kornia 0.8 (the newest for Python 3.10) rounds each product on its own
    torch.testing.assert_close(grey, rgb_to_grayscale(x), rtol=0, atol=2**-23)
    # BT.601 by hand: white stays white, pure green is 0.587
    assert torch.allclose(grey[0, 0, 0, :8], torch.tensor([0, 0.114, 0.587, 0.701, 0.299, 0.413, 0.886, 1.0]))
