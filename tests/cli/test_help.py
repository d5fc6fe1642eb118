"""The help texts: ``arniqa --help`` lists each verb on one line, and no help text loses words to rich's markup
(typer renders help with it: ``[default: ...]`` or ``arniqa[ray]`` vanished from the screen)."""

import re

import pytest
import typer
from typer.testing import CliRunner

from arniqa.cli import _register, app

_register()
runner = CliRunner()
WIDE = {"COLUMNS": "400"}


def commands(command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


EVERY = list(commands(typer.main.get_command(app)))


def flat(text: str) -> str:
    """The help screen as one line of words, box borders and wrapping removed."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("path, command", EVERY, ids=[" ".join(p) or "arniqa" for p, _ in EVERY])
def test_every_bracketed_part_of_a_help_text_is_shown(path, command):
    shown = flat(runner.invoke(app, [*path, "--help"], env=WIDE).output)
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    written = [" ".join(m.split()).replace("\\[", "[") for t in texts for m in re.findall(r"\\?\[[^\]]*\]", t)]
    assert [w for w in written if w not in shown] == []


@pytest.mark.parametrize("path, group", [(p, c) for p, c in EVERY if hasattr(c, "commands")])
def test_the_verb_list_has_one_line_per_verb(path, group):
    screen = runner.invoke(app, [*path, "--help"], env=WIDE).output.splitlines()
    start = next(i for i, line in enumerate(screen) if line.startswith("╭─ Commands"))
    end = next(i for i, line in enumerate(screen) if i > start and line.startswith("╰"))
    assert [line.split()[1] for line in screen[start + 1 : end]] == list(group.commands)
