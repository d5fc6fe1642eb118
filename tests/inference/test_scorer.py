"""Scoring API against a plain reference pipeline (torchvision ResNet50, PIL crops, TorchScript regressor)
built in the test from published-layout weight files with random values."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from imaging import write_photo as _photo
from PIL import Image
from scoring_data import regressor_file
from torchvision import transforms

import arniqa
from arniqa.data.images import ImageError
from arniqa.inference import Scorer, load
from arniqa.models.registry import PYIQA_NAMES, model_dataset
from arniqa.utils.runtime import resolve_device

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


@torch.no_grad()
def _ref_features(encoder, crops):
    return F.normalize(encoder(torch.stack([_norm(c) for c in crops])).flatten(1), dim=1)


def reference_raw(path, encoder, regressor, protocol):
    """The reference pipelines written out plainly: PIL RGB, torchvision Resize on PIL (antialiased
    bilinear) or pyiqa's interpolate, PIL crops (zero fill outside), ImageNet normalisation,
    L2-normalised features, [full, half], TorchScript regressor, mean over crops."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if protocol == "pyiqa":
        x = transforms.ToTensor()(img)[None]
        xd = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        n = transforms.Normalize(MEAN, STD)
        with torch.no_grad():
            f = F.normalize(encoder(n(x)).flatten(1), dim=1)
            fd = F.normalize(encoder(n(xd)).flatten(1), dim=1)
            return float(regressor(torch.hstack((f, fd))).mean())
    img_ds = transforms.Resize((h // 2, w // 2))(img)
    if protocol == "whole":
        views, views_ds = [img], [img_ds]
    else:

        def crops(im):
            W, H = im.size
            corners = [(W // 2 - 112, H // 2 - 112), (0, 0), (0, H - 224), (W - 224, 0), (W - 224, H - 224)]
            return [im.crop((left, top, left + 224, top + 224)) for left, top in corners]

        views, views_ds = crops(img), crops(img_ds)
    with torch.no_grad():
        feats = torch.hstack((_ref_features(encoder, views), _ref_features(encoder, views_ds)))
        return float(regressor(feats).mean())


def test_crops_protocol_matches_reference(published, tmp_path):
    d, encoder, regs = published
    big = _photo(tmp_path / "big.png", 250, 231, 7)  # half scale 125x115: half crops are zero-filled
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="crops")
    res = scorer.score(big)
    ref = reference_raw(big, encoder, regs["kadid10k"], "crops")
    assert res.raw_scores.shape == (1,)
    assert abs(float(res.raw_scores[0]) - ref) < 1e-4 * max(1.0, abs(ref))
    # kadid10k scaling from the reference table: (s - 1) / (5 - 1), no clamping
    assert float(res.scores[0]) == pytest.approx((float(res.raw_scores[0]) - 1) / 4, abs=1e-6)


@pytest.mark.parametrize("protocol", ["whole", "pyiqa"])
def test_whole_protocols_match_reference(published, photos, protocol):
    d, encoder, regs = published
    scorer = load("arniqa-koniq10k", device="cpu", weights_dir=d, protocol=protocol)
    res = scorer.score(photos)
    for p, raw in zip(photos, res.raw_scores.tolist()):
        ref = reference_raw(p, encoder, regs["koniq10k"], protocol)
        assert abs(raw - ref) < 1e-4 * max(1.0, abs(ref))


def test_features_and_regressor_agree(published, photos):
    d, _, regs = published
    res = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole").score(photos, return_features=True)
    assert res.features.shape == (3, 1, 4096)
    half = res.features[:, 0, 2048:]
    torch.testing.assert_close(half.norm(dim=1), torch.ones(3))  # each scale L2-normalised
    torch.testing.assert_close(regs["kadid10k"](res.features.mean(1)), res.raw_scores, atol=1e-4, rtol=1e-5)


def test_batch_equals_single(published, photos):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole", batch_size=4)
    batch = scorer.score(photos + photos[:1])  # mixed sizes: bucketed, order kept
    singles = torch.cat([scorer.score(p).raw_scores for p in photos + photos[:1]])
    torch.testing.assert_close(batch.raw_scores, singles, atol=1e-5, rtol=1e-6)
    assert batch.raw_scores[0] == pytest.approx(float(batch.raw_scores[3]), abs=1e-5)
    assert batch.raw_scores[0] != pytest.approx(float(batch.raw_scores[1]), abs=1e-4)  # distinct images differ


def test_input_types_agree(published, photos):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole")
    p = photos[0]
    arr = np.asarray(Image.open(p).convert("RGB"))
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255
    by_path = float(scorer.score(str(p)).raw_scores[0])
    assert float(scorer.score(Path(p)).raw_scores[0]) == by_path
    assert float(scorer.score(Image.open(p)).raw_scores[0]) == by_path  # PIL: same PIL resize as a path
    # 8-bit pixels score as their file (uint8 arrays went through torch's resize as tensors: 1e-4 off on photos)
    assert float(scorer.score(arr).raw_scores[0]) == by_path
    rgba = np.dstack([arr, np.full(arr.shape[:2], 7, np.uint8)])
    assert float(scorer.score(rgba).raw_scores[0]) == by_path  # alpha dropped
    from_tensor = float(scorer.score(t).raw_scores[0])
    assert float(scorer.score(arr.astype(np.float32) / 255).raw_scores[0]) == pytest.approx(from_tensor, abs=1e-5)
    assert float(scorer.score(t[None]).raw_scores[0]) == pytest.approx(from_tensor, abs=1e-5)
    # tensors are halved by torch (within 1.5/255 of PIL's resize): close to the path's score
    assert from_tensor == pytest.approx(by_path, abs=0.02 * max(1.0, abs(by_path)))


def _benchmark_regressor(seed=20):
    """A random kadid10k regressor as in benchmarks/inference.py: ||w|| = 10 in scaled units."""
    from arniqa.models.regressor import Regressor

    reg = Regressor("kadid10k")
    w = torch.randn(1, 4096, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reg.weight.copy_(w / w.norm() * 4 * 10)  # scaled = (raw - 1) / 4
        reg.bias.fill_(3.0)
    return reg


def test_channels_last_and_bf16_against_fp32(published, photos):
    d, _, _ = published
    default = load(
        "arniqa-kadid10k",
        device="cpu",
        weights_dir=d,
        protocol="whole",
        regressor=_benchmark_regressor(),
        engine="torch",
    )
    fp32 = default.score(photos).scores
    model = default.model
    channels_last = Scorer(model, default.regressor, protocol="whole", channels_last=True).score(photos).scores
    assert model.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, fp32, atol=1e-5, rtol=0)  # the same scores (docs/usage.md)
    model.to(memory_format=torch.contiguous_format)
    bf16 = Scorer(model, default.regressor, protocol="whole", precision="bf16").score(photos).scores
    error = float((bf16 - fp32).abs().max())
    assert 0 < error <= 0.01, error  # docs/usage.md, Speed: the documented bf16 tolerance
    assert float((fp32[0] - fp32[2]).abs()) > 0.01  # the bound is tighter than the spread of the scores


def test_small_images_work_in_crops(published, tmp_path):
    d, _, _ = published
    tiny = _photo(tmp_path / "tiny.png", 40, 30, 5)
    res = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="crops").score(tiny, return_features=True)
    assert res.features.shape == (1, 5, 4096) and torch.isfinite(res.scores).all()


def test_aliases_and_scaling(published, photos):
    d, _, regs = published
    expected = {
        "arniqa": "koniq10k",
        "arniqa-live": "live",
        "arniqa-csiq": "csiq",
        "arniqa-tid": "tid2013",
        "arniqa-kadid": "kadid10k",
        "arniqa-clive": "clive",
        "arniqa-flive": "flive",
        "arniqa-spaq": "spaq",
        "arniqa-koniq10k": "koniq10k",
        "arniqa-tid2013": "tid2013",
        "ARNIQA-KADID10K": "kadid10k",
    }
    assert set(PYIQA_NAMES) <= set(expected)
    for name, ds in expected.items():
        assert model_dataset(name) == ds
    with pytest.raises(ValueError, match="unknown model"):
        model_dataset("arniqa-imagenet")
    koniq = load("arniqa", device="cpu", weights_dir=d, protocol="whole")
    assert koniq.regressor.dataset == "koniq10k"
    r = koniq.score(photos[0])
    assert float(r.scores[0]) == pytest.approx((float(r.raw_scores[0]) - 1) / 99, abs=1e-6)
    live = load("arniqa-live", device="cpu", weights_dir=d, protocol="whole").score(photos[0])
    assert float(live.scores[0]) == pytest.approx(1 - (float(live.raw_scores[0]) - 1) / 99, abs=1e-6)  # DMOS
    raw = load("arniqa-live", device="cpu", weights_dir=d, protocol="whole").score(photos[0], scale=False)
    assert torch.equal(raw.scores, raw.raw_scores)
    # --regressor overrides the name's dataset
    assert load("arniqa", device="cpu", weights_dir=d, regressor="kadid").regressor.dataset == "kadid10k"


def test_checkpoint_path_gives_the_same_scores(published, photos, tmp_path):
    from arniqa.models.checkpoint import save_checkpoint

    d, encoder, regs = published
    pub = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="pyiqa", engine="torch")
    [path] = save_checkpoint(tmp_path / "ck.safetensors", pub.model, pub.regressor)
    mine = load(path, device="cpu", protocol="pyiqa")
    assert mine.regressor.dataset == "kadid10k"
    ref = reference_raw(photos[2], encoder, regs["kadid10k"], "pyiqa")
    assert float(mine.score(photos[2]).raw_scores[0]) == pytest.approx(ref, abs=1e-4 * max(1.0, abs(ref)))
    with pytest.raises(ValueError, match="regressor file"):
        load(path, device="cpu", regressor="kadid10k")


@pytest.mark.parametrize("method", ["score", "features"])
def test_score_raises_at_the_first_bad_input_without_scoring_the_rest(tmp_path, method):
    """score() and features() of 1000 inputs whose first is missing scored all 1000 (a library's worth of work)
    before raising its error; now they raise once the rows before it are out, having taken no more inputs than the
    look-ahead (2 x batch_size decoded ahead, 2 x batch_size held for order)."""
    import tiny_score

    scorer = tiny_score.load(protocol="whole")
    taken = 0

    def inputs():
        nonlocal taken
        for k in range(1001):
            taken += 1
            yield tmp_path / "none.png" if k == 0 else np.full((8, 8, 3), k % 256, np.uint8)

    with pytest.raises(ImageError, match="none.png: no such file"):
        getattr(scorer, method)(inputs())
    assert taken <= 1 + 4 * scorer.batch_size
    assert len(scorer.score([np.zeros((8, 8, 3), np.uint8)] * 3)) == 3


def test_inputs_taken_ahead_stay_bounded_by_count_when_most_are_missing_files(tmp_path):
    """A library whose paths are mostly missing files: each fails at once, so decoding never slows the read-ahead;
    the inputs taken ahead of the results given out stay within 2 x batch_size decoding and 2 x batch_size held for
    order (not thousands of pending futures)."""
    import tiny_score

    scorer = tiny_score.load(protocol="whole")
    scorer.batch_size, scorer.workers = 4, 2  # the stand-in's are 1 and 1: no thread pool
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(image)
    taken = given = most = 0

    def inputs():
        nonlocal taken, most
        for k in range(3000):
            taken += 1
            most = max(most, taken - given)
            yield image if k % 500 == 0 else tmp_path / f"gone{k}.png"

    for r in scorer.iter_scores(inputs()):
        given += 1
        assert (r.error is None) == (r.index % 500 == 0)
    assert given == 3000 and most <= 4 * scorer.batch_size + 1, most


def test_bad_inputs(published, photos, tmp_path):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="bad.jpg"):
        scorer.score([photos[0], bad])
    results = list(scorer.iter_scores([photos[0], bad, tmp_path / "none.png", photos[1]]))
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[0].error is None and results[3].error is None
    assert "not an image" in results[1].error and "no such file" in results[2].error
    assert results[1].score is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scorer.score(torch.full((3, 32, 32), 2.0))
    with pytest.raises(ValueError, match="shape"):
        scorer.score(torch.rand(5, 32, 32))
    with pytest.raises(ValueError, match="batch_size"):
        Scorer(scorer.model, scorer.regressor, batch_size=0)
    with pytest.raises(ValueError, match="protocol"):
        Scorer(scorer.model, scorer.regressor, protocol="center")


