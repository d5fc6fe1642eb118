"""The ``arniqa`` command: one typer app (command.py, with the exit codes); each verb lives in a small
module of this package, parses its options, calls one library function and prints. May import every
other part of arniqa; none imports it. The verb modules import command.py; :func:`main` imports them.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import suppress

# PyTorch reads this switch at its first CPU allocation, so it is set before torch is imported:
# CPU tensors of 2 MB and more on transparent huge pages, fewer page faults on fresh tensors
# (measured side by side here: degradation mix about 7 % faster, CPU scoring 2-5 %). =0 opts out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import typer

from ..constants import EXIT_BROKEN_PIPE, INTERRUPTED
from .command import (  # noqa: F401  (re-exported)
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    app,
    connect_ray,
    fail,
    print_error,
    reader_gone,
    stopped_line,
)


def _register() -> None:
    # each module adds its verbs; ``arniqa --help`` lists them in this order
    from . import ablate, benchmark, degradations, evaluate, score, explain, map, report, export, train, demo  # noqa: F401, I001


def main() -> None:
    """The ``arniqa`` command. Unlike typer's boxed message, a bad option or argument is one line naming it,
    exit 2: ``error: Invalid value for '--crop-size': 7 is not in the range x>=8 (see arniqa evaluate --help)``."""
    try:
        from ..utils.messages import held_warnings, say, show_warning
        from ..utils.runtime import stop_on_signals

        _register()
    except KeyboardInterrupt:  # Ctrl-C while the verbs' modules import (numpy, PIL, rich: half a second)
        print_error(INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    warnings.showwarning = show_warning
    stop_on_signals()  # SIGTERM, SIGHUP: a clean stop, as Ctrl-C (lock files removed)
    try:
        code = _run()
    except (OSError, SystemExit) as e:
        if not reader_gone(e):
            raise
        # `arniqa score | head -1`: ends as a Unix tool killed by SIGPIPE, without a line (the lock files are
        # removed as the error passed); what stays buffered for standard output goes nowhere, not into the
        # closed pipe at exit (Python's "Exception ignored ... BrokenPipeError")
        with suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        code = EXIT_BROKEN_PIPE
    else:  # the warnings about single files not printed, summed up: every verb's last lines but a stop's
        for line in held_warnings():
            say(line)
    if code == EXIT_INTERRUPTED:
        code, line = stopped_line()
        print_error(line)
    sys.exit(code)


def _run() -> int | None:
    """The verb's exit code; a bad option or argument is one line (Ctrl-C: :data:`EXIT_INTERRUPTED`)."""
    try:
        return app(prog_name="arniqa", standalone_mode=False)  # None, or the code of a typer.Exit
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C, where typer leaves it to click or before click runs
        # (typer < 0.29 returns no 130 of its own)
        return EXIT_INTERRUPTED
    except _option_errors() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `arniqa` alone: the help
            e.show()
        else:
            ctx = getattr(e, "ctx", None)
            # the parser's own errors (Option '-n' requires an argument) come without the command: the words name it
            verb = ctx.command_path if ctx else _verb(sys.argv[1:])
            # a bad value a verb found itself names no option: its message alone, not click's "Invalid value: ..."
            bare = isinstance(e, typer.BadParameter) and e.param is None and e.param_hint is None
            message = e.message if bare else e.format_message()
            print_error(message.rstrip(".") + f" (see {verb} --help)")
        return e.exit_code


def _verb(args: list[str]) -> str:
    """``arniqa VERB`` (``arniqa explain fit``), the verb that the words ``args`` begin with."""
    command, path = typer.main.get_command(app), ["arniqa"]
    for word in args:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        path.append(word)
    return " ".join(path)


def _option_errors() -> type[Exception]:
    """The base of the usage errors typer raises: click's ClickException, of the copy of click that typer carries."""
    return next(base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException")
