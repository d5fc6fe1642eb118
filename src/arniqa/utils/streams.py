"""Streams named by a path: a device, a named pipe or a socket (``/dev/null``, a FIFO), or one of this process's
open descriptors (``/dev/stderr``, ``/dev/fd/N``): told from files (:func:`is_stream`, :func:`descriptor`), said in
words (:func:`stream_kind`) and opened to write (:func:`open_stream`), never replaced by a file or opened again by
name."""

from __future__ import annotations

import os
import stat
import sys
from contextlib import suppress
from typing import IO


def open_stream(path: str | os.PathLike, mode: str = "w") -> IO:
    """The stream ``path`` (:func:`is_stream`) opened to write: one of this process's descriptors (:func:`descriptor`:
    ``/dev/stderr``, ``/dev/fd/N``) through a duplicate of it, never opened again by name (``2>> log`` would be cut
    and written from its start, ``2> log`` written over by the lines on stderr after it), what is waiting in
    ``sys.stdout`` and ``sys.stderr`` written first; a device or a named pipe by its name. Text as UTF-8."""
    encoding = None if "b" in mode else "utf-8"
    fd = descriptor(path)
    if fd is None:
        return open(path, mode, encoding=encoding)
    for std in (sys.stdout, sys.stderr):
        with suppress(Exception):  # closed, or None (started with >&-)
            std.flush()
    return open(os.dup(fd), mode, encoding=encoding)


def is_stream(path: str | os.PathLike) -> bool:
    """True when ``path`` is a device, a named pipe or a socket (``/dev/null``, a FIFO), or names one of this
    process's open descriptors (:func:`descriptor`: ``/dev/stderr``, ``/dev/fd/1``), whatever it is open on, a
    file included (``2> log``): written into as a stream, never replaced by a file, truncated or read back."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return (not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)) or descriptor(path) is not None


STANDARD_STREAMS = {0: "standard input", 1: "standard output", 2: "standard error"}


def stream_kind(path: str | os.PathLike) -> str:
    """What the stream ``path`` (:func:`is_stream`) is, in words for a message: ``standard output`` (``/dev/stdout``,
    ``/dev/fd/1``), ``descriptor 3 of this process``, ``a named pipe``, ``a socket`` or ``a device``."""
    if (fd := descriptor(path)) is not None:
        return STANDARD_STREAMS.get(fd, f"descriptor {fd} of this process")
    mode = os.stat(path).st_mode
    return "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def descriptor(path: str | os.PathLike) -> int | None:
    """The number of this process's open descriptor that ``path`` names, through links or not (``/dev/stdout``,
    ``/dev/stderr``, ``/dev/fd/N``, ``/proc/self/fd/N``: 1, 2, N); None for any other path."""
    folders = {os.path.realpath(f) for f in ("/dev/fd", "/proc/self/fd") if os.path.isdir(f)}  # /proc/PID/fd
    path = os.path.abspath(path)
    for _ in range(40):  # the links followed one by one (a loop of them ends)
        folder, name = os.path.split(path)
        if name.isascii() and name.isdigit() and os.path.realpath(folder) in folders:
            return int(name)
        try:
            path = os.path.join(folder, os.readlink(path))
        except (OSError, ValueError):  # no link
            return None
    return None