def test_max_side_downscales_with_warning(published, photos):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole", max_side=40)
    with pytest.warns(UserWarning, match="max_side=40"):
        bounded = scorer.score(photos[0]).raw_scores
    small = Image.open(photos[0]).convert("RGB").resize((40, 32), Image.BICUBIC)
    assert float(bounded[0]) == pytest.approx(float(scorer.score(small).raw_scores[0]), abs=1e-6)


def test_hub_entry_has_reference_signature(published, photos):
    d, encoder, regs = published
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("arniqa_hubconf", root / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert hub.dependencies[0] == "torch"
    model = hub.ARNIQA(regressor_dataset="kadid10k", weights_dir=d)
    img = Image.open(photos[0]).convert("RGB")
    x = _norm(img)[None]
    xd = _norm(transforms.Resize((32, 40))(img))[None]
    with torch.no_grad():
        score = model(x, xd)
        raw, emb = model(x, xd, return_embedding=True, scale_score=False)
        ref_emb = torch.hstack((F.normalize(encoder(x).flatten(1), dim=1), F.normalize(encoder(xd).flatten(1), dim=1)))
    assert score.shape == (1,) and emb.shape == (1, 4096)
    torch.testing.assert_close(emb, ref_emb, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(raw, regs["kadid10k"](ref_emb), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(score, (raw - 1) / 4)


def test_package_shortcut(published, photos):
    d, _, _ = published
    opts = dict(weights_dir=d, device="cpu", protocol="whole")
    direct = load("arniqa-kadid10k", **opts).score(photos[0]).scores
    assert torch.equal(arniqa.score(photos[0], model="arniqa-kadid10k", **opts).scores, direct)


def test_device_auto_and_lazy_package():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    assert arniqa.load is load


@pytest.mark.parametrize(
    "regressor, dataset",
    [
        ("kadid", "kadid10k"),
        ("KADID10K", "kadid10k"),
        ("arniqa", "koniq10k"),
        ("arniqa-live", "live"),
        ("koniq", "koniq10k"),
    ],
)
def test_load_takes_every_regressor_spelling(published, photos, regressor, dataset):
    d, encoder, regs = published
    scorer = load(device="cpu", weights_dir=d, protocol="pyiqa", regressor=regressor)
    assert scorer.regressor.dataset == dataset
    ref = reference_raw(photos[0], encoder, regs[dataset], "pyiqa")
    assert float(scorer.score(photos[0]).raw_scores[0]) == pytest.approx(ref, abs=1e-4 * max(1.0, abs(ref)))
    by_file = load(device="cpu", weights_dir=d, regressor=d / f"regressor_{dataset}.pth")
    assert by_file.regressor.dataset == dataset


def test_gray_arrays_are_replicated(published, photos):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", device="cpu", weights_dir=d, protocol="whole")
    gray = np.asarray(Image.open(photos[0]).convert("L"))
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    expected = float(scorer.score(rgb).raw_scores[0])
    for form in (gray, gray[:, :, None]):  # 8-bit: as a file (PIL's resize)
        assert float(scorer.score(form).raw_scores[0]) == expected
    expected = float(scorer.score(torch.from_numpy(rgb.transpose(2, 0, 1).copy())).raw_scores[0])
    for form in (gray.astype(np.float32) / 255, torch.from_numpy(gray.copy())[None]):  # tensors: torch's resize
        assert float(scorer.score(form).raw_scores[0]) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="uint8, uint16 or float"):
        scorer.score(gray.astype(np.int32))


def test_inputs_without_pixels_or_with_nan_are_error_rows_and_the_others_are_scored():
    """A NaN image was scored NaN without a word; an image with no pixels raised out of the whole batch."""
    from tiny_score import load as stand_in

    scorer = stand_in(protocol="whole")
    good = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    nan_array = np.full((8, 8, 3), 0.5, np.float32)
    nan_array[2, 3, 1] = np.nan
    bad = {
        1: (torch.full((3, 8, 8), float("nan")), "NaN"),
        2: (nan_array, "NaN"),
        3: (torch.zeros(3, 0, 8), "8x0 pixels"),
        4: (Image.new("RGB", (0, 5)), "0x5 pixels"),
        5: (np.zeros((4, 0), np.uint8), "0x4 pixels"),
    }
    results = list(scorer.iter_scores([good, *(item for item, _ in bad.values())]))
    assert results[0].error is None and results[0].score == pytest.approx(float(scorer.score(good).scores[0]))
    for i, (_, problem) in bad.items():
        assert results[i].score is None and problem in results[i].error and results[i].source == f"<input {i}>"
        assert not results[i].error.startswith("<input")  # the reason alone, as for files (ItemResult.error)
    for item, problem in bad.values():
        with pytest.raises(ValueError, match=problem):
            scorer.score(item)
    with pytest.raises(ValueError, match="mapping"):  # its keys are not paths to score
        scorer.score({"a.png": good})


def test_no_inputs_give_no_rows_whatever_holds_them(monkeypatch):
    """An empty list (a glob that matched nothing) raised "no images to score" where an empty iterator gave an empty
    result; with features asked, the empty iterator raised torch's "stack expects a non-empty TensorList"."""
    from tiny_score import FEATURE_WEIGHTS
    from tiny_score import load as stand_in

    from arniqa.models.explain import LABELS, Explainer

    width = len(FEATURE_WEIGHTS)  # the stand-in's feature: 6 values per scale
    empties = [list, tuple, lambda: iter([]), lambda: np.zeros((0, 8, 8, 3), np.uint8), lambda: torch.zeros(0, 3, 8, 8)]
    for protocol, views in (("whole", 1), ("crops", 5)):
        scorer = stand_in(protocol=protocol)
        scorer.explainer = Explainer(width)
        some = scorer.score(_images(2), return_features=True)
        for empty in empties:
            r = scorer.score(empty(), return_features=True)
            assert len(r) == 0 and r.scores.shape == r.raw_scores.shape == (0,) and r.tolist() == []
            assert r.features.shape == (0, views, width)
            assert torch.equal(torch.cat([r.features, some.features]), some.features)  # it joins a batch's
            assert scorer.features(empty()).shape == (0, views, width) and list(scorer.iter_scores(empty())) == []
            e = scorer.explain(empty())
            assert len(e) == 0 and e.probs.shape == (0, len(LABELS)) and e.severity.shape == (0,)
    monkeypatch.setattr(arniqa.inference, "load", lambda model, **options: stand_in(protocol="whole"))
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    assert len(arniqa.score([], model="t")) == 0 and len(arniqa.score(iter([]), model="t")) == 0


def test_a_result_names_its_inputs_as_its_rows_do(tmp_path):
    """ScoreResult kept no names: scoring a list of paths, one had to zip them back by hand."""
    scorer = _stand_in(batch_size=2, workers=2)
    pixels = _images(4)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for p, a in zip(paths, pixels):
        Image.fromarray(a).save(p)
    r = scorer.score([str(paths[0]), pixels[2], paths[1], Image.fromarray(pixels[3])])
    assert r.sources == [str(paths[0]), "<input 1>", str(paths[1]), "<input 3>"]
    by_name = dict(zip(r.sources, r.tolist()))
    assert by_name[str(paths[1])] == pytest.approx(float(scorer.score(Image.fromarray(pixels[1]))), abs=1e-6)
    assert len(set(r.tolist())) == 4  # so a wrong pairing would show
    assert scorer.score(np.stack([a[:6, :7] for a in pixels[:3]])).sources == ["<input 0>", "<input 1>", "<input 2>"]
    assert scorer.score(paths[0]).sources == [str(paths[0])] and scorer.score([]).sources == []


def test_file_objects_byte_buffers_batches_of_arrays_and_uint16_score_as_their_image(tmp_path):
    """A file object or BytesIO was iterated as lines ("not an image file PIL can read"), a bytearray or memoryview
    as ints ("cannot score an object of type int"); a (B,H,W,C) array, a uint16 array and an (H,W) tensor were
    refused; a tensor that requires grad made torch warn."""
    import io
    import warnings

    scorer = _stand_in(batch_size=2, workers=2)
    pixels = _images(3)[:2]
    path = tmp_path / "a.png"
    Image.fromarray(pixels[0]).save(path)
    data = path.read_bytes()
    by_path = float(scorer.score(path).scores[0])
    with open(path, "rb") as f:
        forms = [io.BytesIO(data), bytearray(data), memoryview(data), f]
        assert scorer.score(forms).scores.tolist() == [by_path] * 4  # the same bytes, decoded the same way
    with open(path, "rb") as f:
        assert next(scorer.iter_scores(f)).source == str(path)  # named by its file
    with open(path) as f, pytest.raises(ValueError, match="text mode; open an image file with open"):
        scorer.score(f)
    one_by_one = scorer.score(list(pixels)).scores
    same = [p[:6, :7] for p in pixels]  # a batch of one size
    assert torch.equal(scorer.score(np.stack(same)).scores, scorer.score(same).scores)
    assert torch.equal(scorer.score(pixels[0][None]).scores, one_by_one[:1])
    wide = pixels[0].astype(np.uint16) * 257  # 8-bit values on the 16-bit scale: v * 257 / 65535 = v / 255
    as_tensor = scorer.score(torch.from_numpy(pixels[0].transpose(2, 0, 1).copy())).scores  # uint8: v / 255
    assert float(scorer.score(wide).scores[0]) == pytest.approx(float(as_tensor[0]), abs=1e-6)
    gray = torch.from_numpy(pixels[0][:, :, 1].copy())
    assert torch.equal(scorer.score(gray).scores, scorer.score(gray[None]).scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer.score(torch.rand(3, 8, 8).requires_grad_())


def test_an_empty_path_is_refused_as_one_not_read_as_the_current_folder():
    """score("") (a blank field of a CSV) said ".: is a directory, not an image file", Path("") being the current
    folder."""
    with pytest.raises(ImageError, match="^'': an empty path, naming no file; give the image file's path$"):
        _stand_in().score("")


def test_a_folder_or_a_tar_shard_is_refused_with_how_to_score_its_images(tmp_path):
    """score(folder) said "is a directory, not an image file" and score(shard) "not an image file PIL can read", and no
    more, where arniqa score takes both; the lister they name gives their images, which then score."""
    import tarfile

    from arniqa.inference.listing import iter_inputs

    scorer = _stand_in()
    Image.fromarray(_images(1)[0]).save(tmp_path / "a.png")
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        tar.add(tmp_path / "a.png", "b.png")
    for path, kind in ((tmp_path, "a directory"), (tmp_path / "s.tar", "a tar shard")):
        with pytest.raises(
            ImageError, match=rf"is {kind}, not an image file; pass the images arniqa score takes from it: arniqa\.inf"
        ):
            scorer.score(path)
    by_path = float(scorer.score(tmp_path / "a.png"))
    r = scorer.score(iter_inputs([tmp_path]))
    assert r.sources == [str(tmp_path / "a.png"), str(tmp_path / "s.tar" / "b.png")] and list(r) == [by_path] * 2


def test_a_read_only_float_array_scores_without_a_torch_warning():
    """A float array that is not writable (a Ray Data block, np.load(..., mmap_mode="r")) made torch warn "The given
    NumPy array is not writable ... undefined behavior" on the user's console; it scores as a writable copy does."""
    import warnings

    scorer = _stand_in()
    pixels = _images(1)[0].astype(np.float32) / 255
    frozen = pixels.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scorer.score(frozen).scores.tolist() == scorer.score(pixels).scores.tolist()


def test_inputs_of_the_wrong_kind_say_what_to_pass():
    """None, a channels-first array, a channels-last tensor, floats in [0, 255] and a URL were refused without a
    word on what to pass (a URL as the mangled path 'https:/host/a.png: no such file')."""
    scorer = _stand_in()
    pixels = _images(1)[0]
    wrong = [
        (None, "cannot score an object of type NoneType; pass a path, bytes"),
        ([pixels, None], r"<input 1>: cannot score an object of type NoneType; each input is a path"),
        (pixels.astype(np.float32), r"array values must lie in \[0, 1\], got \[\d+, 255\]; divide by 255"),
        (
            torch.from_numpy(pixels.transpose(2, 0, 1).copy()).float(),
            r"tensor values must lie in \[0, 1\], got .*; divide by 255",
        ),
        (pixels.transpose(2, 0, 1), r"channels-first \(C,H,W\): pass a.transpose\(1, 2, 0\)"),
        (torch.from_numpy(pixels), r"channels-last \(H,W,C\): pass x.permute\(2, 0, 1\)"),
        ("https://example.com/a.png", "https://example.com/a.png: a URL; arniqa reads local files only"),
    ]
    for item, message in wrong:
        with pytest.raises(ValueError, match=message):
            scorer.score(item)


def test_arrays_and_tensors_of_the_wrong_kind_say_what_to_pass():
    """Six lines refusing an array or a tensor named the problem with nothing to do."""
    from arniqa.inference.inputs import as_image

    wrong = [
        (
            np.zeros((0, 4, 3), np.uint8),
            "an image of 4x0 pixels has nothing to score; pass one at least 1 pixel wide and high",
        ),
        (
            torch.zeros(2, 5, 6),
            "expected an image tensor (3,H,W) or (1,H,W), got shape (2, 5, 6); pass a (3,H,W) float tensor in [0, 1] "
            "or a uint8 one",
        ),
        (
            torch.zeros(3, 4, 4, dtype=torch.int64),
            "expected a float tensor in [0, 1] or uint8, got torch.int64; pass x.float() / 255 for 8-bit values, or a "
            "float tensor in [0, 1]",
        ),
        (
            torch.full((3, 4, 4), -2.0),
            "tensor values must lie in [0, 1], got [-2, -2]; scale them to [0, 1] (undo any normalisation)",
        ),
        (
            np.full((4, 4, 3), 0.5, np.float32) * 255,
            "array values must lie in [0, 1], got [127.5, 127.5]; divide by 255 (or pass uint8)",
        ),
        (
            np.zeros((5, 6, 2), np.uint8),
            "expected an HxWxC array with C in (1, 3, 4), got shape (5, 6, 2); pass an HxWx3 uint8 array (or HxW gray)",
        ),
        (
            np.zeros((4, 4, 3, 1), np.uint8),
            "expected an HxWxC array with C in (1, 3, 4), got shape (4, 4, 3, 1); a batch is scored when passed by "
            "itself, not inside a list",
        ),
        (
            np.zeros((4, 4, 3), np.int64),
            "expected a uint8, uint16 or float array, got int64; pass a.astype(np.uint8) for 8-bit values, or a float "
            "array in [0, 1]",
        ),
    ]
    for item, line in wrong:
        with pytest.raises(ValueError) as e:
            as_image(item, "x")
        assert str(e.value) == f"x: {line}"


def _stand_in(**options) -> Scorer:
    """The stand-in model of ``tiny_score`` in a Scorer with ``options`` (batching and threads too)."""
    from tiny_score import load as stand_in

    tiny = stand_in(protocol="whole")
    return Scorer(tiny.model, tiny.regressor, protocol="whole", device="cpu", engine="torch", **options)


@pytest.mark.parametrize(
    "option, value",
    [
        ("batch_size", 1.5),
        ("batch_size", float("nan")),
        ("batch_size", True),
        ("workers", -1),
        ("workers", 2.5),
        ("max_side", 7.5),
        ("max_pixels", float("nan")),
        ("max_pixels", True),
        ("channels_last", "no"),
    ],
)
def test_options_of_the_wrong_kind_are_refused_by_name(option, value):
    """batch_size=nan held every image until the end; max_pixels=nan turned the pixel bound off; a float or
    a bool passed as a count, and a string as channels_last, were taken without a word."""
    with pytest.raises(ValueError, match=f"{option} must be .*, got {value!r}"):
        _stand_in(**{option: value})


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (6 + i % 3, 7 + i % 4, 3), dtype=np.uint8) for i in range(n)]


def test_an_input_stream_that_fails_midway_yields_the_images_it_gave_first():
    """The images decoded ahead (up to 2 * batch_size) were dropped when the stream raised."""
    images = _images(7)
    single = [float(s) for s in _stand_in(batch_size=1, workers=1).score(images).scores]

    def stream():
        yield from images
        raise OSError("the bucket listing broke")

    for batch_size, workers in [(1, 1), (4, 1), (4, 3), (16, 4)]:
        got = []
        with pytest.raises(OSError, match="bucket listing"):
            for r in _stand_in(batch_size=batch_size, workers=workers).iter_scores(stream()):
                got.append(r)
        assert [r.index for r in got] == list(range(7))
        assert [r.score for r in got] == pytest.approx(single, abs=1e-6)


def test_a_tensor_torch_cannot_read_is_an_error_row():
    """A meta tensor (torch raises RuntimeError on reading it) raised out of the whole batch."""
    images = _images(2)
    scorer = _stand_in(batch_size=2, workers=2)
    results = list(scorer.iter_scores([images[0], torch.zeros(3, 8, 8, device="meta"), images[1]]))
    said = results[1].error  # torch's words in between
    assert said.startswith("cannot make its views (") and results[1].score is None
    assert said.endswith("); pass a dense CPU or GPU tensor holding its pixels")
    assert [results[0].score, results[2].score] == pytest.approx(scorer.score(images).scores.tolist(), abs=1e-6)


def test_memory_error_for_a_batch_retries_one_image_at_a_time():
    """numpy's MemoryError while joining a batch's views (a large batch_size) ended the whole run."""
    images = [im[:6, :7] for im in _images(5)]  # one size: one batch
    scorer = _stand_in(batch_size=5, workers=1)
    expected = scorer.score(images).scores.tolist()
    run = scorer.engine.run

    def no_room_for_two(full, half, *wanted):
        if len(full) > 1:
            raise MemoryError("Unable to allocate 97.6 MiB for an array")
        return run(full, half, *wanted)

    scorer.engine.run = no_room_for_two
    results = list(scorer.iter_scores(images))
    assert [r.error for r in results] == [None] * 5
    assert [r.score for r in results] == pytest.approx(expected, abs=1e-6)


def test_running_out_of_memory_for_one_image_alone_says_so_in_its_row():
    """The image that ran PyTorch's CPU allocator out of memory on its own got 'model failed ([enforce fail at
    alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: ...)'; now its row says out of memory and what to lower."""
    images = [im[:6, :7] for im in _images(3)]
    images[1] = np.kron(images[1], np.ones((4, 4, 1), np.uint8))  # the big one
    scorer = _stand_in(batch_size=3, workers=1)
    expected = scorer.score([images[0], images[2]]).scores.tolist()
    run = scorer.engine.run

    def greedy(full, half, *wanted):
        if full.shape[-1] > 7:
            torch.empty(1 << 62, dtype=torch.uint8)  # more than any machine has
        return run(full, half, *wanted)

    scorer.engine.run = greedy
    results = list(scorer.iter_scores(images))
    assert results[1].error == "out of memory in the model (RuntimeError); downscale it with --max-side"
    assert [results[0].score, results[2].score] == pytest.approx(expected, abs=1e-6)


def test_package_shortcut_tells_regressor_objects_apart(monkeypatch):
    """Two Regressors of one dataset have one repr; the second call was scored with the first one's weights."""
    from tiny_score import load as stand_in

    from arniqa.models.regressor import Regressor

    def load_with(model, regressor=None, **options):
        tiny = stand_in()
        return Scorer(tiny.model, regressor, protocol="whole", device="cpu", engine="torch")

    monkeypatch.setattr(arniqa.inference, "load", load_with)
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    image = _images(1)[0]
    zero, tenth = (Regressor.from_numpy(np.full(12, w), 3.0, dataset="kadid10k") for w in (0.0, 0.1))
    assert float(arniqa.score(image, model="tiny", regressor=zero).raw_scores[0]) == pytest.approx(3.0)
    fresh = float(load_with("tiny", tenth).score(image).raw_scores[0])
    assert fresh > 3.1  # 0.1 * the sum of 12 features of a bright image, plus 3
    assert float(arniqa.score(image, model="tiny", regressor=tenth).raw_scores[0]) == pytest.approx(fresh, abs=1e-6)
    assert float(arniqa.score(image, model="tiny", regressor=zero).raw_scores[0]) == pytest.approx(3.0)
    assert len(arniqa._cached_scorers) == 2


def test_package_shortcut_loads_once_across_threads_and_takes_score_options(monkeypatch):
    """Four threads calling arniqa.score at once loaded the model four times; "cpu" and torch.device("cpu"), or a
    str and a Path, were two loads each; scale=False and return_features=True went to load() (TypeError)."""
    import threading
    import time

    from tiny_score import load as stand_in

    loads = []

    def slow_load(model, **options):
        loads.append(options)
        time.sleep(0.3)  # a load that takes a while: the other threads arrive meanwhile
        return stand_in(protocol="whole")

    monkeypatch.setattr(arniqa.inference, "load", slow_load)
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    image = _images(1)[0]
    scores = []
    threads = [threading.Thread(target=lambda: scores.append(float(arniqa.score(image, model="t")))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(scores) == 4 and len(set(scores)) == 1
    for first, second in [("cpu", torch.device("cpu")), ("w", Path("w"))]:
        arniqa.score(image, model="u", weights_dir=first)
        arniqa.score(image, model="u", weights_dir=second)
    assert len(loads) == 3  # one per spelled-alike pair
    scaled = arniqa.score(image, model="t")
    raw = arniqa.score(image, model="t", scale=False, return_features=True)
    assert len(loads) == 3  # score options are not load options
    assert float(raw.scores[0]) == pytest.approx(float(scaled.raw_scores[0]))
    assert float(scaled.scores[0]) == pytest.approx((float(raw.scores[0]) - 1) / 4)  # KADID-10k's scale
    pixels = image.reshape(-1, 3) / 255  # the stand-in's feature of the whole view: channel means and maxima
    np.testing.assert_allclose(raw.features[0, 0, :6].numpy(), [*pixels.mean(0), *pixels.max(0)], atol=1e-6)


def test_package_shortcut_keeps_the_few_models_used_last_and_frees_the_others(monkeypatch):
    """Every model and options that arniqa.score was called with stayed loaded: a loop over checkpoints, or a fresh
    Regressor per call, kept them all."""
    import gc
    import itertools
    import threading
    import time
    import weakref

    from tiny_score import load as stand_in

    loads, made = [], {}

    def users(model):
        """The calls using ``model``'s entry now (each thread in arniqa.score is one until its load is done)."""
        with arniqa._cache_lock:
            return sum(entry.users for key, entry in arniqa._cached_scorers.items() if key[0] == model)

    def counted_load(model, **options):
        loads.append(model)
        if model == "missing":
            raise ValueError("missing: no such checkpoint file or folder")
        deadline = time.monotonic() + 60  # a bound on the wait, not a timing assertion
        while model == "slow" and users("slow") < 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # the load lasts until the four threads wait for it, however late they arrive
        scorer = stand_in(protocol="whole")
        made.setdefault(model, []).append(weakref.ref(scorer))
        return scorer

    monkeypatch.setattr(arniqa.inference, "load", counted_load)
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    image = _images(1)[0]
    for name in ["a", "b", "c", "d", "a", "e"]:  # a used again after d: b is the least recently used
        arniqa.score(image, model=name)
    assert loads == ["a", "b", "c", "d", "e"]
    gc.collect()
    assert made["b"][0]() is None and all(made[n][0]() is not None for n in "acde")  # b's model is freed
    assert arniqa.CACHED_MODELS == 4
    for name in ["a", "c", "d", "e"]:
        arniqa.score(image, model=name)
    assert len(loads) == 5  # the four kept are not loaded again
    with pytest.raises(ValueError, match="no such checkpoint"):
        arniqa.score(image, model="missing")
    assert len(arniqa._cached_scorers) == 4  # a failed load takes no place
    arniqa.score(image, model="b")
    assert loads[-1] == "b" and len(arniqa._cached_scorers) == 4

    # threads asking for one model during its load load it once, while other models come and go
    scores, stop = [], threading.Event()

    def churn():
        for i in itertools.count():
            if stop.is_set():
                return
            arniqa.score(image, model=f"o{i % 12}")

    others = threading.Thread(target=churn)
    others.start()
    threads = [
        threading.Thread(target=lambda: scores.append(float(arniqa.score(image, model="slow")))) for _ in range(4)
    ]
    for t in threads:
        t.start()
        time.sleep(0.05)  # arriving one after the other during the load, while the churn evicts
    for t in threads:
        t.join()
    stop.set()
    others.join()
    assert loads.count("slow") == 1 and len(scores) == 4 and len(arniqa._cached_scorers) == 4


def test_subpackages_are_attributes_of_a_bare_import_arniqa():
    """docs/usage.md's arniqa.inference.export(...) raised AttributeError after only `import arniqa`."""
    import subprocess
    import sys

    code = "import arniqa as a; print(a.inference.export.__name__, a.degradations.NUM_LEVELS, 'inference' in dir(a))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["export", "5", "True"], done.stderr


def test_list_models_is_an_attribute_of_arniqa_as_of_pyiqa_and_imports_no_torch():
    """pyiqa's first call, pyiqa.list_models(), was arniqa.list_models(): AttributeError; it lists the names
    arniqa.load takes, pyiqa's eight among them (shared/docs/pyiqa-and-users.md 1.1), without importing torch."""
    import subprocess
    import sys

    code = "import sys, arniqa; print(*arniqa.list_models(), 'list_models' in dir(arniqa), 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    *names, listed, torch_imported = done.stdout.split()
    pyiqa = ["arniqa", *(f"arniqa-{d}" for d in ("live", "csiq", "tid", "kadid", "clive", "flive", "spaq"))]
    assert set(pyiqa) <= set(names) and "arniqa-koniq10k" in names, done.stderr
    assert (listed, torch_imported) == ("True", "False")


def test_hub_model_names_inputs_of_the_wrong_shape(published):
    """Inputs of the wrong shape or count came back as torch's RuntimeError from inside the ResNet."""
    from arniqa.inference.hub import hub_model

    model = hub_model("kadid10k", published[0])
    x, xd = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="img has 2 images and img_ds 1"):
        model(x, xd[:1])
    with pytest.raises(ValueError, match="img has 1 image and img_ds 2"):
        model(x[:1], xd)
    with pytest.raises(ValueError, match=r"img: expected a \(N,3,H,W\) tensor, got shape \(2, 4, 32, 32\)"):
        model(torch.rand(2, 4, 32, 32), xd)
    with pytest.raises(ValueError, match="img_ds: .* got an object of type list"):
        model(x, [xd])


def test_load_names_arguments_of_the_wrong_kind(published, tmp_path):
    """None or a number as a path came back as os.fspath's TypeError naming no argument; a Path to a folder
    or to no file as the regressor was 'unknown regressor dataset PosixPath(...)'."""
    d, _, _ = published
    for name, value in [("name_or_path", None), ("weights_dir", 5), ("explainer", 3), ("calibrate", ["a"])]:
        kwargs = {} if name == "name_or_path" else {name: value}
        args = (value,) if name == "name_or_path" else ("arniqa-kadid10k",)
        with pytest.raises(TypeError, match=f"{name} must be a str or a path, got {type(value).__name__}"):
            load(*args, device="cpu", **kwargs)
    # torch's TypeError listed its signatures over many lines
    with pytest.raises(ValueError, match="device 1.5 is not a device: choose auto, cpu"):
        load("arniqa-kadid10k", device=1.5, weights_dir=d, engine="torch")
    with pytest.raises(ValueError, match=f"regressor {d}: a folder; give the regressor_NAME.safetensors file in it$"):
        load("arniqa-kadid10k", device="cpu", weights_dir=d, regressor=d)
    with pytest.raises(ValueError, match="regressor_none.pth: no such regressor file; check the path$"):
        load("arniqa-kadid10k", device="cpu", weights_dir=d, regressor=tmp_path / "regressor_none.pth")


def test_load_and_export_say_a_missing_model_file_before_importing_torch(tmp_path):
    """The API gives the commands' one-line errors (they call check_files too) and, like them, before torch is
    imported and anything downloads: before, the checks were in arniqa.models, whose package imported torch."""
    import subprocess
    import sys

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "regressor_kadid10k.pth").write_bytes(b"")
    code = """if True:
        import sys, arniqa
        from arniqa.inference import export
        calls = [lambda: arniqa.load("run/model.safetensors"), lambda: export("m.onnx", explainer="head"),
                 lambda: arniqa.load(regressor="typo.pth"), lambda: export("m.onnx", weights_dir="weights")]
        for call in calls:
            try:
                call()
            except ValueError as e:
                print(type(e).__name__, e)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.splitlines() == [
        "WeightsError run/model.safetensors: no such checkpoint file; check the path of the .safetensors file, a part "
        "or their folder that arniqa train or evaluate wrote",
        "WeightsError head: no such explanation head file; check the path of the head that arniqa explain fit -o wrote",
        "ValueError typo.pth: no such regressor file; check the path, or name a published regressor's dataset: live, "
        "csiq, tid2013, kadid10k, flive, spaq, clive, koniq10k",
        "WeightsError weights/ARNIQA.pth: not found; place it there, or leave out --weights-dir (weights_dir) to "
        "download it into the cache from https://github.com/miccunifi/ARNIQA/releases/download/weights/ARNIQA.pth",
        "[]",
    ], done.stderr


def test_a_mistyped_model_name_is_refused_also_with_a_regressor(tmp_path):
    """`load("arniqa-kadi", regressor="kadid")` never looked at the name: it scored with the published encoder, as
    `load("arniqa-kadid")` would. The name is refused as without a regressor, before anything loads or downloads."""
    from arniqa.inference import export
    from arniqa.models.regressor import Regressor

    (tmp_path / "regressor_kadid10k.pth").write_bytes(b"")
    unknown = r"unknown model 'arniqa-kadi' \(did you mean 'arniqa-kadid'"
    for regressor in (None, "kadid", "arniqa-live", tmp_path / "regressor_kadid10k.pth", Regressor(in_features=4)):
        with pytest.raises(ValueError, match=unknown):
            load("arniqa-kadi", device="cpu", regressor=regressor)
        with pytest.raises(ValueError, match=unknown):
            export(tmp_path / "m.onnx", "arniqa-kadi", regressor=regressor)
    assert not (tmp_path / "m.onnx").exists()


def test_load_and_export_name_close_names_missing_files_and_folders(published, tmp_path, monkeypatch):
    """A typo in a model name or an option listed the names without the close one (an option as Scorer.__init__'s
    TypeError); a missing runs/model.pt was "unknown model"; export(None) was pathlib's TypeError, and export to a
    folder failed on writing, after the model was loaded and exported; export("model") wrote a file load() takes
    for a checkpoint."""
    from arniqa.inference import export, loading

    d, _, _ = published
    with pytest.raises(ValueError, match=r"unknown model 'arniqa-kadid10' \(did you mean 'arniqa-kadid10k'"):
        load("arniqa-kadid10", device="cpu", weights_dir=d)
    with pytest.raises(
        ValueError,
        match="model.pt: no such checkpoint file; check the path of .+, or name a published model: arniqa-live",
    ):
        load(tmp_path / "runs" / "model.pt", device="cpu")
    with pytest.raises(TypeError, match=r"load\(\) got an unknown option 'batchsize' \(did you mean 'batch_size'\?\)"):
        load("arniqa-kadid10k", device="cpu", weights_dir=d, batchsize=4)

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_model", no_load)
    with pytest.raises(TypeError, match="output must be a str or a path, got NoneType"):
        export(None, weights_dir=d)
    with pytest.raises(ValueError, match=f"{tmp_path}: a folder; name the ONNX file to write"):
        export(tmp_path, weights_dir=d)
    with pytest.raises(ValueError, match="model: the output file must end in .onnx"):  # load() would not know it
        export(tmp_path / "model", weights_dir=d)
    # an explanation head or calibration folder that is not there: before, found after the model was loaded
    with pytest.raises(ValueError, match="head.safetensors: no such"):
        export(tmp_path / "m.onnx", weights_dir=d, explainer=tmp_path / "head.safetensors")
    with pytest.raises(ValueError, match="photos: no such folder"):
        export(tmp_path / "m.onnx", weights_dir=d, int8=True, calibrate=tmp_path / "photos")
    for option in ({"explainer": tmp_path / "head.safetensors"}, {"precision": "int8", "calibrate": tmp_path / "p"}):
        with pytest.raises(ValueError, match="no such"):
            load("arniqa-kadid10k", device="cpu", weights_dir=d, **option)


def test_settings_that_do_not_go_together_are_refused_in_load_keywords_before_any_download(tmp_path):
    # before: engine='torch' with int8 downloaded the published model first; an ONNX file's line named
    # both "engine='onnxruntime' (--engine onnxruntime)"
    from tiny_arniqa import tiny_onnx

    _, _, onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    empty = tmp_path / "weights"
    empty.mkdir()
    with pytest.raises(ValueError, match=re.escape("precision='int8' runs on ONNX Runtime, not engine='torch'")):
        load("arniqa-kadid10k", device="cpu", weights_dir=empty, engine="torch", precision="int8")
    with pytest.raises(ValueError, match=re.escape("tiny.onnx: an ONNX file runs on ONNX Runtime, not engine='torch'")):
        load(onnx_file, device="cpu", engine="torch")
    with pytest.raises(ValueError, match=re.escape("precision='fp16' applies to the torch engine")):
        load(onnx_file, device="cpu", precision="fp16")
    assert not list(empty.iterdir())


def test_a_model_giving_nan_or_inf_is_an_error_row_not_a_score():
    """Damaged weights (a NaN in the regressor) or an overflow gave NaN scores, written as scores, exit 0."""
    from tiny_score import load as stand_in

    images = [torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    for bad in (float("nan"), float("inf")):
        scorer = stand_in(protocol="whole")
        with torch.no_grad():
            scorer.regressor.weight[0, 0] = bad
        results = list(scorer.iter_scores(images))
        assert [r.score for r in results] == [None] * 3
        assert all("NaN or infinite" in r.error for r in results)
        with pytest.raises(ValueError, match="<input 0>: the model gave a NaN or infinite score"):
            scorer.score(images)
    healthy = stand_in(protocol="whole")
    assert torch.isfinite(healthy.score(images).scores).all()  # the same images, sound weights: scored


def test_the_published_onnx_engine_checks_a_regressor_file_without_building_the_encoder_again(
    published, tmp_path, monkeypatch
):
    """With the onnxruntime engine, the published encoder and a regressor file that records its encoder, every load
    built the published encoder in torch (seconds) only to fingerprint it, and a first load built it twice. Now its
    fingerprint is kept beside the cached export: a first load builds it once, a later one not at all, and a
    regressor of another encoder is still refused. They were kept twice, in a `.fingerprint` file and in the
    export's sidecar; they are read from the sidecar, and computed where it does not record them."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.models.published as published_module
    from arniqa.models.arniqa import PAIRING_KEYS, pairing_fingerprints
    from arniqa.models.explain import Explainer, save_explainer

    d, _, _ = published
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    pub = load("arniqa-kadid10k", device="cpu", weights_dir=d, engine="torch")
    of_published = regressor_file(tmp_path / "of_pub.safetensors", pub.regressor, f"published {d}", pub.model)
    fingerprints = pairing_fingerprints(TinyARNIQA())
    of_other = regressor_file(tmp_path / "of_b.safetensors", pub.regressor, "checkpoint b", TinyARNIQA())
    built = []
    build = published_module.published_encoder
    monkeypatch.setattr(published_module, "published_encoder", lambda path: built.append(path) or build(path))
    options = dict(device="cpu", weights_dir=d, engine="onnxruntime")
    refused = rf"^{re.escape(str(of_other))}: .* checkpoint b, not of the published encoder"

    load("arniqa-kadid10k", regressor=of_published, **options)
    assert len(built) == 1  # the fingerprint and the export from one build
    for _ in range(2):
        built.clear()
        load("arniqa-kadid10k", regressor=of_published, **options)
        with pytest.raises(ValueError, match=refused):
            load("arniqa-kadid10k", regressor=of_other, **options)
        assert built == []
        assert not list((tmp_path / "cache" / "onnx").glob("*.fingerprint"))
        [side] = (tmp_path / "cache" / "onnx").glob("*.onnx.json")
        kept = json.loads(side.read_text())
        side.write_text(json.dumps({k: v for k, v in kept.items() if k not in PAIRING_KEYS.values()}))
        with pytest.raises(ValueError, match=refused):
            load("arniqa-kadid10k", regressor=of_other, **options)
        assert len(built) == 1
        side.write_text(json.dumps(kept))
    built.clear()  # an explanation head of another encoder: refused the same way, from the kept fingerprints
    head = save_explainer(tmp_path / "head_b.safetensors", Explainer(), encoder="checkpoint b", **fingerprints)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(head))}: this explanation head .* checkpoint b, not of"):
        load("arniqa-kadid10k", explainer=head, **options)
    assert built == []


