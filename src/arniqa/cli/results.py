"""``arniqa score``'s files: the paths to score (folders expanded), and CSV/JSON result files written row by row.

Rows have the columns :data:`COLUMNS` (``path, score, raw_score, error``). Files are written
incrementally (each row is flushed), so an interrupted run keeps its rows, and a later run can skip
the paths already present (:func:`read_done`). A JSON file is an array with one row object per line;
its closing ``]`` is written when the writer closes (also on an interrupt), and is removed again
when rows are appended.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

from ..inference.listing import iter_inputs
from ..utils.files import atomic_write

COLUMNS = ("path", "score", "raw_score", "error")
FORMATS = ("csv", "json")


class Collected(NamedTuple):
    files: list  # to score, in order: paths (str) and tar shard items (Member, Unreadable)
    skipped: list[str]  # files in the folders that no decoder can open


def collect_paths(paths: Iterable[str | os.PathLike]) -> Collected:
    """The files to score, in order: each argument as given, folders replaced by the image files under
    them (recursively, sorted): files with an extension PIL can open, and files whose header a decoder
    recognises. The other files in the folders are ``skipped``. A file named directly is always kept
    (missing or undecodable, it becomes an error row). An argument that does not exist is expanded as
    a brace pattern (``shards/{000000..000099}.tar``); tar shards (``.tar``, given or in folders) are
    replaced by their image members (:mod:`arniqa.inference.shards`). All in memory: ``arniqa score``
    lists lazily (:func:`arniqa.inference.listing.iter_inputs`, the same rules)."""
    skipped: list[str] = []
    files = list(iter_inputs(paths, skipped.append))
    return Collected(files, skipped)


def skipped_kind(path: str) -> str:
    """How :func:`skipped_summary` counts a skipped file: its extension."""
    return Path(path).suffix.lower() or "(no extension)"


def skipped_summary(counts: Counter) -> str:
    """``skipped 3 files: 2 .txt, 1 .xyz`` (most common extension first) from the counts per
    :func:`skipped_kind`."""
    skipped = sum(counts.values())
    kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {skipped} file{'s' if skipped != 1 else ''} no decoder can open: {kinds}"


def format_for(path: str | os.PathLike | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file suffix (``.json`` -> json), else csv."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        return fmt
    return "json" if path is not None and Path(path).suffix.lower() == ".json" else "csv"


def read_rows(path: str | os.PathLike, fmt: str) -> list[dict]:
    """Rows of an existing (possibly interrupted) result file; an unparsable trailing line is ignored."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        return [dict(r) for r in csv.DictReader(io.StringIO(text)) if r.get("path")]
    return [row for _, row in _json_rows(text.splitlines())]


def _json_rows(lines: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """``(line, row)`` for each row line of a JSON result file (one object per line, a trailing comma
    dropped), up to the first line that does not parse (a half-written last line)."""
    for line in lines:
        line = line.strip().rstrip(",")
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return
            yield line, row


def iter_done(path: str | os.PathLike, fmt: str) -> Iterator[str]:
    """The paths that already have a row (scored or failed) in a result file, in its order, read as a
    stream (as :func:`read_rows` parses them)."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "csv":
            yield from (r["path"] for r in csv.DictReader(f) if r.get("path"))
        else:
            yield from (str(row["path"]) for _, row in _json_rows(f))


def read_done(path: str | os.PathLike, fmt: str) -> set[str]:
    """The paths that already have a row (scored or failed) in a result file."""
    return set(iter_done(path, fmt))


def write_scores(scorer, paths: list[str], target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False,
                 scale: bool = True, advance: Callable[[], object] = lambda: None) -> int:
    """Score ``paths`` with ``scorer`` (an :class:`arniqa.inference.Scorer`) into ``target``, one row per
    path in order (``score`` scaled, or raw when ``scale`` is False; failures get an error row), calling
    ``advance()`` after each row. Returns the number of paths that could not be scored."""
    failed = 0
    with RowWriter(target, fmt, append=append) as writer:
        for r in scorer.iter_scores(paths) if paths else ():
            if r.error is not None:
                failed += 1
                writer.write(r.source, None, None, r.error)
            else:
                writer.write(r.source, r.score if scale else r.raw_score, r.raw_score, None)
            advance()
    return failed


def _number(v: float | None) -> str:
    return "" if v is None else repr(float(v))


class RowWriter:
    """Writes result rows to ``stream`` in CSV or JSON, flushing each row.

    ``append=True`` continues an existing file of the same format (no second CSV header; a JSON
    file's closing bracket is removed first). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False) -> None:
        self.fmt = format_for(None, fmt)
        self.count = 0
        existing = False
        if isinstance(target, (str, os.PathLike)):
            path = Path(target)
            existing = append and next(iter_done(path, self.fmt), None) is not None
            if append and existing and self.fmt == "json":
                self._reopen_json(path)
            self.stream: TextIO = open(path, "a" if append and existing else "w", encoding="utf-8", newline="")
            self._own = True
        else:
            self.stream, self._own = target, False
        self._first = not existing
        if self.fmt == "csv":
            self._csv = csv.writer(self.stream, lineterminator="\n")
            if self._first:
                self._csv.writerow(COLUMNS)
        elif self._first:
            self.stream.write("[\n")
        self.stream.flush()

    @staticmethod
    def _reopen_json(path: Path) -> None:
        """Drop a closing ``]`` (and a half-written last line) so rows can be appended."""
        body = "[\n" + ",\n".join(line for line, _ in _json_rows(path.read_text(encoding="utf-8").splitlines()))
        atomic_write(path, lambda tmp: tmp.write_text(body, encoding="utf-8"))

    def write(self, path: str, score: float | None, raw_score: float | None, error: str | None) -> None:
        if self.fmt == "csv":
            self._csv.writerow([path, _number(score), _number(raw_score), error or ""])
        else:
            row = {"path": path, "score": score, "raw_score": raw_score, "error": error}
            self.stream.write(("" if self._first else ",\n") + json.dumps(row))
            self._first = False
        self.count += 1
        self.stream.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n")
        self.stream.flush()
        if self._own:
            self.stream.close()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
