"""From a name to a :class:`Scorer`: the published models by name, or a checkpoint of this project.

Names are those of :mod:`arniqa.models.registry`: ``arniqa-<dataset>`` (the published ``ARNIQA.pth``
encoder and the published ``regressor_<dataset>.pth``, fetched into the cache or read from
``weights_dir``) and pyiqa's metric names (``arniqa`` = KonIQ-10k, ``arniqa-live``, ``arniqa-tid``,
...). A path is a checkpoint saved by :func:`arniqa.models.checkpoint.save_checkpoint`: its file, any
of its parts, or its folder.
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import DEFAULT_MODEL, DEFAULT_PROTOCOL, DEFAULT_REGRESSOR
from ..data.folders import not_a_folder
from ..data.iqa.registry import canonical_dataset
from ..data.views import Protocol, get_protocol
from ..models.paths import is_onnx, no_head, no_such_file
from ..models.registry import is_checkpoint
from ..utils.cache import sha256_of, short_digest
from ..utils.locks import output_lock
from ..utils.messages import file_line
from ..utils.names import did_you_mean, keyword
from ..utils.runtime import device_or_auto, resolve_device
from ..utils.streams import is_stream, stream_kind
from .onnx_engine import OnnxEngine, execution_providers
from .pairing import check_onnx_pairing, check_pairing, warn_unchecked_head
from .scorer import Scorer, check_choices, check_engine, check_max_side, resolve_engine

if TYPE_CHECKING:
    import torch

    from ..models.arniqa import ARNIQA
    from ..models.regressor import Regressor

# The models (torch, timm) are imported by the functions that build one, so that scoring an ONNX file
# imports neither.


def load_published(dataset: str = DEFAULT_REGRESSOR, weights_dir=None) -> tuple[ARNIQA, Regressor]:
    """The published ARNIQA encoder and ``regressor_<dataset>.pth``, via :func:`arniqa.models.download.fetch`
    (the cache folder, or ``weights_dir``; downloaded on first use). No ImageNet weights are fetched."""
    return _published_encoder(weights_dir), _published_regressor(dataset, weights_dir)


def _published_encoder(weights_dir) -> ARNIQA:
    from ..models.download import fetch
    from ..models.published import published_encoder
    from ..models.registry import ENCODER_FILE

    return published_encoder(fetch(ENCODER_FILE, weights_dir))


def _published_regressor(dataset: str, weights_dir) -> Regressor:
    from ..models.download import fetch
    from ..models.published import load_published_regressor
    from ..models.registry import regressor_filename

    dataset = canonical_dataset(dataset)
    return load_published_regressor(fetch(regressor_filename(dataset), weights_dir), dataset=dataset).eval()


def load(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    device: str | torch.device | None = "auto",
    weights_dir=None,
    protocol: str | Protocol | None = None,
    regressor: str | os.PathLike | Regressor | None = None,
    engine: str = "auto",
    calibrate: str | os.PathLike | None = None,
    explainer: str | os.PathLike | None = None,
    **options,
) -> Scorer:
    """A :class:`Scorer` for a model name or a checkpoint path.

    Args:
        name_or_path: a name of :func:`arniqa.models.registry.list_models`, a checkpoint (its file,
            any of its parts, or its folder), or an ONNX file written by
            :func:`arniqa.inference.onnx_export.export_onnx` (``arniqa export``).
        device: ``auto`` (CUDA, then MPS, then CPU; None too, as pyiqa's ``device=None``), or a torch device.
        weights_dir: a folder holding the published files (no download).
        protocol: the views scored (``crops``, ``whole``, ``pyiqa``, ``eval``); by default an ONNX file's own
            (the protocol its sidecar records), else ``crops``.
        engine: ``auto`` (per device, see :data:`arniqa.inference.scorer.DEFAULTS`), ``torch``, or
            ``onnxruntime`` (an ``.onnx`` file always runs there; other models are exported once into
            the cache).
        calibrate: with ``precision="int8"``, a folder of photos to calibrate the int8 file on (default:
            the bundled sample photos; :mod:`arniqa.inference.quantize`).
        regressor: overrides the name's regressor: a ``regressor_<dataset>.pth`` file, a
            :class:`Regressor`, or (published models only) a published regressor named by its
            dataset or its model (``kadid10k``, ``kadid``, ``arniqa``, ``arniqa-live``).
        explainer: an explanation head file of ``arniqa explain fit`` (or a checkpoint holding one) for
            :meth:`Scorer.explain`; by default the checkpoint's own head, or the ONNX file's (exported with a
            head), if it has one. With an ONNX file it runs on the file's embedding (``arniqa export --embedding``).
        **options: go to :class:`Scorer` (``batch_size``, ``workers``, ``max_side``, ``precision``:
            fp32, bf16 or fp16 on torch, int8 on ONNX Runtime; ``channels_last``).

    Raises:
        ValueError: an unknown name or regressor, or a regressor name with a checkpoint.
    """
    for name, value in (("weights_dir", weights_dir), ("calibrate", calibrate), ("explainer", explainer)):
        if value is not None:
            _check_path(name, value)
    _check_path("name_or_path", name_or_path)
    device = device_or_auto(device)
    own = [name for name in inspect.signature(load).parameters if name != "options"]
    passed_on = [name for name in inspect.signature(Scorer).parameters if name not in (*own, "model")]
    if unknown := next((name for name in options if name not in passed_on), None):  # not Scorer.__init__'s TypeError
        raise TypeError(
            f"load() got an unknown option {unknown!r}{did_you_mean(unknown, own + passed_on)}; "
            f"its options: {', '.join(own + passed_on)}"
        )
    precision = options.get("precision", "fp32")
    check_choices(protocol, precision, engine)  # the settings first: before the files, any download, torch
    check_engine(engine, precision, options.get("channels_last"), calibrate, name_or_path)
    check_max_side(options.get("max_side"), protocol, name_or_path)
    check_files(name_or_path, weights_dir, regressor, explainer)  # before torch is imported and anything downloads
    head = None
    if explainer is not None:  # first: a head file that is not one fails before any download
        from ..models.explain import load_explainer  # here: it imports torch

        head = load_explainer(explainer)
        if head is None:
            raise ValueError(no_head(explainer))
    scorer = _load(name_or_path, device, weights_dir, protocol, regressor, engine, calibrate, explainer, **options)
    runner = scorer.engine
    if explainer is not None and isinstance(runner, OnnxEngine) and "embedding" not in runner.outputs:
        own = ", or leave out the explainer: the file has its own head" if runner.explainer is not None else ""
        raise ValueError(
            f"{name_or_path}: exported without the embedding, which the explanation head of {explainer} runs on; "
            f"export it with --embedding{own}"
        )
    if explainer is not None or (not is_onnx(name_or_path) and is_checkpoint(name_or_path)):
        from ..models.explain import load_explainer

        scorer.explainer = head if explainer is not None else load_explainer(name_or_path)
        # the model's feature width: an ONNX file's from its embedding output
        width = runner.width if isinstance(runner, OnnxEngine) else getattr(scorer.regressor, "in_features", None)
        if scorer.explainer is not None and width is not None and scorer.explainer.group.in_features != width:
            raise ValueError(
                f"{explainer or name_or_path}: its explanation head takes {scorer.explainer.group.in_features}-d "
                f"features, the model gives {width}-d; fit one on this model with `arniqa explain fit`"
            )
    warn_unchecked_head(explainer, name_or_path)
    return scorer


def check_calibrate(calibrate, say=keyword, int8: bool = True) -> None:
    """ValueError unless ``calibrate`` is None or a folder, given with :func:`export`'s ``int8`` (load()'s
    ``precision='int8'`` is :func:`~arniqa.inference.scorer.check_engine`'s): checked before the model loads (or
    downloads); ``say`` names the settings, as there."""
    if calibrate is not None and not int8:
        raise ValueError(f"{say('calibrate')} goes with {say('int8', True)}")
    if calibrate is not None and not Path(calibrate).is_dir():
        raise ValueError(
            f"{calibrate}: {not_a_folder(Path(calibrate))} ({say('calibrate')}: the photos to calibrate the int8 "
            "model on); give a folder of photos"
        )


def _check_path(name: str, value) -> None:
    """TypeError naming ``name`` unless ``value`` is a str or a path."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or a path, got {type(value).__name__} {value!r}")


