"""CLI verb: ``arniqa map IMAGES -o DIR`` writes a quality map per image (heatmap PNG and the grid as .npy)."""

from __future__ import annotations

import csv
import math
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import typer

from ..constants import CROP_SIZE, DEFAULT_MODEL
from ..utils.files import NO_SPACE, atomic_write, atomic_writes, fit_stem, text_writer, write_whole
from ..utils.locks import output_lock
from ..utils.messages import file_line, printable
from ..utils.names import count, option
from ..utils.textfiles import COMMA_SEPARATED, csv_line, escape_name, other_separator, separated_by, unescape_name
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    app,
    check_head,
    check_inputs,
    check_model_files,
    check_regressor,
    check_settings,
    checkpoint_option,
    device_option,
    empty_inputs,
    engine_option,
    explainer_option,
    fail,
    fail_missing,
    fail_no_images,
    files_from_option,
    given_inputs,
    go_on,
    list_inputs,
    load_advice,
    loading,
    null_option,
    one_model_source,
    output_folders,
    quiet_bar,
    regressor_option,
    weights_dir_option,
    writing,
)

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk of every PNG file: no data, its CRC
# note: the warnings about the image (its first frame mapped), as score's result files have (cli/result_files)
MAP_COLUMNS = ("path", "map", "mean", "min", "max", "rows", "cols", "error", "note")
BEFORE_NOTES = MAP_COLUMNS[:-1]  # the columns of a maps.csv of an older arniqa, which it keeps
WROTE_MAPS = "give the folder that arniqa map -o wrote"  # what to do with a --maps folder that is not one
MAPS_KEPT = "the maps written are kept and listed in maps.csv, and --resume goes on from them"