def test_a_cached_export_from_before_sidecars_recorded_fingerprints_gets_them_once(published, tmp_path, monkeypatch):
    """A published encoder's export cached before its sidecar recorded the encoder's fingerprints (298ce6d) made
    every later load with a regressor file build the encoder in torch (seconds) to fingerprint it, until the entry
    was exported again or pruned. Now the first such load writes them into the sidecar, the graph file left as it is
    (another process may be reading it), and later loads build none; a cache it cannot write builds each time."""
    import arniqa.inference.engines as engines
    import arniqa.models.published as published_module
    from arniqa.models.arniqa import PAIRING_KEYS, pairing_fingerprints

    d, _, _ = published
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    pub = load("arniqa-kadid10k", device="cpu", weights_dir=d, engine="torch")
    of_published = regressor_file(tmp_path / "of_pub.safetensors", pub.regressor, f"published {d}", pub.model)
    built = []
    build = published_module.published_encoder
    monkeypatch.setattr(published_module, "published_encoder", lambda path: built.append(path) or build(path))
    options = dict(device="cpu", weights_dir=d, engine="onnxruntime", regressor=of_published)
    load("arniqa-kadid10k", **options)  # the cached export
    [graph] = (tmp_path / "cache" / "onnx").glob("*.onnx")
    [side] = (tmp_path / "cache" / "onnx").glob("*.onnx.json")
    exported = json.loads(side.read_text())
    old = {k: v for k, v in exported.items() if k not in PAIRING_KEYS.values()}  # as export wrote it before
    assert len(old) == len(exported) - len(PAIRING_KEYS)
    side.write_text(json.dumps(old))
    graph_file, graph_bytes = graph.stat(), graph.read_bytes()

    built.clear()
    load("arniqa-kadid10k", **options)
    assert len(built) == 1
    assert json.loads(side.read_text()) == exported == {**old, **pairing_fingerprints(pub.model)}
    assert graph.stat().st_ino == graph_file.st_ino and graph.read_bytes() == graph_bytes
    for _ in range(2):
        load("arniqa-kadid10k", **options)
    assert len(built) == 1

    side.write_text(json.dumps(old))  # a cache this user cannot write: each load builds, and loads, as before
    monkeypatch.setattr(engines, "write_json", lambda *a: (_ for _ in ()).throw(PermissionError(13, "read-only")))
    for _ in range(2):
        assert load("arniqa-kadid10k", **options).regressor is not None
    assert len(built) == 3 and json.loads(side.read_text()) == old


