"""The lines arniqa writes for people: a file name in any bytes as text (:func:`printable`), a message that stays
one line (:func:`one_line`), a library's message of several lines as words (:func:`words`), and the ``error:``
and ``warning:`` lines on stderr (:func:`error_line`, :func:`warning_line`, :func:`show_warning`)."""

from __future__ import annotations

import re
import sys

# Unicode's bidirectional controls (Bidi_Control: marks, embeddings, overrides, isolates), which reorder the text
# around them: a file named "\u202ertl.jpg" shows as "gpj.ltr", which can pass one kind of file off as another.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# C0 and C1 controls (NEL, U+0085, among them) and the line and paragraph separators, which break a line too
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match) -> str:
    """A character as Python writes it escaped: ``\\x1b``, ``\\u202e``."""
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with the bytes of a file name that are not UTF-8 (held by Python as lone surrogates,
    ``os.fsdecode``) as ``\\xNN`` and its bidirectional controls (:data:`BIDI_CONTROLS`) as ``\\uNNNN``: for people
    to read (messages, reports), not to be parsed back."""
    return BIDI_CONTROLS.sub(_escaped, text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def one_line(text: str) -> str:
    """:func:`printable` ``text`` with its control characters (a newline, a terminal escape in a file name)
    as ``\\xNN``: a message that stays one line."""
    return CONTROL_CHARACTERS.sub(_escaped, printable(text))


def words(text: str) -> str:
    """``text`` with each run of whitespace (a line break, an indent) as one space: a library's message of several
    lines (ONNX Runtime's, PyYAML's) read as one line of words."""
    return " ".join(text.split())


def error_line(message: str) -> str:
    """``error: message`` as one line (:func:`one_line`): what a command prints on stderr when it stops."""
    return f"error: {one_line(message)}"


def warning_line(message: str) -> str:
    """``warning: message`` as one line (:func:`one_line`): what goes on stderr when a run goes on."""
    return f"warning: {one_line(message)}"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the commands (``arniqa``, ``python -m arniqa.train``): a Python warning (``score
    --max-side`` downscaling an image, ...) as one ``warning:`` line on stderr, not Python's two lines naming the
    module that raised it."""
    say(warning_line(str(message)))


def say(line: str) -> None:
    """``line`` on stderr in one write: ``print`` writes the newline apart, so torchrun's ranks sharing one stderr
    could end one rank's line on another's (``...state.pterror: rank 0: ...``)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
