"""``arniqa demo``: every stage of the pipeline on photos that ship inside the dependencies.

1. Photos: scikit-image's sample colour photos and scikit-learn's two sample images (no download).
2. A short self-supervised SE-ResNet50 training run on the CPU (the real :class:`Trainer`: crops,
   degradation chains, NT-Xent with hard negatives, checkpoints, logs).
3. A small synthetic labelled set made with the degradation model (KADID-10k layout; the label of
   a distorted image is KADID-10k's mean MOS for its type and level).
4. Features of the trained encoder, a ridge regressor fitted on some references and tested on the
   others (reference-disjoint), scoring of a few images.
5. The encoder and the fitted ridge as one checkpoint, ``model.safetensors`` (the format of
   :mod:`arniqa.models.checkpoint`), and a short report (markdown and one plot) that ends with the
   ``arniqa score ... --checkpoint`` command that uses it.

So short a run does **not** give a useful quality model: the demo shows the machinery working, not
ARNIQA's accuracy (that needs the full 10-epoch run on KADIS-700k, see docs/training.md).
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import numpy as np
from PIL import Image

from .data.images import read_image
from .data.iqa import load_dataset
from .data.pixels import pil_to_tensor, tensor_to_pil
from .data.samples import sample_arrays
from .data.synthetic import build_synthetic
from .degradations import distort
from .evaluate.features import FeatureProtocol, extract_features
from .evaluate.metrics import correlations
from .evaluate.probe import fit, predict
from .models.checkpoint import load_checkpoint, save_checkpoint
from .models.regressor import Regressor
from .train import load_config, train
from .train.config import ConfigError, from_dict, read_values
from .utils.files import atomic_write, text_writer
from .utils.messages import file_line
from .utils.runtime import resolve_device

# Distortion types used for the synthetic set: one or two per group, levels 1..5 each.
DEMO_TYPES = ("gaublur", "motionblur", "jpeg", "jpeg2000", "whitenoise", "impulsenoise", "colorsat2", "darken",
              "pixelate", "highsharpen")  # fmt: skip
WARNING = (
    "This was a demonstration run of a few steps on a handful of photos: it shows that every stage "
    "works, but it does not give a useful quality model. Scores and correlations below are not "
    "ARNIQA's accuracy. Train with configs/arniqa_se_resnet50.yaml on KADIS-700k for a real model."
)


def sample_photos(folder: Path) -> list[Path]:
    """Write the bundled sample photos as PNG into ``folder``; returns their paths (sorted)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in sample_arrays().items():
        path = folder / f"{name}.png"
        if not path.exists():  # written whole or not at all: a rerun keeps what exists
            atomic_write(path, lambda tmp, array=array: Image.fromarray(array).save(tmp, format="PNG"))
        paths.append(path)
    return sorted(paths)


def check_same_run(run: Path, steps: int, crop_size: int, batch_size: int) -> None:
    """ValueError if the training run in ``run`` (finished or interrupted) was made with other settings: a rerun
    reuses it, and its report and checkpoint would describe settings it was not trained with."""
    path = run / "config.yaml"
    if not path.is_file():
        return
    values = read_values(path)  # the loader of every config: a damaged or hostile file is one line naming it
    try:
        saved = from_dict(values)
    except ConfigError as err:
        raise ConfigError(file_line(path, f"not the config of a training run ({err})", "choose another -o")) from None
    was = (saved.train.max_steps, saved.data.crop_size, saved.train.batch_size)
    if was != (steps, crop_size, batch_size):
        raise ValueError(
            f"{run}: trained with --steps {was[0]} and --crop-size {was[1]} (batch {was[2]}), not --steps {steps} "
            f"and --crop-size {crop_size} (batch {batch_size}); rerun with those, or choose another -o"
        )


def run_demo(
    output: str | Path = "arniqa-demo",
    steps: int = 12,
    crop_size: int = 64,
    batch_size: int = 4,
    synthetic_size: tuple[int, int] = (128, 96),
    types: tuple[str, ...] = DEMO_TYPES,
    device: str = "cpu",
    progress: bool = True,
    log=print,
) -> Path:
    """Run the demo into ``output``; returns the path of ``report.md``. Rerunning reuses what is done
    (a finished training run, synthetic images already written); a run made with other settings is refused
    (:func:`check_same_run`)."""
    device = str(resolve_device(device))  # auto: the device it picks, for torch and the log
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    log(f"[1/5] sample photos -> {output / 'photos'}")
    photos = sample_photos(output / "photos")

    log(
        f"[2/5] self-supervised training: SE-ResNet50, {steps} steps of {batch_size} samples, "
        f"{crop_size} px crops, {device}"
    )
    run = output / "run"
    state = run / "state.pt"
    config = load_config(
        None,
        [
            f"output={run}",
            f"data.root={output / 'photos'}",
            f"data.crop_size={crop_size}",
            "data.num_workers=0",
            "model.backbone=se_resnet50",
            "model.init=random",
            f"train.batch_size={batch_size}",
            f"train.epochs={-(-steps * batch_size // len(photos))}",
            f"train.max_steps={steps}",
            f"train.device={device}",
            "train.precision=fp32",
            "train.checkpoint_every=5",
            "log.every=1",
            f"log.progress={str(progress).lower()}",
        ],
    )
    model_path = run / "model.safetensors"
    check_same_run(run, steps, crop_size, batch_size)
    if not model_path.exists():
        train(config, resume=state if state.exists() else None)
    model, _, _ = load_checkpoint(model_path, device=device)

    log("[3/5] synthetic labelled set (degradation model, KADID-10k mean MOS per type and level)")
    synthetic = output / "synthetic"
    held_out = [p for p in photos if p.stem in ("china", "flower")]
    refs = [p for p in photos if p not in held_out]
    build_synthetic(refs, synthetic, size=synthetic_size, types=types)
    dataset = load_dataset("kadid10k", synthetic)

    log(f"[4/5] features of {len(dataset)} images, ridge on {len(refs) - 2} references, test on 2")
    protocol = FeatureProtocol(crop_size=crop_size)
    features = extract_features(model, dataset.paths, protocol, device=device, progress=progress)
    scores = dataset.scores
    references = np.array(dataset.references)
    test_refs = sorted(set(references))[-2:]
    train_idx = np.flatnonzero(~np.isin(references, test_refs))
    test_idx = np.flatnonzero(np.isin(references, test_refs))
    coef, intercept = fit(features, scores, alpha=0.1, images=train_idx)
    predicted = predict(features, coef, intercept)
    test_metrics = correlations(predicted[test_idx], scores[test_idx])

    scored = score_examples(model, held_out, output / "examples", coef, intercept, protocol, device)
    log(f"[5/5] checkpoint {output / 'model.safetensors'} (encoder + ridge) and report")
    regressor = Regressor.from_numpy(coef, intercept, dataset="kadid10k")  # labels on KADID-10k's MOS scale
    save_checkpoint(output / "model.safetensors", model, regressor, demo_steps=steps, demo_crop_size=crop_size)
    return write_report(output, config, run, dataset, predicted, test_idx, test_metrics, scored, len(types))


