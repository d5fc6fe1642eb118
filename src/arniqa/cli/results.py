"""``arniqa score``'s files: the paths to score (folders expanded), and CSV/JSON result files written row by row.

Rows have the columns :data:`COLUMNS` (``path, score, raw_score, error``). Files are written
incrementally, each row whole in one write, so an interrupted run keeps its rows, and a later run can
skip the paths already present (:func:`iter_done`, read as a stream) and append the rest; a torn last row (a crash in
the middle of a write) is not counted and is cut away before appending. A JSON file is an array with
one row object per line; its closing ``]`` is written when the writer closes (also on an interrupt),
and is removed again when rows are appended. Paths in any bytes are written losslessly
(:func:`escape_name`). Write errors are :class:`OutputError`, naming the file.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
from collections import Counter
from contextlib import suppress
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import NamedTuple, TextIO

from ..inference.listing import iter_inputs

COLUMNS = ("path", "score", "raw_score", "error")
EXPLAIN_COLUMNS = ("explanation", "severity")  # with an explanation head (arniqa score --explain)
FORMATS = ("csv", "json")


class Collected(NamedTuple):
    files: list  # to score, in order: paths (str) and tar shard items (Member, Unreadable)
    skipped: list[str]  # files in the folders that no decoder can open
    broken: list[tuple[str, str]]  # (path, why) of the folders' entries that are no file: broken links, FIFOs


def collect_paths(paths: Iterable[str | os.PathLike]) -> Collected:
    """The files to score, in order: each argument as given, folders replaced by the image files under
    them (recursively, sorted; links to folders are not followed): files with an extension PIL can
    open, and files whose header a decoder recognises. The other files in the folders are ``skipped``;
    entries that are no file (dangling links, link loops, FIFOs, sockets, devices) are ``broken``. A
    file named directly is always kept (missing or undecodable, it becomes an error row). An argument
    that does not exist is expanded as a brace pattern (``shards/{000000..000099}.tar``); tar shards
    (``.tar``, given or in folders) are replaced by their image members (:mod:`arniqa.inference.shards`).
    All in memory: ``arniqa score`` lists lazily (:func:`arniqa.inference.listing.iter_inputs`, the same
    rules)."""
    skipped: list[str] = []
    broken: list[tuple[str, str]] = []
    files = list(iter_inputs(paths, skipped.append, lambda path, why: broken.append((path, why))))
    return Collected(files, skipped, broken)


def skipped_kind(path: str) -> str:
    """How :func:`skipped_summary` counts a skipped file: its extension."""
    return Path(path).suffix.lower() or "(no extension)"


def skipped_summary(skipped: Counter | Iterable[str] = (), broken: list[tuple[str, str]] = ()) -> str:
    """``skipped 3 files no decoder can open: 2 .txt, 1 .xyz; 2 entries that are no file: a.jpg (dangling
    link), b (link loop)`` (most common extension first); empty when nothing was skipped. ``skipped``:
    the counts per :func:`skipped_kind` (a Counter), or the skipped paths; ``broken``: (path, why) of the
    entries that are no file."""
    counts = skipped if isinstance(skipped, Counter) else Counter(map(skipped_kind, skipped))
    parts = []
    if n := sum(counts.values()):
        kinds = ", ".join(f"{k} {ext}" for ext, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"{n} file{'s' if n != 1 else ''} no decoder can open: {kinds}")
    if broken:
        named = ", ".join(f"{_printable(f)} ({why})" for f, why in broken[:10]) + (", ..." if len(broken) > 10 else "")
        entries = "1 entry that is" if len(broken) == 1 else f"{len(broken)} entries that are"
        parts.append(f"{entries} no file: {named}")
    return "skipped " + "; ".join(parts) if parts else ""


def format_for(path: str | os.PathLike | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file suffix (``.json`` -> json), else csv."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        return fmt
    return "json" if path is not None and Path(path).suffix.lower() == ".json" else "csv"


def escape_name(name: str) -> str:
    """A path as a CSV field: a backslash is written ``\\\\``, a byte of the file name that is not UTF-8
    (held by Python as the lone surrogate U+DC80 + byte, ``os.fsdecode``) ``\\xNN``; :func:`unescape_name`
    reverses it. JSON needs no escape of its own: its ``\\udcNN`` keeps the surrogate."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", name.replace("\\", "\\\\"))


