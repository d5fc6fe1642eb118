"""The result files of ``arniqa score``: their columns, how paths are written, their errors, and reading one
back (:func:`read_rows`, :func:`iter_done`, streamed), and the record of the settings its rows were scored with
(:func:`settings_file`, checked by ``--resume``).

Rows have the columns :data:`COLUMNS` (``path, score, raw_score, error``), with ``--explain`` the
:data:`EXPLAIN_COLUMNS`, and last the :data:`NOTE_COLUMNS` (:func:`result_columns`). A file an older arniqa wrote,
without the note, keeps its columns when rows are appended to it (:data:`KNOWN_COLUMNS`). Each row is written
whole (:class:`arniqa.cli.results.RowWriter`); a torn last row (a crash in the middle of a write) is not counted
when a file is read back, and is cut away before appending. A
JSON file is an array with one row object per line; a JSON Lines file is one row object per line, nothing
else. Paths in any bytes are written losslessly (:func:`escape_name`). Write errors are :class:`OutputError`,
naming the file.
"""

from __future__ import annotations

import codecs
import csv
import errno
import json
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import nullcontext, suppress
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple

from ..utils.cache import short_digest
from ..utils.files import NO_SPACE, atomic_write, make_room, unreadable
from ..utils.jsonfile import json_writer, parse_json
from ..utils.locks import SETTINGS_SUFFIX
from ..utils.messages import file_line, printable, with_fix
from ..utils.names import count
from ..utils.textfiles import (
    COMMA_SEPARATED,
    csv_line,
    decimal_comma,
    escape_name,
    other_separator,
    separated_by,
    unescape_name,
)

COLUMNS = ("path", "score", "raw_score", "error")  # the first columns of every result file
EXPLAIN_COLUMNS = ("explanation", "severity")  # with an explanation head (arniqa score --explain)
# last: the warnings about the file (its first frame scored, downscaled: utils/messages.note), empty when none
NOTE_COLUMNS = ("note",)


def result_columns(explain: bool = False, note: bool = True) -> tuple[str, ...]:
    """The columns of a result file, in order: with ``explain``, the :data:`EXPLAIN_COLUMNS`; ``note=False``: a file
    of arniqa before the :data:`NOTE_COLUMNS`."""
    return COLUMNS + (EXPLAIN_COLUMNS if explain else ()) + (NOTE_COLUMNS if note else ())


# the columns of the result files arniqa reads and appends to: this version's, and those written before notes
KNOWN_COLUMNS = tuple(result_columns(explain, note) for note in (True, False) for explain in (False, True))
SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}  # the formats a file's name implies
FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "jsonl": "JSON Lines"}  # the formats, as lines name them
FORMATS = tuple(FORMAT_NAMES)
*_others, _last = FORMAT_NAMES.values()
FORMAT_LIST = f"{', '.join(_others)} or {_last}"  # "CSV, JSON or JSON Lines"
A_RESULT_FILE = f"the {FORMAT_LIST} file that arniqa score -o wrote"  # what a line asks for
RETRY_AGAIN = "rerun with --resume --retry-failed"  # how to go on once a retry's rows could not be written
# Names of formats not written: rows under them would be read as that format (pandas by the suffix) and fail.
OTHER_FORMATS = {
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".feather": "Feather",
    ".arrow": "Arrow",
    ".orc": "ORC",
    ".xlsx": "Excel",
    ".xls": "Excel",
    ".ods": "OpenDocument spreadsheet",
    ".tsv": "tab-separated",
    ".gz": "gzip-compressed",
    ".bz2": "bzip2-compressed",
    ".xz": "xz-compressed",
    ".zst": "zstd-compressed",
    ".zip": "zip",
}


_KNOWN_SETS = tuple(set(columns) for columns in KNOWN_COLUMNS)  # a JSON row's keys


