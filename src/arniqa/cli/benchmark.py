"""CLI verbs for evidence: ``arniqa benchmark synthetic`` builds a KADID-style benchmark."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from . import app

benchmark_app = typer.Typer(no_args_is_help=True, help="Synthetic benchmarks made with the degradation model.")
app.add_typer(benchmark_app, name="benchmark")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 512x384, got {text!r}") from None
    if w < 1 or h < 1:
        raise typer.BadParameter(f"sizes must be positive, got {text!r}")
    return w, h


@benchmark_app.command("synthetic")
def synthetic(
    pristine: Path = typer.Option(..., "--pristine", help="Folder of pristine images (searched recursively)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (KADID-10k layout)."),
    images: int = typer.Option(0, "--images", help="Use the first N images (0: all)."),
    size: str = typer.Option("512x384", "--size", help="Image size WIDTHxHEIGHT (KADID-10k: 512x384)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the distortions' random internals."),
) -> None:
    """Build a KADID-10k-style set: every image x 23 shared types x 5 levels, labelled with
    KADID-10k's mean MOS per type and level. Reruns keep images already written."""
    from ..data.synthetic import LABEL_NOTE, build_synthetic, list_images

    try:
        paths = list_images(pristine)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--pristine") from None
    if images:
        paths = paths[:images]
    if not paths:
        raise typer.BadParameter(f"{pristine}: no images found", param_hint="--pristine")
    with Progress(transient=True) as bar:
        task = bar.add_task("references", total=len(paths))
        csv_path = build_synthetic(paths, out, _size(size), seed, progress=lambda i, n: bar.update(task, completed=i))
    typer.echo(f"wrote {csv_path} ({len(paths) * 23 * 5} distorted images)")
    typer.echo(LABEL_NOTE)