def unescape_name(field: str) -> str:
    """The path :func:`escape_name` wrote as ``field``."""
    return _ESCAPE.sub(lambda m: "\\" if m.group() == "\\\\" else chr(0xDC00 + int(m.group()[2:], 16)), field)


def _printable(text: str) -> str:
    """``text`` with undecodable bytes as ``\\xNN`` (an error message: read by people, not parsed back)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\\\|\\x[89a-f][0-9a-f]")


class OutputError(Exception):
    """A result file that cannot be written or continued; the message is ``FILE: what happened; what to do``."""


_WHY = {errno.ENOSPC: "disk full (ENOSPC)", errno.EDQUOT: "disk quota exceeded (EDQUOT)",
        errno.EFBIG: "file too large for the file size limit or the file system (EFBIG)",
        errno.EACCES: "permission denied (EACCES)", errno.EPERM: "operation not permitted (EPERM)",
        errno.EROFS: "read-only file system (EROFS)", errno.EISDIR: "is a folder (EISDIR)",
        errno.ENOENT: "no such folder (ENOENT)"}  # fmt: skip


def _why(e: OSError) -> str:
    return _WHY.get(e.errno, f"{e.strerror or e} ({errno.errorcode.get(e.errno, 'error')})")


def output_error(name: str, e: OSError, rows: int | None = None) -> OutputError:
    """The :class:`OutputError` for ``e``, raised while writing ``name``; ``rows``: complete rows in it
    (None: the file could not be opened)."""
    why = _why(e)
    if rows is None:
        return OutputError(f"{_printable(name)}: cannot write it: {why}; choose an output you can write to")
    return OutputError(f"{_printable(name)}: {why} after {rows} complete rows; free space (or choose another "
                       "output) and rerun with --resume, which keeps those rows and scores the rest")


class _Existing(NamedTuple):
    rows: list[dict]  # the complete rows, paths unescaped
    end: int  # byte offset just after the last complete row (0: nothing to keep, not even a header)


def _scan(path: Path, fmt: str) -> _Existing:
    """The complete rows of a result file (possibly cut by a crash or a full disk); see :func:`_iter_scan`."""
    rows, end = [], 0
    for row, end in _iter_scan(path, fmt):
        if row is not None:
            rows.append(row)
    return _Existing(rows, end)


def _count(path: Path, fmt: str, columns: tuple[str, ...] | None = None) -> tuple[int, int]:
    """The number of complete rows of a result file and the byte offset just after the last one (0:
    nothing to keep), read as a stream (no row is held). ``columns``: those the rows must have (a file
    with the other columns, with or without :data:`EXPLAIN_COLUMNS`, is an :class:`OutputError`)."""
    rows = end = 0
    for row, end in _iter_scan(path, fmt, columns):
        rows += row is not None
    return rows, end


def _iter_scan(path: Path, fmt: str, columns: tuple[str, ...] | None = None) -> Iterator[tuple[dict | None, int]]:
    """``(row, end)`` for the header (row None) and each complete row of a result file, in order, read
    as a stream; ``end`` is the byte offset just after it. A row is complete when it parses fully: a
    CSV record with the four columns and numbers or nothing in ``score`` and ``raw_score``, ended by
    its newline; a JSON row line that is an object with the four keys. The rows after the first
    incomplete one do not count. Files of ``--explain`` have the :data:`EXPLAIN_COLUMNS` too; ``columns``:
    those the file must have (else :class:`OutputError`)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as e:
        raise output_error(str(path), e) from None
    with f:
        lines = _lines(f, path)
        first = next(lines, None)
        if first is None:
            return
        head = first[0].rstrip("\r\n")
        if first[0].endswith("\n") and head not in ((",".join(COLUMNS), ",".join(COLUMNS + EXPLAIN_COLUMNS))
                                                    if fmt == "csv" else ("[",)):
            raise OutputError(f"{_printable(str(path))}: not an arniqa {fmt} result file (its first line is "
                              f"{first[0].rstrip()[:40]!r}); choose another output, or score without --resume to "
                              "replace it")
        found = None if fmt != "csv" or not first[0].endswith("\n") else tuple(head.split(","))
        if fmt == "json" and columns is not None:  # the columns of its first row
            second = next(lines, None)
            if second is not None:
                with suppress(json.JSONDecodeError, AttributeError):
                    found = tuple(json.loads(second[0].strip().rstrip(",")).keys())
                lines = chain([second], lines)
        if columns is not None and found is not None and set(found) != set(columns):
            raise OutputError(f"{_printable(str(path))}: its columns are {', '.join(found)}, not "
                              f"{', '.join(columns)}; resume with the same --explain setting, or choose another output")
        yield from _scan_csv(chain([first], lines), found or COLUMNS) if fmt == "csv" else _scan_json(first, lines)


