"""The ``arniqa`` command: one typer app; each verb lives in a small module of this package."""

from __future__ import annotations

import typer

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
