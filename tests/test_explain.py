"""The explanation head (fit, files, labels, accuracy), quality maps and the localisation protocol (issue 29)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.linear_model import Ridge

from arniqa.data.views import half_scale
from arniqa.degradations import distort
from arniqa.degradations.registry import GROUPS
from arniqa.degradations.sampler import Chain
from arniqa.explain.fit import Labelled, accuracy
from arniqa.explain.localise import half_degraded, half_means
from arniqa.explain.samples import Sample
from arniqa.inference import Scorer, load
from arniqa.inference.explaining import explain_features
from arniqa.inference.maps import QualityMap, per_pixel, positions, quality_map
from arniqa.models.arniqa import ARNIQA
from arniqa.models.checkpoint import load_checkpoint, save_checkpoint
from arniqa.models.explain import LABELS, Explainer, add_to_checkpoint, fit_explainer, load_explainer, save_explainer
from arniqa.models.regressor import Regressor


def clusters(n_per: int, dim: int = 24, seed: int = 0, scale=None):
    """Gaussian clusters, one per label, with a severity that is a linear function of the features plus noise."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(len(LABELS), dim, generator=torch.Generator().manual_seed(99))
    labels = torch.arange(len(LABELS)).repeat_interleave(n_per)
    x = centres[labels] + torch.randn(len(labels), dim, generator=g)
    if scale is not None:
        x = x * scale
    return x, F.one_hot(labels, len(LABELS)).float(), labels


def test_labels_are_the_registry_groups_and_none():
    assert LABELS == (*GROUPS, "none")


def test_fit_classifies_held_out_draws_and_ignores_feature_scale():
    x, t, _ = clusters(40)
    sev = x[:, :3].sum(1)
    head = fit_explainer(x, t, sev)
    xt, _, yt = clusters(30, seed=1)
    probs, _ = head(xt)
    assert torch.allclose(probs.sum(1), torch.ones(len(xt)), atol=1e-5)
    assert (probs.argmax(1) == yt).float().mean() > 0.95
    # the fit standardises: rescaling each feature leaves the predictions unchanged
    scale = torch.linspace(0.01, 100, x.shape[1])
    scaled = fit_explainer(x * scale, t, sev)
    assert torch.allclose(scaled(xt * scale)[0], probs, atol=2e-3)


def test_severity_is_ridge_on_standardised_features():
    x, t, _ = clusters(20)
    sev = x[:, :5].sum(1) + 0.1 * torch.randn(len(x), generator=torch.Generator().manual_seed(3))
    head = fit_explainer(x, t, sev, ridge=0.05)
    xd = x.double().numpy()
    z = (xd - xd.mean(0)) / xd.std(0, ddof=1)
    ref = Ridge(alpha=0.05 * len(x)).fit(z, sev.double().numpy())
    xt, _, _ = clusters(5, seed=4)
    zt = (xt.double().numpy() - xd.mean(0)) / xd.std(0, ddof=1)
    np.testing.assert_allclose(head(xt)[1].numpy(), ref.predict(zt), atol=1e-3)


def test_sample_targets_spread_over_the_chain_groups_by_level():
    image = torch.zeros(3, 4, 4)
    chain = Sample(image, "chain", Chain([("gaublur", 2), ("jpeg", 3)]))
    t = dict(zip(LABELS, chain.target.tolist()))
    assert t["blur"] == pytest.approx(0.4) and t["jpeg"] == pytest.approx(0.6)
    assert sum(t.values()) == pytest.approx(1.0)
    assert chain.severity == 3 and chain.groups == {"blur", "jpeg"}
    pristine = Sample(image, "pristine", Chain())
    assert pristine.target[LABELS.index("none")] == 1 and pristine.severity == 0 and pristine.groups == {"none"}


def _head_reading_dims() -> Explainer:
    """A head whose logit j is 10 x feature j, severity = feature 8."""
    head = Explainer(9)
    with torch.no_grad():
        head.group.weight.zero_()
        head.group.bias.zero_()
        head.group.weight[:, :8] = 10 * torch.eye(8)
        head.severity.weight.zero_()
        head.severity.weight[0, 8] = 1
        head.severity.bias.zero_()
    return head


