"""A synthetic KADID-10k-style benchmark made with this project's degradation model.

Every pristine image x the 23 distortion types that KADID-10k shares with the model x 5 levels,
written in KADID-10k's layout (``images/I<ref>.png``, ``images/I<ref>_<type>_<level>.png`` and
``dmos.csv``), so the KADID-10k adapter reads it unchanged. The label of a distorted image is
KADID-10k's **mean MOS over its 81 contents for that type and level** (a human severity per
(type, level) pair, not an opinion about the image).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from ..constants import MAX_SEED, SYNTHETIC_SIZE
from ..degradations import LEVELS, NUM_LEVELS
from ..utils.files import atomic_write, text_writer
from ..utils.jsonfile import parse_json, write_json
from ..utils.locks import output_lock
from ..utils.messages import file_line, warn_file
from ..utils.names import count
from ..utils.textfiles import escape_name
from .images import ImageError, read_image
from .iqa.kadid10k import TYPES as KADID_NUMBERING
from .pixels import pil_to_tensor, tensor_to_pil

if TYPE_CHECKING:
    import torch

SETTINGS_FILE = "settings.json"  # size, seed and references of the images in a benchmark folder

# KADID-10k type number of each model key it shares (types 06 colour quantisation and 15 denoise have no
# counterpart; nonlincontrchange has none in KADID-10k).
KADID_TYPES: dict[str, int] = {name: t for t, name in enumerate(KADID_NUMBERING, start=1) if name in LEVELS}

# Mean MOS (1..5, higher is better) over KADID-10k's 81 contents, levels 1..5
# (shared/docs/kadid-severity.md, computed from the public KADID-10k label file).
KADID_MEAN_MOS: dict[str, tuple[float, ...]] = {
    "gaublur": (4.612, 4.382, 2.911, 1.873, 1.303),
    "lensblur": (3.862, 2.654, 1.756, 1.442, 1.299),
    "motionblur": (4.604, 4.095, 2.848, 2.175, 1.668),
    "colordiff": (4.495, 2.602, 1.756, 1.605, 1.394),
    "colorshift": (4.227, 2.545, 1.916, 1.854, 1.864),
    "colorsat1": (2.746, 2.335, 2.262, 2.244, 2.027),
    "colorsat2": (4.580, 3.330, 2.648, 1.816, 1.525),
    "jpeg2000": (4.553, 4.205, 3.873, 2.445, 1.394),
    "jpeg": (4.338, 4.246, 3.866, 1.945, 1.350),
    "whitenoise": (3.893, 3.390, 3.045, 2.710, 2.301),
    "whitenoiseCC": (4.468, 3.683, 3.170, 2.687, 2.380),
    "impulsenoise": (3.584, 2.930, 2.613, 2.312, 2.132),
    "multnoise": (4.404, 3.582, 3.084, 2.639, 2.117),
    "brighten": (4.506, 4.287, 3.632, 2.701, 1.809),
    "darken": (4.600, 4.527, 4.231, 3.535, 2.221),
    "meanshift": (4.218, 4.519, 4.603, 4.370, 3.903),
    "jitter": (4.419, 4.086, 3.235, 1.849, 1.339),
    "noneccpatch": (4.333, 3.938, 3.773, 3.464, 3.261),
    "pixelate": (3.889, 3.098, 2.900, 2.794, 1.496),
    "quantization": (4.168, 3.933, 3.686, 3.373, 2.799),
    "colorblock": (2.687, 2.359, 2.300, 2.126, 2.035),
    "highsharpen": (3.579, 2.636, 2.136, 1.613, 1.336),
    "lincontrchange": (3.419, 3.858, 4.290, 4.141, 3.324),
}

LABEL_NOTE = (
    "Labels are KADID-10k's mean MOS over its 81 contents for each (distortion type, level) "
    "pair (1..5, higher is better): a human-grounded severity per type and level, not an "
    "opinion about each image. The column is named 'dmos' as in KADID-10k, but it is a MOS."
)

# KADID-10k's lens-blurred images were made with MATLAB's fspecial('disk'); training uses the
# reference implementation's own kernels (see arniqa.degradations.blur.lens_blur).
KADID_OPTIONS = {"lensblur": {"kernel": "matlab"}}


def prepare(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """The image at ``path`` resized (bicubic) to cover ``size`` (W, H) and centre-cropped to it."""
    return _fit(read_image(path), size)


# A photo is resized whole when the result has at most this many pixels (201 MB): one whose aspect ratio is within 4
# times the benchmark's at 4096x4096 (341 times at 512x384) is prepared as it always was. Past it only the part kept
# is resized: a 2 x 70000 px strip resized whole to cover 512x384 asked for 37 GB.
WHOLE_RESIZE_PIXELS = 2**26


def _fit(pil: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    w, h = pil.size
    tw, th = size
    scale = max(tw / w, th / h)
    rw, rh = max(tw, round(w * scale)), max(th, round(h * scale))
    left, top = (rw - tw) // 2, (rh - th) // 2
    if rw * rh > WHOLE_RESIZE_PIXELS:
        return pil_to_tensor(_resize_part(pil, (rw, rh), (left, top, left + tw, top + th)))
    pil = pil.resize((rw, rh), Image.BICUBIC)
    return pil_to_tensor(pil.crop((left, top, left + tw, top + th)))


def _resize_part(pil: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """The part ``box`` of ``pil`` resized (bicubic) to ``size``, resizing nothing else. The source pixels it reads,
    with a margin of the filter's support, are cropped first: PIL takes the box in float32, exact only near 0."""
    (w, h), (rw, rh) = pil.size, size
    sx, sy = w / rw, h / rh
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    mx, my = 2 * max(sx, 1) + 1, 2 * max(sy, 1) + 1  # PIL's bicubic reads 2 px either side, times the reduction
    cx, cy = max(0, math.floor(x0 - mx)), max(0, math.floor(y0 - my))
    part = pil.crop((cx, cy, min(w, math.ceil(x1 + mx)), min(h, math.ceil(y1 + my))))
    return part.resize((box[2] - box[0], box[3] - box[1]), Image.BICUBIC, box=(x0 - cx, y0 - cy, x1 - cx, y1 - cy))


