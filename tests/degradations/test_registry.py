"""The degradation model's data (arniqa.degradations.registry) against the reference's groups and level values.

The table below is typed by hand from the reference's documentation (its `distortion_groups` and
`distortion_range`, docs/arniqa-reference.md section 1.2), not copied from the registry: it is the oracle."""

import pytest

from arniqa.degradations import GROUP_OF, GROUPS, LEVELS, NAMES, NUM_LEVELS
from arniqa.degradations.registry import get

# group, distortion, levels 1 -> 5, in the reference's order
REFERENCE = [
    ("brightness_change",  "brighten",          (0.1, 0.2, 0.4, 0.7, 1.1)),
    ("brightness_change",  "darken",            (0.05, 0.1, 0.2, 0.4, 0.8)),
    ("brightness_change",  "meanshift",         (0, 0.08, -0.08, 0.15, -0.15)),
    ("blur",               "gaublur",           (0.1, 0.5, 1, 2, 5)),
    ("blur",               "lensblur",          (1, 2, 4, 6, 8)),
    ("blur",               "motionblur",        (1, 2, 4, 6, 10)),
    ("spatial_distortion", "jitter",            (0.05, 0.1, 0.2, 0.5, 1)),
    ("spatial_distortion", "noneccpatch",       (20, 40, 60, 80, 100)),
    ("spatial_distortion", "pixelate",          (0.01, 0.05, 0.1, 0.2, 0.5)),
    ("spatial_distortion", "quantization",      (20, 16, 13, 10, 7)),
    ("spatial_distortion", "colorblock",        (2, 4, 6, 8, 10)),
    ("noise",              "whitenoise",        (0.001, 0.002, 0.003, 0.005, 0.01)),
    ("noise",              "whitenoiseCC",      (0.0001, 0.0005, 0.001, 0.002, 0.003)),
    ("noise",              "impulsenoise",      (0.001, 0.005, 0.01, 0.02, 0.03)),
    ("noise",              "multnoise",         (0.001, 0.005, 0.01, 0.02, 0.05)),
    ("color_distortion",   "colordiff",         (1, 3, 6, 8, 12)),
    ("color_distortion",   "colorshift",        (1, 3, 6, 8, 12)),
    ("color_distortion",   "colorsat1",         (0.4, 0.2, 0.1, 0, -0.4)),
    ("color_distortion",   "colorsat2",         (1, 2, 3, 6, 9)),
    ("jpeg",               "jpeg2000",          (16, 32, 45, 120, 170)),
    ("jpeg",               "jpeg",              (43, 36, 24, 7, 4)),
    ("sharpness_contrast", "highsharpen",       (1, 2, 3, 6, 12)),
    ("sharpness_contrast", "lincontrchange",    (0.0, 0.15, -0.4, 0.3, -0.6)),
    ("sharpness_contrast", "nonlincontrchange", (0.4, 0.3, 0.2, 0.1, 0.05)),
]  # fmt: skip


def test_the_reference_table_has_24_distortions_of_5_levels():
    assert len(REFERENCE) == 24 and {len(levels) for _, _, levels in REFERENCE} == {5}
    assert NUM_LEVELS == 5


def test_names_and_their_order_are_the_references():
    assert NAMES == tuple(name for _, name, _ in REFERENCE)
    assert list(LEVELS) == [name for _, name, _ in REFERENCE]


def test_groups_their_order_and_members_are_the_references():
    expected: dict[str, list[str]] = {}
    for group, name, _ in REFERENCE:
        expected.setdefault(group, []).append(name)
    assert list(GROUPS) == list(expected)
    assert {group: list(names) for group, names in GROUPS.items()} == expected
    assert GROUP_OF == {name: group for group, name, _ in REFERENCE}


@pytest.mark.parametrize("group, name, levels", REFERENCE, ids=[name for _, name, _ in REFERENCE])
def test_level_values_are_the_references(group, name, levels):
    assert len(LEVELS[name]) == 5
    for level, (value, expected) in enumerate(zip(LEVELS[name], levels), start=1):
        assert value == pytest.approx(expected, rel=1e-12, abs=0), f"{name} level {level}"
    assert get(name).levels == LEVELS[name]


@pytest.mark.parametrize("bad", [["jpeg"], {"jpeg": 1}, 3, None])
def test_get_names_a_name_that_is_not_a_string(bad):
    """A list or dict was TypeError ("unhashable type: 'list'") from the table lookup."""
    with pytest.raises(ValueError, match="unknown distortion .*; expected one of: brighten, darken"):
        get(bad)


@pytest.mark.parametrize("typed, meant", [("JPEG", "jpeg"), ("gaussianblur", "gaublur"), ("motion_blur", "motionblur")])
def test_an_unknown_distortion_names_the_close_ones(typed, meant):
    """The error listed the 24 names but not the one meant (a case or a spelling away)."""
    with pytest.raises(ValueError, match=f"unknown distortion '{typed}' \\(did you mean '{meant}'"):
        get(typed)
