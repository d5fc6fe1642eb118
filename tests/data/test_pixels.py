"""A decoded image as a float tensor in [0, 1]."""

import numpy as np
from imaging import as_hwc, pattern
from PIL import Image

from arniqa.data.pixels import load_image


def test_rgb_png_is_value_over_255(tmp_path):
    a = pattern()
    Image.fromarray(a).save(tmp_path / "x.png")
    np.testing.assert_array_equal(as_hwc(load_image(tmp_path / "x.png")), a.astype(np.float32) / 255)
