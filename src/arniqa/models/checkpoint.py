"""This project's checkpoint format: ``.safetensors`` files whose header metadata entry ``"arniqa"`` holds
a JSON config (backbone, its options, the regressor's dataset and score range, the stored dtype), written
by :func:`save_checkpoint` and read back by :func:`load_checkpoint`; a regressor alone in the same kind of file
(:func:`regressor_writer`); and the strict loading both formats use.

A checkpoint is one file, or parts ``<stem>-00001-of-0000N.safetensors`` (each a safetensors file with
some of the tensors and the same config plus ``"part": i, "parts": N`` and ``"part_set"``, a random name shared by
the parts of one save, so that parts of two saves of one model never load as one), so that it fits file size
limits.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ..constants import QUALITY_DIM, STATE_FILE
from ..utils.cache import sha256_of
from ..utils.files import Writer, atomic_writes, unreadable
from ..utils.jsonfile import parse_json
from ..utils.messages import GET_AGAIN, file_line
from .arniqa import ARNIQA, ROUNDINGS, rounded_fingerprints
from .files import EDITED, check_layer_size, header_excess, key_differences, read_state_dict
from .paths import PART_NAME, WeightsError, checkpoint_files, is_onnx, no_such_file, part_path, preview_keys
from .regressor import Regressor

CHECKPOINT_FORMAT = "arniqa-checkpoint"
CHECKPOINT_VERSION = 1
REGRESSOR_FORMAT = "arniqa-regressor"  # a regressor alone (regressor_writer; read by models.published)
RESERVED_CONFIG_KEYS = {
    "format",
    "version",
    "backbone",
    "backbone_options",
    "regressor",
    "dtype",
    "part",
    "parts",
    "part_set",
    "explainer",
}


def save_checkpoint(
    path,
    model: ARNIQA,
    regressor: Regressor | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_part_bytes: int | None = None,
    **config,
) -> list[Path]:
    """Write ``model`` (and ``regressor``) as a checkpoint: ``path``, or parts next to it. Returns the files.

    Tensors are stored under ``encoder.*``, ``projector.*`` and ``regressor.weight/bias``; ``dtype``
    (e.g. ``torch.bfloat16``) casts the floating ones. The header metadata entry ``"arniqa"`` holds JSON
    with ``backbone``, ``backbone_options``, ``regressor`` (dataset, score range, input size, or null),
    ``dtype`` (of the stored floating tensors) and any extra JSON-serialisable ``config`` items (e.g.
    ``step=1000``). With ``max_part_bytes`` the tensors go, in order, greedily into parts
    ``<stem>-00001-of-0000N.safetensors`` of at most that many bytes each (header included); their
    configs add ``"part": i, "parts": N`` and ``"part_set"`` (random, one per save). Each file is written to
    a temporary name and renamed, so a crash leaves no half-written file; parts are renamed only once all
    are written, so a full disk leaves the earlier files of those names as they were.
    """
    return atomic_writes(
        checkpoint_writers(path, model, regressor, dtype=dtype, max_part_bytes=max_part_bytes, **config)
    )


def checkpoint_writers(
    path,
    model: ARNIQA,
    regressor: Regressor | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_part_bytes: int | None = None,
    **config,
) -> list[tuple[Path, Writer]]:
    """The files of :func:`save_checkpoint` (its folder made) and what writes each: for
    :func:`~arniqa.utils.files.atomic_writes`, with other files that belong with them."""
    path = Path(path)
    if reserved := sorted(config.keys() & RESERVED_CONFIG_KEYS):
        raise ValueError(f"checkpoint config keys {reserved} are reserved (set from the model and regressor)")
    tensors = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if regressor is not None:
        tensors["regressor.weight"] = regressor.weight.detach().cpu()
        tensors["regressor.bias"] = regressor.bias.detach().cpu()
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    if dtype in ROUNDINGS.values():  # a copy at that precision: what the copy at the other one pairs through
        config["rounded_from"] = rounded_fingerprints(model)
    stored = next((v.dtype for v in tensors.values() if v.is_floating_point()), torch.float32)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        **model.config,
        "regressor": None if regressor is None else regressor.config,
        "dtype": str(stored).removeprefix("torch."),
        **config,
    }
    try:
        json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"checkpoint config must be JSON-serialisable: {e}") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    if max_part_bytes is None:
        return [(path, safetensors_writer(tensors, meta))]
    parts = _split(tensors, meta, max_part_bytes, path)
    n = len(parts)
    part_set = secrets.token_hex(8)  # parts of another save (a crash mid-rename, a copy) differ in it
    # All parts or none: a set of new parts and parts left from an earlier save under the same names would load.
    return [
        (part_path(path, i, n), safetensors_writer(part, {**meta, "part": i, "parts": n, "part_set": part_set}))
        for i, part in enumerate(parts, 1)
    ]


def safetensors_writer(tensors: dict, meta: dict) -> Writer:
    """What writes ``tensors`` as a safetensors file, with ``meta`` as JSON in its ``"arniqa"`` header entry (read
    back by :func:`arniqa_metadata`), for :func:`~arniqa.utils.files.atomic_writes`: the one writer of this
    project's weight files. Serialised in memory first, so a full disk is an OSError with its errno (safetensors'
    own file writer raises a SafetensorError saying only "I/O error")."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(save(tensors, metadata={"arniqa": json.dumps(meta)}))

    return write


