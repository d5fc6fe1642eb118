"""The explanation head (arniqa.models.explain): labels, fit, head files, and the API that serves it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from arniqa.degradations.registry import GROUPS
from arniqa.inference import load
from arniqa.models import WeightsError
from arniqa.models.checkpoint import load_checkpoint, safetensors_writer, save_checkpoint
from arniqa.models.explain import (
    LABELS,
    Explainer,
    add_to_checkpoint,
    explainer_tensors,
    fit_explainer,
    load_explainer,
    save_explainer,
)


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


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, random_arniqa):
    d = tmp_path_factory.mktemp("explain")
    model, regressor = random_arniqa
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


def test_explain_api_matches_the_head_on_mean_view_features(model_files, tmp_path):
    d, checkpoint, head, model, regressor = model_files
    both = add_to_checkpoint(checkpoint, head, tmp_path / "with-head.safetensors")  # its own: not the test above's
    scorer = load(both, device="cpu", engine="torch", protocol="whole")
    images = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    result = scorer.explain(images)
    feats = scorer.features(images).mean(1)
    probs, severity = head(feats)
    assert torch.allclose(result.probs, probs, atol=1e-5)
    assert torch.allclose(result.severity, severity.clamp(0, 5), atol=1e-4)  # levels 1..5, 0 pristine
    assert result.top(0, 2)[0][0] == LABELS[int(probs[0].argmax())]


def test_an_explainer_config_cannot_make_us_allocate_what_the_file_does_not_hold(tmp_path):
    """A head file whose config declares 10^11 features: refused before a layer of that size is built."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from arniqa.models import WeightsError

    x = torch.randn(16, 4096, generator=torch.Generator().manual_seed(0))
    head = fit_explainer(x, torch.eye(len(LABELS))[torch.arange(16) % len(LABELS)], x[:, 0], max_iter=2)
    path = save_explainer(tmp_path / "head.safetensors", head)
    with safe_open(str(path), "pt") as f:
        meta, tensors = json.loads(f.metadata()["arniqa"]), {k: f.get_tensor(k) for k in f.keys()}
    meta["explainer"]["in_features"] = 10**11
    save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={"arniqa": json.dumps(meta)})
    with pytest.raises(WeightsError, match=r"explainer.group.weight is \(8, 4096\), its config says \(8, 1000"):
        load_explainer(tmp_path / "edited.safetensors")


def test_a_head_knows_the_protocol_it_was_fitted_on_and_warns_on_features_of_another(model_files, monkeypatch):
    """A head fitted on one protocol's features was applied to another's without a word."""
    import warnings

    import arniqa.inference.onnx_export
    from arniqa.inference import export

    d, checkpoint, head, _, _ = model_files
    crops = add_to_checkpoint(checkpoint, head, d / "crops-head.safetensors", protocol="crops")  # as explain fit
    assert load_explainer(crops).protocol == "crops"
    assert load_explainer(save_explainer(d / "whole.safetensors", head, protocol="whole")).protocol == "whole"
    for unknown in (None, "../crops", ["crops"], 3):  # not recorded (other code), or not a protocol: not known
        info = {} if unknown is None else {"protocol": unknown}
        assert load_explainer(save_explainer(d / "other.safetensors", head, **info)).protocol is None
    kept = load_explainer(crops)  # the record goes with the head when it is written again
    assert load_explainer(save_explainer(d / "again.safetensors", kept)).protocol == "crops"

    image = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(2))
    expected = (
        "the explanation head was fitted on 'crops' features, these come from 'whole': its groups and severities "
        "may be off; use protocol='crops', or fit the head with arniqa explain fit --protocol whole"
    )  # load()'s and export()'s keyword: it said "use protocol 'crops' (--protocol crops)", the CLI's option
    with pytest.warns(UserWarning) as caught:
        load(crops, device="cpu", engine="torch", protocol="whole").explain(image)
    assert [str(w.message) for w in caught if "explanation head" in str(w.message)] == [expected]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "the explanation head")
        for head_file, protocol in ((d / "whole.safetensors", "whole"), (d / "other.safetensors", "whole")):
            load(checkpoint, device="cpu", engine="torch", protocol=protocol, explainer=head_file).explain(image)
    monkeypatch.setattr(arniqa.inference.onnx_export, "export_onnx", lambda *args, **kwargs: d / "x.onnx")
    with pytest.warns(UserWarning) as caught:  # an ONNX graph's explanations come from its protocol's views
        export(d / "x.onnx", crops, protocol="whole")
    assert [str(w.message) for w in caught if "explanation head" in str(w.message)] == [expected]


def test_an_explainer_file_without_its_config_says_to_fit_it_again(tmp_path):
    """An explainer file whose config was lost was named with the problem alone."""
    import json

    from safetensors.torch import save_file

    path = tmp_path / "explainer.safetensors"
    save_file(
        {"explainer.group.weight": torch.zeros(2)},
        str(path),
        metadata={"arniqa": json.dumps({"format": "arniqa-explainer"})},
    )
    with pytest.raises(WeightsError) as e:
        load_explainer(path)
    assert str(e.value) == f"{path}: explainer file without its config; fit it again with `arniqa explain fit`"


def test_an_explainer_file_that_does_not_fit_its_config_or_is_not_finite_says_to_fit_it_again(tmp_path):
    """A head holding NaN ended 'fit it again' (not with the command); a head missing tensors was named with
    torch's message of two lines, a line break in the line."""
    head = Explainer(8)
    tensors = explainer_tensors(head)
    meta = {"format": "arniqa-explainer", "version": 1, "explainer": head.config}
    path = tmp_path / "explainer.safetensors"
    unfit = {k: v for k, v in tensors.items() if not k.startswith("explainer.severity.")}
    not_finite = {**tensors, "explainer.severity.bias": torch.tensor([float("nan")])}
    expected = [
        (
            unfit,
            "explainer tensors do not fit its config (Error(s) in loading state_dict for Explainer: Missing key(s) "
            'in state_dict: "severity.weight", "severity.bias".)',
        ),
        (not_finite, "its explanation head holds NaN or infinite weights"),
    ]
    for held, problem in expected:
        safetensors_writer(held, meta)(path)
        with pytest.raises(WeightsError) as e:
            load_explainer(path)
        assert str(e.value) == f"{path}: {problem}; fit it again with `arniqa explain fit`"