def _load(name_or_path, device, weights_dir, protocol, regressor, engine, calibrate, explainer, **options) -> Scorer:
    path = Path(name_or_path)
    int8 = options.get("precision") == "int8"
    check_calibrate(calibrate)
    if is_onnx(path):
        if regressor is not None:
            raise ValueError(file_line(path, "the regressor is part of the ONNX file", "export again to change it"))
        if weights_dir is not None:
            raise ValueError(
                file_line(
                    path,
                    "weights_dir is for the published model, not an ONNX file",
                    "drop weights_dir: the ONNX file holds its weights",
                )
            )
        if explainer is not None:  # before an int8 file is made
            check_onnx_pairing(explainer, path)
        if int8:
            from .quantize import int8_file

            path = int8_file(path, calibrate)
        runner = OnnxEngine(path, device)
        protocol = protocol or (runner.meta or {}).get("protocol") or DEFAULT_PROTOCOL  # the file's, as exported
        return Scorer(None, runner.regressor(), protocol=protocol, engine=runner, **options)
    protocol = protocol or DEFAULT_PROTOCOL
    dev = resolve_device(device)
    onnx = resolve_engine(dev, engine, options.get("precision", "fp32"), options.get("channels_last")) == "onnxruntime"
    if onnx:
        execution_providers(device)  # a device ONNX Runtime cannot run on is refused before the model is exported
    if onnx and is_checkpoint(name_or_path):
        runner = _checkpoint_onnx(Path(name_or_path), regressor, explainer, device, int8, calibrate)
        return Scorer(None, runner.head, protocol=protocol, device=dev, engine=runner, **options)
    if onnx:
        runner = _published_onnx(str(name_or_path), weights_dir, regressor, explainer, device, int8, calibrate)
        return Scorer(None, runner.head, protocol=protocol, device=dev, engine=runner, **options)
    model, reg = load_model(name_or_path, weights_dir, regressor, explainer)
    return Scorer(model, reg, protocol=protocol, device=device, engine=engine, **options)  # auto: each engine's


