"""int8 ONNX files: an exported graph quantized statically, calibrated on the views of a few photos.

Format QDQ; weights int8 per output channel, activations uint8 per tensor (MinMax ranges), the
convolutions only: the normalisation, pooling and L2 steps stay fp32. Measured on a random-init
ResNet50 (``docs/usage.md``), quantizing every operator was slower and further from fp32, and ONNX
Runtime's dynamic quantization of convolutions slower than fp32.

Calibration photos: the sample photos bundled with scikit-image and scikit-learn
(:mod:`arniqa.data.samples`), or up to :data:`CALIBRATION_PHOTOS` images of a folder, spread evenly
over its sorted file list, each seen as the ``crops`` protocol's 10 views (a photo that cannot be read is
left out, with a warning naming it; at least one must be readable). The int8 file is cached
beside the fp32 file it comes from (``<fp32 key>.int8-<calibration key>.onnx`` in ``<cache>/onnx``),
keyed by both: the fp32 file (its name when it is the engine's own cached export, else its SHA-256)
and the settings and the calibration photos' contents (:func:`calibration_key`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.folders import list_images, not_a_folder
from ..data.images import ImageError, not_there, read_image
from ..data.samples import sample_arrays
from ..data.views import get_protocol
from ..models.paths import no_such_file
from ..utils.cache import cache_dir, cache_unwritable, mark_used, one_maker, prune_cache, sha256_of, short_digest
from ..utils.files import atomic_writes, own_files
from ..utils.jsonfile import json_writer
from ..utils.messages import file_line, warn_file
from .onnx_engine import ORT_FATAL, ORT_WARNING, OnnxEngine
from .sidecar import in_cache, read_sidecar, sidecar_path

CALIBRATION_PHOTOS = 16
SETTINGS = "qdq conv-only s8 per-channel weights, u8 minmax activations, v1"  # part of the cache key


def calibration_files(folder: str | os.PathLike, warn: bool = True) -> list[Path]:
    """Up to :data:`CALIBRATION_PHOTOS` image files under ``folder``, spread evenly over the sorted list (what the
    folder skips said on stderr, unless ``warn`` is False)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(
            f"{folder}: {not_a_folder(folder)} (the calibration photos); give a folder of photos like those to score"
        )
    files = list_images(folder, warn=warn, required=True, give="a folder of photos like those to score")
    return files[:: max(1, len(files) // CALIBRATION_PHOTOS)][:CALIBRATION_PHOTOS]


def calibration_key(folder: str | os.PathLike | None = None, photos: list[Path] | None = None) -> str:
    """The settings and the photos (the bundled ones' package versions, or :func:`calibration_digest`, so that a
    folder moved or copied elsewhere keeps its int8 file). ``photos``: the folder's :func:`calibration_files`,
    when they are listed already."""
    h = hashlib.sha256(SETTINGS.encode())
    if folder is None:
        h.update(f"samples skimage={version('scikit-image')} sklearn={version('scikit-learn')}".encode())
    else:
        h.update(calibration_digest(folder, photos).encode())
    return h.hexdigest()[:16]


def calibration_digest(folder: str | os.PathLike, photos: list[Path] | None = None) -> str:
    """What identifies the photos of ``folder`` an int8 file is calibrated on (:func:`calibration_files`), wherever
    the folder lies: the SHA-256 of their contents' SHA-256, in order. Listed quietly: a load said what it skips.
    ``photos``: the folder's :func:`calibration_files`, when they are listed already."""
    h = hashlib.sha256()
    for f in calibration_files(folder, warn=False) if photos is None else photos:
        h.update(sha256_of(f).encode())
    return h.hexdigest()


def calibration_views(
    folder: str | os.PathLike | None = None, photos: list[Path] | None = None
) -> list[dict[str, np.ndarray]]:
    """One feed ``{"full": (5,3,224,224), "half": (5,3,224,224)}`` (float32) per calibration photo. A photo of
    ``folder`` that cannot be read is left out with a warning naming it; ValueError when none can be. ``photos``:
    the folder's :func:`calibration_files`, when they are listed already."""
    if folder is None:
        images = [Image.fromarray(a) for a in sample_arrays().values()]
    else:
        files, images, errors = calibration_files(folder) if photos is None else photos, [], []
        for f in files:
            try:
                images.append(read_image(f))
            except ImageError as e:
                errors.append(e)
        if not images:  # one line, not a warning per photo before it
            raise ValueError(
                f"{folder}: none of the calibration photos can be read ({len(files)} tried; {errors[0]}); "
                "calibrate on a folder of readable photos"
            )
        for e in errors:
            warn_file(f"{e}; calibrating on the other photos", "unreadable, left out of the calibration", stacklevel=2)
    crops = get_protocol("crops")
    feeds = []
    for image in images:
        full, half = crops.arrays(image)
        feeds.append({"full": full, "half": half})
    return feeds


def quantize(
    fp32: str | os.PathLike,
    output: str | os.PathLike,
    calibrate: str | os.PathLike | None = None,
    photos: list[Path] | None = None,
) -> Path:
    """Write the int8 form of the ONNX file ``fp32`` at ``output`` (atomically), calibrated on the photos of
    the folder ``calibrate`` (default: the bundled ones; ``photos``: its :func:`calibration_files`, when they are
    listed already); a sidecar of ``fp32`` is copied with the precision and the calibration added, the graph and its
    sidecar replaced together (a sidecar left at ``output`` from an earlier graph is removed when ``fp32`` has
    none). The folder is listed once: what it skips is said once."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibrate is not None and photos is None:
        photos = calibration_files(calibrate)
    feeds = calibration_views(calibrate, photos)  # first: a folder with no readable photo stops before the work

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    output = Path(output)
    meta = read_sidecar(fp32)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, _fatal_only():
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)  # shapes and constant folding

        def write(path: Path) -> None:
            quantize_static(
                pre,
                path,
                Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv"],
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )

        files = [(output, write)]
        if meta is not None:
            meta = {
                **meta,
                "precision": "int8",
                "quantization": SETTINGS,
                "calibration": "bundled sample photos" if calibrate is None else str(calibrate),
                "calibration_key": calibration_key(calibrate, photos),
            }
            files.append((sidecar_path(output), json_writer(meta)))
        with own_files(sidecar_path(output)):  # a pipe planted as the sidecar is replaced, not written into
            atomic_writes(files)  # together: an earlier sidecar beside the new graph would scale its scores
    if meta is None:  # nor may one stay beside a graph that has none
        sidecar_path(output).unlink(missing_ok=True)
    return output


@contextmanager
def _fatal_only() -> Iterator[None]:
    """ONNX Runtime's default logger at fatal only while inside, then at its default level again (warnings; this
    package sets it nowhere else): the sessions that quantizing makes use it, and an error in them (out of memory
    calibrating) was logged as a line of its own before it reached us raised and was said as one line."""
    import onnxruntime as ort

    ort.set_default_logger_severity(ORT_FATAL)
    try:
        yield
    finally:
        ort.set_default_logger_severity(ORT_WARNING)


def int8_file(fp32: str | os.PathLike, calibrate: str | os.PathLike | None = None) -> Path:
    """The cached int8 form of the ONNX file ``fp32`` (made on first use: about a minute on a few CPU cores),
    calibrated on the bundled sample photos or on the photos of the folder ``calibrate``."""
    fp32 = Path(fp32)
    if not fp32.is_file():
        raise ValueError(no_such_file(fp32, "ONNX"))
    folder = cache_dir() / "onnx"
    key = fp32.stem if in_cache(fp32) else short_digest(sha256_of(fp32))
    photos = None if calibrate is None else calibration_files(calibrate)  # listed once: its note said once
    path = folder / f"{key}.int8-{calibration_key(calibrate, photos)}.onnx"
    if mark_used(path):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with one_maker(path, "quantizing"):  # a cluster's jobs starting together quantize it once
            if mark_used(path):  # quantized by the process waited for
                return path
            OnnxEngine(fp32)  # a file that is no arniqa export: fp32's one line, not a traceback from quantizing
            quantize(fp32, path, calibrate, photos)
    except OSError as e:
        read = {os.path.abspath(fp32), os.path.abspath(sidecar_path(fp32))}  # the fp32 file, not the cache
        if e.filename is not None and os.path.abspath(name := os.fsdecode(e.filename)) in read:
            raise OSError(file_line(name, *not_there(name, e))) from e
        raise cache_unwritable(folder, "the model's int8 form", e, "leave out --precision int8") from e
    prune_cache(folder)
    return path