def format_for(path: str | os.PathLike | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file suffix (:data:`SUFFIXES`), else csv."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        return fmt
    return SUFFIXES.get("" if path is None else Path(path).suffix.lower(), "csv")


def output_format(path: str | os.PathLike | None, fmt: str | None) -> str:
    """:func:`format_for` of a file to write: a name of another format (:data:`OTHER_FORMATS`) without ``fmt`` is a
    ``ValueError``."""
    suffix = "" if path is None else Path(path).suffix.lower()
    if fmt is None and suffix in OTHER_FORMATS:
        raise ValueError(
            f"{printable(str(path))}: {suffix} is the suffix of {OTHER_FORMATS[suffix]} files, but arniqa score "
            f"writes {FORMAT_LIST}, uncompressed; name it .csv, .json or .jsonl, or give --format"
        )
    return format_for(path, fmt)


class OutputError(Exception):
    """A result file that cannot be written or continued; the message is ``FILE: what happened; what to do``."""


class NotAResultFile(OutputError):
    """A file that is no result file of ``arniqa score`` (by its first line, or a row's numbers); the message is
    ``FILE: why``, and the command adds what to do (:meth:`line`). ``resave``: what to do first with a result file
    saved in a form arniqa does not read (separated by ';', decimal commas, columns deleted)."""

    def __init__(self, message: str, resave: str = "") -> None:
        super().__init__(message)
        self.resave = resave

    def line(self, fix: str) -> str:
        """``FILE: why; fix``, after what to do first, where there is something (:attr:`resave`)."""
        return with_fix(str(self), f"{self.resave}, or {fix}" if self.resave else fix)


_WHY = {
    errno.ENOSPC: "disk full (ENOSPC)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EFBIG: "file too large for the file size limit or the file system (EFBIG)",
    errno.EACCES: "permission denied (EACCES)",
    errno.EPERM: "operation not permitted (EPERM)",
    errno.EROFS: "read-only file system (EROFS)",
    errno.EISDIR: "is a folder (EISDIR)",
    errno.ENOENT: "no such folder (ENOENT)",
}


def why(e: OSError) -> str:
    return _WHY.get(e.errno, f"{e.strerror or e} ({errno.errorcode.get(e.errno, 'error')})")


def output_error(
    name: str, e: OSError, rows: int | None = None, again: str = "rerun", elsewhere: str | None = None
) -> OutputError:
    """The :class:`OutputError` for ``e``, raised while writing ``name``; ``rows``: complete rows in it
    (None: a file that could not be opened or is written whole, not row by row); ``again``: how to go on once
    space is freed; ``elsewhere``: how to write somewhere else when ``name`` is not in an output chosen with -o
    (a cache: ``choose another --cache-dir``)."""
    what = why(e)
    if rows is None:
        if e.errno in (errno.EEXIST, errno.ENOTDIR) and (blocker := _file_in_the_way(Path(name))) is not None:
            what = f"{printable(str(blocker))} is a file, not a folder"
        advice = (
            f"{make_room(e)} and {again} (or {elsewhere or 'choose another output'})"
            if e.errno in NO_SPACE
            else elsewhere or "choose an output you can write to"
        )
        return OutputError(f"{printable(name)}: cannot write it: {what}; {advice}")
    return OutputError(
        f"{printable(name)}: {what} after {count(rows, 'complete row')}; {make_room(e)} (or choose another "
        "output) and rerun with --resume, which keeps those rows and scores the rest"
    )


def read_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """The :class:`OutputError` for ``e``, raised while reading the result file ``path``: as a photo's
    (:func:`~arniqa.utils.files.unreadable`), not as a write's."""
    return OutputError(unreadable(path, e))


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path``'s folders (or ``path`` itself), from the top, that is something other than a folder."""
    return next((p for p in (*reversed(path.parents), path) if p.exists() and not p.is_dir()), None)


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


def count_rows(path: Path, fmt: str, columns: tuple[str, ...] | None = None) -> tuple[int, int, tuple[str, ...] | None]:
    """The number of complete rows of a result file, the byte offset just after the last one (0: nothing to
    keep), and its columns (one of :data:`KNOWN_COLUMNS`, by its header or first row; None when it has none yet),
    read as a stream (no row is held). ``columns``: those the rows must have, or have but for the
    :data:`NOTE_COLUMNS` (a file with the other columns, with or without :data:`EXPLAIN_COLUMNS`, is an
    :class:`OutputError`)."""
    rows = end = 0
    head: list = []
    for row, end in _iter_scan(path, fmt, columns, head=head):
        rows += row is not None
    if _rows_after(path, fmt, end) > 1:
        raise OutputError(
            f"{printable(str(path))}: row {rows + 1} does not parse as a result row and more rows follow it (a run "
            "cut short tears only its last row: an edit?); --resume would cut them all away: fix or delete that "
            "row, or choose another output"
        )
    return rows, end, head[0] if head else None


def _rows_after(path: Path, fmt: str, end: int) -> int:
    """How many rows (CSV records, JSON lines; at most 2 are counted) hold more than the end of a JSON array
    after byte ``end``: 0 or 1 for a file a run wrote, whose only incomplete row is its last (a torn write)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        f.seek(end)
        if fmt != "csv":
            rows = (line for line in f if line.strip(b" \t\r\n,]"))
        else:
            rows = (r for r in _records(line.decode("utf-8", "surrogateescape") for line in f) if any(r))
        return sum(1 for _ in islice(rows, 2))


def _records(lines: Iterator[str]) -> Iterator[list[str]]:
    """CSV records of ``lines``; a quoted field left open at the end is one record."""
    try:
        yield from csv.reader(lines)
    except csv.Error:
        yield ["open quote"]


def _iter_scan(
    path: Path, fmt: str, columns: tuple[str, ...] | None = None, source=None, head: list | None = None
) -> Iterator[tuple[dict | None, int]]:
    """``(row, end)`` for the header (row None) and each complete row of a result file, in order, read as a stream;
    ``end`` is the byte offset just after it. A row is complete when it parses fully: a CSV record with the file's
    columns (those at its end that are empty may be left out: :func:`filled`) and numbers or nothing in ``score`` and
    ``raw_score``, ended by its newline (a CSV header is read as a CSV reader reads it, quoted cells too; a row whose
    score is written with a decimal comma is a :class:`NotAResultFile`, as is a header with columns deleted); a JSON
    row line that is an object with the four keys; a JSON Lines row such an object ended by its newline (a JSON Lines
    file has no header: its first row takes the header's place in the checks).
    The rows after the first incomplete one do not count. Files of ``--explain`` have the :data:`EXPLAIN_COLUMNS` too,
    and files of this version the :data:`NOTE_COLUMNS`; ``columns``: those the file must have, or have but for the note
    (else :class:`OutputError`); ``source``: the file's lines, open already (else ``path`` is opened and closed);
    ``head``: a list that receives the file's columns (of :data:`KNOWN_COLUMNS`) before the first row is yielded, when
    they are known."""
    opened = source is None
    if opened:
        try:
            source = open(path, "rb")
        except FileNotFoundError:
            return
        except OSError as e:
            raise read_error(path, e) from None
    with source if opened else nullcontext():
        lines = _lines(source, path)
        first = next(lines, None)
        if first is None:
            return
        first_line, whole = first[0].rstrip("\r\n"), first[0].endswith("\n")
        if fmt == "jsonl":  # no header: its first row stands in the header's place
            found = tuple(row) if whole and (row := _json_row(first_line)) is not None else None
            known = found is not None
        else:
            found = tuple(next(csv.reader([first_line]), ())) if fmt == "csv" and whole else None
            known = found in KNOWN_COLUMNS if fmt == "csv" else first_line == "["
        if whole and not known:
            line = first[0].rstrip()[:40]
            binary = any(c == "\x00" or "\udc80" <= c <= "\udcff" for c in line)  # NUL, or bytes that are not UTF-8
            separator = other_separator(found) if fmt == "csv" and not binary else None
            if separator and tuple(next(csv.reader([first_line], delimiter=separator))) in KNOWN_COLUMNS:
                raise NotAResultFile(
                    file_line(printable(str(path)), separated_by(separator, first_line)), COMMA_SEPARATED
                )
            if found and not binary and (deleted := _deleted(found)):
                raise NotAResultFile(*_columns_deleted(printable(str(path)), found, deleted))
            what = "it holds binary data, such as an image's" if binary else f"its first line is {line!r}"
            raise NotAResultFile(f"{printable(str(path))}: not an arniqa {fmt} result file ({what})")
        if fmt == "json" and (columns is not None or head is not None):  # the columns of its first row
            second = next(lines, None)
            if second is not None:
                with suppress(json.JSONDecodeError, AttributeError):
                    found = tuple(parse_json(second[0].strip().rstrip(",")).keys())
                lines = chain([second], lines)
        if (
            columns is not None
            and found is not None
            and set(found) not in (set(columns), set(columns) - {*NOTE_COLUMNS})
        ):
            raise OutputError(
                f"{printable(str(path))}: its columns are {', '.join(found)}, not "
                f"{', '.join(columns)}; resume with the same --explain setting, or choose another output"
            )
        if head is not None and found is not None:
            head.append(next(c for c in KNOWN_COLUMNS if set(c) == set(found)))
        if fmt == "csv":
            yield from _scan_csv(chain([first], lines), found or result_columns(), path)
        else:
            yield from _scan_json(first, lines) if fmt == "json" else _scan_jsonl(chain([first], lines))


def _deleted(header: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of a result file of this version that the CSV ``header`` lacks where it is such a file's header with
    some columns taken out (in a spreadsheet), three at least left in order; () where it is not so (``path,score``
    alone: another program's CSV as likely)."""
    columns = result_columns(explain=not set(header).isdisjoint(EXPLAIN_COLUMNS))
    rest = iter(columns)
    if len(header) < 3 or header[0] != "path" or not all(c in rest for c in header):  # in rest: in order
        return ()
    return tuple(c for c in columns if c not in header)


def _columns_deleted(name: str, header: tuple[str, ...], deleted: tuple[str, ...]) -> tuple[str, str]:
    """The message and what to do first (:class:`NotAResultFile`) of the result file ``name`` whose ``header`` lacks
    the columns ``deleted`` (:func:`_deleted`): those at the end are put back by adding them to the header (the rows
    whose last fields are empty read so: :func:`filled`); a column taken out of the middle took its values along."""
    problem = f"its columns are {', '.join(header)}, without {', '.join(deleted)} (deleted in a spreadsheet?)"
    tail = header + deleted in KNOWN_COLUMNS
    return file_line(name, problem), f"add {',' + ','.join(deleted)!r} to the end of its first line" if tail else ""


def _lines(f, path: Path) -> Iterator[tuple[str, int]]:
    """(line, byte offset of its end) of a binary file, its newlines kept; a UTF-8 byte order mark at its start (a
    file saved by Excel) left out of the first line, counted in the offsets (the file is appended to as it is)."""
    end = 0
    try:
        for raw in f:
            line = (raw if end else raw.removeprefix(codecs.BOM_UTF8)).decode("utf-8", "surrogateescape")
            end += len(raw)
            yield line, end
    except OSError as e:
        raise read_error(path, e) from None


def filled(record: list[str], columns: tuple[str, ...]) -> list[str] | None:
    """``record``, a row of a CSV file of ``columns`` (a result file, maps.csv), with its last fields filled in, empty,
    where a spreadsheet left them out (Excel leaves out the separators of empty cells at the end of rows, in runs of
    rows whose last cells are all empty). None for a record of more fields, or of fewer that is not, so filled in, of a
    row's form: a scored row fills every field before ``error`` and no error, an error row the path and its error
    alone (a field taken out of the middle of a row, an edit, would shift the others)."""
    if len(record) == len(columns):
        return record
    at = columns.index("error")
    if not at <= len(record) < len(columns):
        return None
    record = record + [""] * (len(columns) - len(record))
    before, error = record[1:at], record[at]
    return record if (all(before) and not error) or (error and not any(before)) else None


def _scan_csv(
    lines: Iterator[tuple[str, int]], columns: tuple[str, ...], path: Path
) -> Iterator[tuple[dict | None, int]]:
    last = ("", 0)  # the last line the CSV reader took, and the byte offset of its end

    def feed():
        nonlocal last
        for last in lines:
            yield last[0]

    try:
        for i, record in enumerate(csv.reader(feed(), strict=True)):
            if not last[0].endswith("\n"):
                return
            if i > 0 and ((record := filled(record, columns)) is None or not all(map(_is_number, record[1:3]))):
                if record is not None and (comma := next(filter(decimal_comma, record[1:3]), None)):
                    raise NotAResultFile(
                        file_line(
                            printable(str(path)),
                            f"row {i} writes a score with a decimal comma ({comma!r}), as a spreadsheet saves CSV "
                            "in a locale that writes them",
                        ),
                        "save it again with decimal points (in an English locale, say)",
                    )
                return
            if i == 0:  # the header was checked by _iter_scan
                yield None, last[1]
            else:
                yield {**dict(zip(columns, record)), "path": unescape_name(record[0])}, last[1]
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
        text = line.rstrip("\r\n").rstrip(",")
        if (row := _json_row(text)) is None:
            return
        yield row, line_end - (len(line) - len(text))  # just after the object (not its comma or newline)


def _scan_jsonl(lines: Iterator[tuple[str, int]]) -> Iterator[tuple[dict | None, int]]:
    for line, line_end in lines:
        if not line.endswith("\n") or (row := _json_row(line.rstrip("\r\n"))) is None:
            return
        yield row, line_end  # just after its newline


def _json_row(text: str) -> dict | None:
    """The result row the JSON object ``text`` holds, or None: no JSON, not an object of a row's keys, or of
    other values than a row's (a path that is no string, a score that is no number, as in a CSV row)."""
    try:
        row = parse_json(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict) or set(row) not in _KNOWN_SETS:
        return None
    scores = (row["score"], row["raw_score"])
    numbers = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in scores)
    texts = all(isinstance(row.get(c), (str, type(None))) for c in ("error", *NOTE_COLUMNS))
    return row if numbers and texts and isinstance(row["path"], str) else None


def result_row(
    path: str, score: float | None, raw_score: float | None, error: str | None, columns=None, **extra
) -> dict:
    """One row of ``columns`` (default: :func:`result_columns`; ``extra``: the values of those after
    :data:`COLUMNS`), as a dict."""
    columns = result_columns() if columns is None else columns
    row = {"path": path, "score": score, "raw_score": raw_score, "error": error, **extra}
    return {c: row.get(c) for c in columns}


def row_text(row: dict, fmt: str, columns: tuple[str, ...]) -> str:
    """``row`` (:func:`result_row`) as its text in a result file of ``fmt`` with ``columns`` (a value of another
    column left out): a CSV record or a JSON Lines line, each ended by its newline, or a JSON object (the writer
    puts the separators of the array between them)."""
    if fmt == "csv":
        fields = [_number(row["score"]), _number(row["raw_score"]), *map(row.get, columns[3:])]
        return csv_line([escape_name(row["path"]), *("" if v is None else printable(str(v)) for v in fields)])
    return json.dumps({c: row.get(c) for c in columns}) + ("\n" if fmt == "jsonl" else "")


def _number(v: float | None) -> str | None:
    return None if v is None else repr(float(v))


def replace_rows(path: Path, fmt: str, rows: Iterable[dict]) -> None:
    """Rewrite the result file ``path`` (whole, or not at all) with its error rows replaced, where they were, by
    ``rows`` (failed rows retried, in the order they were scored, written with the file's columns): each row of
    ``rows`` replaces the first error row of its path not yet replaced; the other rows stay as they were, byte for
    byte. ``rows`` is read as the file is:
    in the file's order (a --resume that matched its rows one by one) nothing is held; rows met ahead of their
    place are held until it comes. :class:`OutputError` when it cannot be written."""

    def write(tmp: Path) -> None:
        new_rows, ahead = iter(rows), {}  # ahead: path -> the rows read past, to place further down

        def retried(name: str) -> dict | None:
            if waiting := ahead.get(name):
                row = waiting.popleft()
                if not waiting:
                    del ahead[name]
                return row
            for row in new_rows:
                if row["path"] == name:
                    return row
                ahead.setdefault(row["path"], deque()).append(row)
            return None

        with open(path, "rb") as old, open(tmp, "wb") as new:
            source = _Kept(old)  # the file is read once: scanned, and its bytes kept for the copy
            start, head = 0, []
            for row, end in _iter_scan(path, fmt, source=source, head=head):
                text = source.take(end - start)
                if row is not None and row["error"] and (again := retried(row["path"])) is not None:
                    separator = text[: text.index(b"{")] if fmt == "json" else b""  # the array's, before the object
                    text = separator + row_text(again, fmt, head[0]).encode("utf-8")
                new.write(text)
                start = end
            new.write(source.take(len(source.kept)))  # what was read past the rows, then what follows
            shutil.copyfileobj(old, new)  # a JSON array's end

    try:
        atomic_write(path, write)
    except OSError as e:
        raise output_error(str(path), e, again=RETRY_AGAIN) from None


class Spool:
    """Rows set aside, read back in the order added (the retried rows of --resume --retry-failed, put in their
    place at the end by :func:`replace_rows`): on disk, in a temporary file with no name beside the result file
    ``path`` (200,000 rows held in memory took 118 MB). :class:`OutputError`, naming ``path``, when it cannot be
    written. A context manager: the file is closed (and gone) on exit."""

    def __init__(self, path: Path) -> None:
        self.path, self.file, self.count = path, None, 0

    def add(self, row: dict) -> None:
        try:
            if self.file is None:  # beside the result file: the disk its rewrite needs room on
                import tempfile

                self.file = tempfile.TemporaryFile(dir=Path(self.path).parent)
            self.file.write(json.dumps(row).encode("ascii") + b"\n")  # ensure_ascii: any path (lone surrogates too)
        except OSError as e:
            raise output_error(str(self.path), e, again=RETRY_AGAIN) from None
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict]:
        if self.file is None:
            return
        try:
            self.file.flush()
            self.file.seek(0)
            for line in self.file:
                yield json.loads(line)  # the JSON this object wrote
        except OSError as e:
            raise read_error(self.path, e) from None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


