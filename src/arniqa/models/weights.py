"""Weight files: the published ARNIQA encoder and regressors, this project's checkpoints, downloads.

* :func:`load_published_encoder` reads ``ARNIQA.pth`` (positional keys ``model.0.*`` ... ``model.7.*``
  and ``projector.0/2.*``, optionally wrapped under ``encoder.`` as in training checkpoints) into
  ``ARNIQA("resnet50")``.
* :func:`load_published_regressor` reads a ``regressor_<dataset>.pth`` TorchScript archive
  (``weights`` [1, 4096], 0-d ``biases``) without running its code.
* :func:`save_checkpoint` / :func:`load_checkpoint`: one ``.safetensors`` file whose header metadata
  holds a JSON config (backbone, its options, the regressor's dataset and score range).
* :func:`fetch`: cached download with SHA-256 verification; works offline from the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import torch

from .arniqa import ARNIQA
from .files import WeightsError, read_state_dict
from .regressor import DATASETS, Regressor, canonical_dataset

__all__ = [
    "ENCODER_FILE",
    "PUBLISHED",
    "PublishedFile",
    "WeightsError",
    "DownloadError",
    "cache_dir",
    "fetch",
    "load_checkpoint",
    "load_published_encoder",
    "load_published_regressor",
    "published_state_dict",
    "read_checkpoint_config",
    "regressor_filename",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

RELEASE_URL = "https://github.com/miccunifi/ARNIQA/releases/download/weights/"
ENCODER_FILE = "ARNIQA.pth"


class PublishedFile(NamedTuple):
    url: str
    sha256: str | None  # None: not known (nothing is verified; the computed hash is logged)


def regressor_filename(dataset: str) -> str:
    """``regressor_<dataset>.pth`` for a dataset name or pyiqa alias."""
    return f"regressor_{canonical_dataset(dataset)}.pth"


# The official release files. Their SHA-256 digests are not known to this project (they were
# written without network access), so they are None: fetch() verifies nothing for them and logs
# the digest it computed, which can be pinned here later.
PUBLISHED: dict[str, PublishedFile] = {
    name: PublishedFile(RELEASE_URL + name, None)
    for name in [ENCODER_FILE] + [f"regressor_{d}.pth" for d in DATASETS]
}


# --------------------------------------------------------------------------------------------
# Published encoder and regressors


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
        raise WeightsError(f"{source}: keys not in the published ARNIQA layout: {_preview(unknown)}")
    return renamed


def _preview(keys, n: int = 5) -> str:
    keys = sorted(keys)
    more = f" ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """``load_state_dict(strict=True)`` with errors that name the file and the differing keys."""
    expected = module.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys: {_preview(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_preview(unexpected)}")
        raise WeightsError(f"{source}: does not fit the model; " + "; ".join(parts))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if state[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"{source}: wrong tensor shapes: {_preview(wrong, 3)}")
    module.load_state_dict(state, strict=True)


def load_published_encoder(model: ARNIQA, path) -> ARNIQA:
    """Load ``ARNIQA.pth`` (or a training checkpoint wrapping it under ``encoder.``) into ``model``.

    ``model`` must be ``ARNIQA("resnet50")``; loading is strict and uses ``torch.load(weights_only=True)``.
    Returns ``model``.
    """
    if model.backbone_name != "resnet50":
        raise WeightsError(f"the published ARNIQA weights are for a resnet50 backbone, not {model.backbone_name!r}")
    state = published_state_dict(read_state_dict(path), source=path)
    _load_strict(model, state, path)
    return model


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
    meta = _arniqa_metadata(path) if path.suffix == ".safetensors" else None
    if meta is not None and meta.get("format") == "arniqa-regressor":
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
        raise WeightsError(f"{path}: expected tensors 'weights' and 'biases', found {_preview(tensors)}")
    if weight.ndim == 1:
        weight = weight.unsqueeze(0)
    if weight.ndim != 2 or weight.shape[0] != 1 or bias.numel() != 1:
        raise WeightsError(
            f"{path}: expected weights [1, D] and a scalar bias, got {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    try:
        return Regressor.from_numpy(weight.double().numpy(), bias.double().numpy(), dataset, score_range)
    except ValueError as e:
        raise WeightsError(f"{path}: {e}") from e


# --------------------------------------------------------------------------------------------
# This project's checkpoints

CHECKPOINT_FORMAT = "arniqa-checkpoint"
CHECKPOINT_VERSION = 1
RESERVED_CONFIG_KEYS = {"format", "version", "backbone", "backbone_options", "regressor"}


def save_checkpoint(path, model: ARNIQA, regressor: Regressor | None = None, **config) -> Path:
    """Write ``model`` (and ``regressor``) to one ``.safetensors`` file with a JSON config.

    Tensors are stored under ``encoder.*``, ``projector.*`` and ``regressor.weight/bias``. The header
    metadata entry ``"arniqa"`` holds JSON with ``backbone``, ``backbone_options``, ``regressor``
    (dataset, score range, input size, or null) and any extra JSON-serialisable ``config`` items
    (e.g. ``step=1000``). The file is written to a temporary name and renamed, so a crash leaves no
    half-written checkpoint. Returns the path.
    """
    from safetensors.torch import save_file

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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"arniqa": text})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _arniqa_metadata(path) -> dict | None:
    """The JSON in a safetensors file's ``"arniqa"`` header entry, or None if there is none."""
    from safetensors import SafetensorError, safe_open

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
    config = _arniqa_metadata(path)
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
    _load_strict(model, tensors, path)
    regressor = None
    if config.get("regressor") is not None:
        rc = config["regressor"]
        regressor = Regressor(rc.get("dataset"), rc.get("score_range"), rc.get("in_features", 4096))
        _load_strict(regressor, reg_tensors, path)
        regressor.to(device).eval()
    elif reg_tensors:
        raise WeightsError(f"{path}: regressor tensors without a regressor config")
    return model.to(device).eval(), regressor, config


