"""CLI verbs of the degradation model: ``distortions``, ``distort``, ``gallery``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from PIL import Image
from rich.table import Table

from ..constants import MAX_SEED
from ..utils.console import progress_bar, terminal
from ..utils.files import atomic_write
from .command import app, fail, file_output, output_folders, output_place, writing, wrote

if TYPE_CHECKING:
    import torch


def _generator(seed: int | None) -> torch.Generator | None:
    import torch  # here, as every import of a verb module: `arniqa score` on an ONNX file runs without torch

    return None if seed is None else torch.Generator().manual_seed(seed)


def _image_output(out: Path, source: Path | None) -> str:
    """The Pillow format ``out`` is written in, checked before any work (a picture drawn, then not written)."""
    output_place(out, inputs=(source,))
    file_output(out)
    kind = Image.registered_extensions().get(out.suffix.lower())
    if kind not in Image.SAVE:
        fail(
            f"{out}: cannot write it: Pillow has no writer for the extension {out.suffix or '(none)'}; name a .png, "
            ".jpg or another format Pillow writes"
        )
    return kind


PROFILE_WRITERS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "TIFF", "AVIF", "HEIF"})  # whose writers take a profile


def _save(picture: Image.Image, out: Path, kind: str, source: Image.Image | None) -> None:
    """Write ``picture`` to ``out`` whole or not at all: a full disk leaves an earlier ``out`` as it was. The RGB
    ICC profile of the ``source`` image goes with it, so viewers show its colours as they show the source's; a
    format that cannot hold it (none, or past a JPEG's :data:`~arniqa.data.png.PROFILE_MAX` bytes) is written
    without, with a warning."""
    from ..data.images import rgb_profile
    from ..data.png import PROFILE_MAX
    from ..utils.console import end_progress_bars
    from ..utils.messages import say, warning_line

    profile = None if source is None else rgb_profile(source)
    if profile is not None and kind not in PROFILE_WRITERS:
        why = f"{kind} files hold none"
    elif profile is not None and kind in ("JPEG", "MPO") and len(profile) > PROFILE_MAX:
        why = f"{len(profile):,} bytes, more than the {PROFILE_MAX:,} a JPEG holds"
    else:
        why = None
    if why:
        end_progress_bars()  # the spinner, drawn on the same terminal, would run into the line
        say(warning_line(f"{out}: written without the input's colour profile ({why}); write a .png to keep it"))
        profile = None
    extra = {} if profile is None else {"icc_profile": profile}
    with writing(out):
        atomic_write(out, lambda tmp: picture.save(tmp, format=kind, **extra))


@contextmanager
def _working(what: str) -> Iterator[None]:
    """A spinner saying ``what`` is being done, with the time spent, on a terminal (:func:`progress_bar`'s rule):
    a 12-megapixel photo takes seconds to decode, distort and encode."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with progress_bar(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        bar.add_task(what, total=None)
        yield


def _open(path: Path) -> Image.Image:
    """The image at ``path``, opened without torch: a missing or broken file, or one over the project's pixel
    bound, is one line at once."""
    from ..data import images

    try:
        return images.read_image(path)
    except ValueError as e:  # ImageError names the file and the problem
        fail(str(e))


@app.command()
def distortions() -> None:
    """List the 7 groups, 24 distortion types and their level values (levels 1 to 5)."""
    from arniqa.degradations.registry import GROUPS, LEVELS, NON_MONOTONE, NUM_LEVELS

    unordered = " and ".join(name for name in LEVELS if name in NON_MONOTONE)
    table = Table(
        title="ARNIQA degradation model: 24 distortions in 7 groups",
        caption=f"columns 1-5: the level values, from mild to strong ({unordered}: not ordered, signs alternate)",
    )
    table.add_column("group", no_wrap=True)
    table.add_column("distortion", style="bold", no_wrap=True)
    for level in range(1, NUM_LEVELS + 1):
        table.add_column(str(level), justify="right", no_wrap=True)
    for group, names in GROUPS.items():
        for i, name in enumerate(names):
            last = i == len(names) - 1
            table.add_row(group if i == 0 else "", name, *(f"{v:g}" for v in LEVELS[name]), end_section=last)
    out = terminal()  # never narrower than the table: a pipe's 80 columns cut values to '-0.…'
    out.width = max(out.width, out.measure(table, options=out.options.update_width(1000)).maximum)
    out.print(table)


@app.command()
def distort(
    image: Path = typer.Argument(..., help="Input image (any format Pillow reads).", readable=False),
    name: str = typer.Option(..., "--name", "-n", help="Distortion key, e.g. gaublur (see `arniqa distortions`)."),
    level: int = typer.Option(
        ...,
        "--level",
        "-l",
        help="Level from 1 (mild) to 5 (strong), but see `arniqa distortions` for meanshift and lincontrchange.",
    ),
    out: Path = typer.Option(
        ..., "-o", "--output", "--out", help="Output image; the format follows the extension.", readable=False
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, max=MAX_SEED, help="Seed for the random internals (angle, noise, ...)."
    ),
) -> None:
    """Apply one distortion at one level to IMAGE and write the result."""
    from arniqa.degradations.registry import check_level, check_name

    with output_folders(files=(out,)):  # a run that fails leaves no empty folder it made
        kind = _image_output(out, image)
        try:  # before torch is imported, as the image below
            check_name(name)
            check_level(level)
        except ValueError as e:
            fail(str(e))
        with _working(f"{name}, level {level}: {image} -> {out}"):
            picture = _open(image)
            from arniqa.data.pixels import pil_to_tensor, tensor_to_pil
            from arniqa.degradations import distort as apply

            try:
                y = apply(pil_to_tensor(picture), name, level, _generator(seed))
            except ValueError as e:  # the name and level are checked: the image does not fit the distortion
                fail(f"{image}: {e}")
            _save(tensor_to_pil(y), out, kind, picture)
        wrote(f"wrote {out} ({name}, level {level})", out)


@app.command()
def gallery(
    image: Path | None = typer.Argument(
        None, help="Input image; default: scikit-image's astronaut photo.", readable=False
    ),
    out: Path = typer.Option(
        Path("gallery.png"), "-o", "--output", "--out", help="Output picture (PNG).", readable=False
    ),
    size: int = typer.Option(128, "--size", help="Tile size in pixels (the image's centre square, resized)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed for the random internals."),
) -> None:
    """Draw IMAGE under all 24 distortions x 5 levels as one labelled grid."""
    from arniqa.reports.gallery import check_tile_size, draw_gallery

    with output_folders(files=(out,)):  # a run that fails leaves no empty folder it made
        kind = _image_output(out, image)
        try:
            check_tile_size(size)
        except ValueError as e:
            fail(str(e))
        if image is None:
            from skimage import data

            photo, source = Image.fromarray(data.astronaut()), "scikit-image astronaut"
        else:
            photo, source = _open(image), str(image)
        from arniqa.data.pixels import pil_to_tensor

        x = pil_to_tensor(photo)
        with _working("distorting 24 x 5 tiles"):
            try:
                picture = draw_gallery(x, size, _generator(seed))
            except ValueError as e:
                fail(str(e))
        _save(picture, out, kind, photo)
        wrote(f"wrote {out} ({picture.width}x{picture.height} px, from {source})", out)
