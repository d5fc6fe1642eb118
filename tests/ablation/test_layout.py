"""The ablation's stages: names in training order."""

from arniqa.ablation.layout import stages


def test_stage_names():
    assert stages([], True) == ("untrained", "trained")
    assert stages([], False) == ("trained",)
    assert stages([3, 0, 1], False) == ("untrained", "step1", "step3", "trained")  # step 0 is untrained