@app.command("map")
def map_images(
    paths: list[Path] = typer.Argument(
        None,
        help="Image files, folders (searched recursively) and WebDataset tar shards, as for `arniqa score`.",
        readable=False,
    ),
    files_from: str | None = files_from_option("map"),
    null: bool = null_option(),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the maps and maps.csv.", readable=False),
    checkpoint: Path | None = checkpoint_option(onnx=True),
    weights_dir: Path | None = weights_dir_option(regressor=True),
    regressor: str | None = regressor_option(),
    explain: bool = typer.Option(
        False, "--explain", help="Also one map per distortion group (needs an explanation head)."
    ),
    explainer: Path | None = explainer_option(),
    crop: int = typer.Option(CROP_SIZE, "--crop", min=2, help="Side of the square crops, in px of the mapped image."),
    stride: int | None = typer.Option(
        None,
        "--stride",
        min=1,
        help="Step between crops (px), at most the crop. Default: half the crop (each pixel in up to 4).",
    ),
    max_side: int = typer.Option(1024, "--max-side", min=2, help="Downscale images whose longer side exceeds N first."),
    engine: str = engine_option(),
    device: str = device_option(),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Crops per forward pass."),
    resume: bool = typer.Option(
        False, "--resume", help="Skip images already in maps.csv (their files whole) and map the rest."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="--resume: map the images of error rows again, their new rows in their place."
    ),
) -> None:
    """Score a grid of overlapping crops of each image: where in the photo the quality drops.

    DIR/NAME.map.png (the scores over the image, red low, green high, coloured over each map's own range),
    DIR/NAME.map.npy (the grid), with --explain DIR/NAME.GROUP.png (red where GROUP is probable, green where it
    is not) and DIR/NAME.groups.npy; DIR/maps.csv lists them. Exit status 1 if some images failed (with --resume,
    also those of the rows kept)."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..data.folders import skipped_summary
    from ..inference import load
    from ..inference.listing import ListError
    from ..inference.maps import check_options
    from ..utils.console import progress_bar
    from ..utils.messages import note_column, noted_line, notes_in
    from .result_files import OutputError, output_error, write_settings
    from .results import collect_paths
    from .score import model_settings, none_resumed, resuming

    one_model_source(checkpoint, weights_dir)
    check_inputs(paths, files_from, null)
    if retry_failed and not resume:
        raise typer.BadParameter("--retry-failed goes with --resume")
    check_settings(checkpoint, engine)
    try:
        stride = check_options(crop, stride, max_side, option)
    except ValueError as e:
        fail(str(e))
    check_model_files(checkpoint or DEFAULT_MODEL, weights_dir, regressor, explainer)
    # a rerun into a folder among the inputs must not map the maps, nor say the rest (maps.csv, .npy) was skipped
    try:  # the whole list, before anything is written
        files, skipped, broken, empty = collect_paths(list_inputs(paths, files_from, null), exclude=output)
    except ListError as e:
        fail(str(e))
    if not files:
        fail_no_images(given_inputs(paths, files_from), skipped_summary(skipped, broken, "map"))
    if all(isinstance(f, str) and not os.path.exists(f) for f in files):  # before the model loads (or downloads)
        fail_missing(files, "map")
    check_head(explain, explainer, checkpoint)
    go_on(MAPS_KEPT)  # Ctrl-C, a signal
    resumed = resumed_failed = retried = 0
    unnamed = 0  # with --resume: the rows of maps.csv, when none names an input
    # one writer: a second arniqa map into DIR is refused at start; a DIR made here and left empty is removed
    with output_folders(output), writing(output), output_lock(output):
        try:  # before the model loads
            rows, listed = _earlier_rows(output / "maps.csv")
        except ValueError as e:
            fail(str(e))
        listing = output / "maps.csv"
        if listed == MAP_COLUMNS:  # not a maps.csv of an older arniqa, which has no note column
            notes_in(note_column(listing))
        model = checkpoint or DEFAULT_MODEL
        try:
            with loading(model, lambda e: load_advice(model, engine, device, error=e)):
                scorer = load(
                    model,
                    device=device,
                    weights_dir=weights_dir,
                    regressor=regressor,
                    engine=engine,
                    explainer=explainer,
                )
        except (ValueError, OSError) as e:
            fail(str(e))
        check_regressor(checkpoint, scorer)
        check_head(explain, explainer, checkpoint, scorer)
        settings = model_settings(checkpoint, weights_dir, regressor, explainer if explain else None)
        settings.update(
            {"--crop": crop, "--stride": stride, "--max-side": max_side, "--explain": "on" if explain else "off"}
        )
        record = _record(listing, settings, rows, resume)
        suffixes = _suffixes(scorer if explain else None)
        todo = _images(files)  # each image once, its file or shard member alone (its key made as it is mapped)
        del files
        total = len(todo)
        finished: set = set()  # the keys of the images --resume skips
        given = {key for _, _, key in _keyed(todo) if key in rows} if resume else set()
        stems, failed_before, whole = _earlier_maps(rows, given, output, suffixes)
        if resume:  # as score's: an image listed, mapped or failed, is skipped; a failed one still counts in the exit
            finished = whole if retry_failed else whole | failed_before  # --retry-failed: their rows replaced
            resumed, resumed_failed = len(finished), len(finished & failed_before)
            retried = len(failed_before) if retry_failed else 0
            unnamed = 0 if given else len(rows)
            if resumed or retried:  # at the start: what is done, what is left
                left = f"{count(total - resumed, 'image')} to map"
                typer.secho(resuming(resumed, count(total, "image"), listing, retried, "to map again", left), err=True)
        mapping = total - len(finished)
        options = dict(crop=crop, stride=stride, max_side=max_side, batch_size=batch_size, explain=explain)
        try:
            if record is not None:
                record()
            columns = (TextColumn("mapping"), BarColumn(), TextColumn("{task.fields[done]}"), TimeElapsedColumn())
            columns += (TextColumn("left"), TimeRemainingColumn())
            bar = progress_bar(*columns, transient=False)  # on a terminal: hours for a library
            task = bar.add_task("mapping", total=mapping, done=f"0 of {count(mapping, 'image')}")

            def advance(n: int) -> None:
                bar.update(task, advance=1, done=f"{n} of {count(mapping, 'image')}")

            try:
                with quiet_bar(bar):
                    failed, kept, noted = _write_maps(
                        scorer, todo, finished, output, options, rows, stems, suffixes, advance, listed
                    )
            except OSError as e:  # the maps written are kept: --resume goes on from them
                if e.errno not in NO_SPACE:
                    raise
                raise output_error(str(e.filename or output), e, again="rerun with --resume") from None
            if not (kept or resume):  # every row is this run's: its settings alone, no longer mixed with others'
                write_settings(listing, settings)
        except OutputError as e:
            fail(str(e))
    kept -= resumed
    if unnamed and not resumed:  # all mapped again, beside the earlier maps
        matched = "paths are matched from the folder arniqa runs in (photos/a.jpg from /home/me and from /tmp differ)"
        typer.secho(none_resumed(listing, unnamed, mapping, matched, "mapped again"), err=True, fg="yellow")
    earlier = f", and keeps the {count(kept, 'row')} of other images from earlier runs" if kept else ""
    if written := mapping - failed:
        typer.echo(f"wrote {count(written, 'map')} to {output} (maps.csv lists them{earlier})")
    elif mapping:
        typer.echo(f"wrote no map to {output}, only maps.csv with the errors{earlier}")
    else:
        typer.echo(f"wrote no map to {output}: maps.csv lists every image already{earlier}")
    if failed := failed + resumed_failed:
        before = f", {resumed_failed} of them in the rows resumed" if resumed_failed else ""
        typer.secho(
            f"{failed} of {count(total, 'image')} could not be mapped{before} (see maps.csv)",
            err=True,
            fg="yellow",
        )
    if noted:
        typer.secho(noted_line(noted, mapping, listing, listed != MAP_COLUMNS), err=True, fg="yellow")
    if summary := skipped_summary(skipped, broken, "map"):  # as score says it
        typer.secho(summary, err=True, fg="yellow")
    if empty:
        typer.secho(empty_inputs(empty, len(empty)), err=True, fg="yellow")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _unique(stem: str, used: set[str], output: Path, suffix_bytes: int) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... when taken, cut to leave ``suffix_bytes`` bytes for the longest
    suffix of its files in ``output`` (a photo's name may already be as long as a file name can be)."""
    name, n = fit_stem(stem, output, suffix_bytes), 1
    while name in used:
        n += 1
        name = fit_stem(stem, output, suffix_bytes + len(f"-{n}")) + f"-{n}"
    used.add(name)
    return name


