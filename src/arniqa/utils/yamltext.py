"""Values as YAML writes them, for error lines: :func:`yaml_value` shows a config's value (or a name given on the
command line) as one would write it in a config file or ``--set``; :class:`Written` keeps the text of a value YAML
read as true or false, a number or a date, so that the line shows it as written."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Written:
    """A value that YAML read as true or false, a number or a date, with the text it was written as (``on``,
    ``010``, ``1.0e-3``), which the error lines show. :class:`~arniqa.train.config.ConfigLoader` gives these, and
    the config's dataclasses hold their values (:func:`plain`)."""

    value: Any
    text: str


def plain(value: Any) -> Any:
    """``value`` as YAML reads it: a :class:`Written` value (in lists and mappings too) as its value."""
    if isinstance(value, Written):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, list) else value


TEXT = "tag:yaml.org,2002:str"  # YAML's tag of text


class _Writer(yaml.SafeDumper):
    """``yaml.safe_dump``'s writer that gives a :class:`Written` value back as written, and text that YAML would
    read as something else (``on``, ``010``, nothing) in double quotes, as one writes it."""


_Writer.add_representer(
    Written, lambda w, v: w.represent_scalar(w.resolve(yaml.ScalarNode, v.text, (True, False)), v.text)
)
_Writer.add_representer(
    str, lambda w, v: w.represent_scalar(TEXT, v, None if w.resolve(yaml.ScalarNode, v, (True, False)) == TEXT else '"')
)


def yaml_value(value: Any) -> str:
    """``value`` as a config file or ``--set`` writes it, on one line: ``null``, ``true``, ``[1, 2]``, ``0.1``,
    ``"on"``; a :class:`Written` value (in a list too) as it was written."""
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.dump(value, Dumper=_Writer, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("...\n").strip()
