"""The "did you mean" of an error about a name that is none of the choices (a model, a distortion, a dataset),
the count of a noun as a line says it ("1 map", "2 maps"), and a setting as its user typed it: load()'s keyword
(``engine='onnxruntime'``, :func:`keyword`) or the command-line option (``--engine onnxruntime``, :func:`option`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name, choices: Iterable[str], prefix: str = "") -> str:
    """``" (did you mean 'x'?)"`` (or ``'x' or 'y'``) for the choices closest to ``name``, case ignored, each
    written after ``prefix`` (a config key's section, ``optim.``); ``""`` when none is close."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(name).strip().lower(), list(by_lower), n=2, cutoff=0.6)
    return meant([prefix + by_lower[c] for c in close])


def meant(names: list[str]) -> str:
    """``" (did you mean 'x'?)"`` (or ``'x' or 'y'``) for ``names``; ``""`` for none."""
    return " (did you mean " + " or ".join(map(repr, names)) + "?)" if names else ""


def agree(n: int, word: str, plural: str | None = None) -> str:
    """The noun or verb that agrees with ``n``: ``word`` for 1, else ``plural`` or ``word`` + s (``agree(n, "is",
    "are")``)."""
    return word if n == 1 else plural or word + "s"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 map"``, ``"0 maps"``, ``"2 maps"``: ``n`` and the noun that agrees with it (:func:`agree`)."""
    return f"{n} {agree(n, noun, plural)}"


def keyword(name: str, value=None) -> str:
    """``engine='onnxruntime'``: the keyword ``name`` of load() set to ``value`` (None: the name alone)."""
    return name if value is None else f"{name}={value!r}"


def option(name: str, value=None) -> str:
    """``--engine onnxruntime``, ``--channels-last`` (``value`` True): the command-line option of load()'s
    keyword ``name`` (None: the option alone)."""
    flag = "--" + name.replace("_", "-")
    return flag if value is None or value is True else f"{flag} {value}"