def regressor_writer(regressor: Regressor, **info) -> Writer:
    """What writes a regressor-only ``.safetensors`` file (for :func:`~arniqa.utils.files.atomic_writes`):
    tensors ``weight`` (1, D) and ``bias`` (1,), and header metadata ``"arniqa"`` = JSON of the regressor config
    plus ``info``."""
    tensors = {
        "weight": regressor.weight.detach().cpu().contiguous(),
        "bias": regressor.bias.detach().cpu().contiguous(),
    }
    return safetensors_writer(tensors, {"format": REGRESSOR_FORMAT, "version": 1, **regressor.config, **info})


def _split(tensors: dict, meta: dict, max_part_bytes: int, path: Path) -> list[dict]:
    """``tensors`` in order, greedily in parts whose safetensors files have at most ``max_part_bytes``."""
    # An upper bound of each file's size: Python's JSON has more spaces than the writer's; part numbers,
    # dtype names and offsets at their widest; 8 bytes of header length and up to 7 of padding.
    widest = {**meta, "part": 10**5, "parts": 10**5, "part_set": "0" * 16}
    base = len(json.dumps({"__metadata__": {"arniqa": json.dumps(widest)}})) + 15
    needs = {  # the braces of each entry stand for the ", " before it
        name: len(json.dumps({name: {"dtype": "x" * 12, "shape": list(t.shape), "data_offsets": [10**15, 10**15]}}))
        + t.numel() * t.element_size()
        for name, t in tensors.items()
    }
    largest = max(needs, key=needs.get, default=None)
    if largest is not None and base + needs[largest] > max_part_bytes:  # the largest: a bound that fits them all
        raise WeightsError(
            file_line(
                path,
                f"tensor {largest} ({needs[largest]} bytes) does not fit in a part of {max_part_bytes} bytes",
                f"pass max_part_bytes={base + needs[largest]} or more",
            )
        )
    parts, size = [{}], base
    for name, t in tensors.items():
        need = needs[name]
        if size + need > max_part_bytes:
            parts.append({})
            size = base
        parts[-1][name] = t
        size += need
    return parts


def extra_config(config: dict) -> dict:
    """The items of a loaded checkpoint's config that :func:`save_checkpoint` takes as ``**config`` (all
    but the reserved keys), to save it again: ``save_checkpoint(p, model, reg, **extra_config(config))``."""
    return {k: v for k, v in config.items() if k not in RESERVED_CONFIG_KEYS}


