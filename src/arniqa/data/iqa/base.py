"""What every dataset adapter returns: image records, score metadata, and file-checking helpers."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...utils.files import PATH_MAX, inside, too_long_for_a_path
from ...utils.messages import GET_AGAIN, file_line
from ...utils.names import agree, count
from ...utils.textfiles import (
    COMMA_SEPARATED,
    DECIMAL,
    decimal_comma,
    other_separator,
    separated_by,
    undecodable,
    utf16,
)
from .registry import SCORE_RANGES, ScoreRange

MAX_SCORE = 1e6  # quality scales span at most a few thousand; far beyond, the ridge overflows to a NaN regressor
MAX_LINE = 1 << 20  # characters in one line of a label file (a line holds a few names and numbers)
MAX_ROWS = 1_000_000  # images one label file may name (the largest IQA sets name a few hundred thousand)
MAX_LINES = 2 * (MAX_ROWS + 1)  # a header and the rows, each with a blank line after it (CR CR LF: a CSV written
# in text mode on Windows); blank lines count, so a file of them is refused here, not read to its end
MAX_UNPACKED = 32 << 20  # bytes a compressed label file (.xlsx, .mat) may unpack to (SPAQ's: about 3 MB)


class DatasetError(ValueError):
    """A dataset folder or label file is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class Record:
    """One image of an IQA dataset.

    ``reference``, ``distortion`` and ``level`` are set for synthetic datasets (distorted copies of
    pristine references) and ``None`` for authentic ones (a CSV may give any of them). ``line`` is where the
    label file names the image (its line; the row of a workbook or a .mat list), for messages.
    """

    path: Path
    score: float
    reference: str | None = None
    distortion: str | None = None
    level: int | None = None
    line: int | None = None


@dataclass
class IQADataset:
    """The images of a dataset in the row order of its label file (split indices depend on it).

    ``score_range`` gives the native scale and direction (``kind`` "mos": higher is better,
    "dmos": lower is better); scores are never rescaled or inverted here.
    ``short_side`` is an evaluation-protocol pre-resize (SPAQ: 512), ``None`` for the others.
    """

    name: str
    root: Path
    records: list[Record]
    score_range: ScoreRange
    synthetic: bool = False
    short_side: int | None = None
    label_file: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def paths(self) -> list[Path]:
        return [r.path for r in self.records]

    @property
    def scores(self) -> np.ndarray:
        return np.array([r.score for r in self.records], dtype=np.float64)

    @property
    def references(self) -> list[str] | None:
        """Reference name per image (synthetic datasets), else ``None``."""
        return [r.reference for r in self.records] if self.synthetic else None

    @property
    def distortions(self) -> list[str] | None:
        """Distortion type per image, or ``None`` when no image has one (an authentic dataset; a labelled CSV
        without a distortion column: no per-type table of one type named None). A CSV's types need no
        ``reference`` column: references only make the splits reference-disjoint."""
        kinds = [r.distortion for r in self.records]
        return kinds if any(k is not None for k in kinds) else None

    @property
    def score_kind(self) -> str:
        return self.score_range.kind

    def missing_images(self) -> list[Path]:
        """Image files named by the label file but absent on disk."""
        return [p for p in self.paths if not p.is_file()]


def score_range(name: str) -> ScoreRange:
    """The native score range and direction of a known dataset (from :data:`.registry.SCORE_RANGES`)."""
    return SCORE_RANGES[name]


AS_DISTRIBUTED = "give the dataset's folder as it is distributed"  # what to do when a dataset's file is not there
LABELS_AS_DISTRIBUTED = "give the dataset's label file as it is distributed"  # for a file that cannot be its labels
NOT_ONE = "so not a label file of one dataset"  # a file beyond the bounds on lines and rows


def not_found(path: Path, kind: str, what: str) -> DatasetError:
    """The error for a dataset's ``kind`` (file, folder) ``path`` that is not there, or is something else (a folder
    named as the label file), ``what`` it should hold."""
    problem = f"not a {kind}" if path.exists() else f"{kind} not found"
    return DatasetError(file_line(path, f"{problem} (expected {what})", f"{AS_DISTRIBUTED}{near(path, kind)}"))


def near(path: Path, kind: str) -> str:
    """Where the missing ``kind`` ``path`` is a level off: `` (FOLDER holds REL)`` when one folder does, where FOLDER
    is the nearest folder above ``path`` that is there (the dataset root given, most likely) moved a level up or down
    (a --root one level too high or too low, an archive unpacked into a folder of its own); else empty."""
    if path.exists():
        return ""
    found = path.parent
    while not found.is_dir() and found != found.parent:
        found = found.parent
    rel = path.relative_to(found)
    try:
        below = sorted(d for d in found.iterdir() if d.is_dir())
    except OSError:  # no permission to list it
        below = []
    there = Path.is_dir if kind == "folder" else Path.is_file
    holds = [d for d in [found.parent, *below] if there(d / rel)]
    return f" ({holds[0]} holds {rel})" if len(holds) == 1 else ""


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise not_found(path, "folder", what)
    return path