class _Kept:
    """The lines of a binary file, keeping the bytes read until they are taken (a rewrite reads the file once)."""

    def __init__(self, f) -> None:
        self.f, self.kept = f, bytearray()

    def __iter__(self) -> Iterator[bytes]:
        for line in self.f:
            self.kept += line
            yield line

    def take(self, n: int) -> bytes:
        text = bytes(self.kept[:n])
        del self.kept[:n]
        return text


def read_rows(path: str | os.PathLike, fmt: str) -> list[dict]:
    """The complete rows of an existing (possibly interrupted) result file (see :func:`_scan`)."""
    return _scan(Path(path), fmt).rows


def read_rows_and_rest(path: str | os.PathLike, fmt: str) -> tuple[list[dict], int]:
    """:func:`read_rows` and the number of lines after the last complete row that hold more than the end of
    a JSON array: rows that do not parse (a run cut short, a hand edit), which are left out."""
    existing = _scan(Path(path), fmt)
    with open(path, "rb") as f:
        f.seek(existing.end)
        rest = sum(1 for line in f if line.strip(b" \t\r\n,]"))
    return existing.rows, rest


def iter_done(path: str | os.PathLike, fmt: str, with_error: bool = False) -> Iterator:
    """The paths that already have a complete row (scored or failed) in a result file, in its order,
    read as a stream (the rows :func:`read_rows` returns, paths unescaped); with ``with_error``, ``(path, failed)``
    pairs, ``failed`` when the row holds an error. :class:`OutputError` for a file that is no result file of
    ``fmt``."""
    for row, _ in _iter_scan(Path(path), fmt):
        if row is not None:
            yield (str(row["path"]), bool(row["error"])) if with_error else str(row["path"])


