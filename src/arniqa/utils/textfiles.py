"""File names and records in text files: a file name in any bytes written into a text file losslessly
(:func:`escape_name`, :func:`unescape_name`; :func:`undecodable` finds the first byte that is not UTF-8), one CSV
record (:func:`csv_line`), the UTF-16 of a text file told by its first bytes (:func:`utf16`), a spreadsheet's CSV
separated by another character than commas, told by its header (:func:`other_separator`), and a number written with a
decimal comma (:func:`decimal_comma`)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable


def escape_name(name: str) -> str:
    """A path as a CSV field: a backslash is written ``\\\\``, a byte of the file name that is not UTF-8
    (held by Python as the lone surrogate U+DC80 + byte, ``os.fsdecode``) ``\\xNN``; :func:`unescape_name`
    reverses it. JSON needs no escape of its own: its ``\\udcNN`` keeps the surrogate."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", name.replace("\\", "\\\\"))


def unescape_name(field: str) -> str:
    """The path :func:`escape_name` wrote as ``field``."""
    return _ESCAPE.sub(lambda m: "\\" if m.group() == "\\\\" else chr(0xDC00 + int(m.group()[2:], 16)), field)


_UNDECODABLE = re.compile("[\udc80-\udcff]")


_ESCAPE = re.compile(r"\\\\|\\x[89a-f][0-9a-f]")


def undecodable(name: str) -> bytes | None:
    """The first byte of ``name`` that is not UTF-8 (decoded with ``surrogateescape``, as :func:`os.fsdecode`
    keeps it), or None."""
    found = _UNDECODABLE.search(name)
    return None if found is None else bytes([ord(found.group()) - 0xDC00])


def utf16(start: bytes) -> str | None:
    """The UTF-16 encoding of a text file starting with the bytes ``start`` (16 are plenty): ``utf-16`` where it
    starts with that byte order mark (Windows' "Unicode" text), ``utf-16-le`` or ``-be`` without one where a zero
    byte is every other byte, on one side (ASCII written so; UTF-8 text holds no NUL); else None."""
    if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    even, odd = start[0 : len(start) & ~1 : 2], start[1 : len(start) & ~1 : 2]
    for zeros, letters, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros and not zeros.strip(b"\0") and b"\0" not in letters:
            return encoding
    return None


def csv_line(fields: Iterable) -> str:
    """One CSV record ended by ``\n``. A field holding a carriage return is quoted as one holding a newline is:
    Python before 3.13 quotes only the line terminator's characters, and a reader ends a record at a bare ``\r``
    (a tar member named ``a\rb.png`` was two records, and ``--resume`` dropped the rows after it)."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow(fields)
    return line.getvalue()[:-2] + "\n"


# what a spreadsheet separates fields with in a file it names CSV or text, but for commas, and when
OTHER_SEPARATORS = {
    ";": "as a spreadsheet saves CSV in a locale that writes decimal commas",
    "\t": "as a spreadsheet saves 'Text (Tab delimited)'",
}
COMMA_SEPARATED = "save it again as a comma-separated CSV"  # what to do with such a file


# a decimal number as a text file writes it (float() takes "4_5" as 45 and other scripts' digits too)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def decimal_comma(field: str) -> bool:
    """Whether ``field`` is a decimal number written with a comma for its point (``0,53``), as a spreadsheet writes
    numbers in a locale that writes them so."""
    return "," in field and DECIMAL.fullmatch(field.strip().replace(",", ".", 1)) is not None


def other_separator(header: list[str]) -> str | None:
    """The separator of a CSV file whose first record, read with commas, is ``header``: one field holding a ';' or a
    tab (:data:`OTHER_SEPARATORS`); None when it is not so."""
    return next((c for c in OTHER_SEPARATORS if len(header) == 1 and c in header[0]), None)


def separated_by(separator: str, header: str) -> str:
    """The problem of a CSV file separated by ``separator`` (:func:`other_separator`), its header ``header``."""
    return (
        f"its fields are separated by {separator!r}, not commas, {OTHER_SEPARATORS[separator]} (the header is one "
        f"column, {header!r})"
    )
