"""CLI verb: ``arniqa score PATHS...`` writes one row per image (path, score, raw_score, error)."""

from __future__ import annotations

import os
import sys
from collections import deque
from contextlib import ExitStack, suppress
from functools import partial
from pathlib import Path

import typer

from ..constants import DEFAULT_MODEL, DEFAULT_PROTOCOL
from ..data.images import DEFAULT_MAX_PIXELS
from ..utils.messages import file_line
from ..utils.names import count, option
from ..utils.streams import descriptor, is_stream, open_stream, stream_kind
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
    connect_ray,
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
    html_output,
    list_inputs,
    load_advice,
    loading,
    null_option,
    one_model_source,
    one_writer,
    output_folders,
    output_place,
    quiet_bar,
    regressor_option,
    weights_dir_option,
    writing,
)

ROWS_KEPT = "the rows written so far are kept and --resume goes on from them"  # a run stopped with -o FILE
MISSING_PEEK = 1000  # paths that are not there, looked past for one that is, before the model loads


@app.command()
def score(
    paths: list[Path] = typer.Argument(
        None,
        help="Image files, folders (searched recursively) and WebDataset tar shards; brace patterns such as "
        "shards/{000000..000099}.tar are expanded.",
        readable=False,  # one that cannot be read is its own row (or named in one line), not the whole run's end
    ),
    files_from: str | None = files_from_option("score"),
    null: bool = null_option(),
    weights_dir: Path | None = weights_dir_option(regressor=True),
    checkpoint: Path | None = checkpoint_option(onnx=True),
    engine: str = engine_option(),
    regressor: str | None = regressor_option(),
    protocol: str | None = typer.Option(
        None,
        "--protocol",
        help=f"crops | whole | pyiqa | eval (docs/usage.md). Default: an ONNX file's own, else {DEFAULT_PROTOCOL}.",
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="csv | json | jsonl. Default: by the -o file's name: .json: json; .jsonl, .ndjson: jsonl; the name of "
        "a format not written (.parquet, .xlsx, .tsv, .csv.gz, ...): refused; else csv.",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output file (-: stdout). Default: stdout.", readable=False
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Images per forward pass (crops: 10 crops each). Default: per device."
    ),
    device: str = device_option(),
    no_scale: bool = typer.Option(False, "--no-scale", help="Write the raw (dataset-scale) score in 'score' too."),
    max_side: int | None = typer.Option(
        None, "--max-side", min=2, help="whole/pyiqa: downscale images whose longer side exceeds N (with a warning)."
    ),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32 | bf16 | fp16 (torch autocast) | int8 (ONNX Runtime, see docs/usage.md)."
    ),
    calibrate: Path | None = typer.Option(
        None,
        "--calibrate",
        help="--precision int8: a folder of photos to calibrate on. Default: bundled photos.",
        readable=False,
    ),
    channels_last: bool | None = typer.Option(
        None,
        "--channels-last/--no-channels-last",
        help="torch: channels_last memory format (same scores). Default: per device.",
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Decoding threads. Default: up to 4."),
    max_pixels: int = typer.Option(
        DEFAULT_MAX_PIXELS,
        "--max-pixels",
        min=1,
        help="Refuse (an error row) images whose header declares more pixels, before decoding them.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Skip paths already in the -o file and append the rest."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="--resume: score the paths of error rows again, their new rows in their place."
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS|local",
        help="Score on the Ray cluster at ADDRESS (auto, HOST:PORT, ray://HOST:10001), or on a Ray instance "
        "started here with this machine's CPUs and GPUs (local). Same rows; needs arniqa[ray].",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="--ray: scoring actors. Default: one per GPU, else one per CPU."
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Add the most probable distortion groups and a severity "
        "(columns explanation, severity; needs an explanation head, docs/explain.md).",
    ),
    explainer: Path | None = explainer_option(),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a visual report of the rows (arniqa report).", readable=False
    ),
) -> None:
    """Score images with ARNIQA: one row per image, in input order.

    Exit status 1 if any image failed. Inputs are listed as they are scored, so memory does not grow with their
    number."""
    from collections import Counter
    from itertools import chain

    from PIL import Image
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    from ..data.folders import Broken, skipped_kind, skipped_summary
    from ..inference import load
    from ..inference.listing import ListError, iter_inputs, skip_finished
    from ..utils.console import progress_bar, terminal
    from ..utils.locks import lock_file
    from ..utils.messages import note_column, noted_line, notes_in
    from .result_files import (
        NOTE_COLUMNS,
        NotAResultFile,
        OutputError,
        Spool,
        iter_done,
        output_format,
        read_rows,
        replace_rows,
        settings_file,
    )
    from .results import write_scores

    err = terminal(stderr=True)
    one_model_source(checkpoint, weights_dir)
    check_inputs(paths, files_from, null)
    # standard output: '-' as --files-from -, or /dev/stdout, /dev/fd/1 (a file too, when stdout is redirected to one)
    if output is not None and (str(output) == "-" or descriptor(output) == 1):
        output = None
    if output is None and sys.stdout is None:  # started with standard output closed (>&-)
        raise typer.BadParameter("standard output is closed; write the rows to a file with -o FILE")
    if output is None and html is not None and descriptor(html) == 1:  # the report would follow the rows
        raise typer.BadParameter(
            f"--html {html} is standard output, where the rows go; write the rows or the report to a file (-o FILE)"
        )
    stream = output is not None and is_stream(output)  # -o /dev/null, a named pipe: written into as stdout is
    if resume and (output is None or stream):
        raise typer.BadParameter(
            "--resume needs -o FILE" + (f", a file ({output} is {stream_kind(output)}, a stream)" if stream else "")
        )
    if output is not None and not stream:  # Ctrl-C, a signal: the rows are written one by one, each whole
        go_on(ROWS_KEPT)
    from ..models.registry import is_model_name

    for path in paths or ():  # pyiqa's command takes the metric first: `pyiqa arniqa -t photos/`
        if is_model_name(str(path)) and not os.path.lexists(path):  # no stat of every path of a long glob
            fail(
                file_line(
                    path, "no such file or folder, but a model's name", f"to score with it, give --regressor {path}"
                )
            )
    if ray_workers is not None and ray is None:
        raise typer.BadParameter("--ray-workers goes with --ray")
    if retry_failed and not resume:
        raise typer.BadParameter("--retry-failed goes with --resume")
    check_settings(checkpoint, engine, precision, channels_last, calibrate, protocol, max_side)
    try:
        fmt = output_format(output, fmt)
    except ValueError as e:
        if fmt is None:  # the name of the output, not an option, is what to change
            fail(str(e))
        raise typer.BadParameter(str(e)) from None
    if html is not None:
        output_place(html, inputs=(output,))
        html_output(html)
    check_head(explain, explainer, checkpoint)
    check_model_files(checkpoint or DEFAULT_MODEL, weights_dir, regressor, explainer)

    skipped: Counter = Counter()  # kinds of the folders' files no decoder can open
    broken = Broken()  # the folders' entries that are no file, the first few named
    counts = Counter()  # resumed: already in the output; scored: given to the scorer; rows: read from the output
    empty = Empty()  # the folders and shards named that hold no image
    options = dict(
        weights_dir=weights_dir,
        protocol=protocol,
        regressor=regressor,
        batch_size=batch_size,
        max_side=max_side,
        precision=precision,
        workers=workers,
        channels_last=channels_last,
        engine=engine,
        max_pixels=max_pixels,
    )
    if calibrate is not None:
        options["calibrate"] = calibrate
    Image.MAX_IMAGE_PIXELS = max_pixels  # PIL refuses at twice its own limit: never before --max-pixels does

    columns = (TextColumn("scoring"), BarColumn(), TextColumn("{task.fields[done]}"), TimeElapsedColumn())
    try:  # a list that is no list stops the run; the rows written are kept
        with ExitStack() as stack:
            if output is not None and not stream:  # held to the end: another arniqa process writing it is refused
                stack.enter_context(output_folders(files=(output,)))  # its folder, removed if the run leaves it empty
                stack.enter_context(one_writer(output))
            sources = list_inputs(paths, files_from, null)
            written = [f for f in (output, html) if f is not None]
            kept = [settings_file(output)] if output is not None and not stream else []
            # what this run writes into a folder it scores is no input it skips
            own = _own_files(*written, *map(lock_file, written), *kept)
            items = iter_inputs(sources, lambda f: _is_own(f, own) or skipped.update([skipped_kind(f)]), broken, empty)
            # Before the model loads (a download, maybe): fail fast when there is nothing to score.
            missing = []  # the paths before the first input that is there: a mistyped path is no reason to load
            first = next(items, None)
            while isinstance(first, str) and not os.path.exists(first) and len(missing) < MISSING_PEEK:
                missing.append(first)
                first = next(items, None)
            if first is None:
                if missing:
                    fail_missing(missing)
                fail_no_images(given_inputs(paths, files_from), skipped_summary(skipped, broken, "score"))
            items = chain(missing, [first], items)
            had_rows = False
            if output is not None and not stream and (resume or output.is_file()):
                try:  # a file that is no result file (a photo named by -o) is refused before the model loads
                    had_rows = next(iter_done(output, fmt), None) is not None
                except NotAResultFile as e:
                    fail(e.line("choose another output"))  # refused with or without --resume
                except OutputError as e:
                    if resume:  # without --resume a result file of other columns is replaced
                        fail(str(e))
            retry: deque[str] = deque()  # the paths of the error rows scored again, listed and not yet scored
            held = stack.enter_context(Spool(output)) if retry_failed else ()  # their new rows, placed at the end
            if resume:  # the error rows kept count in the exit status, as in one uninterrupted run

                def resumed(item, failed: bool) -> None:
                    counts.update(["resumed", *(["resumed failed"] if failed else [])])

                def done():
                    for path, failed in iter_done(output, fmt, with_error=True):
                        counts.update(["rows"])
                        yield path, failed

                items = skip_finished(items, done(), resumed, retry.append if retry_failed else None)
            model = checkpoint or DEFAULT_MODEL
            advice = partial(load_advice, model, engine, device, precision, channels_last)  # advice(error)
            given = {} if explainer is None else {"explainer": explainer}
            # also with --ray: bad options and models fail here, before the cluster is asked
            scorer = _loaded(model, advice, lambda: load(model, device=device, **options, **given))
            check_head(explain, explainer, checkpoint, scorer)
            if explain:
                scorer.explainer.check_protocol(scorer.protocol.name, option)
            check_regressor(checkpoint, scorer)
            scale = not no_scale and scorer.regressor.score_range is not None
            if not no_scale and not scale:
                err.print("the regressor has no score range: writing raw scores", style="yellow")
            record = None
            if kept:  # what decides the numbers, recorded beside the rows; --resume appends only under the same
                model_options = (checkpoint, weights_dir, regressor, explainer if explain else None)
                settings = _settings(*model_options, scorer, no_scale, max_side, precision, calibrate)
                record = settings_record(output, settings, resume and had_rows, err)

            stops: tuple = ()  # the errors that end a run early (with --ray: a lost worker or node)
            load_failed: tuple = ()  # with --ray: a worker could not load the model
            if ray is not None:
                options = dict(model=str(checkpoint or DEFAULT_MODEL), device=device, **options)
                scorer, stops, load_failed = _ray_scorer(
                    stack, ray, ray_workers, options, scorer.explainer if explain else None
                )
                items = list(items)  # Ray splits the list into blocks
            bar = progress_bar(*columns, transient=False)
            task = bar.add_task("scoring", total=None, done=count(0, "image"))
            rows_at = "the rows on standard output" if output is None else output

            older = False  # the rows go to a file of an older arniqa, which has no note column

            def opened(written: tuple[str, ...]) -> None:  # the output open, with the columns of its rows
                nonlocal older
                # where the rows' notes go: the note column, which a file of an older arniqa, appended to, has not
                older = not set(NOTE_COLUMNS) <= set(written)
                notes_in(None if older else note_column(rows_at))
                if record is not None:  # a refused output is its one error line, with no bar before it
                    record()
                stack.enter_context(quiet_bar(bar))

            def advance() -> None:
                counts.update(["scored"])
                bar.update(task, advance=1, done=count(counts["scored"], "image"))

            rows = None if html is None or resume else []  # for the report (resumed: the whole file, at the end)
            target = output  # a file, written whole row by row (write_scores); a stream as it is, or stdout
            if output is None:
                target = sys.stdout
            elif stream:  # each row is flushed: a write that failed (said already) leaves its bytes to close
                target = open_stream(output)  # /dev/stderr: written where stderr is, not opened again (`2> log` cut)
                stack.callback(_close_quietly, target)
            try:
                failed = write_scores(
                    scorer,
                    items,
                    target,
                    fmt,
                    append=resume,
                    scale=scale,
                    advance=advance,
                    explain=explain,
                    rows=rows,
                    opened=opened,
                    hold=retry,
                    held=held.add if retry_failed else None,
                    noted=lambda: counts.update(["noted"]),
                )
                if held:
                    replace_rows(output, fmt, held)
            except NotAResultFile as e:  # a row past the first that a spreadsheet wrote (decimal commas)
                fail(e.line("choose another output"))
            except OutputError as e:
                fail(str(e))
            except load_failed as e:  # said as the load here says it (the rows written are kept)
                _loaded(model, advice, e.raise_error)
            except stops as e:
                fail(f"the Ray run stopped ({e}); {ROWS_KEPT}")
    except ListError as e:
        fail(str(e))
    if counts["resumed"] or held:
        total = counts["resumed"] + counts["scored"]
        err.print(resuming(counts["resumed"], count(total, "path"), output, len(held), "scored again"))
    elif counts["rows"] and counts["scored"]:
        err.print(
            none_resumed(
                output,
                counts["rows"],
                counts["scored"],
                "paths are matched as written (photos/a.jpg, ./photos/a.jpg and /nas/photos/a.jpg differ)",
                "scored again and appended",
            ),
            style="yellow",
        )
    if html is not None:
        from ..reports.html import report_warnings, write_report

        with writing(html):
            made = write_report(read_rows(output, fmt) if resume else rows, html)
        err.print(f"wrote {html}")
        for line in report_warnings(made):
            err.print(line, style="yellow")
    if failed or counts["resumed failed"]:
        before = f", {counts['resumed failed']} of them in the rows resumed" if counts["resumed failed"] else ""
        total = counts["resumed"] + counts["scored"]
        err.print(
            f"{failed + counts['resumed failed']} of {count(total, 'image')} could not be scored{before} "
            "(see the error column)",
            style="yellow",
        )
    if counts["noted"]:
        err.print(noted_line(counts["noted"], counts["scored"], rows_at, older), style="yellow")
    if summary := skipped_summary(skipped, broken, "score"):
        err.print(summary, style="yellow")
    if empty.count:  # named as a missing path is, which has its row
        err.print(empty_inputs(empty.named, empty.count), style="yellow")
    raise typer.Exit(EXIT_FAILED if failed or counts["resumed failed"] else EXIT_OK)


