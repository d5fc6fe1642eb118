"""This project's checkpoint format: one ``.safetensors`` file whose header metadata entry ``"arniqa"``
holds a JSON config (backbone, its options, the regressor's dataset and score range), written by
:func:`save_checkpoint` and read back by :func:`load_checkpoint`; and the strict loading both formats use.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..constants import QUALITY_DIM
from ..utils.files import atomic_write
from .arniqa import ARNIQA
from .files import WeightsError, read_state_dict
from .regressor import Regressor

CHECKPOINT_FORMAT = "arniqa-checkpoint"
CHECKPOINT_VERSION = 1
RESERVED_CONFIG_KEYS = {"format", "version", "backbone", "backbone_options", "regressor", "explainer"}


def save_checkpoint(path, model: ARNIQA, regressor: Regressor | None = None, **config) -> Path:
    """Write ``model`` (and ``regressor``) to one ``.safetensors`` file with a JSON config.

    Tensors are stored under ``encoder.*``, ``projector.*`` and ``regressor.weight/bias``. The header
    metadata entry ``"arniqa"`` holds JSON with ``backbone``, ``backbone_options``, ``regressor``
    (dataset, score range, input size, or null) and any extra JSON-serialisable ``config`` items
    (e.g. ``step=1000``). The file is written to a temporary name and renamed, so a crash leaves no
    half-written checkpoint. Returns the path.
    """
    path = Path(path)
    if reserved := sorted(config.keys() & RESERVED_CONFIG_KEYS):
        raise ValueError(f"checkpoint config keys {reserved} are reserved (set from the model and regressor)")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if regressor is not None:
        tensors["regressor.weight"] = regressor.weight.detach().cpu().contiguous()
        tensors["regressor.bias"] = regressor.bias.detach().cpu().contiguous()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        **model.config,
        "regressor": None if regressor is None else regressor.config,
        **config,
    }
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"checkpoint config must be JSON-serialisable: {e}") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"arniqa": text}))


def arniqa_metadata(path) -> dict | None:
    """The JSON in a safetensors file's ``"arniqa"`` header entry, or None if there is none."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a safetensors checkpoint ({e})") from e
    if "arniqa" not in meta:
        return None
    try:
        return json.loads(meta["arniqa"])
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: unreadable arniqa config ({e})") from e


def read_checkpoint_config(path) -> dict:
    """The JSON config of a checkpoint written by :func:`save_checkpoint` (tensors are not read)."""
    config = arniqa_metadata(path)
    if config is None:
        raise WeightsError(f"{path}: safetensors file without an arniqa config (not saved by save_checkpoint)")
    if config.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: unknown checkpoint format {config.get('format')!r}")
    return config


def load_checkpoint(path, device="cpu") -> tuple[ARNIQA, Regressor | None, dict]:
    """Rebuild the model (in eval mode, on ``device``) and the regressor (or None) from a checkpoint.

    Returns ``(model, regressor_or_None, config)``; loading is strict.
    """
    path = Path(path)
    config = read_checkpoint_config(path)
    tensors = read_state_dict(path)
    options = dict(config.get("backbone_options") or {})
    if "se_stages" in options:
        options["se_stages"] = tuple(options["se_stages"])
    try:
        model = ARNIQA(config["backbone"], **options)
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path}: cannot rebuild the model from its config ({e})") from e
    reg_tensors = {k[len("regressor.") :]: tensors.pop(k) for k in list(tensors) if k.startswith("regressor.")}
    for k in [k for k in tensors if k.startswith("explainer.")]:  # read by arniqa.models.explain.load_explainer
        del tensors[k]
    load_strict(model, tensors, path)
    regressor = None
    if config.get("regressor") is not None:
        rc = config["regressor"]
        regressor = Regressor(rc.get("dataset"), rc.get("score_range"), rc.get("in_features", QUALITY_DIM))
        load_strict(regressor, reg_tensors, path)
        regressor.to(device).eval()
    elif reg_tensors:
        raise WeightsError(f"{path}: regressor tensors without a regressor config")
    return model.to(device).eval(), regressor, config


def preview_keys(keys, n: int = 5) -> str:
    keys = sorted(keys)
    more = f" ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """``load_state_dict(strict=True)`` with errors that name the file and the differing keys."""
    expected = module.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys: {preview_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {preview_keys(unexpected)}")
        raise WeightsError(f"{source}: does not fit the model; " + "; ".join(parts))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if state[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"{source}: wrong tensor shapes: {preview_keys(wrong, 3)}")
    module.load_state_dict(state, strict=True)
