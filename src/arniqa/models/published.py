"""The published ARNIQA weights: ``ARNIQA.pth`` and ``regressor_<dataset>.pth`` (release files listed in
:data:`arniqa.models.registry.PUBLISHED`) read into this package's :class:`~arniqa.models.ARNIQA` and
:class:`Regressor`.

* :func:`load_published_encoder` reads ``ARNIQA.pth`` (positional keys ``model.0.*`` ... ``model.7.*``
  and ``projector.0/2.*``, optionally wrapped under ``encoder.`` as in training checkpoints) into
  ``ARNIQA("resnet50")``; :func:`published_encoder` is that model, built and loaded.
* :func:`load_published_regressor` reads a ``regressor_<dataset>.pth`` TorchScript archive
  (``weights`` [1, 4096], 0-d ``biases``) without running its code.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..data.iqa.registry import DATASETS
from ..utils.messages import file_line
from .arniqa import ARNIQA
from .checkpoint import REGRESSOR_FORMAT, arniqa_metadata, load_strict, preview_keys
from .files import EDITED, WeightsError, read_state_dict
from .paths import is_safetensors
from .regressor import Regressor

# what to give for a regressor file that holds no regressor
REGRESSOR_FILES = (
    "give a published regressor_<dataset>.pth or the regressor_<dataset>.safetensors that arniqa evaluate -o wrote"
)
_POSITIONAL = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def published_state_dict(state: dict[str, torch.Tensor], source="state dict") -> dict[str, torch.Tensor]:
    """Rename a published-layout ARNIQA state dict to this package's ``ARNIQA`` key names.

    ``model.<i>.rest`` -> ``encoder.<timm name>.rest`` (0 conv1, 1 bn1, 4..7 layer1..4) and
    ``projector.*`` unchanged; a common ``encoder.`` prefix (training checkpoints) is removed first.
    """
    if state and all(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items()}
    renamed, unknown = {}, []
    for key, value in state.items():
        m = re.fullmatch(r"model\.(\d+)\.(.+)", key)
        if m and m.group(1) in _POSITIONAL:
            renamed[f"encoder.{_POSITIONAL[m.group(1)]}.{m.group(2)}"] = value
        elif key.startswith("projector."):
            renamed[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise WeightsError(f"{source}: keys not in the published ARNIQA layout: {preview_keys(unknown)}")
    return renamed


def load_published_encoder(model: ARNIQA, path) -> ARNIQA:
    """Load ``ARNIQA.pth`` (or a training checkpoint wrapping it under ``encoder.``) into ``model``.

    ``model`` must be ``ARNIQA("resnet50")``; loading is strict and uses ``torch.load(weights_only=True)``.
    Returns ``model``.
    """
    if model.backbone_name != "resnet50":
        raise WeightsError(f"the published ARNIQA weights are for a resnet50 backbone, not {model.backbone_name!r}")
    state = published_state_dict(read_state_dict(path), source=path)
    load_strict(model, state, path)
    return model


def published_encoder(path) -> ARNIQA:
    """The published encoder: ``ARNIQA("resnet50")`` with ``ARNIQA.pth`` at ``path`` loaded, in eval mode."""
    return load_published_encoder(ARNIQA("resnet50"), path).eval()


def load_published_regressor(path, dataset: str | None = None) -> Regressor:
    """A :class:`Regressor` from a published ``regressor_<dataset>.pth`` or a regressor-only file.

    The published file is a TorchScript archive holding ``weights`` [1, 4096] and a 0-d ``biases``;
    its tensors are read without loading TorchScript or running pickled code. A plain state dict
    with the same keys (or ``weight``/``bias``) also works, and so does a ``.safetensors`` file whose
    ``"arniqa"`` metadata (format ``arniqa-regressor``, as the evaluation exports it) gives the
    dataset and score range. Otherwise ``dataset`` defaults to the one in the file name.
    """
    path = Path(path)
    tensors = read_state_dict(path)  # TorchScript archives are read by the restricted unpickler
    score_range = None
    meta = arniqa_metadata(path) if is_safetensors(path) else None
    if meta is not None and meta.get("format") == REGRESSOR_FORMAT:
        dataset = dataset or meta.get("dataset")
        score_range = meta.get("score_range")
    elif dataset is None:
        m = re.fullmatch(r"regressor_(.+)\.(pth|safetensors)", path.name)
        if m and m.group(1).lower() in DATASETS:
            dataset = m.group(1).lower()
    for w_key, b_key in (("weights", "biases"), ("weight", "bias")):
        if w_key in tensors and b_key in tensors:
            weight, bias = tensors[w_key], tensors[b_key]
            break
    else:
        raise WeightsError(
            file_line(path, f"expected tensors 'weights' and 'biases', found {preview_keys(tensors)}", REGRESSOR_FILES)
        )
    if weight.ndim == 1:
        weight = weight.unsqueeze(0)
    if weight.ndim != 2 or weight.shape[0] != 1 or bias.numel() != 1:
        raise WeightsError(
            file_line(
                path,
                f"expected weights [1, D] and a scalar bias, got {tuple(weight.shape)} and {tuple(bias.shape)}",
                REGRESSOR_FILES,
            )
        )
    try:
        return Regressor.from_numpy(weight.double().numpy(), bias.double().numpy(), dataset, score_range)
    except (TypeError, ValueError) as e:  # the score range of its config
        raise WeightsError(file_line(path, f"cannot rebuild the regressor from its config ({e})", EDITED)) from e