class Empty:
    """``on_empty(path)`` of the inputs listed: the first three paths and how many in all (memory stays flat)."""

    def __init__(self) -> None:
        self.named: list[str] = []
        self.count = 0

    def __call__(self, path: str) -> None:
        self.count += 1
        if len(self.named) < 3:
            self.named.append(path)


def _close_quietly(stream) -> None:
    """Close an output stream whose rows were each flushed as written: what is left to flush is the row whose write
    failed, said already in its one line, and flushing it again would end in a traceback."""
    with suppress(OSError):
        stream.close()


def resuming(skipped: int, total: str, listing: Path, retried: int, done: str, left: str = "") -> str:
    """The line of a --resume into ``listing``: ``skipped`` of the ``total`` inputs (a count with its noun) are in
    it, and ``retried`` more whose rows held an error, ``done`` (--retry-failed); ``left``: what is left to do, where
    it is known (map says it at the start; score lists its inputs as it scores them, and says it at the end)."""
    again = f" ({retried} failed, {done})" if retried else ""
    return f"resuming: {skipped + retried} of {total} already in {listing}{again}{left and '; '}{left}"


def none_resumed(output: Path, rows: int, inputs: int, matched: str, done: str) -> str:
    """The warning of a --resume into ``output``, whose ``rows`` name none of the ``inputs`` (paths given from
    another folder, or otherwise written: ``matched`` says how they are matched), so that all were ``done`` again."""
    from ..utils.messages import warning_line

    return warning_line(
        f"{output}: none of its {count(rows, 'row')} names an input; {matched}, so all {count(inputs, 'input')} "
        f"were {done}: give the paths as the run that wrote it did, from the same folder"
    )


