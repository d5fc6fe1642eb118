"""CLI verb: ``arniqa explain fit PRISTINE -o FILE`` fits the explanation head (docs/explain.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ..constants import DEFAULT_MODEL, DEFAULT_PROTOCOL, MAX_SEED, SYNTHETIC_SIZE
from ..utils.messages import file_line
from ..utils.names import agree, count
from .command import (
    EXIT_FAILED,
    EXIT_OK,
    Verbs,
    app,
    checkpoint_option,
    device_option,
    fail,
    file_output,
    go_on,
    one_writer,
    output_folders,
    output_place,
    same_file,
    weights_dir_option,
    writing,
)

explain_app = typer.Typer(cls=Verbs, no_args_is_help=True, help="The explanation head: which distortion, how strong.")
app.add_typer(explain_app, name="explain")


@explain_app.command("fit")
def fit(
    pristine: Path = typer.Argument(..., help="Folder of pristine images (searched recursively).", readable=False),
    output: Path = typer.Option(
        ..., "-o", "--output", help="The head's .safetensors file (FILE.json: settings, accuracy).", readable=False
    ),
    checkpoint: Path | None = checkpoint_option(onnx=False),
    weights_dir: Path | None = weights_dir_option(regressor=False),
    into: Path | None = typer.Option(
        None, "--into", help="Also write a copy of --checkpoint with the head beside its regressor.", readable=False
    ),
    test: Path | None = typer.Option(
        None, "--test", help="Folder of held-out pristine images: accuracy on their samples.", readable=False
    ),
    protocol: str = typer.Option(
        DEFAULT_PROTOCOL,
        "--protocol",
        help="The views the features come from: the protocol you score with (as `arniqa score`).",
    ),
    size: str = typer.Option(
        "x".join(map(str, SYNTHETIC_SIZE)),
        "--size",
        help="Size WIDTHxHEIGHT of the synthetic images, sides 16 to 4096 (KADID-10k's).",
    ),
    chains: int = typer.Option(
        40, "--chains", min=0, help="Chains of distortions per reference, drawn as in training."
    ),
    images: int = typer.Option(0, "--images", min=0, help="Use the first N pristine images (0: all)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the distortions and chains."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Folder for each reference's features (reruns skip them).", readable=False
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes that make the distorted images (0: this one)."),
    device: str = device_option(),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Images per forward pass."),
) -> None:
    """Fit the explanation head on the synthetic KADID-style set of PRISTINE.

    The set holds single distortions, chains and the pristine images. Exit status 1 if some images could not be
    read."""
    from ..data.folders import NoImages, list_images
    from ..models.paths import is_onnx, is_safetensors

    if cache is not None:  # Ctrl-C, a signal: each reference's features are written whole as they are made
        go_on("the features in --cache are kept and a rerun skips them")
    if into is not None and checkpoint is None:
        raise typer.BadParameter("--into copies --checkpoint; give one")
    if checkpoint is not None and is_onnx(checkpoint):
        fail(f"{checkpoint}: an ONNX file; fit on the .safetensors checkpoint it was exported from")
    try:
        paths = list_images(pristine, required=True)[: images or None]
        test_paths = list_images(test, required=True) if test is not None else []
    except NoImages as e:
        fail(str(e))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    from ..data.synthetic import parse_size
    from ..inference import load, load_model
    from ..utils.console import progress_bar, terminal
    from ..utils.files import atomic_writes, own_files
    from ..utils.jsonfile import json_writer
    from ..utils.messages import error_line

    err = terminal(stderr=True)
    try:
        width_height = parse_size(size)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if shared := _shared_images(paths, test_paths):
        fail(
            f"--test {test}: {count(len(shared), 'image')} {agree(len(shared), 'is', 'are')} also among the fit "
            f"images, byte for byte (e.g. {shared[0]}); held-out accuracy needs other photos"
        )
    # a stopped fit leaves no empty folder; --into may replace --checkpoint (a copy of it with the head)
    with output_folders(cache, files=(output, into)):
        output_place(output, inputs=(checkpoint,))
        for option, path in (("-o", output), ("--into", into)):  # -o x.json was overwritten by its own report x.json
            if path is not None and not is_safetensors(path):
                fail(f"{option} {path}: the file it writes is a .safetensors file; name one")
        for path in (output, output.with_suffix(".json"), into):  # a folder in the way: before the fit, not after
            if path is not None:
                file_output(path)
        if into is not None and same_file(into, output):  # the head and the copy under one name: one would be lost
            fail(
                f"--into {into}: the file -o names too; the head and the checkpoint with it are two files: name another"
            )
        with one_writer(output):  # one writer: FILE and FILE.json come from one fit
            try:  # the engine `score` takes on this device (ONNX Runtime on a CPU): what `score --explain` sees
                scorer = load(
                    checkpoint or DEFAULT_MODEL,
                    device=device,
                    weights_dir=weights_dir,
                    protocol=protocol,
                    batch_size=batch_size,
                )
                if scorer.model is None:  # ONNX Runtime on a cached export: the encoder, which the head records
                    scorer.model = load_model(checkpoint or DEFAULT_MODEL, weights_dir)[0]
            except (ValueError, OSError) as e:
                fail(str(e))
            # Here, once the options are known good (load checks them first): these import torch.
            from ..explain.fit import accuracy, labelled_features
            from ..models.arniqa import pairing_fingerprints
            from ..models.explain import checkpoint_with_head, explainer_writer, fit_explainer

            settings = dict(size=width_height, chains=chains, seed=seed, cache=cache, workers=workers)
            plan = _plan(len(paths), len(test_paths), chains, scorer)

            def projected(seconds: float, left: int) -> None:
                left += len(test_paths)
                if left:
                    err.print(
                        f"a reference takes about {seconds:.0f} s (timed on the first): about "
                        f"{_duration(seconds * left)} for the {left} left (fewer if --cache holds some; "
                        "docs/explain.md, *Cost*: how to make it cheaper)"
                    )

            with (
                progress_bar(transient=True) as bar,
                _no_references(),
                writing(cache or output),  # entries
            ):
                task = bar.add_task("fit references", total=len(paths))
                data = labelled_features(
                    scorer,
                    paths,
                    progress=lambda i, n: bar.update(task, completed=i),
                    starting=lambda: err.print(plan),  # once a reference could be read
                    first=projected,
                    **settings,
                )
                held = None
                if test_paths:
                    task = bar.add_task("test references", total=len(test_paths))
                    held = labelled_features(
                        scorer,
                        test_paths,
                        progress=lambda i, n: bar.update(task, completed=i),
                        **{**settings, "seed": seed + 1},
                    )
            head = fit_explainer(data.features, data.targets, data.severity)
            info = {
                "model": str(checkpoint or DEFAULT_MODEL),
                "protocol": scorer.protocol.name,
                "size": list(width_height),
                "chains": chains,
                "seed": seed,
                "references": len(paths) - len(data.failed),
                "images": len(data.kinds),
                "encoder": f"checkpoint {checkpoint}" if checkpoint is not None else "the published encoder",
                **pairing_fingerprints(scorer.model),  # what the head is checked against when it explains
            }
            result = {**info, "fit_accuracy": accuracy(head, data)}
            if held is not None:
                result["test_references"] = len(test_paths) - len(held.failed)
                result["test_accuracy"] = accuracy(head, held)
            failed = data.failed + (held.failed if held is not None else [])
            result["failed"] = [{"path": p, "error": e} for p, e in failed]
            with writing(output):  # all replaced together: a full disk leaves every earlier file as it was
                files = [(output, explainer_writer(head, **info)), (output.with_suffix(".json"), json_writer(result))]
                if into is not None:
                    files.append((into, checkpoint_with_head(checkpoint, head, **info)))
                with own_files(output.with_suffix(".json")):  # a pipe planted as it is replaced, not written into
                    atomic_writes(files)
            if into is not None:
                typer.echo(f"wrote {into}")
            typer.echo(f"wrote {output} and {output.with_suffix('.json')}")
            for name in ("fit_accuracy", "test_accuracy"):
                single = result.get(name, {}).get("single")
                if single:
                    typer.echo(
                        f"{name.split('_')[0]}: group top-1 {single['top1']:.3f}, top-2 {single['top2']:.3f}, "
                        f"severity within 1 {single['severity_within_1']:.3f} "
                        f"({count(single['images'], 'single distortion')})"
                    )
            for path, error in failed:
                err.print(error_line(file_line(path, error)), style="red")
            if failed:
                err.print(
                    f"{len(failed)} of {count(len(paths) + len(test_paths), 'reference image')} could not be read "
                    f'(see "failed" in {output.with_suffix(".json")})',
                    style="yellow",
                )
            raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _plan(references: int, test: int, chains: int, scorer) -> str:
    """What the fit will compute: the images, and the views of each, whose forward passes are its cost."""
    from ..constants import CROP_SIZE
    from ..explain.samples import SINGLES, per_reference

    each = per_reference(chains)
    held = f", and {test * each:,} of {count(test, '--test reference')}" if test else ""
    if scorer.protocol.crops:
        views = (
            f"{2 * scorer.protocol.n_views} crops of {CROP_SIZE} px (--protocol {scorer.protocol.name}, at any --size)"
        )
    else:
        views = f"the image and its half-scale copy (--protocol {scorer.protocol.name})"
    refs = count(references, "reference")
    return (
        f"fitting on {references * each:,} images ({refs} x {each}: the photo, {SINGLES} single distortions, "
        f"{count(chains, 'chain')}){held}; each is {views}, on {scorer.device} with {scorer.engine.name}"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 2:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


@contextmanager
def _no_references() -> Iterator[None]:
    """A fit or test folder of which no image could be read: one line, exit 2 (nothing to fit or test on)."""
    try:
        yield
    except ValueError as e:
        fail(str(e))


def _shared_images(fit: list[Path], test: list[Path]) -> list[Path]:
    """The test images whose bytes are those of a fit image (the same file, or a copy of it)."""
    from ..utils.cache import sha256_of

    def digest(path: Path) -> str | None:
        try:
            return sha256_of(path)
        except OSError:  # unreadable: it fails later, named, as an image that cannot be read
            return None

    seen = {digest(p) for p in fit} - {None} if test else set()
    return [p for p in test if digest(p) in seen]
