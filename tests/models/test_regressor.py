"""The linear regressor: score ranges from the reference, aliases, scaling, numpy construction."""

import numpy as np
import pytest
import torch

from arniqa.data.iqa.registry import SCORE_RANGES, canonical_dataset
from arniqa.models.regressor import Regressor

# arniqa-reference.md section 4 (official torch.hub model).
REFERENCE_RANGES = {
    "live": (1, 100, "dmos"),
    "csiq": (0, 1, "dmos"),
    "tid2013": (0, 9, "mos"),
    "kadid10k": (1, 5, "mos"),
    "flive": (1, 100, "mos"),
    "spaq": (1, 100, "mos"),
    "clive": (1, 100, "mos"),
    "koniq10k": (1, 100, "mos"),
}


def test_score_ranges_match_the_reference():
    assert {k: tuple(v) for k, v in SCORE_RANGES.items()} == REFERENCE_RANGES
    assert SCORE_RANGES["live"].lower_better and not SCORE_RANGES["kadid10k"].lower_better


@pytest.mark.parametrize(
    "name, key",
    [("koniq", "koniq10k"), ("tid", "tid2013"), ("kadid", "kadid10k"), ("livec", "clive"), ("KADID10K", "kadid10k")],
)
def test_pyiqa_aliases(name, key):
    assert canonical_dataset(name) == key
    assert Regressor(name).dataset == key


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown regressor dataset 'imagenet'"):
        canonical_dataset("imagenet")


def test_forward_is_a_flat_linear_map():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(4096, generator=g).numpy(), 0.25
    reg = Regressor.from_numpy(w, b, dataset="kadid10k")
    x = torch.randn(3, 4096, generator=g)
    raw = reg(x)
    assert raw.shape == (3,)
    expected = x.double().numpy() @ w.astype(np.float64) + b
    np.testing.assert_allclose(raw.detach().numpy(), expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match=r"\(N, 4096\)"):
        reg(torch.zeros(3, 2048))


@pytest.mark.parametrize(
    "dataset, raw, scaled",
    [
        ("kadid10k", 3.0, 0.5),  # (3 - 1) / 4
        ("kadid10k", 6.0, 1.25),  # no clamping above
        ("tid2013", -0.9, -0.1),  # no clamping below
        ("live", 1.0, 1.0),  # DMOS: 1 - (1 - 1) / 99
        ("live", 50.5, 0.5),
        ("csiq", 0.2, 0.8),  # 1 - s
        ("koniq10k", 100.0, 1.0),
        ("flive", 1.0, 0.0),  # official (1, 100), not pyiqa's (0, 100)
    ],
)
def test_scale(dataset, raw, scaled):
    reg = Regressor(dataset)
    assert reg.scale(raw) == pytest.approx(scaled)
    assert reg.scale(torch.tensor([raw])).item() == pytest.approx(scaled)


def test_scale_is_monotone_higher_is_better():
    raw = torch.linspace(0, 1, 11)
    assert (Regressor("kadid").scale(raw).diff() > 0).all()
    assert (Regressor("csiq").scale(raw).diff() < 0).all()  # DMOS: higher raw = worse


def test_custom_range_and_no_range():
    reg = Regressor("my-photos", score_range=(0, 10, "dmos"))
    assert reg.scale(2.5) == pytest.approx(0.75)
    assert reg.config == {"dataset": "my-photos", "score_range": [0.0, 10.0, "dmos"], "in_features": 4096}
    with pytest.raises(ValueError, match="no score range"):
        Regressor().scale(1.0)
    with pytest.raises(ValueError, match="high > low"):
        Regressor(score_range=(5, 1))


def test_from_numpy_shapes():
    reg = Regressor.from_numpy(np.ones((1, 8)), np.array([2.0]), dataset="spaq")
    assert reg.in_features == 8 and reg.bias.item() == 2.0
    assert reg(torch.ones(2, 8)).tolist() == [10.0, 10.0]
    with pytest.raises(ValueError, match="weight"):
        Regressor.from_numpy(np.ones((2, 8)), 0.0)
    with pytest.raises(ValueError, match="bias"):
        Regressor.from_numpy(np.ones(8), np.ones(2))
