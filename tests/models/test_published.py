"""Published ARNIQA files: encoder in the positional key layout, TorchScript regressors."""

import pickle
import warnings
import zipfile

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from arniqa.models import ARNIQA, WeightsError
from arniqa.models.published import (
    load_published_encoder,
    load_published_regressor,
    published_encoder,
    published_state_dict,
)

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def published(tv_resnet50, tmp_path_factory):
    """A reference model as the official code builds it, and its state dict saved in that layout."""
    torch.manual_seed(1)
    trunk = nn.Sequential(*list(tv_resnet50.children())[:-1]).eval()  # 0 conv1 ... 8 avgpool
    projector = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 128))
    state = {f"model.{k}": v for k, v in trunk.state_dict().items()}
    state.update({f"projector.{k}": v for k, v in projector.state_dict().items()})
    folder = tmp_path_factory.mktemp("published")
    torch.save(state, folder / "ARNIQA.pth")
    return trunk, projector, state, folder / "ARNIQA.pth"


def reference_features(trunk, x):
    """The official forward: normalise, trunk, flatten, L2-normalise."""
    with torch.no_grad():
        return F.normalize(trunk((x - MEAN) / STD).flatten(1), dim=1)


@pytest.fixture(scope="module")
def loaded(published):
    return published_encoder(published[3])


def test_published_layout_maps_onto_the_model_keys(published, tv_resnet50):
    _, _, state, _ = published
    backbone = [k for k in state if k.startswith("model.")]
    assert len(backbone) == 318  # the fixture is realistic: pyiqa-and-users.md 1.3
    renamed = published_state_dict(state)
    # model.<i> is torchvision's i-th child (0 conv1, 1 bn1, 4-7 layer1-4), the encoder's module of that name
    children = [name for name, _ in tv_resnet50.named_children()]
    for key, value in state.items():
        if key.startswith("model."):
            _, index, rest = key.split(".", 2)
            key = f"encoder.{children[int(index)]}.{rest}"
        assert renamed[key] is value, key
    assert renamed.keys() == ARNIQA("resnet50").state_dict().keys()
    wrapped = published_state_dict({f"encoder.{k}": v for k, v in state.items()})  # a training checkpoint
    assert wrapped.keys() == renamed.keys()


def test_parameter_counts_of_the_published_layout(loaded):
    """pyiqa-and-users.md 1.3/1.5: a 23,508,032-parameter backbone, a 4,458,624-parameter projector (not used
    when scoring) and a 4,097-parameter regressor (4096 weights and a bias)."""
    from arniqa.models.regressor import Regressor

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert (count(loaded.encoder), count(loaded.projector), count(Regressor())) == (23_508_032, 4_458_624, 4_097)


