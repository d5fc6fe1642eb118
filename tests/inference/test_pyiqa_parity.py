"""pyiqa's conventions that docs/usage.md says this package keeps, against values written out by hand from
pyiqa (shared/docs/pyiqa-and-users.md sections 1.1 and 2.1), not from this code."""

import pytest
import torch
from scoring_data import save_scripted_regressor

from arniqa.inference import loading

# pyiqa's metric names, the regressor file each loads, and pyiqa's rescaling of the raw score s.
PYIQA = {
    "arniqa": ("regressor_koniq10k.pth", lambda s: (s - 1) / 99),
    "arniqa-live": ("regressor_live.pth", lambda s: 1 - (s - 1) / 99),
    "arniqa-csiq": ("regressor_csiq.pth", lambda s: 1 - s),
    "arniqa-tid": ("regressor_tid2013.pth", lambda s: s / 9),
    "arniqa-kadid": ("regressor_kadid10k.pth", lambda s: (s - 1) / 4),
    "arniqa-clive": ("regressor_clive.pth", lambda s: (s - 1) / 99),
    "arniqa-flive": ("regressor_flive.pth", lambda s: s / 100),  # pyiqa >= 0.1.14; this package: (s - 1) / 99
    "arniqa-spaq": ("regressor_spaq.pth", lambda s: (s - 1) / 99),
}


@pytest.fixture(scope="module")
def regressor_files(tmp_path_factory):
    """The eight regressor files, each with zero weights and its own bias (so a score tells the file)."""
    d = tmp_path_factory.mktemp("regressors")
    biases = {}
    for i, (file, _) in enumerate(sorted(PYIQA.values(), key=lambda v: v[0])):
        biases[file] = 0.37 + 7 * i
        save_scripted_regressor(d / file, torch.zeros(1, 4096), torch.tensor(biases[file]))
    (d / "ARNIQA.pth").write_bytes(b"")  # the encoder file is looked for, never read (the test builds none)
    return d, biases


@pytest.mark.parametrize("name", PYIQA)
def test_pyiqa_names_load_pyiqas_regressor_file_and_scale_as_pyiqa(name, regressor_files, monkeypatch):
    d, biases = regressor_files
    monkeypatch.setattr(loading, "_published_encoder", lambda weights_dir: torch.nn.Identity())  # no ResNet-50
    _, reg = loading.load_model(name, weights_dir=d)
    file, pyiqa_scale = PYIQA[name]
    with torch.no_grad():
        raw = reg(torch.zeros(2, 4096))
    assert raw.shape == (2,)  # one score per image, flat, as pyiqa's
    s = biases[file]
    assert raw.tolist() == pytest.approx([s, s], abs=1e-5)  # the bias of pyiqa's file for this name
    if name != "arniqa-flive":
        assert float(reg.scale(raw[0])) == pytest.approx(pyiqa_scale(s), abs=1e-6)
    else:  # docs/usage.md: the official (1, 100); below pyiqa's s / 100 by (100 - s) / 9900
        assert float(reg.scale(raw[0])) == pytest.approx((s - 1) / 99, abs=1e-6)
        assert pyiqa_scale(s) - float(reg.scale(raw[0])) == pytest.approx((100 - s) / 9900, abs=1e-6)


def test_a_batch_tensor_gives_one_float32_score_per_image_as_pyiqa():
    """pyiqa: a (B,3,H,W) or (B,1,H,W) tensor in [0, 1] gives a flat (B,) float32 tensor, gray as replicated RGB."""
    from tiny_score import load as stand_in

    scorer = stand_in(protocol="pyiqa")
    x = torch.rand(3, 3, 8, 10, generator=torch.Generator().manual_seed(0))
    r = scorer.score(x)
    assert r.scores.shape == r.raw_scores.shape == (3,)
    assert r.scores.dtype == r.raw_scores.dtype == torch.float32
    assert r.raw_scores.tolist() == pytest.approx([float(scorer.score(x[i]).raw_scores[0]) for i in range(3)])
    assert scorer.score(x[0]).scores.shape == (1,)  # one image: a batch of one
    gray = x[:, :1]
    assert scorer.score(gray).raw_scores.tolist() == pytest.approx(
        scorer.score(gray.repeat(1, 3, 1, 1)).raw_scores.tolist()
    )


def test_the_input_range_check_allows_pyiqas_epsilon():
    """pyiqa checks tensors against [-1e-6, 1 + 1e-6] (its issue #240: float rounding just past 1 was refused)."""
    from tiny_score import load as stand_in

    scorer = stand_in(protocol="pyiqa")
    base = torch.full((3, 8, 8), 0.5)
    for value in (1 + 5e-7, -5e-7):
        x = base.clone()
        x[0, 0, 0] = value
        assert torch.isfinite(scorer.score(x).scores).all()
    for value in (1 + 3e-6, -3e-6):
        x = base.clone()
        x[0, 0, 0] = value
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            scorer.score(x)


