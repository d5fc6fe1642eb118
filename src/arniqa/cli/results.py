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

from ..data.images import can_identify, is_image_file
from ..inference.explaining import describe, explain_features, top_labels
from ..inference.shards import expand_braces, is_shard, shard_items
from ..utils.files import atomic_write

COLUMNS = ("path", "score", "raw_score", "error")
EXPLAIN_COLUMNS = ("explanation", "severity")  # with an explanation head (arniqa score --explain)
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
    replaced by their image members (:mod:`arniqa.inference.shards`)."""
    files: list = []
    skipped: list[str] = []

    def add(f) -> None:
        files.extend(shard_items(f) if is_shard(f) else [str(f)])

    for arg in paths:
        for p in [Path(arg)] if Path(arg).exists() else map(Path, expand_braces(str(arg))):
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    if f.is_file():
                        if is_shard(f) or is_image_file(f) or can_identify(f):
                            add(f)
                        else:
                            skipped.append(str(f))
            else:
                add(p)
    return Collected(files, skipped)


def skipped_summary(skipped: list[str]) -> str:
    """``skipped 3 files: 2 .txt, 1 .xyz`` (most common extension first)."""
    counts = Counter(Path(f).suffix.lower() or "(no extension)" for f in skipped)
    kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} no decoder can open: {kinds}"


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
    return [row for _, row in _json_rows(text)]


def _json_rows(text: str) -> Iterator[tuple[str, dict]]:
    """``(line, row)`` for each row line of a JSON result file (one object per line, a trailing comma
    dropped), up to the first line that does not parse (a half-written last line)."""
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return
            yield line, row


def read_done(path: str | os.PathLike, fmt: str) -> set[str]:
    """The paths that already have a row (scored or failed) in a result file."""
    return {str(r["path"]) for r in read_rows(path, fmt)}


def write_scores(scorer, paths: list[str], target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False,
                 scale: bool = True, advance: Callable[[], object] = lambda: None, explain: bool = False,
                 rows: list | None = None) -> int:
    """Score ``paths`` with ``scorer`` (an :class:`arniqa.inference.Scorer`) into ``target``, one row per
    path in order (``score`` scaled, or raw when ``scale`` is False; failures get an error row), calling
    ``advance()`` after each row. ``explain``: add the :data:`EXPLAIN_COLUMNS` from ``scorer.explainer``.
    ``rows``: a list that also receives each row as a dict. Returns the number of paths that could not be scored."""
    failed = 0
    columns = COLUMNS + EXPLAIN_COLUMNS if explain else COLUMNS
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
    """Writes result rows to ``stream`` in CSV or JSON, flushing each row.

    ``append=True`` continues an existing file of the same format (no second CSV header; a JSON
    file's closing bracket is removed first). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str | os.PathLike | TextIO, fmt: str = "csv", append: bool = False,
                 columns: tuple[str, ...] = COLUMNS) -> None:
        self.fmt = format_for(None, fmt)
        self.columns = columns
        self.count = 0
        existing = 0
        if isinstance(target, (str, os.PathLike)):
            path = Path(target)
            existing = len(read_rows(path, self.fmt)) if append else 0
            if append and existing and self.fmt == "json":
                self._reopen_json(path)
            self.stream: TextIO = open(path, "a" if append and existing else "w", encoding="utf-8", newline="")
            self._own = True
        else:
            self.stream, self._own = target, False
        self._first = existing == 0
        if self.fmt == "csv":
            self._csv = csv.writer(self.stream, lineterminator="\n")
            if self._first:
                self._csv.writerow(columns)
        elif self._first:
            self.stream.write("[\n")
        self.stream.flush()

    @staticmethod
    def _reopen_json(path: Path) -> None:
        """Drop a closing ``]`` (and a half-written last line) so rows can be appended."""
        body = "[\n" + ",\n".join(line for line, _ in _json_rows(path.read_text(encoding="utf-8")))
        atomic_write(path, lambda tmp: tmp.write_text(body, encoding="utf-8"))

    def write(self, path: str, score: float | None, raw_score: float | None, error: str | None, **extra) -> dict:
        """Write one row (``extra``: values of the columns after :data:`COLUMNS`); returns it as a dict."""
        row = {"path": path, "score": score, "raw_score": raw_score, "error": error, **extra}
        if self.fmt == "csv":
            self._csv.writerow([_number(row[c]) if c in ("score", "raw_score") else
                                ("" if row.get(c) is None else row[c]) for c in self.columns])
        else:
            self.stream.write(("" if self._first else ",\n") + json.dumps(row))
            self._first = False
        self.count += 1
        self.stream.flush()
        return row

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
