"""CLI verb: ``arniqa score PATHS...`` writes one row per image (path, score, raw_score, error)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import typer

from ..constants import DEFAULT_MODEL
from . import EXIT_FAILED, EXIT_OK, app, connect_ray, fail


@app.command()
def score(
    paths: list[Path] = typer.Argument(
        ..., help="Image files, folders (searched recursively) and WebDataset tar shards; brace patterns such as "
                  "shards/{000000..000099}.tar are expanded."),  # fmt: skip
    weights_dir: Path | None = typer.Option(
        None, "--weights-dir", help="Folder holding ARNIQA.pth and regressor_<dataset>.pth (no download)."
    ),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A checkpoint (.safetensors) of this project, or an ONNX file of `arniqa export`."
    ),
    engine: str = typer.Option(
        "auto", "--engine", help="auto | torch | onnxruntime (auto: onnxruntime on CPU, torch on GPUs; see docs/usage.md)."
    ),
    regressor: str | None = typer.Option(
        None, "--regressor",
        help="Regressor dataset for the published model (live, csiq, tid2013, kadid10k, flive, spaq, clive, "
             "koniq10k; pyiqa names such as 'arniqa' or 'kadid' work), or a regressor file. Default: kadid10k.",
    ),
    protocol: str = typer.Option("crops", "--protocol", help="crops | whole | pyiqa | eval (see docs/usage.md)."),
    fmt: str | None = typer.Option(None, "--format", help="csv | json. Default: json for a .json -o file, else csv."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Output file. Default: stdout."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Images per forward pass (crops: 10 crops each). Default: per device."
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps (auto: CUDA, then MPS, then CPU)."),
    no_scale: bool = typer.Option(False, "--no-scale", help="Write the raw (dataset-scale) score in 'score' too."),
    max_side: int | None = typer.Option(
        None, "--max-side", min=2, help="whole/pyiqa: downscale images whose longer side exceeds N (with a warning)."
    ),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | bf16 | fp16 (autocast)."),
    channels_last: bool | None = typer.Option(
        None, "--channels-last/--no-channels-last", help="torch: channels_last memory format (same scores). Default: per device."
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Decoding threads. Default: up to 4."),
    resume: bool = typer.Option(False, "--resume", help="Skip paths already in the -o file and append the rest."),
    ray: str | None = typer.Option(
        None, "--ray", metavar="ADDRESS|local",
        help="Score on the Ray cluster at ADDRESS (auto, HOST:PORT, ray://HOST:10001), or on a Ray instance "
             "started here with this machine's CPUs and GPUs (local). Same rows; needs arniqa[ray].",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="--ray: scoring actors. Default: one per GPU, else one per CPU."
    ),
    explain: bool = typer.Option(False, "--explain", help="Add the most probable distortion groups and a severity "
                                 "(columns explanation, severity; needs an explanation head, docs/explain.md)."),
    explainer: Path | None = typer.Option(None, "--explainer", help="The explanation head file (default: the checkpoint's)."),
    html: Path | None = typer.Option(None, "--html", help="Also write a visual report of the rows (arniqa report)."),
) -> None:
    """Score images with ARNIQA: one row per image, in input order; exit status 1 if any image failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..inference import load
    from ..inference.inputs import source_name
    from ..reports.html import write_report
    from .results import collect_paths, format_for, read_done, read_rows, skipped_summary, write_scores

    err = Console(stderr=True)
    if checkpoint is not None and weights_dir is not None:
        raise typer.BadParameter("--weights-dir is for the published model; do not combine it with --checkpoint")
    if resume and output is None:
        raise typer.BadParameter("--resume needs -o FILE")
    if ray_workers is not None and ray is None:
        raise typer.BadParameter("--ray-workers goes with --ray")
    if ray is not None and explain:
        raise typer.BadParameter("--explain does not run on Ray yet")
    try:
        fmt = format_for(output, fmt)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None

    files, skipped = collect_paths(paths)
    done = read_done(output, fmt) if resume else set()
    todo = [f for i, f in enumerate(files) if source_name(f, i) not in done]
    if not files:
        fail("no image files found" + (f" ({skipped_summary(skipped)})" if skipped else ""))
    options = dict(weights_dir=weights_dir, protocol=protocol, regressor=regressor, batch_size=batch_size,
                   max_side=max_side, precision=precision, workers=workers, channels_last=channels_last,
                   engine=engine)  # fmt: skip
    try:  # also with --ray: bad options and models fail here, before the cluster is asked
        scorer = load(checkpoint or DEFAULT_MODEL, device=device, explainer=explainer, **options)
    except (ValueError, OSError) as e:
        fail(str(e))
    if explain and scorer.explainer is None:
        fail("the model has no explanation head; pass --explainer FILE (arniqa explain fit)")
    if scorer.regressor is None:
        fail("the checkpoint has no regressor; pass --regressor FILE")
    scale = not no_scale and scorer.regressor.score_range is not None
    if not no_scale and not scale:
        err.print("the regressor has no score range: writing raw scores", style="yellow")
    if done:
        err.print(f"resuming: {len(files) - len(todo)} of {len(files)} paths already in {output}", markup=False)

    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with ExitStack() as stack:
        stops: tuple = ()  # the errors that end a run early (with --ray: a lost worker or node)
        if ray is not None:
            scorer, stops = _ray_scorer(stack, ray, ray_workers, dict(model=str(checkpoint or DEFAULT_MODEL),
                                                                      device=device, **options))  # fmt: skip
        bar = stack.enter_context(Progress(*columns, console=err, transient=False, disable=not todo))
        task = bar.add_task("scoring", total=len(todo))
        rows = read_rows(output, fmt) if resume and html is not None else []
        try:
            failed = write_scores(scorer, todo, sys.stdout if output is None else output, fmt, append=resume,
                                  scale=scale, advance=lambda: bar.advance(task), explain=explain, rows=rows)  # fmt: skip
        except stops as e:
            fail(f"the Ray run stopped ({e}); the rows written so far are kept and --resume goes on from them")
    if html is not None:
        write_report(rows, html)
        err.print(f"wrote {html}", markup=False)
    if failed:
        err.print(f"{failed} of {len(todo)} images could not be scored (see the error column)", style="yellow")
    if skipped:
        err.print(skipped_summary(skipped), style="yellow", markup=False)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _ray_scorer(stack: ExitStack, address: str, workers: int | None, options: dict):
    """A :class:`~arniqa.integrations.ray.RayScorer` on the cluster at ``address`` (connected within
    ``stack``) and the error type of a run that stops."""
    ray = connect_ray(stack, address)
    return ray.RayScorer(options, workers), (ray.RayRunError,)