def _reference(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """:func:`prepare` of a pristine photo; one that cannot be read stops the build, saying what to do, and one
    smaller than ``size`` on either side is upscaled to it with a warning (:func:`~arniqa.utils.messages.warn_file`)."""
    try:
        pil = read_image(path)
    except ImageError as e:
        raise ImageError(e.path, e.problem, "take it out of the pristine photos (or replace it) and rerun") from None
    (w, h), (tw, th) = pil.size, size
    if w < tw or h < th:
        warn_file(
            f"{path}: {w}x{h} px, smaller than the benchmark's {tw}x{th}; its reference is "
            "upscaled (blurred): use a larger photo for a sharp one",
            f"smaller than the benchmark's {tw}x{th}, each upscaled (blurred) as its reference",
            stacklevel=2,
        )
    return _fit(pil, size)


def _save(x: torch.Tensor, path: Path) -> None:
    """Write the image atomically: a file on disk is a whole one (a rerun keeps it)."""
    image = tensor_to_pil(x)
    atomic_write(path, image.save)


# One reference at 4096x4096 held 2.6 GB in its first 5 minutes of distortions (2-core Intel Xeon, unfinished);
# 100000x100000 was killed by the kernel's OOM killer without a word.
MAX_SIDE = 4096


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (such as ``512x384``) as ``(width, height)``; ValueError unless both sides lie in
    [16, :data:`MAX_SIDE`]."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT such as 128x96, got {text!r}") from None
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        raise ValueError(
            f"sides must be from 16 to {MAX_SIDE} (KADID-10k's images are {'x'.join(map(str, SYNTHETIC_SIZE))}), "
            f"got {text!r}"
        )
    return w, h


