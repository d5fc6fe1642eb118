"""CLI verb: ``arniqa report SCORES -o report.html`` turns a result file of ``arniqa score`` into a visual report."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from ..utils.names import agree, count
from ..utils.streams import is_stream
from .command import EXIT_FAILED, EXIT_OK, app, fail, html_output, output_place, writing, wrote
from .result_files import A_RESULT_FILE, FORMAT_LIST


@app.command()
def report(
    scores: Path = typer.Argument(..., help=f"A result file of `arniqa score` ({FORMAT_LIST}).", readable=False),
    output: Path = typer.Option(..., "-o", "--output", help="The HTML file to write.", readable=False),
    maps: Path | None = typer.Option(
        None, "--maps", help="The folder of `arniqa map`: each row links its map.", readable=False
    ),
    thumbnails: str = typer.Option(
        "embed", "--thumbnails", help="embed (small JPEGs inside the file) | link (relative to the report) | none."
    ),
    size: int = typer.Option(96, "--thumb-size", min=16, help="Longer side of thumbnails (px), embedded or linked."),
    best_worst: int = typer.Option(12, "--best-worst", min=0, help="How many of the worst and of the best to show."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="csv | json | jsonl. Default: by the file's name (.json: json; .jsonl, .ndjson: jsonl), else csv.",
    ),
) -> None:
    """Write one HTML report of a result file, self-contained but for linked thumbnails and maps.

    Score histogram, worst and best images, a paged table sortable by score, each row's explanation and map,
    and the rows that could not be scored."""
    from ..reports.html import THUMBNAILS, report_warnings, write_report
    from ..utils.messages import warning_line
    from .map import WROTE_MAPS, read_map_index
    from .result_files import NotAResultFile, OutputError, format_for, read_rows_and_rest

    if thumbnails not in THUMBNAILS:
        raise typer.BadParameter(f"--thumbnails must be one of {THUMBNAILS}")
    if scores.is_dir():
        fail(f"{scores}: a folder; give {A_RESULT_FILE}")
    if not scores.is_file():
        fail(f"{scores}: no such file; check the path of {A_RESULT_FILE}")
    output_place(output, inputs=(scores, None if maps is None else maps / "maps.csv"))
    html_output(output)
    try:
        fmt = format_for(scores, fmt)
    except ValueError as e:
        fail(str(e))
    try:
        rows, left_out = read_rows_and_rest(scores, fmt)
    except NotAResultFile as e:
        fail(e.line(f"give {A_RESULT_FILE} (--format says which, if its name does not)"))
    except OutputError as e:
        fail(str(e))
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{scores}: not a result file of arniqa score ({e})")
    if not rows and left_out:
        after = left_out - 1
        rest = f", nor {agree(after, 'does', 'do')} the {count(after, 'line')} after it" if after else ""
        fail(f"{scores}: its first row does not parse as a result row{rest} (an edit?); fix that row, or score again")
    if not rows:
        fail(f"{scores}: no rows; give a result file that arniqa score wrote rows into")
    try:
        index = None if maps is None else read_map_index(maps)
    except ValueError as e:  # no maps.csv
        fail(str(e))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        fail(f"{maps / 'maps.csv'}: cannot read it ({e}); {WROTE_MAPS}")
    with writing(output):
        made = write_report(
            rows,
            output,
            maps=index,
            thumbnails=thumbnails,
            size=size,
            best_worst=best_worst,
            title=f"arniqa report: {scores.name}",
        )
    size = "" if is_stream(output) else f", {output.stat().st_size / 1e6:.2f} MB"  # a log's size is not the report's
    wrote(f"wrote {output} ({count(len(rows), 'row')}{size})", output)
    for line in report_warnings(made, maps):
        typer.secho(line, err=True, fg="yellow")
    if left_out:
        typer.secho(
            warning_line(
                f"{scores}: {count(left_out, 'line')} after row {len(rows)} {agree(left_out, 'does', 'do')} not "
                f"parse as {agree(left_out, 'a result row', 'result rows')} and {agree(left_out, 'is', 'are')} left "
                "out (a run cut short, or an edit); arniqa score --resume completes a cut-short file"
            ),
            err=True,
            fg="yellow",
        )
    raise typer.Exit(EXIT_FAILED if left_out else EXIT_OK)
