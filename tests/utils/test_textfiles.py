"""csv_line and utf16: a CSV record stays one record whatever its fields hold, and UTF-16 text is told from UTF-8
by its first bytes."""

import pytest

from arniqa.utils.textfiles import csv_line


@pytest.mark.parametrize("field", ["a\rb.png", "a\nb.png", "a\r\nb.png", 'q"uote,comma.png', "plain.png", ""])
def test_csv_line_is_one_record_whatever_the_field_holds(field):
    """A bare CR was left unquoted (Python's csv quotes only the line terminator's characters), and readers ended
    the record there: maps.csv and scores.csv held two records for one image."""
    import csv
    import io

    line = csv_line([field, "0.5"])
    assert line.endswith("\n") and not line.endswith("\r\n")
    assert list(csv.reader(io.StringIO(line, newline=""))) == [[field, "0.5"]]


@pytest.mark.parametrize("text", ["image,mos\n", "5.1 i01_01_1.bmp\n", "path,dmos\r\ncafé.png,3\r\n", "a"])
def test_utf16_tells_utf16_text_from_utf8_by_its_first_bytes(text):
    """UTF-16 with its byte order mark or without it (ASCII, and Latin-1 letters, hold a zero byte every other
    byte), in either byte order; UTF-8 text, which holds no zero byte, never."""
    from arniqa.utils.textfiles import utf16

    for encoding, found in (("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")):
        data = text.encode(encoding)
        assert utf16(data[:16]) == found
        assert data.decode(utf16(data[:16])) == text
    assert utf16(text.encode("utf-8")[:16]) is None and utf16(text.encode("utf-8-sig")[:16]) is None
    assert utf16(b"") is None