def test_a_checkpoint_on_onnx_runtime_builds_no_model_once_its_export_is_cached(tmp_path, monkeypatch):
    """`arniqa score --checkpoint model.safetensors` on a CPU (ONNX Runtime, its export cached) built the torch model
    on every run, importing timm (37 s against 5 s for its .onnx file on a busy 2-core machine), only to fingerprint
    it and find the cached export by that name. The export is now named after the checkpoint's bytes: a later run
    reads the regressor alone and builds none; a changed file, or the model in parts, is exported anew; a regressor
    file of another encoder is still refused."""
    from tiny_arniqa import TinyARNIQA, tiny_checkpoint

    import arniqa.models.checkpoint as checkpoint
    from arniqa.models.checkpoint import load_checkpoint, save_checkpoint

    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path / "cache"))
    tiny_checkpoint(tmp_path / "a.safetensors", monkeypatch)
    path = tmp_path / "plain-a.safetensors"
    built = []
    monkeypatch.setattr(checkpoint, "ARNIQA", lambda name, **options: built.append(name) or TinyARNIQA())
    photos = [_photo(tmp_path / f"p{i}.png", 48, 40, i) for i in range(2)]

    def scores(**options):
        return load(path, device="cpu", protocol="whole", **options).score(photos).scores

    exact = scores(engine="torch")
    assert len(built) == 1
    assert torch.allclose(scores(), exact, atol=1e-5) and len(built) == 2  # the first: built and exported
    for _ in range(2):
        assert torch.allclose(scores(), exact, atol=1e-5)
        assert len(built) == 2
    model, regressor, _ = load_checkpoint(path)
    torch.manual_seed(5)
    save_checkpoint(path, TinyARNIQA(), regressor)  # another encoder under the same name
    built.clear()
    changed = scores(engine="torch")
    assert not torch.allclose(changed, exact, atol=1e-3)
    assert torch.allclose(scores(), changed, atol=1e-5) and len(built) == 2
    save_checkpoint(tmp_path / "parts" / "a.safetensors", model, regressor, max_part_bytes=1200)
    path = tmp_path / "parts"
    assert len(list(path.iterdir())) > 1
    assert torch.allclose(scores(), exact, atol=1e-5) and len(built) == 3
    assert torch.allclose(scores(), exact, atol=1e-5) and len(built) == 3
    other = regressor_file(tmp_path / "of_b.safetensors", regressor, "checkpoint b", TinyARNIQA())
    with pytest.raises(ValueError, match=rf"^{re.escape(str(other))}: .* checkpoint b, not of the checkpoint"):
        load(path, device="cpu", regressor=other)