def test_features_and_embeddings_match_the_reference(published, loaded):
    trunk, projector, _, _ = published
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        f, g = loaded(x)
        g_ref = F.normalize(projector(reference_features(trunk, x)), dim=1)
    torch.testing.assert_close(f, reference_features(trunk, x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


def test_scores_match_the_reference(published, loaded, tmp_path, make_scripted_regressor):
    trunk = published[0]
    g = torch.Generator().manual_seed(2)
    weights, biases = torch.randn(1, 4096, generator=g), torch.tensor(3.0)
    path = make_scripted_regressor(tmp_path / "regressor_kadid10k.pth", weights, biases)
    reg = load_published_regressor(path)
    assert reg.dataset == "kadid10k"
    full = torch.rand(3, 3, 64, 64, generator=g)
    half = F.interpolate(full, scale_factor=0.5, mode="bilinear", align_corners=False)
    with torch.no_grad():
        feats = loaded.quality_features(full, half)
        raw = reg(feats)
    ref_feats = torch.hstack([reference_features(trunk, full), reference_features(trunk, half)])
    ref_raw = (ref_feats @ weights.T + biases).flatten()
    torch.testing.assert_close(feats, ref_feats, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(raw, ref_raw, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(reg.scale(raw), (ref_raw - 1) / 4, rtol=1e-5, atol=1e-4)


def test_batch_equals_single(loaded):
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        batch = loaded.features(x)
        single = torch.cat([loaded.features(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-6)


def test_training_checkpoint_under_encoder_prefix(published, tmp_path):
    _, _, state, _ = published
    path = tmp_path / "train.pth"
    torch.save({f"encoder.{k}": v for k, v in state.items()}, path)
    model = load_published_encoder(ARNIQA("resnet50"), path)
    assert torch.equal(model.encoder.layer4[2].bn3.running_var, state["model.7.2.bn3.running_var"])
    assert torch.equal(model.encoder.conv1.weight, state["model.0.weight"])
    assert torch.equal(model.projector[2].bias, state["projector.2.bias"])


def test_regressor_reads_tensors_like_torch_jit_load(tmp_path, make_scripted_regressor):
    """Independent check: TorchScript's own loader gives the same outputs (the test's own file)."""
    g = torch.Generator().manual_seed(4)
    weights = torch.randn(1, 4096, generator=g)
    path = make_scripted_regressor(tmp_path / "regressor_live.pth", weights, torch.tensor(-1.5))
    reg = load_published_regressor(path)
    x = torch.randn(5, 4096, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch deprecates torch.jit.load; older releases do not warn
        scripted = torch.jit.load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(reg(x), scripted(x))
    assert reg.dataset == "live" and reg.scale(1.0) == pytest.approx(1.0)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.makedirs, (self.marker,)


def test_regressor_loader_runs_no_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "regressor_csiq.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(_Evil(str(marker)), protocol=2))
        z.writestr("evil/code/__torch__.py", "")
    with pytest.raises(WeightsError) as e:  # it named the problem alone
        load_published_regressor(path)
    assert str(e.value) == (
        f"{path}: refusing to load os.makedirs from a TorchScript archive; save the weights alone "
        "(model.state_dict()) or as .safetensors"
    )
    assert not marker.exists()


def test_bad_published_files(published, tmp_path, make_scripted_regressor):
    _, _, state, _ = published
    model = ARNIQA("resnet50")
    with pytest.raises(WeightsError, match="absent.pth: no such weight file"):
        load_published_encoder(model, tmp_path / "absent.pth")
    notzip = tmp_path / "notzip.pth"
    notzip.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="notzip.pth"):
        load_published_encoder(model, notzip)
    with pytest.raises(WeightsError, match="notzip.pth"):
        load_published_regressor(notzip)
    foreign = tmp_path / "foreign.pth"
    torch.save({**state, "head.weight": torch.zeros(1)}, foreign)
    with pytest.raises(WeightsError, match="foreign.pth: keys not in the published ARNIQA layout: head.weight"):
        load_published_encoder(model, foreign)
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("projector.")}, missing)
    with pytest.raises(WeightsError, match=r"missing.pth: does not fit the model; missing 4 keys: projector"):
        load_published_encoder(model, missing)
    shapes = tmp_path / "shapes.pth"
    torch.save({**state, "projector.2.weight": torch.zeros(64, 2048)}, shapes)
    with pytest.raises(WeightsError, match=r"shapes.pth: wrong tensor shapes: projector.2.weight \(64, 2048\)"):
        load_published_encoder(model, shapes)
    with pytest.raises(WeightsError, match="resnet50 backbone"):
        load_published_encoder(ARNIQA("se_resnet50"), published[3])
    wrong = make_scripted_regressor(tmp_path / "regressor_spaq.pth", torch.zeros(2, 4096), torch.tensor(0.0))
    with pytest.raises(WeightsError) as e:
        load_published_regressor(wrong)
    assert str(e.value) == (
        f"{wrong}: expected weights [1, D] and a scalar bias, got (2, 4096) and (); give a published "
        "regressor_<dataset>.pth or the regressor_<dataset>.safetensors that arniqa evaluate -o wrote"
    )
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(1, 4096), "b": torch.zeros(())}, other)
    with pytest.raises(WeightsError) as e:
        load_published_regressor(other)
    assert str(e.value) == (
        f"{other}: expected tensors 'weights' and 'biases', found b, w; give a published "
        "regressor_<dataset>.pth or the regressor_<dataset>.safetensors that arniqa evaluate -o wrote"
    )


def test_regressor_only_safetensors_file(tmp_path):
    """The evaluation's export: tensors weight (1, D) / bias (1,), config in the "arniqa" metadata."""
    import json

    from safetensors.torch import save_file

    path = tmp_path / "regressor_photos.safetensors"
    meta = {"format": "arniqa-regressor", "version": 1, "dataset": "photos", "score_range": [0, 10, "dmos"]}
    save_file(
        {"weight": torch.full((1, 8), 0.5), "bias": torch.tensor([1.0])},
        str(path),
        metadata={"arniqa": json.dumps(meta)},
    )
    reg = load_published_regressor(path)
    assert reg.dataset == "photos" and reg.score_range == (0.0, 10.0, "dmos")
    assert reg(torch.ones(1, 8)).item() == 5.0 and reg.scale(5.0) == pytest.approx(0.5)
    for score_range, why in (([10, 0], "score range needs high > low, got (10, 0)"), (5, "cannot unpack")):
        edited = tmp_path / "edited.safetensors"  # its config's score range: a TypeError was raised as it is
        meta = {"format": "arniqa-regressor", "version": 1, "score_range": score_range}
        save_file({"weight": torch.zeros(1, 8), "bias": torch.zeros(1)}, str(edited), {"arniqa": json.dumps(meta)})
        with pytest.raises(WeightsError) as e:
            load_published_regressor(edited)
        said = f"{edited}: cannot rebuild the regressor from its config ("
        assert str(e.value).startswith(f"{said}{why}") and str(e.value).endswith("); the file is damaged or was edited")
    plain = tmp_path / "regressor_tid2013.safetensors"
    save_file({"weight": torch.zeros(1, 8), "bias": torch.tensor([2.0])}, str(plain))
    assert load_published_regressor(plain).scale(4.5) == pytest.approx(0.5)  # (4.5 - 0) / 9