def require_file(path: Path, what: str) -> Path:
    """``path``, a file that holds something (an empty one, a download or copy cut short, said "missing columns
    [...]; found []"), else a DatasetError saying what it should be."""
    if not path.is_file():
        raise not_found(path, "file", what)
    if not path.stat().st_size:
        raise DatasetError(file_line(path, f"empty file (0 bytes; expected {what})", GET_AGAIN))
    return path


def label_lines(f, path: Path) -> Iterator[str]:
    """The lines of the label file ``f`` (open as text), read at most :data:`MAX_LINE` characters at a time: a
    longer line is a DatasetError before it is held (a 100 MB line of commas was a list of 100 million fields).
    At most :data:`MAX_LINES`, blank ones too: blank lines hold no row, so 100 MB of them was read for 80 s to say
    "no rows" (1 GB: over 5 minutes)."""
    number = 0
    while line := f.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise DatasetError(
                file_line(
                    f"{path}, line {number}", f"longer than {MAX_LINE:,} characters, {NOT_ONE}", LABELS_AS_DISTRIBUTED
                )
            )
        if number > MAX_LINES:
            raise DatasetError(file_line(path, f"more than {MAX_LINES:,} lines, {NOT_ONE}", LABELS_AS_DISTRIBUTED))
        yield line


def text_encoding(path: Path) -> str:
    """The encoding of the text label file ``path``: UTF-16 where :func:`~arniqa.utils.textfiles.utf16` finds it (with
    its byte order mark, as TID2013's mos_with_names.txt circulates re-saved, or without), else UTF-8, with or
    without its BOM."""
    with open(path, "rb") as f:
        return utf16(f.read(16)) or "utf-8-sig"


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (its first row), spaces around them dropped."""
    with open(path, newline="", encoding=text_encoding(path)) as f:
        return [h.strip() for h in next(csv.reader(label_lines(f, path)), [])]


def column_indices(
    path: Path, header: list[str], columns, optional=(), what: str = "the dataset's label file"
) -> list[tuple[int, str]]:
    """``(index in header, column)`` for each of ``columns`` (all needed) and of ``optional`` the header has, names
    compared with spaces around them dropped and letter case ignored (``Image_name``, ``mos`` as written by hand
    or another tool); errors name ``path``."""
    folded = [str(h).strip().casefold() for h in header]
    missing = [c for c in columns if c.casefold() not in folded]
    if missing:
        found = [str(h).strip() for h in header]
        if separator := other_separator(found):
            raise DatasetError(
                file_line(path, separated_by(separator, found[0]), f"{COMMA_SEPARATED} (expected {what})")
            )
        raise DatasetError(
            file_line(path, f"missing {agree(len(missing), 'column')} {missing} (found {found})", f"give {what}")
        )
    wanted = (*columns, *optional)
    twice = [c for c in wanted if folded.count(c.casefold()) > 1]
    if twice:  # which of the two would hold the values?
        raise DatasetError(
            file_line(
                path,
                f"column {twice[0]!r} appears twice in the header (spaces around names and letter case are ignored)",
                "keep one",
            )
        )
    return [(folded.index(c.casefold()), c) for c in wanted if c.casefold() in folded]


SAVE_AS_UTF8 = "save it as UTF-8 ('CSV UTF-8' in a spreadsheet)"  # a spreadsheet's CSV in its system's code page


def read_csv_rows(
    path: Path, columns: list[str], what: str, optional: tuple[str, ...] = (), names: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with a header that holds at least ``columns``, each with its line in the file (where it
    ends: blank lines and quoted line breaks count) and holding those columns and those of ``optional`` the header
    has (no others: what a row holds stays small whatever the file's width; names as :func:`column_indices` matches
    them); errors name the file. At most :data:`MAX_ROWS` rows of :data:`MAX_LINE` characters a line, and no field
    kept longer than a path (:data:`~arniqa.utils.files.PATH_MAX`: an image name is one, a number far shorter). The
    text is UTF-8 but in the columns of file ``names``, which may hold any bytes, as a name on disk may (a Latin-1 name
    made on an old file server): they are kept as :func:`os.fsdecode` keeps them, and name that file."""
    require_file(path, what)
    try:
        with open(path, newline="", encoding=text_encoding(path), errors="surrogateescape") as f:
            reader = csv.reader(label_lines(f, path), skipinitialspace=True)  # a ', "name"' field is quoted
            header = [h.strip() for h in next(reader, [])]
            _utf8(path, 1, header)
            kept = column_indices(path, header, columns, optional, what)
            need, last = max((i + 1, c) for i, c in kept if c in columns)  # fields up to the last column needed
            rows = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # a blank line (or one of spaces and tabs), as csv.DictReader passed over
                if len(rows) == MAX_ROWS:
                    raise DatasetError(
                        file_line(path, f"more than {MAX_ROWS:,} rows, {NOT_ONE}", LABELS_AS_DISTRIBUTED)
                    )
                if any(cell.strip() for cell in row[len(header) :]):  # "a.png,3,45" read 3 and left 45 over
                    raise DatasetError(
                        f"{path}, line {reader.line_num}: {len(row)} fields where the header names {len(header)} "
                        "(a decimal comma?); write decimal numbers with a point, and quote a field holding a comma"
                    )
                if len(row) < need:  # "I01_01_02.png,I01.png" said "score '' is not a number"
                    raise DatasetError(
                        f"{path}, line {reader.line_num}: {count(len(row), 'field')} where {need} are needed (up to "
                        f"its {last} column); complete the row or remove it"
                    )
                cells = {c: row[i].strip() if i < len(row) else "" for i, c in kept}
                for c, v in cells.items():  # refused here, not after the file is held whole (1 GB of 128 KB names)
                    if size := too_long_for_a_path(v):
                        raise DatasetError(
                            f"{path}, line {reader.line_num}: its {c} field is {size:,} bytes, longer than any path "
                            f"this system opens ({PATH_MAX:,} bytes), so no image name (nor a number); correct the file"
                        )
                _utf8(path, reader.line_num, [v for c, v in cells.items() if c not in names])
                rows.append((reader.line_num, cells))
    except UnicodeDecodeError as e:  # UTF-16 cut off in the middle of a character
        bad = e.object[e.start : e.start + 1]
        raise DatasetError(file_line(path, f"not UTF-8 text (byte {bad!r}: {e.reason})", SAVE_AS_UTF8)) from e
    except csv.Error as e:
        raise DatasetError(file_line(path, f"not a readable CSV file ({e})", f"give {what}")) from e
    if not rows:
        raise DatasetError(file_line(path, "no rows", f"give {what}"))
    return rows