def test_device_none_is_pyiqas_auto_for_load_and_the_package_shortcut(tmp_path, monkeypatch):
    """pyiqa.create_metric(name, device=None) picks the device itself; arniqa.load(..., device=None) was a ValueError
    ('device None is not a device'). None is auto, load()'s default, on either engine and in arniqa.score."""
    from tiny_arniqa import tiny_checkpoint

    path = tiny_checkpoint(tmp_path / "tiny.safetensors", monkeypatch)
    for engine in ("torch", "onnxruntime"):
        assert str(load(path, device=None, engine=engine).device) == str(load(path, engine=engine).device)
    assert load(path, device=None, engine="torch").device == resolve_device("auto")
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    photo = _photo(tmp_path / "p.png", 40, 32, 0)
    scores = arniqa.score(photo, model=path, device=None, engine="torch").scores
    assert torch.equal(scores, arniqa.score(photo, model=path, engine="torch").scores)


def test_device_none_auto_and_no_device_are_one_model_for_the_package_shortcut_and_a_scorer(monkeypatch):
    """arniqa.score cached device=None, device="auto" and no device as three keys, loading the model three times
    for one scorer; Scorer(..., device=None) was a ValueError ('device None is not a device') where load's None is
    auto."""
    from tiny_score import StandIn
    from tiny_score import load as stand_in

    loads = []
    monkeypatch.setattr(arniqa.inference, "load", lambda model, **options: loads.append(options) or stand_in())
    monkeypatch.setattr(arniqa, "_cached_scorers", {})
    image = _images(1)[0]
    scores = [
        float(arniqa.score(image, model="t", **options)) for options in ({}, {"device": None}, {"device": "auto"})
    ]
    assert loads == [{}] and len(set(scores)) == 1
    arniqa.score(image, model="t", device="cpu")
    assert loads == [{}, {"device": "cpu"}]  # a device named is its own key: auto may be another
    scorer = Scorer(StandIn(), None, device=None, engine="torch")
    assert scorer.device == resolve_device("auto") == Scorer(StandIn(), None, device="auto", engine="torch").device


