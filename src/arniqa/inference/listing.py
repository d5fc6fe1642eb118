"""The inputs of a run, listed lazily: memory stays flat whatever their number.

Arguments (and the lines of a ``--files-from`` list) are expanded one at a time, in order: a folder is walked as
a stream, depth first with each folder's entries sorted by name (the order of ``sorted(folder.rglob("*"))``),
keeping image files (an extension PIL opens, or a header a decoder recognises) and tar shards; links to folders
are not followed; entries that are no file (dangling links, link loops, FIFOs, sockets, devices) are reported as
broken; a shard gives its image members (:mod:`arniqa.inference.shards`, one shard's member list at a time); a
path that does not exist is expanded as a brace pattern (``shards/{000000..000099}.tar``); a file named directly
is always kept (missing or undecodable, it becomes an error row). :func:`skip_finished` drops the items a result
file already has, reading it as a stream too.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..data.folders import is_image, walk
from .inputs import source_name
from .shards import expand_braces, is_shard, shard_items


def read_list(source: str | os.PathLike) -> Iterator[str]:
    """The paths of a list file, one per line (``-``: standard input); blank lines are passed over. Lines are
    read as bytes and decoded as the system decodes file names (``os.fsdecode``: bytes that are not UTF-8 are
    kept, whatever the locale of standard input); a UTF-8 byte-order mark at the start is dropped."""
    if str(source) == "-":
        yield from _lines(sys.stdin.buffer)
        return
    with open(source, "rb") as f:
        yield from _lines(f)


def _lines(stream) -> Iterator[str]:
    for i, line in enumerate(stream):
        line = line.rstrip(b"\r\n")
        if i == 0:
            line = line.removeprefix(codecs.BOM_UTF8)
        if line.strip():
            yield os.fsdecode(line)


def iter_inputs(
    paths: Iterable[str | os.PathLike],
    skipped: Callable[[str], object] = lambda f: None,
    on_broken: Callable[[str, str], object] = lambda path, why: None,
) -> Iterator:
    """The items to score, in order: paths (str) and tar shard items; ``skipped(path)`` is called for each
    file in a folder that no decoder can open, ``on_broken(path, why)`` for each entry in a folder that is
    no file (dangling link, link loop, FIFO, socket, device)."""
    for arg in paths:
        for p in [Path(arg)] if Path(arg).exists() else map(Path, expand_braces(str(arg))):
            if p.is_dir():
                for f in walk(p, on_broken):
                    if is_shard(f):
                        yield from shard_items(f)
                    elif is_image(f):
                        yield str(f)
                    else:
                        skipped(str(f))
            elif is_shard(p):
                yield from shard_items(p)
            else:
                yield str(p)


def skip_finished(
    items: Iterable, finished: Iterable[str], skip: Callable[[object], object] = lambda item: None
) -> Iterator:
    """``items`` without those whose name is in ``finished`` (the paths of a result file, in its order);
    ``skip(item)`` is called for each one left out.

    A run writes its rows in input order, so the finished names are usually a prefix of the items:
    they are then compared one by one, in constant memory. From the first item that is not the next
    finished name on, the finished names not yet met are held in a set (an output written for other
    inputs, or in another order), so every finished item is still skipped."""
    finished = iter(finished)
    expected = next(finished, None)
    rest: set[str] | None = None
    for i, item in enumerate(items):
        name = source_name(item, i)
        if rest is None and name == expected:
            expected = next(finished, None)
            skip(item)
            continue
        if rest is None and expected is not None:
            rest = {expected, *finished}
        if rest and name in rest:
            skip(item)
            continue
        yield item
