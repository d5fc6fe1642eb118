"""CLI verbs for evidence: ``arniqa benchmark synthetic`` builds a KADID-style benchmark."""

from __future__ import annotations

from pathlib import Path

import typer

from ..constants import MAX_SEED, SYNTHETIC_SIZE
from .command import Verbs, app, fail, go_on, output_folders, writing

benchmark_app = typer.Typer(
    cls=Verbs, no_args_is_help=True, help="Synthetic benchmarks made with the degradation model."
)
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("synthetic")
def synthetic(
    pristine: Path = typer.Option(
        ..., "--pristine", help="Folder of pristine images (searched recursively).", readable=False
    ),
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Output folder (KADID-10k layout).", readable=False),
    images: int = typer.Option(0, "--images", min=0, help="Use the first N images (0: all)."),
    size: str = typer.Option(
        "x".join(map(str, SYNTHETIC_SIZE)), "--size", help="Image size WIDTHxHEIGHT, sides 16 to 4096 (KADID-10k's)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the distortions' random internals."),
) -> None:
    """Build a KADID-10k-style set: every image x 23 shared types x 5 levels.

    Labelled with KADID-10k's mean MOS per type and level. Reruns keep images already written."""
    from ..data.folders import NoImages, list_images

    go_on("the images written are kept and a rerun goes on from them")  # Ctrl-C, a signal
    from ..data.synthetic import KADID_TYPES, LABEL_NOTE, build_synthetic, parse_size
    from ..degradations import NUM_LEVELS
    from ..utils.console import progress_bar
    from ..utils.locks import OutputBusy

    if pristine.resolve().is_relative_to(out.resolve()):  # every photo left out as the output's: "no images found"
        raise typer.BadParameter(
            f"{out} is or holds the --pristine folder; write the benchmark into another", param_hint="-o"
        )
    try:
        paths = list_images(pristine, exclude=out, required=True)  # an output inside --pristine: not pristine
    except NoImages as e:
        fail(str(e))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--pristine") from None
    if images:
        paths = paths[:images]
    try:
        width_height = parse_size(size)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--size") from None
    try:
        with (
            output_folders(out),
            writing(out),
            progress_bar(transient=True) as bar,  # stdout holds the lines below alone
        ):
            task = bar.add_task("references", total=len(paths))
            csv_path = build_synthetic(
                paths, out, width_height, seed, progress=lambda i, n: bar.update(task, completed=i)
            )
    except (OutputBusy, ValueError) as e:  # ImageError: a pristine image that cannot be decoded, named
        fail(str(e))
    typer.echo(f"wrote {csv_path} ({len(paths) * len(KADID_TYPES) * NUM_LEVELS} distorted images)")
    typer.echo(LABEL_NOTE)
