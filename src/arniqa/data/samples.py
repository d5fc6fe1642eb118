"""The sample colour photos that ship inside scikit-image and scikit-learn (no download): the demo's
photos and the default int8 calibration set."""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def sample_arrays() -> dict[str, np.ndarray]:
    """``{name: HxWx3 uint8 array}``: scikit-image's photos, then scikit-learn's two sample images."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    arrays = {name: np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]) for name in SKIMAGE_PHOTOS}
    images = load_sample_images()
    for name, array in zip(images.filenames, images.images):
        arrays[PurePath(name).stem] = np.ascontiguousarray(array[..., :3])
    return arrays