def arniqa_metadata(path) -> dict | None:
    """The JSON in a safetensors file's ``"arniqa"`` header entry, or None if there is none."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(no_such_file(path))
    try:
        if problem := header_excess(path):
            raise ValueError(problem)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno is not None:  # the system's refusal (no read permission), not the file's
            raise WeightsError(unreadable(path, e)) from None
        if path.name == STATE_FILE:  # a training run's state (optimiser, RNG states...), beside its model
            raise WeightsError(
                file_line(
                    path,
                    "the resumable state of an `arniqa train` run, not a checkpoint",
                    f"give the run's model: {path.with_name('model.safetensors')}",
                )
            ) from e
        if path.suffix.lower() in (".pth", ".pt"):  # a pickle: published weights are read from a folder, not here
            raise WeightsError(
                file_line(
                    path,
                    "a PyTorch pickle, not a checkpoint of this project (.safetensors)",
                    "published ARNIQA weights (ARNIQA.pth, regressor_<dataset>.pth) are read from their folder: "
                    "--weights-dir / weights_dir",
                )
            ) from e
        if is_onnx(path):  # `arniqa export` output: the graph, not the weights to rebuild the model
            raise WeightsError(
                file_line(
                    path,
                    "an ONNX file, not a checkpoint of this project",
                    "give the .safetensors checkpoint it was exported from",
                )
            ) from e
        raise WeightsError(
            file_line(
                path, f"not a safetensors checkpoint ({e})", f"{GET_AGAIN}, or give a .safetensors file arniqa wrote"
            )
        ) from e
    if "arniqa" not in meta:
        return None
    try:
        config = parse_json(meta["arniqa"])
    except json.JSONDecodeError as e:
        raise WeightsError(file_line(path, f"unreadable arniqa config ({e})", EDITED)) from e
    if not isinstance(config, dict):
        raise WeightsError(
            file_line(
                path,
                f"its arniqa config is a JSON {type(config).__name__}, not an object",
                EDITED,
            )
        )
    return config


def _part(numbers: tuple) -> str:
    return "a whole checkpoint" if numbers == (None, None) else "part {} of {}".format(*numbers)


def _config(files: list[Path]) -> dict:
    """The config of the checkpoint in ``files``; its parts' configs must agree, and their part numbers
    with the file names."""
    configs, part_sets = [], set()
    for i, f in enumerate(files, 1):
        config = arniqa_metadata(f)
        if config is None:
            raise WeightsError(f"{f}: safetensors file without an arniqa config (not saved by save_checkpoint)")
        if config.get("format") != CHECKPOINT_FORMAT:
            raise WeightsError(f"{f}: unknown checkpoint format {config.get('format')!r}")
        numbers = config.pop("part", None), config.pop("parts", None)
        part_sets.add(config.pop("part_set", None))
        named = (i, len(files)) if PART_NAME.fullmatch(f.name) else (None, None)
        if numbers != named:
            raise WeightsError(f"{f}: its config says {_part(numbers)}, its file name {_part(named)}")
        if configs and config != configs[0]:
            raise WeightsError(f"{f}: its config differs from that of {files[0].name} (parts of different checkpoints)")
        if len(part_sets) > 1:
            raise WeightsError(
                f"{f}: a part of another save than {files[0].name} (parts of two checkpoints of one config); "
                "save the checkpoint again"
            )
        configs.append(config)
    return configs[0]


def read_checkpoint_config(path) -> dict:
    """The JSON config of a checkpoint written by :func:`save_checkpoint`, without ``part``, ``parts`` and ``part_set``
    (tensors are not read). ``path`` is as for :func:`checkpoint_files`."""
    return _config(checkpoint_files(path))


def load_checkpoint(path, device="cpu") -> tuple[ARNIQA, Regressor | None, dict]:
    """Rebuild the model (in eval mode, on ``device``) and the regressor (or None) from a checkpoint.

    ``path`` is a checkpoint file, any of its parts, or its folder (:func:`checkpoint_files`). Tensors
    stored in another dtype (bf16) are cast to the model's (float32). Returns
    ``(model, regressor_or_None, config)`` with the config of :func:`read_checkpoint_config`; loading is
    strict.
    """
    path = Path(path)
    files = checkpoint_files(path)
    config = _config(files)
    tensors = _read_tensors(files)
    try:
        options = dict(config.get("backbone_options") or {})
        if "se_stages" in options:
            options["se_stages"] = tuple(options["se_stages"])
        model = ARNIQA(config["backbone"], **options)
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(
            file_line(
                path,
                f"cannot rebuild the model from its config ({e})",
                f"upgrade arniqa if a newer one wrote it, else {EDITED}",
            )
        ) from e
    reg_tensors = {k: tensors.pop(k) for k in list(tensors) if k.startswith("regressor.")}
    for k in [k for k in tensors if k.startswith("explainer.")]:  # read by arniqa.models.explain.load_explainer
        del tensors[k]
    load_strict(model, tensors, path)
    model.rounded_from = config.get("rounded_from")  # checked before use (pairing_fingerprints)
    return model.to(device).eval(), _regressor(path, config, reg_tensors, device), config


def load_checkpoint_regressor(path) -> Regressor | None:
    """The regressor (or None) of :func:`load_checkpoint`, on the CPU, without the encoder: its tensors are not read."""
    path = Path(path)
    files = checkpoint_files(path)
    config = _config(files)
    return _regressor(path, config, _read_tensors(files, lambda k: k.startswith("regressor.")), "cpu")


def checkpoint_digest(path) -> str:
    """The SHA-256 of the SHA-256 digests of the checkpoint's files, in order (:func:`checkpoint_files`): what names
    its export in the cache (:func:`arniqa.inference.loading.load`), so that another file's bytes never take it."""
    return hashlib.sha256("".join(sha256_of(f) for f in checkpoint_files(path)).encode()).hexdigest()