def _images(files: list) -> list:
    """The images of the inputs ``files``, in order: a file given twice (a.png ./a.png) is one image, mapped once
    (:func:`_keyed` gives their keys). Only the items are held, not their keys (100 bytes more per image)."""
    seen: set = set()  # while the list is made
    return [item for item, _, key in _keyed(files) if not (key in seen or seen.add(key))]


def _keyed(images: Iterable) -> Iterator[tuple]:
    """Each image of ``images`` as (item, name, key), its key in maps.csv its absolute path and how many shard
    members of that name came before it: a shard made by appending may hold two members of one name, two images."""
    from ..inference.inputs import source_name

    seen: Counter = Counter()  # shard members only: a file's count stays 0
    for i, item in enumerate(images):
        name = source_name(item, i)
        path = os.path.abspath(name)
        path = name if path == name else path  # an absolute path (find /photos): one string held, not two
        yield item, name, (path, seen[path])
        if not isinstance(item, (str, os.PathLike)):
            seen[path] += 1


def read_map_index(folder: Path) -> dict[tuple[str, int], Path]:
    """The maps that ``arniqa map -o FOLDER`` wrote, from its maps.csv: image key -> map PNG, keyed by the path as
    written there and by that path made absolute (from the current folder), each with the number of the shard member
    of that name (:func:`_listed`; 0 for a file). A last row with no line end is cut, left out (:func:`_ended`, as
    --resume reads it; rows whose last empty fields a spreadsheet left out are read). ValueError (one line) when
    ``folder`` is not there, is no folder or has no maps.csv, or its maps.csv has other columns (:func:`_columns`)."""
    from ..data.folders import not_a_folder

    listing = folder / "maps.csv"
    if not folder.is_dir():  # said "no maps.csv in it" of a mistyped folder, and of maps/maps.csv itself
        raise ValueError(f"{folder}: {not_a_folder(folder)}; {WROTE_MAPS} (it holds maps.csv)")
    if not listing.is_file():
        raise ValueError(f"{folder}: no maps.csv in it; {WROTE_MAPS}")
    with open(listing, newline="", encoding="utf-8-sig") as f:  # -sig: a byte order mark, as Excel saves it
        rows = csv.DictReader(f)
        if rows.fieldnames and _columns(rows.fieldnames, listing, WROTE_MAPS) is None:
            head = printable(",".join(rows.fieldnames))[:60]
            raise ValueError(f"{listing}: not a maps.csv of arniqa map (its first line is {head!r}); {WROTE_MAPS}")
        records = [[row.get(c) or "" for c in MAP_COLUMNS] for row, _ in _ended(rows, listing)]
    index: dict[tuple[str, int], Path] = {}
    for (path, n), row in _listed(records).items():
        if row[0] and row[1]:
            index[unescape_name(row[0]), n] = index[path, n] = folder.resolve() / unescape_name(row[1])
    return index


