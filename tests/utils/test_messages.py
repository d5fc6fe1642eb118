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


def test_no_character_that_ends_a_line_is_left_in_one_line():
    """A file name holding U+2028 or U+2029 (line and paragraph separators) broke a one-line message in some
    terminals and log viewers. The reference: every character Python's str.splitlines ends a line at."""
    breaks = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1]
    assert {"\n", "\r", "\x85", "\u2028", "\u2029"} <= set(breaks)
    assert [c for c in breaks if len(one_line(f"a{c}b.jpg").splitlines()) > 1] == []
    assert one_line("a\u2028b\u2029c\x85.jpg") == "a\\u2028b\\u2029c\\x85.jpg"


def test_a_library_message_of_several_lines_reads_as_one_line_of_words():
    text = "Load model failed:\n  [ONNXRuntimeError] : 7 :\tINVALID_PROTOBUF\r\n"
    assert words(text) == "Load model failed: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF"
    assert words(" \n\t") == ""


def test_a_python_warning_is_one_warning_line_on_stderr(capsys):
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        warnings.warn("x.png: 64x48 exceeds max_side=40;\ndownscaled", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: x.png: 64x48 exceeds max_side=40;\\x0adownscaled\n"


def test_bidirectional_controls_in_a_name_are_shown_escaped_not_obeyed():
    """A file named "\\u202ertl.jpg" (RIGHT-TO-LEFT OVERRIDE) showed as "gpj.ltr" in messages and reports: a name can
    pass one kind of file off as another. Every bidirectional control (Unicode's Bidi_Control: the embeddings,
    overrides, isolates and their ends, by their bidirectional class, and the three marks) is escaped as \\uNNNN;
    right-to-left letters are text and stay."""
    import sys
    import unicodedata

    classes = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
    controls = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.bidirectional(chr(c)) in classes]
    controls += ["\u200e", "\u200f", "\u061c"]  # LEFT-TO-RIGHT, RIGHT-TO-LEFT and ARABIC LETTER MARK
    assert len(controls) == 12
    for c in controls:
        assert printable(f"a{c}b.jpg") == f"a\\u{ord(c):04x}b.jpg" == one_line(f"a{c}b.jpg")
    assert one_line("\u202ertl\x1b.jpg") == "\\u202ertl\\x1b.jpg"
    assert error_line("\u2067x.jpg: no such file") == "error: \\u2067x.jpg: no such file"
    assert printable("שלום.jpg") == "שלום.jpg" and printable("صورة.png") == "صورة.png"


def test_warnings_about_single_files_print_the_first_few_of_each_kind_then_one_line_for_the_rest(capsys, monkeypatch):
    """10,000 animated GIFs printed 10,000 warning lines, burying the run's last lines. Now the first SHOWN_PER_KIND
    (5) of each kind, and one line per kind for the others; ARNIQA_WARNINGS=all prints every one."""
    from arniqa.utils.messages import held_warnings, warn_file

    monkeypatch.delenv("ARNIQA_WARNINGS", raising=False)
    held_warnings()  # what a command run in this process before left (its counts, its note column): as at its end
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        for k in range(12):
            warn_file(f"{k}.gif: animated", "animated, each scored on its first frame")
            if k < 7:
                warn_file(f"{k}.png: too big", "larger than max_side=32, each downscaled")
        warnings.warn("not about one file", UserWarning, stacklevel=1)
    said = capsys.readouterr().err.splitlines()
    assert said == [
        *[line for k in range(5) for line in (f"warning: {k}.gif: animated", f"warning: {k}.png: too big")],
        "warning: not about one file",
    ]
    assert held_warnings() == [
        "warning: 7 more images animated, each scored on its first frame (the first 5 are named above; "
        "ARNIQA_WARNINGS=all names every one)",
        "warning: 2 more images larger than max_side=32, each downscaled (the first 5 are named above; "
        "ARNIQA_WARNINGS=all names every one)",
    ]
    assert held_warnings() == []  # counted again from zero
    monkeypatch.setenv("ARNIQA_WARNINGS", "all")
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        for k in range(12):
            warn_file(f"{k}.gif: animated", "animated")
    assert capsys.readouterr().err.splitlines() == [f"warning: {k}.gif: animated" for k in range(12)]
    assert held_warnings() == []


