"""The explanation head's labelled samples (arniqa.explain.samples): targets and severities of a chain."""

import pytest
import torch

from arniqa.degradations.sampler import Chain
from arniqa.explain.samples import Sample
from arniqa.models.explain import LABELS


def test_sample_targets_spread_over_the_chain_groups_by_level():
    image = torch.zeros(3, 4, 4)
    chain = Sample(image, "chain", Chain([("gaublur", 2), ("jpeg", 3)]))
    t = dict(zip(LABELS, chain.target.tolist()))
    assert t["blur"] == pytest.approx(0.4) and t["jpeg"] == pytest.approx(0.6)
    assert sum(t.values()) == pytest.approx(1.0)
    assert chain.severity == 3 and chain.groups == {"blur", "jpeg"}
    pristine = Sample(image, "pristine", Chain())
    assert pristine.target[LABELS.index("none")] == 1 and pristine.severity == 0 and pristine.groups == {"none"}
