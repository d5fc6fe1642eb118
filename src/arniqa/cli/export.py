"""CLI verb: ``arniqa export -o FILE.onnx`` writes the model ``arniqa score`` would use as ONNX (+ a JSON sidecar)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..constants import DEFAULT_MODEL
from . import EXIT_OK, app, fail


@app.command()
def export(
    output: Path = typer.Option(..., "-o", "--output", help="The .onnx file to write (the sidecar is FILE.onnx.json)."),
    weights_dir: Path | None = typer.Option(
        None, "--weights-dir", help="Folder holding ARNIQA.pth and regressor_<dataset>.pth (no download)."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint (.safetensors) of this project."),
    regressor: str | None = typer.Option(
        None, "--regressor", help="Regressor dataset or file, as for `arniqa score`. Default: kadid10k."
    ),
    protocol: str = typer.Option("crops", "--protocol", help="The protocol recorded in the sidecar (views to feed)."),
    embedding: bool = typer.Option(False, "--embedding", help="Also output the 4096-d quality feature."),
    explainer: Path | None = typer.Option(
        None, "--explainer", help="Add the outputs explain_logits and severity of this explanation head (default: the "
                                  "checkpoint's own head, if it has one)."),  # fmt: skip
) -> None:
    """Export a model to ONNX: inputs full- and half-scale views (dynamic batch and size), output the score."""
    from ..inference import export as export_model
    from ..inference.export import sidecar_path

    if checkpoint is not None and weights_dir is not None:
        raise typer.BadParameter("--weights-dir is for the published model; do not combine it with --checkpoint")
    if output.suffix.lower() != ".onnx":
        raise typer.BadParameter(f"{output}: the output file must end in .onnx")
    try:
        path = export_model(output, checkpoint or DEFAULT_MODEL, weights_dir=weights_dir, regressor=regressor,
                            protocol=protocol, embedding=embedding, explainer=explainer)  # fmt: skip
    except (ValueError, OSError) as e:
        fail(str(e))
    typer.echo(f"wrote {path} and {sidecar_path(path)}")
    raise typer.Exit(EXIT_OK)
