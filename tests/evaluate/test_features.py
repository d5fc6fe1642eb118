"""Feature extraction: protocol (crops, half scale, pre-resize), on-disk cache, resume, bad files."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arniqa.evaluate.features import FeatureError, FeatureProtocol, extract_features, resize_short_side

_spec = importlib.util.spec_from_file_location("_eval_conftest", Path(__file__).with_name("conftest.py"))
_conf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conf)
Counting, StandIn = _conf.Counting, _conf.StandIn

S = 16  # crop size for the tests


def _manual_crops(arr: np.ndarray, s: int) -> np.ndarray:
    """Centre, top-left, bottom-left, top-right, bottom-right crops with zero fill, by plain slicing."""
    h, w = arr.shape[:2]
    pad = np.zeros((h + 2 * s, w + 2 * s, 3), dtype=arr.dtype)
    pad[s : s + h, s : s + w] = arr
    tops = [(h // 2 - s // 2, w // 2 - s // 2), (0, 0), (h - s, 0), (0, w - s), (h - s, w - s)]
    return np.stack([pad[t + s : t + 2 * s, x + s : x + 2 * s] for t, x in tops])


def _expected(model, path, s, short=None):
    img = Image.open(path).convert("RGB")
    if short:
        w, h = img.size
        k = short / min(w, h)
        img = img.resize((int(w * k), int(h * k)), Image.BICUBIC)
    half = img.resize((img.size[0] // 2, img.size[1] // 2), Image.BICUBIC)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    full_c, half_c = to_t(_manual_crops(np.asarray(img), s)), to_t(_manual_crops(np.asarray(half), s))
    with torch.no_grad():
        return model.quality_features(full_c, half_c).numpy()


def test_protocol_matches_plain_computation(stand_in, image_files):
    feats = extract_features(stand_in, image_files, FeatureProtocol(crop_size=S), batch_size=3, progress=False)
    assert feats.shape == (7, 5, 12) and feats.dtype == np.float32
    for i, p in enumerate(image_files):
        np.testing.assert_allclose(feats[i], _expected(stand_in, p, S), rtol=1e-5, atol=1e-6)


def test_short_side_resize(stand_in, image_files):
    assert resize_short_side(Image.new("RGB", (90, 61)), 32).size == (47, 32)  # 90*32/61 = 47.2 -> 47
    assert resize_short_side(Image.new("RGB", (61, 90)), 32).size == (32, 47)
    proto = FeatureProtocol(crop_size=S, short_side=30)
    feats = extract_features(stand_in, image_files[:2], proto, progress=False)
    for i, p in enumerate(image_files[:2]):
        np.testing.assert_allclose(feats[i], _expected(stand_in, p, S, short=30), rtol=1e-5, atol=1e-6)


def test_cache_reuse_and_key(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    first = Counting(stand_in)
    a = np.array(extract_features(first, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False))
    assert first.calls == 4
    again = Counting(stand_in)
    b = extract_features(again, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False)
    assert again.calls == 0
    np.testing.assert_array_equal(a, b)
    # other weights, another protocol, or another image list: a different cache entry
    other = Counting(StandIn(gain=2.0))
    c = extract_features(other, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False)
    assert other.calls == 4
    np.testing.assert_allclose(c, 2 * a, rtol=1e-6)
    proto2 = Counting(stand_in)
    extract_features(proto2, image_files, FeatureProtocol(crop_size=8), cache_dir=tmp_path / "c", progress=False)
    assert proto2.calls > 0
    assert len(list((tmp_path / "c").iterdir())) == 3


def test_resume_after_interruption(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(stand_in, image_files, proto, batch_size=2, progress=False)
    broken = Counting(stand_in, stop_at=3)  # dies in the 3rd batch: images 0-3 are done
    with pytest.raises(KeyboardInterrupt):
        extract_features(broken, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    resumed = Counting(stand_in)
    out = extract_features(resumed, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    assert resumed.calls == 2  # images 4-5 and 6 only
    np.testing.assert_allclose(out, reference, rtol=1e-6)


def test_bad_image_is_reported_and_retried(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    good = image_files[3].read_bytes()
    image_files[3].write_bytes(good[:40])  # truncated PNG
    with pytest.raises(FeatureError, match="im3.png"):
        extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    image_files[3].write_bytes(good)
    retry = Counting(stand_in)
    out = extract_features(retry, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    assert retry.calls == 1
    np.testing.assert_allclose(out[3], _expected(stand_in, image_files[3], S), rtol=1e-5, atol=1e-6)


def test_arniqa_resnet50_small_crops(image_files):
    from arniqa.models import ARNIQA

    torch.manual_seed(0)
    model = ARNIQA("resnet50")
    feats = extract_features(model, image_files[:2], FeatureProtocol(crop_size=32), batch_size=2, progress=False)
    assert feats.shape == (2, 5, 4096)
    np.testing.assert_allclose(np.linalg.norm(feats[..., :2048], axis=-1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(feats[..., 2048:], axis=-1), 1.0, rtol=1e-4)
