import torch

from arniqa.inference.explaining import explain_features
from arniqa.models.explain import Explainer


def test_severity_is_clipped_to_the_levels_range():
    head = Explainer(in_features=4)
    head.severity.weight.zero_()
    feats = torch.ones(3, 4)  # three views of one image
    for bias, expected in [(9.0, 5.0), (-3.0, 0.0), (2.5, 2.5)]:
        head.severity.bias.fill_(bias)
        assert explain_features(head, feats)[1] == expected
