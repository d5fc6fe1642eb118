"""The lines arniqa writes for people (utils/messages.py)."""

import os
import warnings

from arniqa.utils.messages import error_line, one_line, printable, show_warning, words


def test_a_file_name_that_is_not_utf8_shows_its_bytes():
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes, held by Python as a lone surrogate
    assert printable(name) == "caf\\xe9.jpg"
    assert printable("café.jpg") == "café.jpg"  # UTF-8 names stay as they are


def test_a_message_stays_one_line_whatever_the_name_holds():
    name = "a\nb\r\x1b[31mc\x7f.jpg"  # a newline, a carriage return, a terminal escape, DEL
    assert one_line(name) == "a\\x0ab\\x0d\\x1b[31mc\\x7f.jpg"
    assert error_line(f"{name}: no such file") == "error: a\\x0ab\\x0d\\x1b[31mc\\x7f.jpg: no such file"


def test_a_library_message_of_several_lines_reads_as_one_line_of_words():
    text = "Load model failed:\n  [ONNXRuntimeError] : 7 :\tINVALID_PROTOBUF\r\n"
    assert words(text) == "Load model failed: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF"
    assert words(" \n\t") == ""


def test_a_python_warning_is_one_warning_line_on_stderr(capsys):
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        warnings.warn("x.png: 64x48 exceeds max_side=40;\ndownscaled", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: x.png: 64x48 exceeds max_side=40;\\x0adownscaled\n"
