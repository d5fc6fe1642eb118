"""The terminal: rich consoles that print text as it is. A file named ``[red]x.png`` or ``a[/]b.png`` is a name,
not colour markup (rich's default reads it as markup: the name came out wrong, or a MarkupError stopped the run)."""

from __future__ import annotations

from rich.console import Console


def terminal(stderr: bool = False, quiet: bool = False) -> Console:
    """A console on stdout (or ``stderr``) with markup and highlighting off; ``quiet`` prints nothing."""
    return Console(stderr=stderr, quiet=quiet, markup=False, highlight=False)