def _utf8(path: Path, line: int, cells: list[str]) -> None:
    """DatasetError where one of ``cells``, read from ``line`` of ``path``, holds a byte that is not UTF-8."""
    bad = next((b for cell in cells if (b := undecodable(cell))), None)
    if bad is not None:
        raise DatasetError(f"{path}, line {line}: not UTF-8 text (byte {bad!r}); {SAVE_AS_UTF8}")


def parse_score(value: str, path: Path, line: int) -> float:
    """A finite float from a label file cell, written as a decimal number (``float`` also takes ``4_5`` as 45 and
    other scripts' digits); the error names the file and line."""
    if isinstance(value, str) and not value.strip():  # "a.png," or, where the score column is optional, "a.png"
        raise DatasetError(
            f"{path}, line {line}: the score is missing (an empty field, or the row ends before it); "
            "write the image's score or remove the row"
        )
    if not isinstance(value, str) or not DECIMAL.fullmatch(value.strip()):
        advice = "; write decimal numbers with a point, not a comma" if decimal_comma(str(value)) else ""
        raise DatasetError(f"{path}, line {line}: score {value!r} is not a number{advice}")
    score = float(value)
    if not np.isfinite(score):
        raise DatasetError(f"{path}, line {line}: score {value!r} is not finite")
    return score


