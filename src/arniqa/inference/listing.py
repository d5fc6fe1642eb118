"""The inputs of a run, listed lazily: memory stays flat whatever their number.

Arguments (and the paths of a ``--files-from`` list) are expanded one at a time, in order: a folder is walked as
a stream, depth first with each folder's entries sorted by name (the order of ``sorted(folder.rglob("*"))``),
keeping image files (an extension PIL opens, or a header a decoder recognises) and tar shards; links to folders
are not followed, nor system folders entered (a NAS's thumbnails, trash: :data:`~arniqa.data.folders.SYSTEM_FOLDERS`,
each reported); entries that are no file (dangling links, link loops, FIFOs, sockets, devices) are reported as
broken; a shard gives its image members (:mod:`arniqa.inference.shards`, one shard's member list at a time); a
path that does not exist is expanded as a brace pattern (``shards/{000000..000099}.tar``); a file named directly
is kept (missing or undecodable, it becomes an error row), but a Mac's ``._NAME`` AppleDouble file that is no
image, skipped as in a folder (``find`` lists them). :func:`skip_finished` drops the items a result
file already has, reading it as a stream too.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from itertools import chain
from pathlib import Path

from ..data.folders import is_apple_double, is_image, walk
from ..utils.files import inside
from ..utils.messages import file_line
from ..utils.textfiles import utf16
from .inputs import source_name
from .shards import expand_braces, is_shard, shard_items

LIST_CHUNK = 1 << 16  # bytes of a list read at a time
# Bytes of a list read with no path end (with -0, NUL bytes with no path between) before it is refused whole as no
# list (a photo, /dev/zero). Not utils/files.PATH_MAX (4,096 bytes on Linux), which a label file's field is held to:
# a line of a list longer than a path is one bad item, an error row (File name too long), and the run goes on.
LONGEST_PATH = 1 << 16


class ListError(ValueError):
    """A ``--files-from`` list that cannot be read as one: its message is the error line."""


def read_list(source: str | os.PathLike, null: bool = False) -> Iterator[str]:
    """The paths of a list file (``-``: standard input), read up to its first path now, so that a list that is no
    list (a photo, ``/dev/zero``) is refused before anything is scored, and the rest as taken, a chunk at a time.

    One path per line, blank lines passed over and a line's trailing CR dropped; ``null``: paths ended by NUL
    bytes (``find -print0``), taken as they are (a name may hold a newline, or end in a space). No file name holds
    a NUL, so the other kind of list is refused (:class:`ListError`), never read whole: a line list holding a NUL, a
    NUL list of lines and no NUL or of NUL bytes only, a path longer than any a system opens. Paths are decoded as
    the system decodes file names (``os.fsdecode``: bytes that are not UTF-8 are kept, whatever the locale of
    standard input); a UTF-8 byte-order mark at the start is dropped."""
    name = "standard input" if str(source) == "-" else str(source)
    try:
        stream = sys.stdin.buffer if str(source) == "-" else open(source, "rb")
    except OSError as e:
        raise _unreadable(name, e) from None
    paths = _paths(stream, name, null, close=stream is not sys.stdin.buffer)
    first = next(paths, None)
    return chain([] if first is None else [first], paths)


def _unreadable(name: str, e: OSError) -> ListError:
    folder = " (a folder goes among PATHS)" if isinstance(e, IsADirectoryError) else ""
    return ListError(
        file_line(name, f"{(e.strerror or str(e)).lower()}{folder}", "give --files-from a file listing paths")
    )


def _paths(stream, name: str, null: bool, close: bool = True) -> Iterator[str]:
    sep = b"\0" if null else b"\n"
    rest, first, empty = b"", True, 0  # empty: NUL bytes in a row, no name between them
    with stream if close else nullcontext():
        while chunk := _read(stream, name):
            if not null and b"\0" in chunk:
                if first and utf16((rest + chunk)[:16]):  # PowerShell 5's `>` writes Windows' "Unicode" text
                    raise ListError(
                        file_line(name, "UTF-16 text, not UTF-8", "save it as UTF-8 (Out-File -Encoding utf8)")
                    )
                nul = "holds a NUL byte, which no file name holds"
                raise ListError(file_line(name, nul, "for a NUL-separated list (find -print0) add -0"))
            *records, rest = (rest + chunk).split(sep)
            if len(rest) > LONGEST_PATH:
                what = "no NUL byte" if null else "no line end"
                do = "for a list of one path per line drop -0" if null else "give a list of paths, one per line"
                raise ListError(file_line(name, f"{what} in {LONGEST_PATH} bytes, longer than any path", do))
            for record in records:
                if path := _path(record, first, null):
                    empty = 0
                    yield path
                elif null and (empty := empty + 1) > LONGEST_PATH:  # /dev/zero: read for ever, no path
                    raise ListError(
                        file_line(name, f"{LONGEST_PATH} NUL bytes in a row, no path", "give a list of paths")
                    )
                first = False
        if null and first and b"\n" in rest:
            raise ListError(file_line(name, "holds lines but no NUL byte", "for a list of one path per line drop -0"))
        if path := _path(rest, first, null):
            yield path


def _read(stream, name: str) -> bytes:
    try:
        return stream.read1(LIST_CHUNK)  # what a pipe holds now, not a whole chunk
    except OSError as e:
        raise _unreadable(name, e) from None


def _path(record: bytes, first: bool, null: bool) -> str | None:
    if first:
        record = record.removeprefix(codecs.BOM_UTF8)
    if not null:
        record = record.rstrip(b"\r")
    return os.fsdecode(record) if (record if null else record.strip()) else None


def iter_inputs(
    paths: Iterable[str | os.PathLike],
    skipped: Callable[[str], object] = lambda f: None,
    on_broken: Callable[[str, str], object] = lambda path, why: None,
    on_empty: Callable[[str], object] = lambda path: None,
    exclude: str | os.PathLike | None = None,
) -> Iterator:
    """The items to score, in order: paths (str) and tar shard items; ``skipped(path)`` is called for each
    file in a folder that no decoder can open (and each AppleDouble file named), ``on_broken(path, why)`` for
    each entry in a folder that is no file (dangling link, link loop, FIFO, socket, device, link to a folder:
    not followed) and each system folder in one (not entered), ``on_empty(path)`` for each folder or shard named
    that gives no item (no image file in it). ``exclude``: a command's output folder, which may lie among its inputs
    (arniqa map's): nothing in its tree is an item, nor skipped or broken (a folder named holding only it is empty)."""
    for arg in paths:
        for p in [Path(arg)] if os.path.exists(arg) else map(Path, expand_braces(str(arg))):
            if os.path.isdir(p):  # False, not OSError, for a name too long for the system: an error row
                yield from _given(_folder_items(p, skipped, on_broken, exclude), p, on_empty)
            elif exclude is not None and inside(p, exclude):
                continue
            elif is_apple_double(p) and os.path.isfile(p) and not is_image(p):
                skipped(str(p))
            elif is_shard(p):
                yield from _given(shard_items(p), p, on_empty)
            else:
                yield str(p)


def _folder_items(
    folder: Path,
    skipped: Callable[[str], object],
    on_broken: Callable[[str, str], object],
    exclude: str | os.PathLike | None = None,
) -> Iterator:
    for f in walk(folder, on_broken, exclude):
        if is_shard(f):
            yield from shard_items(f)
        elif is_image(f):
            yield str(f)
        else:
            skipped(str(f))


def _given(items: Iterator, path: Path, on_empty: Callable[[str], object]) -> Iterator:
    """``items``, the items of ``path``, a folder or shard named; ``on_empty(path)`` when there are none."""
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        on_empty(str(path))


def skip_finished(
    items: Iterable,
    finished: Iterable[tuple[str, bool]],
    skip: Callable[[object, bool], object] = lambda item, failed: None,
    again: Callable[[str], object] | None = None,
) -> Iterator:
    """``items`` without those that have a row in ``finished`` (the ``(path, failed)`` of a result file's rows, in
    its order: ``failed`` when the row holds an error), each row matching one item (a path given twice has two rows,
    as a fresh run writes them); ``skip(item, failed)`` is called for each one left out. With ``again``
    (--retry-failed), an item whose row failed is matched as the others but kept, ``again(name)`` called as it is
    given.

    A run writes its rows in input order, so the finished names are usually a prefix of the items:
    they are then compared one by one, in constant memory. From the first item that is not the next
    finished name on, the rows not yet met are held in a dict by name (an output written for other
    inputs, or in another order), a name's rows matched in their order, so every finished item is still skipped,
    once."""
    finished = iter(finished)
    expected, failed = next(finished, (None, False))
    rest: dict[str, bool | deque[bool]] | None = None
    for i, item in enumerate(items):
        name = source_name(item, i)
        if rest is None and name == expected:
            was_failed = failed
            expected, failed = next(finished, (None, False))
        else:
            if rest is None and expected is not None:
                rest = _held_rows(chain([(expected, failed)], finished))
            if not (rest and name in rest):
                yield item
                continue
            was_failed = _take_row(rest, name)
        if again is not None and was_failed:
            again(name)
            yield item
        else:
            skip(item, was_failed)


def _held_rows(rows: Iterable[tuple[str, bool]]) -> dict[str, bool | deque[bool]]:
    """The failed flags of ``rows`` by name, in their order: a name's one flag (most names have one row), or a deque
    of its flags."""
    held: dict[str, bool | deque[bool]] = {}
    for name, failed in rows:
        flags = held.get(name)
        if flags is None:
            held[name] = failed
        elif isinstance(flags, deque):
            flags.append(failed)
        else:
            held[name] = deque((flags, failed))
    return held


def _take_row(held: dict[str, bool | deque[bool]], name: str) -> bool:
    """The failed flag of the first row of ``name`` in ``held`` (:func:`_held_rows`), that row taken out."""
    flags = held.pop(name)
    if not isinstance(flags, deque):
        return flags
    failed = flags.popleft()
    held[name] = flags if len(flags) > 1 else flags[0]
    return failed
