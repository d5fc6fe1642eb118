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
    makers = [p.relative_to(source).as_posix() for p in source.rglob("*.py") if "Console(" in p.read_text()]
    assert makers == ["utils/console.py"]