def score_command(output: Path) -> str:
    """The ``arniqa score`` command that scores the demo's example images with its checkpoint."""
    args = [
        "arniqa",
        "score",
        str(output / "examples"),
        "--checkpoint",
        str(output / "model.safetensors"),
        "--protocol",
        "whole",
        "-o",
        str(output / "scores.csv"),
    ]
    return shlex.join(args)


def score_examples(model, photos, folder: Path, coef, intercept, protocol, device) -> list[tuple[str, str, float]]:
    """Score held-out photos, pristine and degraded, with the fitted ridge: (file, description, score)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo in photos:
        image = read_image(photo)
        image.thumbnail((256, 256))
        x = pil_to_tensor(image)
        variants = [
            ("pristine", x),
            ("gaublur level 4", distort(x, "gaublur", 4)),
            ("jpeg level 5", distort(x, "jpeg", 5)),
        ]
        for label, y in variants:
            path = folder / f"{photo.stem}_{label.replace(' ', '_')}.png"
            atomic_write(path, lambda tmp, y=y: tensor_to_pil(y).save(tmp, format="PNG"))
            rows.append((path, label))
    features = extract_features(model, [p for p, _ in rows], protocol, device=device, progress=False)
    values = predict(features, coef, intercept)
    return [(p.name, label, float(v)) for (p, label), v in zip(rows, values)]


def write_report(output: Path, config, run: Path, dataset, predicted, test_idx, metrics, scored, n_types: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(run / "log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    steps = [int(r["global_step"]) for r in log]
    losses = [float(r["loss"]) for r in log]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(steps, losses, marker="o")
    ax1.set(xlabel="step", ylabel="NT-Xent loss", title="Self-supervised training (demo length)")
    ax2.scatter(dataset.scores[test_idx], predicted[test_idx], s=12)
    ax2.set(
        xlabel="label (KADID-10k mean MOS of type and level)",
        ylabel="predicted",
        title="Held-out references of the synthetic set",
    )
    fig.tight_layout()
    atomic_write(output / "report.png", lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)

    lines = [
        "# arniqa demo",
        "",
        f"> **{WARNING}**",
        "",
        "## Stages",
        "",
        f"1. Photos: {len(list((output / 'photos').glob('*.png')))} sample photos bundled with scikit-image and "
        "scikit-learn (`photos/`).",
        f"2. Training: SE-ResNet50 ARNIQA, random init, {steps[-1]} steps, batch {config.train.batch_size}, "
        f"{config.data.crop_size} px crops, NT-Xent loss {losses[0]:.3f} -> {losses[-1]:.3f} (`run/`: log.csv, "
        "tensorboard/, state.pt, model.safetensors).",
        f"3. Synthetic labelled set: {len(dataset)} images, {n_types} distortion types x 5 levels (`synthetic/`).",
        f"4. Ridge (alpha 0.1) on the 4096-d features; test on {len(test_idx)} images of 2 held-out references: "
        f"SRCC {metrics['srcc']:.3f}, PLCC {metrics['plcc']:.3f}.",
        "5. Scores of held-out photos (higher = better quality on the 1-5 scale):",
        "",
        "| image | version | predicted score |",
        "|---|---|---|",
        *(f"| {name} | {label} | {value:.2f} |" for name, label, value in scored),
        "",
        "![training loss and predictions](report.png)",
        "",
        "## Scoring with the demo model",
        "",
        "`model.safetensors` holds the trained encoder and the ridge fitted above (KADID-10k scale, scaled to 0-1 "
        "by `arniqa score`). Its scores differ from the table: the table uses the demo's small crops, the "
        "command below the whole image (`--protocol whole`).",
        "",
        "```bash",
        score_command(output),
        "```",
        "",
    ]
    text = "\n".join(lines)
    return atomic_write(output / "report.md", text_writer(text))