SETTINGS_FORMAT = "arniqa-score-settings"


def settings_file(path: str | os.PathLike) -> Path:
    """The hidden file beside the result file ``path`` that records the settings its rows were scored with:
    ``.NAME.arniqa.json``."""
    path = Path(path)
    return path.with_name(f".{path.name}{SETTINGS_SUFFIX}")


def write_settings(path: str | os.PathLike, settings: dict) -> None:
    """Record ``settings`` (by option: a value, or a file as ``{"name", "sha256"}``) beside the result file ``path``
    (:func:`settings_file`, written whole or not at all); :class:`OutputError` when it cannot be written."""
    side = settings_file(path)
    try:
        atomic_write(side, json_writer({"format": SETTINGS_FORMAT, "settings": settings}))
    except OSError as e:
        raise output_error(str(side), e) from None


def read_settings(path: str | os.PathLike) -> dict:
    """The settings recorded beside the result file ``path`` (:func:`write_settings`); ValueError saying why there
    are none: no such file (one of an older arniqa, or moved without it), or not one arniqa wrote."""
    side = settings_file(path)
    try:
        record = parse_json(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"there is no {side.name} beside it (an older arniqa wrote it, or it was moved without it)")
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"its {side.name} cannot be read ({e})") from None
    if (
        not isinstance(record, dict)
        or record.get("format") != SETTINGS_FORMAT
        or not isinstance(record.get("settings"), dict)
    ):
        raise ValueError(f"its {side.name} is no record of arniqa's settings")
    return record["settings"]