def test_calling_a_model_gives_the_scores_on_its_device_as_pyiqa(monkeypatch):
    """pyiqa's metric(x) returns the scores on the metric's device; model(x) gave CPU tensors from a model on a
    GPU. The meta device stands in for a GPU here (test_scorer_cuda.py runs it on one)."""
    from tiny_score import load as stand_in

    model = stand_in(protocol="whole")
    image = _images(1)[0]
    expected = model.score(image).scores
    assert model(image).device == torch.device("cpu") and torch.equal(model(image), expected)
    monkeypatch.setattr(model, "device", torch.device("meta"))
    got = model(image)
    assert got.device == torch.device("meta") and got.shape == expected.shape and got.dtype == torch.float32
    assert model.score(image).scores.device == torch.device("cpu")  # score() gives CPU tensors, as documented


def test_explaining_an_onnx_file_without_a_head_says_what_helps_with_or_without_its_embedding(tmp_path):
    """Both said to pass explainer=FILE to load(), which a file exported without the embedding refuses: that one
    now says to export it again."""
    from tiny_arniqa import _tiny_model, tiny_onnx

    from arniqa.inference.onnx_export import export_onnx

    photo = _photo(tmp_path / "a.png", 40, 32, 0)
    _, _, bare = tiny_onnx(tmp_path / "bare.onnx")
    with pytest.raises(ValueError) as said:
        load(bare, device="cpu").explain(photo)
    assert str(said.value) == (
        f"this model has no explanation head, and {bare} was exported without the embedding a head file runs on; "
        "export it again with --explainer FILE, or with --embedding to pass explainer=FILE to load()"
    )
    embedded = export_onnx(*_tiny_model(), tmp_path / "embedded.onnx", protocol="whole", embedding=True)
    with pytest.raises(
        ValueError, match=r"^this model has no explanation head; fit one with `arniqa explain fit` and "
    ):
        load(embedded, device="cpu").explain(photo)