def test_accuracy_counts_as_written_by_hand():
    blur, noise, none = LABELS.index("blur"), LABELS.index("noise"), LABELS.index("none")
    feats = torch.zeros(4, 9)
    feats[0, blur], feats[0, noise], feats[0, 8] = 1.0, 0.5, 3.0  # blur@3: top-1 right, severity exact
    feats[1, noise], feats[1, blur], feats[1, 8] = 1.0, 0.5, 1.0  # blur@3 read as noise, blur 2nd; severity off by 2
    feats[2, noise], feats[2, 8] = 1.0, 2.0  # chain blur+noise: top-1 in the chain
    feats[3, none] = 1.0  # pristine read as none
    data = Labelled(feats, torch.zeros(4, len(LABELS)), torch.tensor([3.0, 3.0, 2.0, 0.0]),
                    ["single", "single", "chain", "pristine"], [{"blur"}, {"blur"}, {"blur", "noise"}, {"none"}])
    result = accuracy(_head_reading_dims(), data)
    assert result["single"]["top1"] == 0.5 and result["single"]["top2"] == 1.0
    assert result["single"]["severity_within_1"] == 0.5 and result["single"]["top1_per_group"]["blur"] == 0.5
    assert result["chain"]["top1_in_chain"] == 1.0 and result["pristine"]["top1_none"] == 1.0
    assert result["chance_top1"] == 1 / 8


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    torch.manual_seed(0)
    model = ARNIQA("resnet50").eval()
    regressor = Regressor.from_numpy(np.random.default_rng(0).normal(size=4096) * 0.01, 3.0, dataset="kadid10k")
    [checkpoint] = save_checkpoint(d / "model.safetensors", model, regressor)  # one file: no max_part_bytes
    x, t, _ = clusters(3, dim=4096)
    head = fit_explainer(x, t, x[:, 0], max_iter=5)
    return d, checkpoint, head, model, regressor


def test_head_files_round_trip_and_checkpoint_stays_loadable(model_files):
    d, checkpoint, head, model, regressor = model_files
    feats = torch.randn(3, 4096)
    alone = load_explainer(save_explainer(d / "head.safetensors", head, note="x"))
    both = add_to_checkpoint(checkpoint, head, d / "with-head.safetensors")
    inside = load_explainer(both)
    for other in (alone, inside):
        assert other.labels == LABELS
        assert torch.equal(other(feats)[0], head(feats)[0]) and torch.equal(other(feats)[1], head(feats)[1])
    assert load_explainer(checkpoint) is None
    m, r, _ = load_checkpoint(both)  # the head's tensors do not disturb the strict load
    assert torch.equal(r.weight, regressor.weight)
    assert load(both, device="cpu", engine="torch").explainer is not None
    assert load(checkpoint, device="cpu", engine="torch").explainer is None


def test_explain_api_matches_the_head_on_mean_view_features(model_files):
    d, checkpoint, head, model, regressor = model_files
    scorer = load(d / "with-head.safetensors", device="cpu", engine="torch", protocol="whole")
    images = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    result = scorer.explain(images)
    feats = scorer.features(images).mean(1)
    probs, severity = head(feats)
    assert torch.allclose(result.probs, probs, atol=1e-5)
    assert torch.allclose(result.severity, severity.clamp(0, 5), atol=1e-4)  # levels 1..5, 0 pristine
    assert result.top(0, 2)[0][0] == LABELS[int(probs[0].argmax())]


def test_severity_is_clipped_to_the_levels_range():
    head = Explainer(in_features=4)
    head.severity.weight.zero_()
    feats = torch.ones(3, 4)  # three views of one image
    for bias, expected in [(9.0, 5.0), (-3.0, 0.0), (2.5, 2.5)]:
        head.severity.bias.fill_(bias)
        assert explain_features(head, feats)[1] == expected


def test_positions_cover_the_length_flush_with_the_end():
    for length, crop, stride in [(100, 32, 16), (96, 32, 32), (31, 32, 16), (1000, 224, 112)]:
        p = positions(length, crop, stride)
        assert p[0] == 0 and p[-1] == max(0, length - crop)
        assert all(0 < b - a <= stride for a, b in zip(p, p[1:]))


def test_map_scores_each_crop_as_its_own_view(model_files):
    _, _, _, model, regressor = model_files
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
            full = x[None, :, t:t + 32, left:left + 32]
            halfcrop = half[None, :, 32 + cy - 16:32 + cy + 16, 32 + cx - 16:32 + cx + 16]
            with torch.no_grad():
                expected = regressor.scale(regressor(model.quality_features(full, halfcrop)))
            assert qmap.scores[i, j] == pytest.approx(float(expected), abs=1e-5)


def test_per_pixel_is_the_mean_of_covering_crops():
    qmap = QualityMap(np.array([[1.0, 3.0]]), [0], [0, 2], crop=4, size=(6, 4), scale=1.0)
    out = per_pixel(qmap.scores, qmap)
    np.testing.assert_allclose(out[0], [1, 1, 2, 2, 3, 3])


def test_half_degraded_changes_one_half_only():
    x = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
    x = (x * 255).round() / 255
    y = half_degraded(x, "gaublur", 4, "left")
    blurred = (distort(x, "gaublur", 4).clamp(0, 1) * 255).round() / 255
    assert torch.equal(y[..., 24:], x[..., 24:])
    assert torch.allclose(y[..., :24], blurred[..., :24])
    assert half_means(np.array([[1.0, 2.0, 3.0, 4.0]]), [0, 8, 24, 32], 16, 48) == (1.5, 3.5)