def _own_files(*files: Path) -> dict[str, set[str]]:
    """The files this run writes (-o, --html, their lock files, the settings file of -o), by name: the real paths."""
    own: dict[str, set[str]] = {}
    for path in files:
        own.setdefault(path.name, set()).add(os.path.realpath(path))
    return own


def _is_own(path: str, own: dict[str, set[str]]) -> bool:
    """Whether ``path`` is one of :func:`_own_files` (its real path is looked up only for the names there)."""
    return os.path.realpath(path) in own.get(os.path.basename(path), ())


def settings_record(output: Path, settings: dict, resumed: bool, err, verb="score", done="scored", into="file"):
    """What writes ``settings`` beside ``output`` once it is open for this run's rows (a file refused keeps its
    record), or None when the record there already says the same. ``resumed``: its rows are kept, so the settings
    they were ``done`` with must be these (else one line, exit 2: ``verb`` into another ``into``); with no record
    to check, a warning. Also arniqa map's, beside maps.csv."""
    from ..utils.messages import warning_line
    from .result_files import changed_settings, read_settings, write_settings

    known = None
    if resumed:
        try:
            known = read_settings(output)
        except ValueError as e:
            err.print(
                warning_line(
                    f"{output}: {e}, so the settings its rows were {done} with could not be checked; "
                    "this run's are recorded from now on"
                ),
                style="yellow",
            )
    if known is not None and (changes := changed_settings(known, settings)):
        fail(
            f"{output}: its rows were {done} with {', '.join(changes)}; {verb} into another {into}, or rerun "
            f"without --resume to {verb} everything again"
        )
    return None if known == settings else partial(write_settings, output, settings)