def test_an_animated_file_scores_its_first_frame_with_one_warning_naming_it(tmp_path):
    """An animated GIF was scored on its first frame without a word. Now a warning names it, once per file."""
    import warnings

    scorer = _stand_in(batch_size=2, workers=2)
    first, second = _images(2)
    first = first[:6, :7]
    Image.fromarray(first).save(tmp_path / "first.png")
    anim = tmp_path / "anim.webp"
    Image.fromarray(first).save(anim, save_all=True, append_images=[Image.fromarray(second[:6, :7])], lossless=True)
    Image.fromarray(first).save(tmp_path / "still.webp", lossless=True)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        r = scorer.score([str(anim), str(tmp_path / "still.webp"), str(anim)])
    assert [str(w.message) for w in said] == [
        f"{anim}: an animated or multi-page image; its first frame is scored, the others are not"
    ] * 2  # one per input of an animated file; none for the still one
    assert r.tolist() == pytest.approx([float(scorer.score(str(tmp_path / "first.png")))] * 3, abs=1e-6)


def test_a_callers_own_animated_image_is_left_as_it_was_and_warned_of_at_each_score(tmp_path):
    """A PIL image the caller opened with arniqa's reader (its first frame, marked as one of several) and scores
    twice: the caller's object keeps its mark and each score says the warning (only arniqa's own decode, read
    again by a quality map, has the mark taken off)."""
    import warnings

    from arniqa.data.images import open_image

    scorer = _stand_in(batch_size=1, workers=0)
    first, second = _images(2)
    anim = tmp_path / "anim.webp"
    Image.fromarray(first[:6, :7]).save(
        anim, save_all=True, append_images=[Image.fromarray(second[:6, :7])], lossless=True
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        image = open_image(anim)
    info = dict(image.info)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        scorer.score(image)
        scorer.score(image)
    assert len([w for w in said if "an animated or multi-page image" in str(w.message)]) == 2
    assert image.info == info


@pytest.mark.parametrize("protocol", ["whole", "pyiqa", "crops"])
def test_a_one_pixel_image_scores(tmp_path, protocol):
    """A 1x1 PNG or JPEG gets a score: in whole and pyiqa that of a uniform image of its colour (each view of
    either is that colour); in crops, a finite one (its crops are black but one pixel)."""
    from tiny_score import load as stand_in

    scorer = stand_in(protocol=protocol)
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"one{suffix}"
        Image.fromarray(np.array([[[200, 120, 40]]], np.uint8)).save(path)
        r = scorer.score(str(path))
        assert len(r) == 1 and np.isfinite(float(r))
        if protocol != "crops":
            colour = np.asarray(Image.open(path).convert("RGB"))[0, 0]
            uniform = np.broadcast_to(colour, (4, 4, 3)).copy()
            assert float(r) == pytest.approx(float(scorer.score(uniform)), abs=1e-5)


def test_each_result_carries_the_warnings_about_its_own_file_as_its_note(tmp_path):
    """The warnings about a file (its first frame scored, downscaled past max_side) went to stderr only, where a
    pipeline of 200,000 photos shows the first 5: each result now carries its own, without the file's name, from the
    decoding threads too; none for a file without any."""
    import warnings

    scorer = _stand_in(batch_size=2, workers=2, max_side=8)
    first, second = _images(2)
    anim = tmp_path / "anim.webp"
    Image.fromarray(first[:6, :7]).save(
        anim, save_all=True, append_images=[Image.fromarray(second[:6, :7])], lossless=True
    )
    Image.fromarray(first[:6, :7]).save(tmp_path / "still.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    paths = [str(tmp_path / n) for n in ("anim.webp", "still.png", "big.png", "bad.png", "anim.webp")]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        results = list(scorer.iter_scores(paths))
    frame = "an animated or multi-page image; its first frame is scored, the others are not"
    big = "16x12 exceeds max_side=8; downscaled to 8x6 before scoring"
    assert [r.note for r in results] == [frame, None, big, None, frame]
    assert sorted(str(w.message) for w in said) == sorted(f"{p}: {r.note}" for p, r in zip(paths, results) if r.note)
    r = scorer.score([paths[0], paths[1]])
    assert r.notes == [frame, None] and [row["note"] for row in r.rows()] == [frame, None]


def test_warnings_raised_in_the_decoding_threads_land_in_their_own_files_notes(tmp_path, monkeypatch):
    """Four decoding threads (workers=4, batch_size=2) warn at once: each note must hold its own file's warnings,
    never another's. Every file here has a note of its own (its size, downscaled, and for an animated file its
    frame), and the first four are held until all four have warned, so each warns while the others collect."""
    import threading
    import warnings

    import arniqa.inference.scorer as scorer_module

    rng = np.random.default_rng(3)
    paths, expected, warned = [], [], []
    for k in range(10):
        w, h = 20 + 2 * k, 15 + k  # each file its own size, so its own note
        frames = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(2)]
        animated = k % 3 != 1
        path = tmp_path / (f"{k}.gif" if animated else f"{k}.png")
        if animated:
            frames[0].save(path, save_all=True, append_images=frames[1:])
        else:
            frames[0].save(path)
        scale = 12 / max(w, h)  # max_side=12: the longer side to 12, the other rounded
        small = (12, round(h * scale)) if w >= h else (round(w * scale), 12)
        down = f"{w}x{h} exceeds max_side=12; downscaled to {small[0]}x{small[1]} before scoring"
        frame = "an animated or multi-page image; its first frame is scored, the others are not"
        paths.append(str(path))
        expected.append(f"{frame}; {down}" if animated else down)
        warned += [f"{path}: {frame}"] * animated + [f"{path}: {down}"]
    decode, together, lock, calls = scorer_module.as_image, threading.Barrier(4, timeout=30), threading.Lock(), []

    def held_after_warning(item, name, max_pixels):
        image = decode(item, name, max_pixels)  # warned of its frames, inside its own thread's note
        with lock:
            calls.append(name)
            first = len(calls) <= 4
        if first:  # the first four (the look-ahead of 2 * batch_size) wait for each other
            together.wait()
        return image

    monkeypatch.setattr(scorer_module, "as_image", held_after_warning)
    scorer = _stand_in(batch_size=2, workers=4, max_side=12)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        results = list(scorer.iter_scores(paths))
    assert [r.error for r in results] == [None] * 10
    assert [r.note for r in results] == expected
    assert sorted(str(w.message) for w in said) == sorted(warned)


def test_max_side_under_a_protocol_of_crops_is_refused(tmp_path):
    """max_side does nothing under crops and eval (224-px crops whatever the image's size), yet a Scorer and load()
    took it without a word under crops, the default. Both refuse it now, as calibrate without int8 is refused;
    load() before any file is looked at (nor downloaded)."""
    from tiny_score import load as stand_in

    tiny = stand_in(protocol="whole")
    for protocol in ("crops", "eval"):
        said = (
            "max_side=8 goes with protocol='whole' or protocol='pyiqa'; "
            f"the {protocol} protocol scores 224-px crops whatever the image's size, so leave it out"
        )
        with pytest.raises(ValueError) as e:
            Scorer(tiny.model, tiny.regressor, protocol=protocol, device="cpu", engine="torch", max_side=8)
        assert str(e.value) == said
    assert Scorer(tiny.model, tiny.regressor, protocol="pyiqa", device="cpu", engine="torch", max_side=8).max_side == 8
    with pytest.raises(ValueError, match=r"^max_side=1024 goes with .*; the crops protocol \(the default\) scores"):
        load(tmp_path / "not-there.safetensors", max_side=1024)
