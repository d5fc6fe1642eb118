"""The terminal: rich consoles that print text as it is. A file named ``[red]x.png`` or ``a[/]b.png`` is a name,
not colour markup (rich's default reads it as markup: the name came out wrong, or a MarkupError stopped the run).
A line of text stays one line whatever the width (a log file or ``grep`` sees the path whole); tables fit it.
Progress bars have one rule, :func:`progress_bar`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress


class _Terminal(Console):
    def print(self, *objects, soft_wrap: bool | None = None, **options) -> None:
        if soft_wrap is None and all(isinstance(o, str) for o in objects):  # text, not a table: one line
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **options)


def terminal(stderr: bool = False, quiet: bool = False) -> Console:
    """A console on stdout (or ``stderr``) with markup and highlighting off; ``quiet`` prints nothing."""
    return _Terminal(stderr=stderr, quiet=quiet, markup=False, highlight=False)


def progress_bar(*columns, show: bool = True, **options) -> Progress:
    """A rich progress bar, ``Progress(*columns, **options)``, every verb's: drawn on stderr while stderr is a
    terminal (and ``show``); elsewhere (a log file, a pipe, CI) it writes nothing, no frame, no blank line, no
    control code. Lines printed on a :func:`terminal` on stderr go above it while it is drawn; an error line ends it
    (:func:`end_progress_bars`)."""
    from rich.progress import Progress

    class Bar(Progress):  # known while drawn: end_progress_bars stops it
        def start(self) -> None:
            super().start()
            _DRAWN.append(self)

        def stop(self) -> None:
            super().stop()
            if self in _DRAWN:
                _DRAWN.remove(self)

    live = show and terminal(stderr=True).is_terminal
    # not drawn: a quiet console too, as rich before 14.3 printed a blank line when a disabled bar stopped
    return Bar(*columns, console=terminal(stderr=True, quiet=not live), disable=not live, **options)


_DRAWN: list[Progress] = []  # the progress bars started and not yet stopped


def end_progress_bars() -> None:
    """Stop the progress bars being drawn (a transient one is cleared): a line written to the terminal by other
    means than rich (the ``error:`` line) then starts a line of its own, not the end of the bar's."""
    for bar in reversed(list(_DRAWN)):
        bar.stop()