def _write_maps(
    scorer,
    todo: list,
    finished: set,
    output: Path,
    options: dict,
    rows: dict[tuple, str],
    stems: dict[tuple, str],
    suffixes: list[str],
    advance,
    columns: tuple[str, ...] = MAP_COLUMNS,
) -> tuple[int, int, int]:
    """Each ``todo`` image's map (:func:`_images`; those whose key is in ``finished`` passed over) into ``output``
    and its row of maps.csv, which keeps the ``rows`` of an earlier run's other images (:func:`_earlier_rows`);
    returns how many could not be mapped, how many earlier rows were kept and how many images had a warning
    (their rows' note). Every file is written whole or not at
    all (a full disk leaves the maps of an earlier run whole), and maps.csv lists only maps written whole. The rows
    of images new to maps.csv are not held: read back from it at the end. ``stems``: the stems of the earlier rows'
    maps (:func:`_earlier_maps`); ``suffixes``: :func:`_suffixes`;
    ``advance(n)`` after the n-th file; ``columns``: maps.csv's (an older arniqa's keeps its own, without the note)."""
    import numpy as np

    from ..data.images import ImageError
    from ..inference.inputs import as_image
    from ..inference.maps import overlay, quality_map
    from ..utils.messages import note, noting

    longest = max(len(os.fsencode(s)) for s in suffixes)  # the stem leaves room for each file's suffix
    failed = noted = 0
    listing = output / "maps.csv"
    kept = len(rows) - sum(key in rows for _, _, key in _keyed(todo) if key not in finished)  # keys are distinct
    used = set(stems.values())  # an image mapped before keeps its map's name, which no other image takes
    # the earlier rows first, written whole (a full disk leaves maps.csv as it was); then each image's row as it is
    # mapped, the later row of an image the one that counts until maps.csv is tidied at the end
    atomic_write(listing, text_writer(_csv_lines(rows.values(), columns)))
    # where the rows of images with an earlier row are (those rows are in ``rows``): each start and end, 16 bytes
    again = array("q")
    start = end = listing.stat().st_size
    fd = os.open(listing, os.O_WRONLY)
    n = 0
    try:
        for item, name, image_key in _keyed(todo):
            if image_key in finished:
                continue
            n += 1
            stem = stems.get(image_key)
            if stem is None or fit_stem(stem, output, longest) != stem:  # too long for the --explain maps' names
                stem = _unique(Path(name).stem, used, output, longest)
            try:
                with noting() as notes:
                    image = as_image(item, name)
                qmap = quality_map(scorer, image, **options)
            except (ImageError, ValueError, RuntimeError) as e:
                failed += 1
                row = [escape_name(name), "", "", "", "", "", "", getattr(e, "reason", str(e))]
            else:
                s = qmap.scores
                maps = [
                    (output / f"{stem}.map.npy", lambda tmp: np.save(tmp, s)),
                    (output / f"{stem}.map.png", overlay(image, s, qmap, float(s.min()), float(s.max())).save),
                ]
                if options["explain"]:
                    maps.append((output / f"{stem}.groups.npy", lambda tmp: np.save(tmp, qmap.groups)))
                    for label, probs in zip(qmap.labels, qmap.groups):
                        maps.append((output / f"{stem}.{label}.png", overlay(image, 1 - probs, qmap, 0.0, 1.0).save))
                atomic_writes(maps)  # the image's files all new or all as they were
                if not options["explain"]:
                    _drop_group_maps(output, stem)
                row = [escape_name(name), escape_name(f"{stem}.map.png"), f"{s.mean():.4f}", f"{s.min():.4f}"]
                row += [f"{s.max():.4f}", s.shape[0], s.shape[1], ""]
            said = note(notes, name)
            noted += said is not None
            row.append(said or "")
            line = csv_line(row[: len(columns)])
            written = write_whole(fd, line.encode("utf-8"), end, str(listing))
            if image_key in rows:  # an image mapped before: its row replaced where it was
                rows[image_key] = line
                again.extend((end, written))
            end = written
            advance(n)
    finally:
        os.close(fd)
        atomic_write(listing, _tidy(listing, rows, columns, start, end, again))  # one row per image, also when stopped
    return failed, kept, noted