def _settings(checkpoint, weights_dir, regressor, explainer, scorer, no_scale, max_side, precision, calibrate) -> dict:
    """What decides the numbers of a run's rows, by option (:func:`~arniqa.cli.result_files.write_settings`): the
    model (:func:`model_settings`), the protocol (``scorer``'s), the scale, --max-side (not read by crops), the
    precision and an int8 model's calibration photos (by content). Not --engine, --device, --batch-size,
    --channels-last, --workers: they keep scores within 1e-4 (docs/usage.md)."""
    settings = {
        **model_settings(checkpoint, weights_dir, regressor, explainer),
        "--protocol": scorer.protocol.name,
        "--no-scale": "on" if no_scale else "off",
        "--max-side": max_side,  # refused under crops (check_settings)
        "--precision": precision,
    }
    if precision == "int8" and calibrate is None:
        settings["--calibrate"] = "the bundled photos"
    elif precision == "int8":  # the same photos wherever their folder lies, given by any path
        from ..inference.quantize import calibration_digest

        settings["--calibrate"] = {"name": str(calibrate), "sha256": calibration_digest(calibrate)}
    return settings


def model_settings(checkpoint, weights_dir, regressor, explainer) -> dict:
    """The model's files by SHA-256, by option: --checkpoint, --regressor and the explainer's (None: not used),
    as score's and map's settings record them."""
    import hashlib

    from ..inference.loading import published_files
    from ..inference.sidecar import sidecar_path
    from ..models.paths import is_onnx
    from ..utils.cache import sha256_of

    def file(name, path):
        return {"name": str(name), "sha256": None if path is None else sha256_of(path)}

    if checkpoint is None:
        (encoder, encoder_path), (reg_name, reg_path) = published_files(DEFAULT_MODEL, weights_dir, regressor)
        model, reg = file(f"none: the published {encoder}", encoder_path), file(reg_name, reg_path)
    elif is_onnx(checkpoint):  # the file and its sidecar (the score range)
        files = [checkpoint, *filter(Path.is_file, [sidecar_path(checkpoint)])]
        digest = hashlib.sha256("".join(map(sha256_of, files)).encode()).hexdigest()
        model, reg = {"name": str(checkpoint), "sha256": digest}, "the ONNX file's own"
    else:
        from ..models.checkpoint import checkpoint_digest  # here: it imports torch, which scoring an ONNX file does not

        model = {"name": str(checkpoint), "sha256": checkpoint_digest(checkpoint)}
        reg = "the checkpoint's own" if regressor is None else file(regressor, regressor)
    settings = {"--checkpoint": model, "--regressor": reg}
    if explainer is not None:  # its head has loaded torch
        from ..models.checkpoint import checkpoint_digest

        settings["--explainer"] = {"name": str(explainer), "sha256": checkpoint_digest(explainer)}  # a file or folder
    return settings


def _loaded(model, advice, build):
    """What ``build()`` loads (``model``): a bad file or option one line, memory running out one line with
    ``advice(error)`` (:func:`loading`); exit 2."""
    try:
        with loading(model, advice):
            return build()
    except (ValueError, OSError) as e:
        fail(str(e))


def _ray_scorer(stack: ExitStack, address: str, workers: int | None, options: dict, explainer):
    """A :class:`~arniqa.integrations.ray.RayScorer` on the cluster at ``address`` (connected within
    ``stack``), explaining with ``explainer`` (or None), the error types of a run that stops and of a worker
    that could not load the model."""
    ray = connect_ray(stack, address)
    return ray.RayScorer(options, workers, explainer), (ray.RayRunError,), (ray.WorkerLoadError,)
