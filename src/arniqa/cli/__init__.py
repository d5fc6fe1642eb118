"""The ``arniqa`` command: one typer app; each verb lives in a small module of this package."""

from __future__ import annotations

import os

# PyTorch reads this switch at its first CPU allocation, so it is set before torch is imported:
# CPU tensors of 2 MB and more on transparent huge pages, fewer page faults on fresh tensors
# (measured side by side here: degradation mix about 7 % faster, CPU scoring 2-5 %). =0 opts out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import typer  # noqa: E402

app = typer.Typer(no_args_is_help=True, add_completion=False, help="ARNIQA image quality toolkit.")


@app.callback()
def _root() -> None:
    """ARNIQA: no-reference image quality assessment (degrade, train, evaluate, score)."""


def _register() -> None:
    from . import ablate, benchmark, degradations, evaluate, score, train  # noqa: F401  (each adds its verbs)


@app.command()
def version() -> None:
    """Print the package version."""
    from arniqa import __version__

    typer.echo(__version__)


def main() -> None:
    _register()
    app()
