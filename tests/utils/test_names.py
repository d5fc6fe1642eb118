"""``arniqa.utils.names``: the count of a noun that agrees with its number, a setting as its user typed it."""

import pytest

from arniqa.utils.names import agree, count, keyword, option


@pytest.mark.parametrize(
    ("n", "noun", "plural", "said"),
    [
        (0, "map", None, "0 maps"),
        (1, "map", None, "1 map"),
        (2, "map", None, "2 maps"),
        (1, "complete row", None, "1 complete row"),
        (3, "complete row", None, "3 complete rows"),
        (1, "entry", "entries", "1 entry"),
        (5, "entry", "entries", "5 entries"),
    ],
)
def test_count_says_the_noun_in_the_number_it_counts(n, noun, plural, said):
    assert count(n, noun, plural) == said


@pytest.mark.parametrize(
    ("n", "said"), [(0, "0 lines do not parse"), (1, "1 line does not parse"), (2, "2 lines do not parse")]
)
def test_a_verb_agrees_as_its_noun_does(n, said):
    assert f"{count(n, 'line')} {agree(n, 'does', 'do')} not parse" == said


@pytest.mark.parametrize(
    ("name", "value", "python", "command_line"),
    [
        ("engine", "onnxruntime", "engine='onnxruntime'", "--engine onnxruntime"),
        ("channels_last", True, "channels_last=True", "--channels-last"),
        ("calibrate", None, "calibrate", "--calibrate"),
    ],
)
def test_a_setting_is_named_as_python_or_the_command_line_spells_it(name, value, python, command_line):
    assert (keyword(name, value), option(name, value)) == (python, command_line)
