"""The terminal: rich consoles that print text as it is. A file named ``[red]x.png`` or ``a[/]b.png`` is a name,
not colour markup (rich's default reads it as markup: the name came out wrong, or a MarkupError stopped the run).
A line of text stays one line whatever the width (a log file or ``grep`` sees the path whole); tables fit it."""

from __future__ import annotations

from rich.console import Console


class _Terminal(Console):
    def print(self, *objects, soft_wrap: bool | None = None, **options) -> None:
        if soft_wrap is None and all(isinstance(o, str) for o in objects):  # text, not a table: one line
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **options)


def terminal(stderr: bool = False, quiet: bool = False) -> Console:
    """A console on stdout (or ``stderr``) with markup and highlighting off; ``quiet`` prints nothing."""
    return _Terminal(stderr=stderr, quiet=quiet, markup=False, highlight=False)
