"""Each write to stderr, apart (:func:`stderr_writes`): a line must be one write, or torchrun's ranks sharing one
stderr can end one rank's line on another's (``print`` writes the newline apart)."""

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock


@contextmanager
def stderr_writes() -> Iterator[list[str]]:
    """The list of what is written to ``sys.stderr`` in the block, a string a write."""
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    with mock.patch.object(sys, "stderr", Recorder()):
        yield writes
