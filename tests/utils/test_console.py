"""utils/console: text is printed as it is, whatever brackets a file name holds."""

import pytest

from arniqa.utils.console import terminal

NAMES = ["[red]x.png", "a[/]b.png", "[bold]photos/[link=javascript:x]y.jpg", "[/red] 2024.png"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stderr", [False, True])
def test_names_with_brackets_are_printed_verbatim(capsys, name, stderr):
    # rich's default Console dropped "[red]" (wrong name) or raised MarkupError on "[/]"
    terminal(stderr=stderr).print(f"wrote {name}", soft_wrap=True)
    out, err = capsys.readouterr()
    assert (err if stderr else out) == f"wrote {name}\n"


def test_quiet_prints_nothing_and_does_not_parse(capsys):
    terminal(quiet=True).print("a[/]b.png")
    assert capsys.readouterr() == ("", "")


def test_every_console_in_the_package_is_made_here():
    """One definition: a ``Console(...)`` made elsewhere would read names as markup again."""
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "src" / "arniqa"
    makers = [
        p.relative_to(source).as_posix()
        for p in source.rglob("*.py")
        if "Console(" in p.read_text() or "(Console)" in p.read_text()
    ]
    assert makers == ["utils/console.py"]


def test_a_line_of_text_stays_one_line_and_a_table_fits_the_width(capsys, monkeypatch):
    """`wrote PATH`, a failed reference, a training note were cut into lines of the terminal's width (80 columns in
    a log file), so a long path came out on two lines; a table still fits the width, its cells wrapped, not cut."""
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", "40")
    line = "wrote " + "/very/long/folder" * 6 + "/scores.csv"
    table = Table("path", "score")
    table.add_row("a photo " * 10, "0.5")
    console = terminal()
    console.print(line)
    console.print(table)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == line
    assert all(len(row) <= 40 for row in out[1:])
    assert "".join(out[1:]).count("photo") == 10  # every word is there


def _off_a_terminal(monkeypatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # what would make rich take a log file for a terminal
        monkeypatch.delenv(name, raising=False)


def _run_a_bar(**options) -> None:
    from arniqa.utils.console import progress_bar

    with progress_bar(transient=False, **options) as bar:
        task = bar.add_task("images", total=3)
        for _ in range(3):
            bar.advance(task)
        terminal(stderr=True).print("a line said during the run")


def test_off_a_terminal_a_bar_writes_nothing_and_lines_stay_lines(capsys, monkeypatch):
    """One rule for every verb's bar: `arniqa score` drew its last frame into a log file (and `evaluate`, `train`,
    `distort`... each had a rule of its own); off a terminal a bar writes no frame, no blank line, no control code."""
    _off_a_terminal(monkeypatch)
    _run_a_bar()
    assert capsys.readouterr() == ("", "a line said during the run\n")


def test_on_a_terminal_the_bar_is_drawn_on_stderr_unless_it_is_not_shown(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as rich sees one
    _run_a_bar()
    out, err = capsys.readouterr()
    assert out == "" and "\x1b[" in err and "images" in err and "100%" in err
    assert "a line said during the run" in err
    _run_a_bar(show=False)  # the caller's choice (train's log.progress: false, the Python API's progress=False)
    assert capsys.readouterr() == ("", "a line said during the run\n")


def test_every_progress_bar_in_the_package_is_made_here():
    """One rule: a ``Progress(...)``, ``track(...)`` or ``.status(...)`` made elsewhere would draw by a rule of its
    own (a log file got frames from one verb and not from another)."""
    import re
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "src" / "arniqa"
    call = re.compile(r"\bProgress\(|(?<![.\w])track\(|\.status\(")
    makers = [p.relative_to(source).as_posix() for p in source.rglob("*.py") if call.search(p.read_text())]
    assert makers == ["utils/console.py"]