def build_synthetic(
    pristine: list[Path],
    out: str | Path,
    size: tuple[int, int] = SYNTHETIC_SIZE,
    seed: int = 0,
    types: tuple[str, ...] = tuple(KADID_TYPES),
    progress=None,
) -> Path:
    """Write the benchmark for ``pristine`` images into ``out``; returns the path of ``dmos.csv``.

    Resumable: distorted images already on disk are kept (their randomness is seeded per
    image, type and level, so a rerun writes the same files); every file is written atomically, so
    one on disk is whole. ``out`` is locked (:func:`~arniqa.utils.locks.output_lock`) while it is
    written. ``progress(done, total)`` is called after each reference image. ValueError: ``out`` holds
    images of another size, seed or reference (``settings.json``), which a rerun would keep.
    """
    if not pristine:
        raise ValueError("no pristine images given")
    unknown = set(types) - set(KADID_TYPES)
    if unknown:
        raise ValueError(f"types without a KADID-10k counterpart: {sorted(unknown)}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"seed {seed}: the seed of the distortions must be from 0 to 2**32 - 1 (--seed; synthetic.seed of an "
            "ablation config)"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        _claim(out, pristine, size, seed)
        (out / "images").mkdir(exist_ok=True)  # after the claim: a refused folder is left as it was
        return _build(pristine, out, size, seed, types, progress)


def _made(out: Path, i: int) -> bool:
    """Whether ``out`` holds an image of reference ``i`` (its own, or a distorted one)."""
    return any((out / "images").glob(f"I{i:02d}[._]*"))


def _claim(out: Path, pristine: list[Path], size: tuple[int, int], seed: int) -> None:
    """Record in ``out/settings.json``, before any image is written, what the images are made of: size, seed and
    each reference's file. ValueError when ``out`` holds images made otherwise: the rerun would keep them beside
    its own under one ``dmos.csv``. A folder from before the file was kept (it has ``sources.csv``) is taken as it
    is; any other folder without it that holds a ``dmos.csv`` or images (a KADID-10k copy) is refused: its label
    file would be replaced. A reference with no image on disk (a photo that could not be read, since taken out)
    may come from another file."""
    path = out / SETTINGS_FILE
    sources = [str(Path(p).resolve()) for p in pristine]
    if not path.exists() and not (out / "sources.csv").exists():
        if (out / "dmos.csv").exists() or ((out / "images").is_dir() and any((out / "images").iterdir())):
            raise ValueError(
                f"{out}: holds a dmos.csv or images that arniqa benchmark synthetic did not make (no {SETTINGS_FILE}); "
                "choose another output folder: the build would replace its dmos.csv"
            )
    if path.exists():
        try:
            saved = parse_json(path.read_text(encoding="utf-8"))
            before = (tuple(saved["size"]), saved["seed"], list(saved["sources"]))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise ValueError(file_line(path, "not a benchmark's settings", f"delete {out} to build it again")) from None
        redo = f"choose another output folder, or delete {out} to build it again"
        if before[:2] != (tuple(size), seed):
            (w, h), old_seed = before[:2]
            raise ValueError(
                f"{out}: holds images of {w}x{h} px, seed {old_seed} ({path}), not {size[0]}x{size[1]}, seed {seed}; "
                + redo
            )
        for i, (old, new) in enumerate(zip(before[2], sources), start=1):
            if old != new and _made(out, i):
                raise ValueError(f"{out}: its reference I{i:02d} was made from {old}, not {new}; " + redo)
        made = [i for i in range(len(sources) + 1, len(before[2]) + 1) if _made(out, i)]
        sources += before[2][len(sources) : max(made, default=0)]  # images a shorter run leaves out stay
    write_json(path, {"size": list(size), "seed": seed, "sources": sources})


def _build(pristine, out: Path, size, seed, types, progress) -> Path:
    import torch  # here: the sizes, types and labels are read without it (arniqa ablate checks its config first)

    from ..degradations import distort

    rows = []
    for i, path in enumerate(pristine, start=1):
        ref_name = f"I{i:02d}.png"
        ref = None
        if not (out / "images" / ref_name).exists():
            ref = _reference(path, size)
            _save(ref, out / "images" / ref_name)
        for name in types:
            t = KADID_TYPES[name]
            for level in range(1, NUM_LEVELS + 1):
                dist_name = f"I{i:02d}_{t:02d}_{level:02d}.png"
                rows.append((dist_name, ref_name, KADID_MEAN_MOS[name][level - 1]))
                target = out / "images" / dist_name
                if target.exists():
                    continue
                if ref is None:
                    ref = _reference(path, size)
                g = torch.Generator().manual_seed(((seed * 100_000 + i) * 100 + t) * 10 + level)
                _save(distort(ref, name, level, generator=g, **KADID_OPTIONS.get(name, {})), target)
        if progress:
            progress(i, len(pristine))
    write_csv(
        out / "sources.csv",
        ["ref_img", "source"],
        ((f"I{i:02d}.png", escape_name(str(p))) for i, p in enumerate(pristine, start=1)),
    )
    text = (
        "# Synthetic KADID-style benchmark\n\n"
        f"{count(len(pristine), 'pristine image')} x {count(len(types), 'distortion type')} x 5 levels, "
        f"{size[0]}x{size[1]} px, seed {seed}, made with arniqa's degradation model.\n\n"
        f"{LABEL_NOTE}\n\nFile names follow KADID-10k: I<ref>_<type>_<level>.png; "
        "`sources.csv` maps each reference to its pristine file.\n"
    )
    atomic_write(out / "README.md", text_writer(text))
    return write_csv(
        out / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], ((d, r, f"{m:.3f}", "0.0") for d, r, m in rows)
    )


def write_csv(path: Path, header: list[str], rows) -> Path:
    """Write a CSV file atomically; returns ``path``."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)

    return atomic_write(path, write)