# --------------------------------------------------------------------------------------------
# Downloads


class DownloadError(OSError):
    """A file could not be downloaded (network error, HTTP error)."""


def cache_dir() -> Path:
    """The weight cache folder: ``$ARNIQA_CACHE`` if set, else ``~/.cache/arniqa``."""
    env = os.environ.get("ARNIQA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "arniqa"


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(
    filename: str, weights_dir=None, url: str | None = None, sha256: str | None = None, progress: bool = True
) -> Path:
    """The local path of ``filename``, downloading it into the cache folder on first use.

    * ``weights_dir`` (default :func:`cache_dir`) is searched first; a file already there is used
      without any network access (offline use: place the files there).
    * ``url`` and ``sha256`` default to the :data:`PUBLISHED` entry for ``filename``.
    * A download goes to a temporary file in the same folder, is hashed, and is renamed into place
      only if the SHA-256 matches; on a mismatch the file is deleted and :class:`WeightsError` raised.
    * When no SHA-256 is known (the published files, for now) nothing is verified and the computed
      digest is logged (``logging`` INFO) so it can be pinned.
    * A file already in the folder is checked against a known SHA-256 too; a mismatch raises
      (the file is left for the user to inspect or delete).
    """
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise ValueError(f"fetch() takes a bare file name, got {filename!r}")
    folder = Path(weights_dir).expanduser() if weights_dir is not None else cache_dir()
    known = PUBLISHED.get(filename)
    url = url or (known.url if known else None)
    sha256 = (sha256 or (known.sha256 if known else None) or "").lower() or None
    target = folder / filename
    if target.is_file():
        if sha256 is not None and (digest := sha256_of(target)) != sha256:
            raise WeightsError(f"{target}: SHA-256 {digest} does not match the expected {sha256}; delete the file")
        return target
    if url is None:
        raise WeightsError(f"{target}: not found, and no download URL is known for {filename!r}")
    folder.mkdir(parents=True, exist_ok=True)
    digest = _download(url, target, sha256, progress)
    if sha256 is None:
        log.info("downloaded %s (sha256 %s; no known hash to check against)", target, digest)
    return target


def _download(url: str, target: Path, sha256: str | None, progress: bool) -> str:
    """Download ``url`` to ``target`` through a temporary file; verify, then rename. Returns the digest."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except urllib.error.HTTPError as e:
                raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}; {_offline_hint(target)}") from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise DownloadError(f"cannot download {url}: {reason}; {_offline_hint(target)}") from e
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                for block in _blocks(response, total, target.name, progress):
                    h.update(block)
                    out.write(block)
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256:
            raise WeightsError(f"{url}: downloaded file has SHA-256 {digest}, expected {sha256}; it was deleted")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return digest


def _blocks(response, total: int | None, name: str, progress: bool, size: int = 1 << 16):
    """Read ``response`` in blocks, with a rich progress bar on stderr when ``progress``."""
    if not progress:
        while block := response.read(size):
            yield block
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"downloading {name}", total=total)
        while block := response.read(size):
            bar.update(task, advance=len(block))
            yield block


def _offline_hint(target: Path) -> str:
    return f"to work offline, place {target.name} in {target.parent} (or pass --weights-dir)"
