from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_arniqa import TinyARNIQA


def write_images(folder: Path, sizes, seed: int = 0) -> list[Path]:
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


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Six small images (48..96 px) in a nested folder tree."""
    write_images(tmp_path / "pristine", [(48, 64), (80, 96), (64, 64), (96, 72), (56, 88), (72, 80)])
    return tmp_path / "pristine"


@pytest.fixture
def tiny_model(monkeypatch):
    """Training builds :class:`TinyARNIQA` instead of ARNIQA."""
    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