def test_a_pil_image_is_scored_as_stored_as_pyiqa_reads_files(tmp_path):
    """pyiqa reads files with ``Image.open(p).convert("RGB")``, ignoring the EXIF orientation; a file given to
    this package is turned upright, a PIL image the caller opened is taken as stored (docs/usage.md)."""
    import numpy as np
    from PIL import Image

    from arniqa.inference.inputs import as_image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif)
    assert as_image(tmp_path / "r.jpg", "r.jpg").size == (20, 30)  # upright: 20 wide, 30 high
    assert as_image(Image.open(tmp_path / "r.jpg"), "r.jpg").size == (30, 20)  # as stored, as pyiqa


def test_a_file_its_pil_image_and_its_tensor_score_the_same_in_pyiqas_protocol(tmp_path):
    """docs/usage.md, *From pyiqa*: pyiqa's metric(path), metric(PIL image) and metric(tensor) agree, and so do
    this package's in the pyiqa protocol (its half scale is F.interpolate for all three)."""
    import numpy as np
    from PIL import Image
    from tiny_score import load as stand_in

    scorer = stand_in(protocol="pyiqa")
    pixels = np.random.default_rng(0).integers(0, 256, (30, 41, 3), dtype=np.uint8)  # an odd width too
    Image.fromarray(pixels).save(tmp_path / "a.png")
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255).unsqueeze(0)  # pyiqa's to_tensor
    by_path, by_pil, by_tensor = (
        float(scorer.score(x)) for x in (str(tmp_path / "a.png"), Image.open(tmp_path / "a.png"), tensor)
    )
    assert by_pil == by_path
    assert by_tensor == pytest.approx(by_path, abs=2e-7)


def _tiny_models(tmp_path, monkeypatch, **options) -> list:
    """load() of :mod:`tiny_arniqa`'s checkpoint on the torch engine and of its ONNX file on ONNX Runtime
    (KADID-10k regressors, scaled (raw - 1) / 4)."""
    from tiny_arniqa import tiny_checkpoint, tiny_onnx

    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors", monkeypatch)
    onnx = tiny_onnx(tmp_path / "tiny.onnx")[2]
    return [loading.load(checkpoint, engine="torch", **options), loading.load(onnx, **options)]


def test_the_loaded_model_is_called_as_pyiqas_metric_for_its_scaled_scores(tmp_path, monkeypatch):
    """pyiqa's ``metric(x)`` (2.1): a str path or a PIL image gives a (1,) float32 tensor, a (B,3,H,W) tensor a (B,)
    one, higher is better. ``model(x)`` was a TypeError (a Scorer was not callable); it is ``model.score(x).scores``."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels[0]).save(tmp_path / "a.png")
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
    for model in _tiny_models(tmp_path, monkeypatch, protocol="pyiqa"):
        for x, n in ((str(tmp_path / "a.png"), 1), (Image.open(tmp_path / "a.png"), 1), (batch, 3)):
            scores, r = model(x), model.score(x)
            assert scores.shape == (n,) and scores.dtype == torch.float32
            assert torch.equal(scores, r.scores)
            assert scores.tolist() == pytest.approx(((r.raw_scores - 1) / 4).tolist(), abs=1e-6)  # scaled, KADID


def test_lower_better_is_pyiqas_false_also_over_a_dmos_regressor(tmp_path, monkeypatch):
    """pyiqa's arniqa metrics set no lower_better, so False for all of them, arniqa-live too (1.1): their scores are
    scaled higher-better. ``metric.lower_better`` was an AttributeError; the raw score's way stays the regressor's."""
    from PIL import Image

    from arniqa.models.regressor import Regressor

    live = Regressor("live", in_features=8)
    with torch.no_grad():
        live.weight.copy_(torch.linspace(-1, 1, 8)[None])
        live.bias.fill_(50.0)
    images = [Image.new("RGB", (24, 20), c) for c in ((250, 240, 230), (10, 20, 30))]
    models = _tiny_models(tmp_path, monkeypatch)
    dmos = loading.load(tmp_path / "tiny.safetensors", regressor=live)
    assert [model.lower_better for model in (*models, dmos)] == [False] * 3
    assert dmos.regressor.score_range.lower_better  # LIVE's labels are a DMOS
    r = dmos.score(images)
    assert r.raw_scores[0] != r.raw_scores[1]
    assert (r.scores[0] > r.scores[1]) == (r.raw_scores[0] < r.raw_scores[1])  # the lower DMOS scores higher