def _lines(f, path: Path) -> Iterator[tuple[str, int]]:
    """(line, byte offset of its end) of a binary file, its newlines kept."""
    end = 0
    try:
        for raw in f:
            end += len(raw)
            yield raw.decode("utf-8", "surrogateescape"), end
    except OSError as e:
        raise output_error(str(path), e) from None


def _scan_csv(lines: Iterator[tuple[str, int]], columns: tuple[str, ...] = COLUMNS) -> Iterator[tuple[dict | None, int]]:
    last = ("", 0)  # the last line the CSV reader took, and the byte offset of its end

    def feed():
        nonlocal last
        for last in lines:
            yield last[0]

    try:
        for i, record in enumerate(csv.reader(feed(), strict=True)):
            if not last[0].endswith("\n"):
                return
            if i > 0 and (len(record) != len(columns) or not all(map(_is_number, record[1:3]))):
                return
            if i == 0:  # the header was checked by _iter_scan
                yield None, last[1]
            else:
                yield {"path": unescape_name(record[0]), "score": record[1], "raw_score": record[2],
                       "error": record[3], **dict(zip(columns[len(COLUMNS):], record[len(COLUMNS):]))}, last[1]
    except csv.Error:  # a quote left open: cut inside a quoted field
        return


def _is_number(field: str) -> bool:
    try:
        float(field or 0)
        return True
    except ValueError:
        return False


def _scan_json(first: tuple[str, int], lines: Iterator[tuple[str, int]]) -> Iterator[tuple[dict | None, int]]:
    if not first[0].endswith("\n"):
        return  # not even the opening bracket
    yield None, first[1]
    for line, line_end in lines:
        body = line.rstrip("\r\n")
        text = body.rstrip(",")
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            return
        if not isinstance(row, dict) or set(row) not in (set(COLUMNS), set(COLUMNS + EXPLAIN_COLUMNS)):
            return
        yield row, line_end - (len(line) - len(text))  # just after the object (not its comma or newline)


def read_rows(path: str | os.PathLike, fmt: str) -> list[dict]:
    """The complete rows of an existing (possibly interrupted) result file (see :func:`_scan`)."""
    return _scan(Path(path), fmt).rows


def iter_done(path: str | os.PathLike, fmt: str) -> Iterator[str]:
    """The paths that already have a complete row (scored or failed) in a result file, in its order,
    read as a stream (the rows :func:`read_rows` returns, paths unescaped); :class:`OutputError` for a
    file that is no result file of ``fmt``."""
    for row, _ in _iter_scan(Path(path), fmt):
        if row is not None:
            yield str(row["path"])


def read_done(path: str | os.PathLike, fmt: str) -> set[str]:
    """The paths that already have a complete row (scored or failed) in a result file."""
    return set(iter_done(path, fmt))