def check_labels(dataset: IQADataset) -> IQADataset:
    """Raise if an image path leaves the dataset root, an image is named twice (it could fall in both the
    training and the test split; two names of one file, through a symbolic or a hard link, count too: see
    :func:`file_key`) or a score is not a number within ±:data:`MAX_SCORE`. The root check is lexical (absolute
    paths and '..' above the root are refused), so that symlinked image folders stay usable; the records it
    returns name their images with every '..' collapsed as checked (``sub/../a.png`` is ``a.png``: through the OS,
    with ``sub`` a link, it would be ``a.png`` beside the link's target, outside the root), and as :func:`on_disk`
    finds them where only the letter case of a name differs."""
    label = dataset.label_file or dataset.root
    unit = "row" if label.suffix in (".xlsx", ".mat") else "line"
    root = Path(os.path.abspath(dataset.root))
    first: dict[object, tuple[Record, Path]] = {}  # by file_key
    listings: dict[Path, dict[str, list[str]]] = {}  # on_disk's folders read
    records = []
    for record in dataset.records:
        if not abs(record.score) <= MAX_SCORE:
            raise DatasetError(
                f"{label}, {unit} {record.line}: score {record.score:g} is not a number within ±{MAX_SCORE:g}; "
                "give the scores on the dataset's own scale"
            )
        path = Path(os.path.abspath(record.path))
        if not inside(path, root):
            raise DatasetError(
                f"{label}, {unit} {record.line}: image {str(record.path)!r} is outside the dataset root "
                f"{dataset.root}; name images inside it (no absolute path, no '..' above the root)"
            )
        path = on_disk(path, root, listings)
        try:
            key = file_key(path)
        except ValueError:  # os.stat's "embedded null byte"
            raise DatasetError(
                f"{label}, {unit} {record.line}: image {str(record.path)!r} holds a NUL character; correct the name"
            ) from None
        seen, seen_path = first.setdefault(key, (record, path))
        if seen is not record:
            name, other = str(path.relative_to(root)), str(seen_path.relative_to(root))
            image = f"image {name!r}" if name == other else f"image {other!r} (also as {name!r}, through a link)"
            raise DatasetError(
                f"{label}: {image} is named twice ({unit}s {seen.line} and {record.line}); remove the repeated "
                f"{unit}, or a split could hold the image in train and test"
            )
        checked = dataset.root / path.relative_to(root)  # the path checked, not a '..' the OS would resolve
        records.append(record if checked == record.path else replace(record, path=checked))
    dataset.records = records
    return dataset


def on_disk(path: Path, root: Path, listings: dict[Path, dict[str, list[str]]]) -> Path:
    """``path`` (absolute, inside ``root``) as the disk names it: where a file or folder of the path is not there as
    written but one name differing only in letter case is (TID2013 mixes letter cases: a label's i01_01_1.bmp and
    a file I01_01_1.bmp are one file on Windows, none on a case-sensitive file system), that name; else ``path``.
    ``listings`` keeps the folders read, by letter-case-free name."""
    if os.path.lexists(path):
        return path
    found = root
    for part in path.relative_to(root).parts:
        if not os.path.lexists(found / part):
            if found not in listings:
                try:
                    names = os.listdir(found)
                except OSError:  # not there, or not a folder: the path stays as written, "not found"
                    names = []
                listings[found] = {}
                for name in names:
                    listings[found].setdefault(name.casefold(), []).append(name)
            same = listings[found].get(part.casefold(), [])
            if len(same) != 1:
                return path
            part = same[0]
        found = found / part
    return found


def found(root: Path, *parts: str | Path) -> Path:
    """``root / parts`` as the disk names it (:func:`on_disk`): a label file or folder whose name differs only in
    letter case (``DMOS.csv``, ``Distorted_Images/``: an archive re-packed, a folder renamed on Windows), alone in its
    folder, is that one."""
    path = root.joinpath(*parts)
    return on_disk(path, root, {}) if inside(path, root) else path  # one outside the root is refused later


def file_key(path: Path) -> tuple[int, int] | str:
    """What names one file whatever the name: its device and inode (a hard link, or a symbolic one, is the
    same file), or, where no file is there to stat (``check=False``), its real path. One stat: 6x cheaper than
    the real path (0.07 s against 0.43 s for 40,000 paths)."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)  # 0: a file system without inodes


def check_images(dataset: IQADataset) -> IQADataset:
    """Raise if any image the label file names is missing (first few listed): to copy them again where some are,
    or, where none is, the folder they were looked for in and the one a level off that holds the first (:func:`near`:
    an archive unpacked into a folder of its own)."""
    missing = dataset.missing_images()
    label = dataset.label_file or dataset.root
    gone = set(missing)
    for record in dataset.records:  # a name in a code page's bytes, the file on disk in UTF-8
        name = os.path.relpath(record.path, dataset.root)  # as the label file names it
        if (bad := undecodable(name)) and record.path in gone:
            raise DatasetError(
                f"{label}, line {record.line}: no image {os.fsencode(name)!r} is there, a name that is not UTF-8 "
                f"text (byte {bad!r}); where the names on disk are UTF-8, {SAVE_AS_UTF8}"
            )
    if missing:
        # repr: no control characters from a label file; a folder of the image's name is there, not the image
        shown = [repr(str(p)) + (" (not a file)" if p.exists() else "") for p in missing[:5]]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        if len(missing) < len(dataset):
            raise DatasetError(
                f"{label}: {count(len(missing), 'image')} it names not found: {', '.join(shown)}{more}; copy or "
                "download them again"
            )
        raise DatasetError(
            f"{label}: none of the {count(len(missing), 'image')} it names is there (the first: {shown[0]}); "
            f"{AS_DISTRIBUTED}, with its images in {missing[0].parent}{near(missing[0], 'file')}"
        )
    return dataset