def changed_settings(old: dict, new: dict) -> list[str]:
    """The settings that differ between two records of :func:`write_settings`, each ``OPTION old → new``; a file is
    the same when its SHA-256 is, under any name."""
    return [
        f"{key} {_shown(old.get(key))} → {_shown(new.get(key))}"
        for key in {**old, **new}
        if _identity(old.get(key)) != _identity(new.get(key))
    ]


def mixed_settings(old: dict, new: dict) -> dict:
    """The record of rows made some with ``old``'s settings and some with ``new``'s (arniqa map into one folder in
    parts): ``new``, where they differ a line naming both (``224 or 96``), which no run's settings equal."""
    mixed = dict(new)
    for key in {**old, **new}:
        if _identity(old.get(key)) != _identity(new.get(key)):
            was, now = _shown(old.get(key)), _shown(new.get(key))
            mixed[key] = was if now in was.split(" or ") else f"{was} or {now}"
    return mixed


def _identity(value):
    return value["sha256"] if isinstance(value, dict) and value.get("sha256") else value


def _shown(value) -> str:
    if isinstance(value, dict):
        digest = value.get("sha256")
        return f"{value.get('name')}" + (f" (SHA-256 {short_digest(str(digest))})" if digest else "")
    return "none" if value is None else str(value)
