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