def test_a_warning_about_a_file_is_said_each_time_and_not_kept():
    """Python's default filter showed a message once per place: the same file scored again got no warning, and
    every message shown was kept in the module's registry (57 MB at 200,000 files)."""
    from arniqa.utils import messages

    registry = messages.__dict__.setdefault("__warningregistry__", {})
    with warnings.catch_warnings(record=True) as said:
        warnings.resetwarnings()  # Python's own default: no filter (pytest sets its own)
        before = len(registry)
        for _ in range(3):
            for k in range(50):
                messages.warn_file(f"{k}.gif: animated", "animated", stacklevel=0)  # raised here, in messages
    assert [str(w.message) for w in said] == [f"{k}.gif: animated" for k in range(50)] * 3
    assert len(registry) - before <= 1  # the filters' version, no message


def test_the_line_of_a_refused_file_is_path_problem_and_what_to_do():
    from arniqa.data.images import ImageError
    from arniqa.utils.messages import file_line, with_fix

    assert (
        file_line("a/b.jpg", "empty file (0 bytes)", "copy it again") == "a/b.jpg: empty file (0 bytes); copy it again"
    )
    assert file_line("a/b.jpg", "empty file (0 bytes)") == "a/b.jpg: empty file (0 bytes)"  # no fix: no "; "
    assert with_fix("no such file", "check the path") == "no such file; check the path"
    e = ImageError("a/b.jpg", "no such file", "check the path")  # an image's error is that line, its reason the rest
    assert (str(e), e.reason) == ("a/b.jpg: no such file; check the path", "no such file; check the path")
    assert str(ImageError("", "an empty path")) == "'': an empty path"


def test_a_files_note_is_its_warnings_without_its_name_and_the_summary_says_where_every_one_is(monkeypatch):
    """The line summing up the warnings not printed said only ARNIQA_WARNINGS=all; where the rows carry every one (the
    note column of a result file) it says so too, for that run only."""
    import threading

    from arniqa.utils.messages import SHOWN_PER_KIND, held_warnings, note, notes_in, noting, warn_file

    monkeypatch.setattr(warnings, "showwarning", show_warning)
    monkeypatch.delenv("ARNIQA_WARNINGS", raising=False)
    kept: dict[str, list[str]] = {}

    def read(name: str) -> None:  # a decoding thread: its own file's warnings only
        with noting() as notes:
            warn_file(f"{name}: downscaled", "downscaled")
            warn_file(f"{name}: first frame", "first frame")
            warn_file(f"{name}: downscaled", "downscaled")
        kept[name] = notes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=read, args=(f"{i}.gif",)) for i in range(SHOWN_PER_KIND + 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        warn_file("outside.gif: downscaled", "downscaled")  # no noting(): no file's note
    assert kept == {
        f"{i}.gif": [f"{i}.gif: {w}" for w in ("downscaled", "first frame", "downscaled")] for i in range(7)
    }
    assert note(kept["0.gif"], "0.gif") == "downscaled; first frame"  # each once, without the name the row says
    assert note([], "0.gif") is None and note(["a\nb.gif: x\ny"], "a\nb.gif") == "x\\x0ay"
    held_warnings()
    monkeypatch.setattr(warnings, "showwarning", show_warning)
    notes_in("the note column of s.csv")
    for i in range(SHOWN_PER_KIND + 1):
        warn_file(f"{i}.gif: downscaled", "downscaled")
    assert held_warnings() == [
        f"warning: 1 more image downscaled (the first {SHOWN_PER_KIND} are named above, every one in the note column "
        "of s.csv; ARNIQA_WARNINGS=all names every one)"
    ]
    for i in range(SHOWN_PER_KIND + 1):
        warn_file(f"{i}.gif: downscaled", "downscaled")
    assert "note column" not in held_warnings()[0]  # the next run's rows are not in that file