def write_scores(scorer, paths: Iterable, target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False,
                 scale: bool = True, advance: Callable[[], object] = lambda: None, explain: bool = False,
                 rows: list | None = None) -> int:
    """Score ``paths`` with ``scorer`` (an :class:`arniqa.inference.Scorer`) into ``target``, one row per
    path in order (``score`` scaled, or raw when ``scale`` is False; failures get an error row), calling
    ``advance()`` after each row. ``explain``: add the :data:`EXPLAIN_COLUMNS` from ``scorer.explainer``.
    ``rows``: a list that also receives each row as a dict. Returns the number of paths that could not be scored."""
    failed = 0
    columns = COLUMNS + EXPLAIN_COLUMNS if explain else COLUMNS
    if explain:
        from ..inference.explaining import describe, explain_features, top_labels  # here: it imports torch
    with RowWriter(target, fmt, append=append, columns=columns) as writer:
        results = scorer.iter_scores(paths, return_features=True) if explain else scorer.iter_scores(paths)
        for r in results if paths else ():
            extra = dict.fromkeys(EXPLAIN_COLUMNS) if explain else {}
            if r.error is not None:
                failed += 1
                row = writer.write(r.source, None, None, r.error, **extra)
            else:
                if explain:
                    probs, severity = explain_features(scorer.explainer, r.features)
                    extra = {"explanation": describe(top_labels(scorer.explainer.labels, probs)),
                             "severity": round(severity, 2)}
                row = writer.write(r.source, r.score if scale else r.raw_score, r.raw_score, None, **extra)
            if rows is not None:
                rows.append(row)
            advance()
    return failed


def _number(v: float | None) -> str:
    return "" if v is None else repr(float(v))


class RowWriter:
    """Writes result rows to a file or a stream in CSV or JSON, each row whole and at once.

    To a file: a row goes to the file in one ``write`` (no buffer holds half of it); a write that
    fails (disk full, file size limit) is cut back to the last complete row and raised as
    :class:`OutputError`. ``append=True`` continues an existing file of the same format: its rows up to
    the last complete one are kept, anything after them (a torn last row, a JSON file's closing
    ``]``) is truncated away. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False,
                 columns: tuple[str, ...] = COLUMNS) -> None:
        self.fmt = format_for(None, fmt)
        self.columns = columns
        self.count = 0
        self._broken = False
        if isinstance(target, (str, os.PathLike)):
            self.name = str(target)
            self.existing, self.end = _count(Path(target), self.fmt, columns) if append else (0, 0)
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
            if self.end == 0:
                self._put(",".join(columns) + "\n" if self.fmt == "csv" else "[\n")
        except (OSError, OutputError) as e:
            self._broken = True
            self.close(quiet=True)
            raise e if isinstance(e, OutputError) else output_error(self.name, e) from None

    def _put(self, text: str) -> None:
        """Write ``text`` whole; on failure cut the file back to the last complete row and raise."""
        if self.stream is not None:
            try:
                self.stream.write(text)
                self.stream.flush()
            except OSError as e:
                self._broken = True
                raise OutputError(f"{self.name}: {_why(e)} after {self.count} rows; write to a file (-o) to "
                                  "keep the rows and resume") from None
            return
        data = text.encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.pwrite(self._fd, view, self.end + len(data) - len(view)):]
        except OSError as e:
            self._broken = True
            with suppress(OSError):
                os.ftruncate(self._fd, self.end)
            raise output_error(self.name, e, self.existing + self.count) from None
        self.end += len(data)

    def write(self, path: str, score: float | None, raw_score: float | None, error: str | None, **extra) -> dict:
        """Write one row (``extra``: values of the columns after :data:`COLUMNS`); returns it as a dict."""
        row = {"path": path, "score": score, "raw_score": raw_score, "error": error, **extra}
        if self.fmt == "csv":
            line = io.StringIO()
            extras = ["" if row.get(c) is None else _printable(str(row[c])) for c in self.columns[len(COLUMNS):]]
            csv.writer(line, lineterminator="\n").writerow(
                [escape_name(path), _number(score), _number(raw_score), _printable(error or ""), *extras])
            self._put(line.getvalue())
        else:
            row = {c: row.get(c) for c in self.columns}
            self._put(("" if self._first else ",\n") + json.dumps(row))
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
