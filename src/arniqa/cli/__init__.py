"""The ``arniqa`` command: one typer app (command.py, with the exit codes); each verb lives in a small
module of this package, parses its options, calls one library function and prints. May import every
other part of arniqa; none imports it. The verb modules import command.py; :func:`main` imports them.
"""

from __future__ import annotations

import os

# PyTorch reads this switch at its first CPU allocation, so it is set before torch is imported:
# CPU tensors of 2 MB and more on transparent huge pages, fewer page faults on fresh tensors
# (measured side by side here: degradation mix about 7 % faster, CPU scoring 2-5 %). =0 opts out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .command import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, connect_ray, fail  # noqa: F401  (re-exported)


def _register() -> None:
    # each module adds its verbs; ``arniqa --help`` lists them in this order
    from . import ablate, benchmark, degradations, evaluate, score, explain, map, report, export, train, demo  # noqa: F401, I001


def main() -> None:
    _register()
    app()