def _tidy(listing: Path, rows: dict[tuple, str], columns: tuple[str, ...], start: int, end: int, again: array):
    """What writes maps.csv with one row per image (for :func:`atomic_write`): its header of ``columns`` and the
    earlier ``rows``, then the bytes ``start`` to ``end`` of ``listing`` (the rows this run added, read back), less
    the spans ``again`` (each start, then its end: the rows of images among ``rows``, in their place already)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as new, open(listing, "rb") as old:
            for line in _csv_lines(rows.values(), columns):
                new.write(line.encode("utf-8"))
            at, spans = start, iter(again)
            for skip_from, skip_to in chain(zip(spans, spans), [(end, end)]):  # each span's start and end
                old.seek(at)
                left = skip_from - at
                while left > 0 and (chunk := old.read(min(left, 1 << 20))):
                    new.write(chunk)
                    left -= len(chunk)
                at = skip_to

    return write


def _suffixes(explaining) -> list[str]:
    """The ends of the names of an image's files, after its stem: the map's, and with an ``explaining`` scorer (None:
    no --explain) the groups'."""
    suffixes = [".map.npy", ".map.png"]
    if explaining is not None:
        suffixes += [".groups.npy", *(f".{label}.png" for label in explaining.explainer.labels)]
    return suffixes


def _whole(output: Path, row: list, suffixes: list[str]) -> bool:
    """Whether the files of a map's ``row`` of maps.csv are all in ``output`` and whole: each .npy's grid of the
    row's rows x columns (:func:`_whole_grid`), each PNG ending in its IEND chunk (a copy cut short, a file removed:
    mapped again)."""
    stem = unescape_name(row[1]).removesuffix(".map.png")
    sides = (int(row[5]), int(row[6]))
    try:
        for suffix in suffixes:
            with open(output / f"{stem}{suffix}", "rb") as f:
                if suffix.endswith(".npy"):
                    if not _whole_grid(f, sides):
                        return False
                else:
                    f.seek(-len(PNG_END), os.SEEK_END)
                    if f.read() != PNG_END:
                        return False
    except (OSError, ValueError):  # ValueError: no .npy (its magic, its header)
        return False
    return True


def _whole_grid(f, sides: tuple[int, int]) -> bool:
    """Whether the .npy file open as ``f`` holds a grid whose last two sides are ``sides``, all its bytes there: its
    header read (numpy's reader), and the file's size that of the header and the data it describes (a copy cut short
    is smaller). Neither the data is read nor the file mapped: np.load(mmap_mode="r") of each made a resume's check
    twice as long (benchmarks/map_resume.py)."""
    from numpy.lib import format as npy

    read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(npy.read_magic(f))
    if read is None:  # 3.0: field names in UTF-8, never a grid's
        return False
    shape, _, dtype = read(f)
    size = f.tell() + math.prod(shape) * dtype.itemsize
    return not dtype.hasobject and shape[-2:] == sides and os.fstat(f.fileno()).st_size == size


