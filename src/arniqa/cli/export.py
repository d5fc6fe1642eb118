"""CLI verb: ``arniqa export -o FILE.onnx`` writes the model ``arniqa score`` would use as ONNX (+ a JSON sidecar)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..constants import DEFAULT_MODEL, DEFAULT_PROTOCOL
from ..utils.names import option
from .command import (
    EXIT_OK,
    app,
    check_calibration,
    check_model_files,
    checkpoint_option,
    fail,
    fail_io,
    loading,
    one_model_source,
    output_folders,
    regressor_option,
    weights_dir_option,
)


@app.command()
def export(
    output: Path = typer.Option(
        ..., "-o", "--output", help="The .onnx file to write (the sidecar is FILE.onnx.json).", readable=False
    ),
    weights_dir: Path | None = weights_dir_option(regressor=True),
    checkpoint: Path | None = checkpoint_option(onnx=False),
    regressor: str | None = regressor_option(),
    protocol: str = typer.Option(
        DEFAULT_PROTOCOL, "--protocol", help="The protocol recorded in the sidecar: the views the file is scored with."
    ),
    embedding: bool = typer.Option(False, "--embedding", help="Also output the 4096-d quality feature."),
    int8: bool = typer.Option(False, "--int8", help="Quantize to int8 (ONNX Runtime; see docs/usage.md)."),
    calibrate: Path | None = typer.Option(
        None,
        "--calibrate",
        help="--int8: a folder of photos to calibrate on. Default: the bundled sample photos.",
        readable=False,
    ),
    explainer: Path | None = typer.Option(
        None,
        "--explainer",
        help="Add the outputs explain_logits and severity of this explanation head (default: the "
        "checkpoint's own head, if it has one).",
        readable=False,
    ),
) -> None:
    """Export a model to ONNX: inputs full- and half-scale views (dynamic batch and size), output the score."""
    from ..inference import export as export_model
    from ..inference.sidecar import sidecar_path

    one_model_source(checkpoint, weights_dir)
    check_calibration(calibrate, int8)
    with output_folders(files=(output,)):  # a stopped export leaves no empty folder
        model = checkpoint or DEFAULT_MODEL
        check_model_files(model, weights_dir, regressor, explainer)
        advice = "free memory or export on a machine with more"
        if int8:
            advice += ", or leave out --int8 (quantizing takes more memory than exporting)"
        try:
            with loading(model, lambda e: advice, "exporting"):
                path = export_model(
                    output,
                    model,
                    weights_dir=weights_dir,
                    regressor=regressor,
                    protocol=protocol,
                    embedding=embedding,
                    int8=int8,
                    calibrate=calibrate,
                    explainer=explainer,
                    say=option,
                )
        except ValueError as e:
            fail(str(e))
        except OSError as e:
            fail_io(e, output, sidecar_path(output))
    typer.echo(f"wrote {path} and {sidecar_path(path)}")
    raise typer.Exit(EXIT_OK)
