"""The lines arniqa writes for people: a file name in any bytes as text (:func:`printable`), a message that stays
one line (:func:`one_line`), a library's message of several lines as words (:func:`words`), the line of a file
that is refused (:func:`file_line`), and the ``error:``
and ``warning:`` lines on stderr (:func:`error_line`, :func:`warning_line`, :func:`show_warning`); the warnings
about single input files (:func:`warn_file`), of which the commands print the first few of each kind and sum up the
rest at the end (:func:`held_warnings`), and which :func:`noting` collects as the note of a file's row."""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .names import agree, count

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


GET_AGAIN = "copy or download it again"  # what to do with a file whose bytes are not what they should be


def with_fix(problem: str, fix: str = "") -> str:
    """``problem; what to do`` (``problem`` alone without a ``fix``): why a file is refused, as a row says it."""
    return f"{problem}; {fix}" if fix else problem


def file_line(path: str, problem: str, fix: str = "") -> str:
    """``PATH: problem; what to do`` (:func:`with_fix`): the line of a file that is refused."""
    return f"{path}: {with_fix(problem, fix)}"


def error_line(message: str) -> str:
    """``error: message`` as one line (:func:`one_line`): what a command prints on stderr when it stops."""
    return f"error: {one_line(message)}"


def warning_line(message: str) -> str:
    """``warning: message`` as one line (:func:`one_line`): what goes on stderr when a run goes on."""
    return f"warning: {one_line(message)}"


# Of the warnings about single files (FileWarning), a command prints the first SHOWN_PER_KIND of each kind and one
# line at its end for the rest (10,000 animated GIFs printed 10,000 lines, burying the others); with the environment
# variable ARNIQA_WARNINGS (ALL_WARNINGS) set to "all", every one.
SHOWN_PER_KIND = 5
ALL_WARNINGS = "ARNIQA_WARNINGS"


class FileWarning(UserWarning):
    """A warning about one input file; ``kind`` is what the files that get it have in common, the words after
    "N more images" in the line that sums them up (:func:`held_warnings`): ``"animated or multi-page, each scored on
    its first frame"``."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # pickled with its kind (a Ray worker's, sent to the driver)
        return type(self), (str(self), self.kind)


# Shown each time: Python's default action shows a message once per place and keeps every message it has shown (57 MB
# at 200,000 files, each message naming its file); appended, so the filters a user sets come first.
_EACH_TIME = ("always", None, FileWarning, None, 0)
_LOCK = threading.Lock()
_held: Counter = Counter()  # kind -> FileWarnings seen by show_warning
_noted_in: list[str] = []  # where every file's warnings are written too (the note column of a result file)
_notes: ContextVar[list[str] | None] = ContextVar("arniqa_notes", default=None)  # noting()'s, in this thread


def warn_file(message: str, kind: str, stacklevel: int = 1) -> None:
    """``warnings.warn`` a :class:`FileWarning` (``stacklevel`` as warn's, from the caller), shown each time it is
    raised, also for the same file again; kept by :func:`noting` too, when the caller is inside it."""
    if (notes := _notes.get()) is not None:
        notes.append(message)
    if _EACH_TIME not in warnings.filters:
        with _LOCK:
            if _EACH_TIME not in warnings.filters:
                warnings.filterwarnings("always", category=FileWarning, append=True)
    warnings.warn(FileWarning(message, kind), stacklevel=stacklevel + 1)


@contextmanager
def noting() -> Iterator[list[str]]:
    """The messages of the :func:`warn_file` calls made inside it, in this thread (the decoding threads prepare a
    file each): the note of that file's row (:func:`note`). They are warned as well."""
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


def note(messages: list[str], name: str) -> str | None:
    """A file's note from the messages :func:`noting` kept while it was read: each without the file ``name`` it
    begins with (the row names the file), one line, ``; ``-separated; None when there are none."""
    if not messages:
        return None
    return one_line("; ".join(dict.fromkeys(m.removeprefix(f"{name}: ") for m in messages)))  # each once


def note_column(rows_at) -> str:
    """``the note column of scores.csv``: where the rows at ``rows_at`` (a file, or words) hold the warnings."""
    return f"the note column of {rows_at}"


def noted_line(noted: int, total: int, rows_at, older: bool = False) -> str:
    """The line that ends a run (``arniqa score``, ``arniqa map``) in which ``noted`` of its ``total`` images had a
    warning: ``2 of 120 images have a warning (see the note column of scores.csv)``; ``older``: the rows at
    ``rows_at`` are a file of an older arniqa, which has no note column."""
    where = (
        f"{rows_at} was written by an older arniqa, without a note column" if older else f"see {note_column(rows_at)}"
    )
    return f"{noted} of {count(total, 'image')} {agree(noted, 'has', 'have')} a warning ({where})"


def notes_in(place: str | None) -> None:
    """Say in :func:`held_warnings` that every file's warnings are in ``place`` too (``the note column of
    scores.csv``); None: nowhere."""
    _noted_in[:] = [] if place is None else [place]


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the commands (``arniqa``, ``python -m arniqa.train``): a Python warning (``score
    --max-side`` downscaling an image, ...) as one ``warning:`` line on stderr, not Python's two lines naming the
    module that raised it; of each kind of :class:`FileWarning`, the first :data:`SHOWN_PER_KIND` (every one with
    ``ARNIQA_WARNINGS=all``), the others counted for :func:`held_warnings`."""
    if isinstance(message, FileWarning) and os.environ.get(ALL_WARNINGS) != "all":
        with _LOCK:  # decoding threads warn at once
            _held[message.kind] += 1
            if _held[message.kind] > SHOWN_PER_KIND:
                return
    say(warning_line(str(message)))


def held_warnings() -> list[str]:
    """The lines that sum up the :class:`FileWarning` s that :func:`show_warning` did not print, one per kind, in the
    order the kinds came (and where every one is written, :func:`notes_in`); the count starts again."""
    with _LOCK:
        more = [(kind, n - SHOWN_PER_KIND) for kind, n in _held.items() if n > SHOWN_PER_KIND]
        _held.clear()
    every = "".join(f", every one in {place}" for place in _noted_in)
    notes_in(None)
    return [
        warning_line(
            f"{n} more {'image' if n == 1 else 'images'} {kind} (the first {SHOWN_PER_KIND} are named above{every}; "
            f"{ALL_WARNINGS}=all names every one)"
        )
        for kind, n in more
    ]


def say(line: str) -> None:
    """``line`` on stderr in one write: ``print`` writes the newline apart, so torchrun's ranks sharing one stderr
    could end one rank's line on another's (``...state.pterror: rank 0: ...``)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