def _record(listing: Path, settings: dict, rows: dict[tuple, str], resume: bool):
    """What records ``settings`` beside ``listing`` (score's settings file), or None when it already says them. With
    ``resume`` as score's --resume: the rows kept must have been made with these settings (else one line, exit 2).
    Else earlier rows made with other settings, which this run may keep, are recorded with them (mixed settings,
    which --resume refuses), until the run has replaced them all."""
    from functools import partial

    from ..utils.console import terminal
    from .result_files import mixed_settings, read_settings, write_settings
    from .score import settings_record

    if resume or not rows:
        err = terminal(stderr=True)
        return settings_record(listing, settings, bool(rows), err, verb="map", done="mapped", into="folder")
    try:
        known = read_settings(listing)
    except ValueError:  # rows of an older arniqa: this run's are recorded from now on, as --resume does
        known = settings
    return partial(write_settings, listing, mixed_settings(known, settings))


def _earlier_rows(listing: Path) -> tuple[dict[tuple[str, int], str], tuple[str, ...]]:
    """The rows of the maps.csv an earlier run left (:func:`_listed`; {} when there is none), each as its line
    (:func:`~arniqa.utils.textfiles.csv_line`: one string, a third of the memory of its fields, parsed again once by
    :func:`_earlier_maps`), and its columns (:data:`MAP_COLUMNS`, or an older arniqa's :data:`BEFORE_NOTES`). Read a
    row at a time; a byte order mark at its start (a maps.csv saved by Excel) passed over. ValueError (one line) for
    a file of that name that arniqa map did not write."""
    if not listing.is_file():
        return {}, MAP_COLUMNS
    try:
        with open(listing, newline="", encoding="utf-8-sig") as f:
            records = csv.reader(f)
            head = next(records, None)
            if head is None:
                return {}, MAP_COLUMNS
            columns = _columns(head, listing, "choose another -o")
            if columns == BEFORE_NOTES:  # an older arniqa's: its whole rows, with no note (a blank one to key)
                rows = _whole_rows(records, BEFORE_NOTES, listing)
                return _listed((r + [""] for r in rows), _line_before), BEFORE_NOTES
            if columns == MAP_COLUMNS:
                return _listed(_whole_rows(records, MAP_COLUMNS, listing), csv_line), MAP_COLUMNS
    except (UnicodeDecodeError, csv.Error):
        pass
    raise ValueError(
        f"{listing}: not a maps.csv of arniqa map, whose rows a rerun keeps; move it away, or choose another -o"
    )


def _columns(head: list[str], listing: Path, fix: str) -> tuple[str, ...] | None:
    """The columns of maps.csv by its first record ``head``: :data:`MAP_COLUMNS`, an older arniqa's
    :data:`BEFORE_NOTES`, or None (another file). Those columns separated by ';' or a tab (saved by a spreadsheet:
    :func:`~arniqa.utils.textfiles.other_separator`) are a ValueError (one line, its what to do ending with ``fix``)."""
    known = (MAP_COLUMNS, BEFORE_NOTES)
    if (columns := tuple(head)) in known:
        return columns
    if (separator := other_separator(head)) and tuple(next(csv.reader(head, delimiter=separator))) in known:
        raise ValueError(file_line(str(listing), separated_by(separator, head[0]), f"{COMMA_SEPARATED}, or {fix}"))
    return None


