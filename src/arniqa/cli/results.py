"""``arniqa score``'s inputs and outputs: the paths to score (folders expanded), and the writer of CSV, JSON and
JSON Lines result files, row by row.

Files are written incrementally, each row whole in one write, so an interrupted run keeps its rows, and a later
run can skip the paths already present (:func:`arniqa.cli.result_files.iter_done`) and append the rest. A JSON
file's closing ``]`` is written when the writer closes (also on an interrupt), and is removed again when rows are
appended. The file format and its reading are in :mod:`arniqa.cli.result_files`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple, TextIO

from ..inference.listing import iter_inputs
from ..utils.files import write_whole
from ..utils.messages import printable
from ..utils.names import count
from .result_files import (
    EXPLAIN_COLUMNS,
    OutputError,
    count_rows,
    format_for,
    output_error,
    result_columns,
    result_row,
    row_text,
    why,
)


class Collected(NamedTuple):
    files: list  # to score, in order: paths (str) and tar shard items (Member, Unreadable)
    skipped: list[str]  # files in the folders that no decoder can open
    broken: list[tuple[str, str]]  # (path, why) of the folders' entries that are no file: broken links, FIFOs,
    # links to folders (not followed)
    empty: list[str]  # the folders and shards named that hold no image


def collect_paths(paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None) -> Collected:
    """The files to score, in order: each argument as given, folders replaced by the image files under them
    (recursively, sorted; links to folders are not followed, system folders not entered): files with an extension
    PIL can open, and files whose header a decoder recognises. The other files in the folders are ``skipped``;
    entries that are no file (dangling links, link loops, FIFOs, sockets, devices, links to folders) and the system
    folders are ``broken``. A file named directly is kept (missing or undecodable, it becomes an error row), but a
    Mac's AppleDouble file that is no image is skipped. An argument that does not exist is expanded as a brace
    pattern (``shards/{000000..000099}.tar``); tar shards (``.tar``, given or in folders) are replaced by their
    image members (:mod:`arniqa.inference.shards`); the folders and shards named that give none are ``empty``.
    ``exclude``: an output folder among the inputs, whose files are none of these. All in memory: ``arniqa score``
    lists lazily (:func:`arniqa.inference.listing.iter_inputs`, the same rules)."""
    skipped: list[str] = []
    broken: list[tuple[str, str]] = []
    empty: list[str] = []
    files = list(
        iter_inputs(paths, skipped.append, lambda path, why: broken.append((path, why)), empty.append, exclude)
    )
    return Collected(files, skipped, broken, empty)


def write_scores(
    scorer,
    paths: Iterable,
    target: str | os.PathLike | TextIO,
    fmt: str = "csv",
    append: bool = False,
    scale: bool = True,
    advance: Callable[[], object] = lambda: None,
    explain: bool = False,
    rows: list | None = None,
    opened: Callable[[tuple[str, ...]], object] = lambda columns: None,
    hold: deque[str] | tuple = (),
    held: Callable[[dict], object] | None = None,
    noted: Callable[[], object] = lambda: None,
) -> int:
    """Score ``paths`` with ``scorer`` (an :class:`arniqa.inference.Scorer`) into ``target``, one row per
    path in order (``score`` scaled, or raw when ``scale`` is False; failures get an error row), calling
    ``advance()`` after each row, ``noted()`` after each row with a note (:func:`~arniqa.utils.messages.note`: in the
    note column, which a file written before it has not, :data:`~arniqa.cli.result_files.KNOWN_COLUMNS`).
    ``explain``: add the :data:`EXPLAIN_COLUMNS` from ``scorer.explainer``.
    ``rows``: a list that also receives each row as a dict. ``opened(columns)`` is called once ``target`` is open for
    writing (emptied, or cut back to its last complete row), before the first row, with the columns its rows get (an
    older file's, appended to, may lack the note: :attr:`RowWriter.columns`). ``hold``: the names of the paths
    whose rows go to ``held(row)``, not into ``target``, in order, each taken off as its row comes (failed rows
    retried, named as they are listed: only those listed and not yet scored are held; the rows are set aside in a
    :class:`~arniqa.cli.result_files.Spool`: :func:`~arniqa.cli.result_files.replace_rows` puts them in their
    place). Returns the number of paths that could not be scored."""
    failed = 0
    if explain:
        from ..inference.explaining import describe, top_labels  # here: it imports torch
    with RowWriter(target, fmt, append=append, columns=result_columns(explain)) as writer:
        columns = writer.columns  # an older file's, appended to
        opened(columns)
        results = scorer.iter_scores(paths, explain=True) if explain else scorer.iter_scores(paths)
        for r in results if paths else ():
            extra = {**(dict.fromkeys(EXPLAIN_COLUMNS) if explain else {}), "note": r.note}
            if r.error is not None:
                row = result_row(r.source, None, None, r.error, columns, **extra)
            else:
                if explain:
                    probs, severity = r.explanation
                    extra = {
                        "explanation": describe(top_labels(scorer.explainer.labels, probs)),
                        "severity": round(severity, 2),
                        "note": r.note,
                    }
                row = result_row(r.source, r.score if scale else r.raw_score, r.raw_score, None, columns, **extra)
            failed += r.error is not None
            if r.note is not None:
                noted()
            if hold and r.source == hold[0]:  # the rows come in input order
                hold.popleft()
                held(row)
            else:
                writer.write_row(row)
                if rows is not None:
                    rows.append(row)
            advance()
    return failed


class RowWriter:
    """Writes result rows to a file or a stream in CSV, JSON or JSON Lines, each row whole and at once.

    To a file: a row goes to the file in one ``write`` (no buffer holds half of it); a write that
    fails (disk full, file size limit) is cut back to the last complete row and raised as
    :class:`OutputError`. ``append=True`` continues an existing file of the same format: its rows up to
    the last complete one are kept, anything after them (a torn last row, a JSON file's closing
    ``]``) is truncated away, and its rows' columns are kept (:attr:`columns`: a file written before the note
    column gets rows without it). Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        target: str | os.PathLike | TextIO,
        fmt: str = "csv",
        append: bool = False,
        columns: tuple[str, ...] | None = None,
    ) -> None:
        self.fmt = format_for(None, fmt)
        self.columns = result_columns() if columns is None else columns
        self.count = 0
        self._broken = False
        if isinstance(target, (str, os.PathLike)):
            self.name = str(target)
            self.existing, self.end, kept = count_rows(Path(target), self.fmt, self.columns) if append else (0, 0, None)
            if self.end and kept is not None:  # rows (or a header) kept: their columns
                self.columns = kept
            try:
                self._fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o666)
            except OSError as e:
                raise output_error(self.name, e) from None
            self.stream: TextIO | None = None
        else:
            self.name, self.stream, self.existing, self.end = getattr(target, "name", "<stream>"), target, 0, 0
        self._first = self.existing == 0
        try:
            if self.stream is None:
                os.ftruncate(self._fd, self.end)
            if self.end == 0 and self.fmt != "jsonl":  # JSON Lines: no header
                self._put(",".join(self.columns) + "\n" if self.fmt == "csv" else "[\n")
        except (OSError, OutputError) as e:
            self._broken = True
            self.close(quiet=True)
            raise e if isinstance(e, (OutputError, BrokenPipeError)) else output_error(self.name, e) from None

    def _put(self, text: str) -> None:
        """Write ``text`` whole; on failure cut the file back to the last complete row and raise."""
        if self.stream is not None:
            try:
                self.stream.write(text)
                self.stream.flush()
            except BrokenPipeError:  # the reader went away (`| head`): the command ends quietly (cli.main)
                self._broken = True
                raise
            except OSError as e:
                self._broken = True
                raise OutputError(
                    f"{self.name}: {why(e)} after {count(self.count, 'row')}; "
                    "write to a file (-o) to keep the rows and resume"
                ) from None
            return
        try:
            self.end = write_whole(self._fd, text.encode("utf-8"), self.end, self.name)
            gone = self._gone()
        except OSError as e:
            self._broken = True
            raise output_error(self.name, e, self.existing + self.count) from None
        if gone:  # rows written on would be lost with it, and the run would end as if they were kept
            self._broken = True
            raise OutputError(
                f"{printable(self.name)}: deleted while this run wrote it (the file removed or replaced, or its "
                f"folder removed): the rows in it are lost ({self.existing + self.count} written); rerun (or choose "
                "another output)"
            )

    def _gone(self) -> bool:
        """True when the file written is no longer in its folder under its name."""
        if os.fstat(self._fd).st_nlink:  # one system call per row; 0 only once no folder holds the file
            return False
        try:
            return not os.path.samestat(os.fstat(self._fd), os.stat(self.name))
        except FileNotFoundError:
            return True

    def write_row(self, row: dict) -> dict:
        """Write ``row``, made by :func:`~arniqa.cli.result_files.result_row` with this writer's columns; returns it."""
        text = row_text(row, self.fmt, self.columns)
        self._put(text if self.fmt != "json" or self._first else ",\n" + text)
        self._first = False
        self.count += 1
        return row

    def close(self, quiet: bool = False) -> None:
        """Close the JSON array and the file. ``quiet``: after another error, neither write to a file
        that failed nor raise (a JSON file left open is closed by ``--resume``)."""
        try:
            if self.fmt == "json" and not self._broken:
                self._put("\n]\n")
        except OutputError:
            if not quiet:
                raise
        finally:
            if self.stream is None:
                os.close(self._fd)

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(quiet=kind is not None)