def _published_onnx(
    name: str, weights_dir, regressor, explainer, device, int8: bool = False, calibrate=None
) -> OnnxEngine:
    """The onnxruntime engine of a published model (its int8 form when ``int8``). Its cached export, and the
    encoder's fingerprints beside it, are named after the SHA-256 of the encoder file, so a cache hit builds no
    torch model (nor imports timm and torchvision)."""
    from ..models.download import fetch
    from ..models.published import published_encoder
    from ..models.registry import ENCODER_FILE
    from .engines import cached_fingerprint, cached_onnx
    from .quantize import int8_file

    reg = _regressor(name, weights_dir, regressor)  # first: an unknown name fails before any download
    encoder_file = fetch(ENCODER_FILE, weights_dir)
    cached = f"published-{short_digest(sha256_of(encoder_file))}"
    encoder = functools.cache(lambda: published_encoder(encoder_file))  # built once, and only on a cache miss
    fingerprint = functools.partial(cached_fingerprint, cached, encoder)
    check_pairing(regressor, fingerprint)
    check_pairing(explainer, fingerprint, head=True)
    onnx_file = cached_onnx(cached, encoder)
    return OnnxEngine(int8_file(onnx_file, calibrate) if int8 else onnx_file, device, reg)


def _checkpoint_onnx(path: Path, regressor, explainer, device, int8: bool = False, calibrate=None) -> OnnxEngine:
    """The onnxruntime engine of a checkpoint (its int8 form when ``int8``). Its cached export is named after the
    SHA-256 of the checkpoint's files (:func:`~arniqa.models.checkpoint.checkpoint_digest`), so a cache hit builds
    no torch model (nor imports timm and torchvision): the regressor alone is read from the file. A regressor or
    head file that records its encoder is checked against the model, built for that."""
    from ..models.arniqa import model_fingerprint
    from ..models.checkpoint import checkpoint_digest, load_checkpoint, load_checkpoint_regressor
    from .engines import cached_onnx
    from .quantize import int8_file

    reg = load_checkpoint_regressor(path)  # read as load_model reads it: the checkpoint's own is checked too
    if regressor is not None:
        reg = _regressor(str(path), None, regressor)
    model = functools.cache(lambda: load_checkpoint(path)[0])  # built once, and only when needed
    fingerprint = functools.cache(lambda rounded: model_fingerprint(model(), rounded))
    check_pairing(regressor, fingerprint, path)
    check_pairing(explainer, fingerprint, path, head=True)
    onnx_file = cached_onnx(f"checkpoint-{short_digest(checkpoint_digest(path))}", model)
    return OnnxEngine(int8_file(onnx_file, calibrate) if int8 else onnx_file, device, reg)