def _read_tensors(files: list[Path], keep=None) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint's ``files`` (those ``keep`` keeps, see :func:`read_state_dict`); no name twice."""
    tensors = {}
    for f in files:
        part = read_state_dict(f, keep)
        if twice := part.keys() & tensors.keys():
            raise WeightsError(f"{f}: tensors also in an earlier part: {preview_keys(twice)}")
        tensors.update(part)
    return tensors


def _regressor(path: Path, config: dict, tensors: dict, device) -> Regressor | None:
    """The regressor of the checkpoint ``path`` from its config and its ``regressor.*`` tensors (or None)."""
    reg_tensors = {k[len("regressor.") :]: v for k, v in tensors.items()}
    if config.get("regressor") is None:
        if reg_tensors:
            raise WeightsError(file_line(path, "regressor tensors without a regressor config", EDITED))
        return None
    rc = config["regressor"]
    if not isinstance(rc, dict):
        raise WeightsError(
            file_line(
                path, f"cannot rebuild the regressor from its config (a {type(rc).__name__}, not an object)", EDITED
            )
        )
    check_layer_size(path, "regressor.weight", reg_tensors.get("weight"), (1, rc.get("in_features", QUALITY_DIM)))
    try:
        regressor = Regressor(rc.get("dataset"), rc.get("score_range"), rc.get("in_features", QUALITY_DIM))
    except (TypeError, ValueError) as e:
        raise WeightsError(file_line(path, f"cannot rebuild the regressor from its config ({e})", EDITED)) from e
    load_strict(regressor, reg_tensors, path)
    return regressor.to(device).eval()


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """``load_state_dict(strict=True)`` with errors that name the file and the differing keys."""
    expected = module.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        raise WeightsError(f"{source}: does not fit the model; {key_differences(missing, unexpected)}")
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape
    ]
    if wrong:
        raise WeightsError(f"{source}: wrong tensor shapes: {preview_keys(wrong, 3)}")
    module.load_state_dict(state, strict=True)
