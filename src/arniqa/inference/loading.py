"""From a name to a :class:`Scorer`: the published models by name, or a checkpoint of this project.

Names are those of :mod:`arniqa.models.registry`: ``arniqa-<dataset>`` (the published ``ARNIQA.pth``
encoder and the published ``regressor_<dataset>.pth``, fetched into the cache or read from
``weights_dir``) and pyiqa's metric names (``arniqa`` = KonIQ-10k, ``arniqa-live``, ``arniqa-tid``,
...). A path is a checkpoint saved by :func:`arniqa.models.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..constants import DEFAULT_REGRESSOR
from ..data.iqa.registry import canonical_dataset
from ..data.views import Protocol
from ..models.arniqa import ARNIQA
from ..models.registry import DEFAULT_MODEL, model_dataset, regressor_dataset
from ..models.regressor import Regressor
from ..models.checkpoint import load_checkpoint
from ..models.explain import load_explainer
from ..models.download import fetch, sha256_of
from ..models.published import ENCODER_FILE, load_published_encoder, load_published_regressor, regressor_filename
from ..utils.runtime import resolve_device
from .engines import OnnxEngine, cached_onnx
from .export import export_onnx
from .scorer import Scorer, resolve_engine


def load_published(dataset: str = DEFAULT_REGRESSOR, weights_dir=None) -> tuple[ARNIQA, Regressor]:
    """The published ARNIQA encoder and ``regressor_<dataset>.pth``, via :func:`arniqa.models.download.fetch`
    (the cache folder, or ``weights_dir``; downloaded on first use). No ImageNet weights are fetched."""
    dataset = canonical_dataset(dataset)
    model = load_published_encoder(ARNIQA("resnet50"), fetch(ENCODER_FILE, weights_dir))
    regressor = load_published_regressor(fetch(regressor_filename(dataset), weights_dir), dataset=dataset)
    return model.eval(), regressor.eval()


def load(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    weights_dir=None,
    protocol: str | Protocol = "crops",
    regressor: str | os.PathLike | Regressor | None = None,
    engine: str = "auto",
    explainer: str | os.PathLike | None = None,
    **options,
) -> Scorer:
    """A :class:`Scorer` for a model name or a checkpoint path.

    Args:
        name_or_path: a name of :func:`arniqa.models.registry.list_models`, a checkpoint file, or an
            ONNX file written by :func:`arniqa.inference.export.export_onnx` (``arniqa export``).
        device: ``auto`` (CUDA, then MPS, then CPU), or a torch device.
        weights_dir: a folder holding the published files (no download).
        protocol: the views scored (``crops``, ``whole``, ``pyiqa``, ``eval``).
        engine: ``auto`` (per device, see :data:`arniqa.inference.scorer.DEFAULTS`), ``torch``, or
            ``onnxruntime`` (an ``.onnx`` file always runs there; other models are exported once into
            the cache).
        regressor: overrides the name's regressor: a ``regressor_<dataset>.pth`` file, a
            :class:`Regressor`, or (published models only) a published regressor named by its
            dataset or its model (``kadid10k``, ``kadid``, ``arniqa``, ``arniqa-live``).
        explainer: an explanation head file of ``arniqa explain fit`` (or a checkpoint holding one) for
            :meth:`Scorer.explain`; by default the checkpoint's own head, if it has one.
        **options: go to :class:`Scorer` (``batch_size``, ``workers``, ``max_side``, ``precision``,
            ``channels_last``).

    Raises:
        ValueError: an unknown name or regressor, or a regressor name with a checkpoint.
    """
    scorer = _load(name_or_path, device, weights_dir, protocol, regressor, engine, **options)
    path = Path(name_or_path)
    own = path.suffix == ".safetensors" and path.is_file()
    if explainer is not None or own:
        scorer.explainer = load_explainer(explainer if explainer is not None else path)
        if explainer is not None and scorer.explainer is None:
            raise ValueError(f"{explainer}: holds no explanation head")
    return scorer


def _load(name_or_path, device, weights_dir, protocol, regressor, engine, **options) -> Scorer:
    dev = resolve_device(device)
    path = Path(name_or_path)
    if path.suffix.lower() == ".onnx":
        if engine not in ("auto", "onnxruntime"):
            raise ValueError(f"{path}: an ONNX file runs with engine='onnxruntime' (--engine onnxruntime)")
        if regressor is not None:
            raise ValueError(f"{path}: the regressor is part of the ONNX file; export again to change it")
        if weights_dir is not None:
            raise ValueError(f"{path}: weights_dir is for the published model, not an ONNX file")
        runner = OnnxEngine(path, dev)
        return Scorer(None, runner.regressor(), protocol=protocol, device=dev, engine=runner, **options)
    published = not (path.suffix == ".safetensors" or path.is_file())
    if published and resolve_engine(dev, engine, options.get("precision", "fp32"), options.get("channels_last")) \
            == "onnxruntime":  # fmt: skip
        runner = _published_onnx(str(name_or_path), weights_dir, regressor, dev)
        return Scorer(None, runner.head, protocol=protocol, device=dev, engine=runner, **options)
    model, reg = load_model(name_or_path, weights_dir, regressor)
    return Scorer(model, reg, protocol=protocol, device=dev, engine=engine, **options)


def _published_onnx(name: str, weights_dir, regressor, device: torch.device) -> OnnxEngine:
    """The onnxruntime engine of a published model. Its cached export is named after the SHA-256 of the
    encoder file, so a cache hit builds no torch model (nor imports timm and torchvision)."""
    reg = _regressor(name, weights_dir, regressor)  # first: an unknown name fails before any download
    encoder_file = fetch(ENCODER_FILE, weights_dir)
    onnx_file = cached_onnx(f"published-{sha256_of(encoder_file)[:24]}",
                            lambda: load_published_encoder(ARNIQA("resnet50"), encoder_file).eval())
    return OnnxEngine(onnx_file, device, reg)


def _regressor(name: str, weights_dir, regressor) -> Regressor:
    """The regressor of a published model name, or ``regressor`` (a file, a Regressor, a dataset/model name)."""
    if isinstance(regressor, Regressor):
        return regressor
    if isinstance(regressor, (str, os.PathLike)) and Path(regressor).is_file():
        return load_published_regressor(Path(regressor))
    dataset = canonical_dataset(regressor_dataset(regressor) if regressor else model_dataset(name))
    return load_published_regressor(fetch(regressor_filename(dataset), weights_dir), dataset=dataset).eval()


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    weights_dir=None,
    regressor: str | os.PathLike | Regressor | None = None,
) -> tuple[ARNIQA, Regressor | None]:
    """The model and regressor that :func:`load` scores with (same arguments), on the CPU, in eval mode."""
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.is_file():
        if isinstance(regressor, str) and not Path(regressor).is_file():
            raise ValueError(f"regressor {regressor!r}: with a checkpoint pass a regressor file, not a dataset name "
                             "(the published regressors fit the published encoder only)")
        model, reg, _config = load_checkpoint(path, device="cpu")
        if regressor is not None:
            reg = _regressor(str(name_or_path), None, regressor)
    else:
        reg = _regressor(str(name_or_path), weights_dir, regressor)  # first: an unknown name fails before any download
        model = load_published_encoder(ARNIQA("resnet50"), fetch(ENCODER_FILE, weights_dir))
    return model.eval(), reg


def export(
    output: str | os.PathLike,
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    weights_dir=None,
    regressor: str | os.PathLike | Regressor | None = None,
    protocol: str | Protocol = "crops",
    embedding: bool = False,
    explainer: str | os.PathLike | None = None,
) -> Path:
    """Write the model :func:`load` would score with as an ONNX file (and its ``.json`` sidecar); see
    :mod:`arniqa.inference.export`. ``explainer``: an explanation head file whose outputs the graph adds
    (default: the checkpoint's own head, if it has one). Returns ``output``."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".onnx":
        raise ValueError(f"{name_or_path}: already an ONNX file")
    model, reg = load_model(name_or_path, weights_dir, regressor)
    if reg is None:
        raise ValueError(f"{name_or_path}: the model has no regressor to export; pass a regressor file (--regressor FILE)")
    head = load_explainer(explainer) if explainer is not None else None
    if explainer is not None and head is None:
        raise ValueError(f"{explainer}: holds no explanation head")
    if head is None and path.suffix == ".safetensors" and path.is_file():
        head = load_explainer(path)
    return export_onnx(model, reg, output, protocol=protocol, embedding=embedding, explainer=head)