def _regressor(name: str, weights_dir, regressor) -> Regressor:
    """The regressor of a published model name, or ``regressor`` (a file, a Regressor, a dataset/model name)."""
    from ..models.published import load_published_regressor
    from ..models.regressor import Regressor

    if isinstance(regressor, Regressor):
        return regressor
    source = _regressor_source(name, regressor)
    if isinstance(source, Path):
        return load_published_regressor(source)
    return _published_regressor(source, weights_dir)


def _regressor_source(name: str, regressor) -> Path | str:
    """What :func:`_regressor` reads (no torch): the file ``regressor`` (a Path), else the dataset of the published
    regressor that ``regressor`` (a dataset or model name) or else the model ``name`` stands for (a str)."""
    from ..models.registry import model_dataset, regressor_dataset

    if isinstance(regressor, (str, os.PathLike)) and Path(regressor).is_file():
        return Path(regressor)
    if isinstance(regressor, os.PathLike):  # a str may be a dataset name, even where a folder has that name
        if Path(regressor).is_dir():
            raise ValueError(f"regressor {regressor}: a folder; give the regressor_NAME.safetensors file in it")
        raise ValueError(no_such_file(regressor, "regressor"))
    return regressor_dataset(regressor) if regressor else model_dataset(name)


def published_files(name: str, weights_dir=None, regressor=None) -> list[tuple[str, Path | None]]:
    """The encoder and regressor files that :func:`load` (same arguments, a published model's name) reads, as
    ``(file name, path)``; the path is None for a published file not in its folder (nothing is downloaded)."""
    from ..models.download import fetch
    from ..models.paths import WeightsError
    from ..models.registry import ENCODER_FILE, regressor_filename

    def there(filename: str) -> Path | None:
        try:
            return fetch(filename, weights_dir, download=False)
        except WeightsError:
            return None

    source = _regressor_source(name, regressor)
    if isinstance(source, Path):
        return [(ENCODER_FILE, there(ENCODER_FILE)), (source.name, source)]
    filename = regressor_filename(canonical_dataset(source))
    return [(ENCODER_FILE, there(ENCODER_FILE)), (filename, there(filename))]


def check_files(name_or_path, weights_dir=None, regressor=None, explainer=None) -> None:
    """ValueError (WeightsError for a weight file) for the first file or name that :func:`load` and :func:`export`
    (same arguments) would not find: the explainer, the checkpoint (file, parts or folder), the regressor file or
    name, the model name, the published files in ``weights_dir``. Imports no torch and downloads nothing: they call
    it first, and so do the commands, before torch is imported. An ONNX file is OnnxEngine's to check (no torch)."""
    from ..models.download import fetch
    from ..models.paths import checkpoint_files
    from ..models.registry import ENCODER_FILE, model_dataset, regressor_filename

    if explainer is not None:
        checkpoint_files(explainer, "explanation head")
    if is_onnx(name_or_path):
        return
    if is_checkpoint(name_or_path):
        checkpoint_files(name_or_path)
        if isinstance(regressor, str) and not Path(regressor).is_file():
            raise ValueError(
                f"regressor {regressor!r}: with a checkpoint pass a regressor file, not a dataset name "
                "(the published regressors fit the published encoder only)"
            )
        if isinstance(regressor, os.PathLike):  # a file that is not there
            _regressor_source(str(name_or_path), regressor)
        return
    model_dataset(str(name_or_path))  # a published model's name, also where regressor replaces its regressor
    source = None  # a Regressor given
    if regressor is None or isinstance(regressor, (str, os.PathLike)):
        source = _regressor_source(str(name_or_path), regressor)
    if weights_dir is not None:  # a folder the user names: fetch() looks there and downloads nothing
        if isinstance(source, str):
            fetch(regressor_filename(source), weights_dir)
        fetch(ENCODER_FILE, weights_dir)


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    weights_dir=None,
    regressor: str | os.PathLike | Regressor | None = None,
    explainer: str | os.PathLike | None = None,
) -> tuple[ARNIQA, Regressor | None]:
    """The model and regressor that :func:`load` scores with (same arguments), on the CPU, in eval mode; the
    ``regressor`` and ``explainer`` files are checked to be fitted on the model (:func:`check_pairing`)."""
    check_files(name_or_path, weights_dir, regressor, explainer)
    from ..models.arniqa import model_fingerprint  # here: these import torch
    from ..models.checkpoint import load_checkpoint

    path = Path(name_or_path)
    checkpoint = path if is_checkpoint(path) else None
    if checkpoint is not None:
        model, reg, _config = load_checkpoint(path, device="cpu")
        if regressor is not None:
            reg = _regressor(str(name_or_path), None, regressor)
    else:
        reg = _regressor(str(name_or_path), weights_dir, regressor)  # first: an unknown name fails before any download
        model = _published_encoder(weights_dir)
    fingerprint = functools.cache(functools.partial(model_fingerprint, model))
    check_pairing(regressor, fingerprint, checkpoint)
    check_pairing(explainer, fingerprint, checkpoint, head=True)
    return model.eval(), reg