def _whole_rows(records: Iterator[list[str]], columns: tuple[str, ...], listing: Path) -> Iterator[list[str]]:
    """The rows of ``records`` (maps.csv's, after its head), blank lines passed over, each with ``columns`` (those at
    its end that a spreadsheet left out, empty, filled in: :func:`~arniqa.cli.result_files.filled`): a last
    row cut short by a crash (other fields, or no line end: :func:`_ended`) is left out; a row of other fields that
    more rows follow (an edit: a rerun would drop it from maps.csv) is a ValueError (one line)."""
    from .result_files import filled

    for n, (row, last) in enumerate(_ended(filter(None, records), listing), 1):
        if (whole := filled(row, columns)) is not None:
            yield whole
        elif not last:
            raise ValueError(
                f"{listing}: row {n} is not a row of arniqa map ({len(row)} fields, not {len(columns)}) and more rows "
                "follow it (a run cut short tears only its last row: an edit?); a rerun would drop it: fix or delete "
                "that row, or choose another -o"
            )


def _ended(rows: Iterable, listing: Path) -> Iterator[tuple[Any, bool]]:
    """Each of ``rows`` (the records of the file ``listing``, read as they are yielded) with whether it is the last,
    the last left out when the file does not end with a line end (a run cut short by a crash tore it; as score's
    result files are read)."""
    rows = iter(rows)
    row = next(rows, None)
    while row is not None:
        after = next(rows, None)
        if after is not None or _ends_a_line(listing):
            yield row, after is None
        row = after


def _ends_a_line(path: Path) -> bool:
    """Whether the file ``path`` ends with a line end (its last row whole, not cut by a crash)."""
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _line_before(row: list[str]) -> str:
    return csv_line(row[: len(BEFORE_NOTES)])


def _earlier_maps(
    rows: dict[tuple, str], given: set, output: Path, suffixes: list[str]
) -> tuple[dict[tuple, str], set, set]:
    """What the earlier ``rows`` (:func:`_earlier_rows`) say, each line parsed once: the stem of each row's map (an
    error row has none), and of the rows of the images ``given`` (--resume), those that hold an error and those
    whose files are all whole (:func:`_whole`)."""
    stems: dict[tuple, str] = {}
    failed, whole = set(), set()
    for key, fields in zip(rows, csv.reader(rows.values())):  # one record a line
        if fields[1]:
            stems[key] = unescape_name(fields[1]).removesuffix(".map.png")
        if key in given:
            if fields[7]:
                failed.add(key)
            elif _whole(output, fields, suffixes):
                whole.add(key)
    return stems, failed, whole


def _listed(records: Iterable[list[str]], kept: Callable[[list[str]], object] = list) -> dict[tuple[str, int], Any]:
    """The rows of maps.csv by the image's key (:func:`_images`), each as ``kept(row)``, an image's last row winning
    (a run stopped before maps.csv was tidied lists an image it mapped again twice); a shard member's row of another
    map than an earlier row of its name is another member."""
    from ..inference.shards import in_shard

    rows: dict[tuple[str, int], Any] = {}
    maps: dict[str, list[str]] = {}  # each member's maps, in order: another map of a member is another member
    for r in records:
        if len(r) != len(MAP_COLUMNS):  # a row cut short by a crash is left out
            continue
        path = os.path.abspath(unescape_name(r[0]))
        if not in_shard(path):  # a file: its last row
            rows[path, 0] = kept(r)
            continue
        listed = maps.setdefault(path, [])
        if not (r[1] and r[1] in listed):
            listed.append(r[1])
        rows[path, listed.index(r[1]) if r[1] else len(listed) - 1] = kept(r)
    return rows


def _drop_group_maps(output: Path, stem: str) -> None:
    """Remove the group maps that an earlier ``--explain`` run wrote for ``stem`` (its ``groups.npy`` says it did),
    which would sit beside this run's map; other files stay."""
    groups = output / f"{stem}.groups.npy"
    if not groups.is_file():
        return
    from ..models.explain import LABELS  # here: it imports torch

    for label in LABELS:
        (output / f"{stem}.{label}.png").unlink(missing_ok=True)
    groups.unlink()


def _csv_lines(lines: Iterable[str], columns: tuple[str, ...]) -> Iterator[str]:
    """The lines of maps.csv of ``columns``: its header (:func:`~arniqa.utils.textfiles.csv_line`), then ``lines``
    (its rows', in its columns), one at a time (200,000 rows are never one string)."""
    yield csv_line(columns)
    yield from lines