def export(
    output: str | os.PathLike,
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    weights_dir=None,
    regressor: str | os.PathLike | Regressor | None = None,
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    embedding: bool = False,
    int8: bool = False,
    calibrate: str | os.PathLike | None = None,
    explainer: str | os.PathLike | None = None,
    say=keyword,
) -> Path:
    """Write the model :func:`load` would score with as an ONNX file (and its ``.json`` sidecar); see
    :mod:`arniqa.inference.onnx_export`. ``int8``: the file is quantized, calibrated on the photos of the
    folder ``calibrate`` (default: the bundled ones; :mod:`arniqa.inference.quantize`). ``explainer``: an
    explanation head file whose outputs the graph adds (default: the checkpoint's own head, if it has one).
    ``output`` is locked (:func:`~arniqa.utils.locks.output_lock`) from the start: another process exporting
    to it raises ``OutputBusy``. ``say`` names the settings in its messages: these keywords
    (:func:`~arniqa.utils.names.keyword`; ``arniqa export`` passes ``option``). Returns ``output``."""
    _check_path("output", output)
    _check_path("name_or_path", name_or_path)
    get_protocol(protocol)  # an unknown name: before the model loads (or downloads)
    if is_onnx(name_or_path):
        raise ValueError(
            f"{name_or_path}: already an ONNX file; score it as it is, or export the checkpoint it was made from"
        )
    output = Path(output)
    if output.is_dir():  # found before the model is loaded and exported, not after
        raise ValueError(f"{output}: a folder; name the ONNX file to write, e.g. {output / 'model.onnx'}")
    if is_stream(output):  # its sidecar and lock file would go beside a device (into /dev), nothing could load it
        raise ValueError(
            f"{output}: {stream_kind(output)}, not a file; export writes an ONNX file and its sidecar FILE.onnx.json "
            "beside it, for load() and arniqa score to read: name a file to write, e.g. model.onnx"
        )
    if not is_onnx(output):  # load() and arniqa score know an ONNX file by its suffix
        raise ValueError(f"{output}: the output file must end in .onnx (load() and arniqa score know it by that)")
    check_calibrate(calibrate, say, int8)
    check_files(name_or_path, weights_dir, regressor, explainer)
    from ..models.explain import load_explainer  # here: these import torch
    from .onnx_export import export_onnx
    from .quantize import quantize

    head = load_explainer(explainer) if explainer is not None else None  # before the model loads (or downloads)
    if explainer is not None and head is None:
        raise ValueError(no_head(explainer))
    output.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(output.resolve()):  # one writer: the .onnx and its sidecar come from one export
        model, reg = load_model(name_or_path, weights_dir, regressor, explainer)
        if reg is None:
            raise ValueError(
                f"{name_or_path}: the model has no regressor to export; pass a regressor file as {say('regressor')}"
            )
        if head is None and is_checkpoint(name_or_path):
            head = load_explainer(name_or_path)
        if head is not None:  # the graph's explanations come from the views of the protocol it is exported for
            head.check_protocol(get_protocol(protocol).name, say)
        if not int8:
            written = export_onnx(model, reg, output, protocol=protocol, embedding=embedding, explainer=head)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = export_onnx(
                    model, reg, Path(tmp) / "fp32.onnx", protocol=protocol, embedding=embedding, explainer=head
                )
                written = quantize(fp32, output, calibrate)
    warn_unchecked_head(explainer, name_or_path)  # exported: its width fitted
    return written
