"""Is a regressor or an explanation head fitted on the encoder it is given to? The files ``arniqa evaluate`` and
``arniqa explain fit`` write record their encoder's fingerprints (:func:`~arniqa.models.arniqa.pairing_fingerprints`);
:func:`check_pairing` compares them with the encoder's, and :func:`warn_unchecked_head` says when only a head's
width could be checked."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from ..models.paths import is_onnx, is_safetensors
from ..models.registry import is_checkpoint
from ..utils.messages import file_line
from .sidecar import read_sidecar


def check_onnx_pairing(explainer, path: Path) -> None:
    """:func:`check_pairing` of the head ``explainer`` against the encoder fingerprints that the sidecar of the ONNX
    file ``path`` records (``arniqa export``); a sidecar written before records none: the width alone, in
    :func:`~arniqa.inference.loading.load`, which says so (:func:`warn_unchecked_head`)."""
    from ..models.arniqa import PAIRING_KEYS

    meta = read_sidecar(path) or {}
    if any(key in meta for key in PAIRING_KEYS.values()):
        check_pairing(explainer, lambda rounded: meta.get(PAIRING_KEYS[rounded]), path, head=True)


def check_pairing(
    file, fingerprint: Callable[[str | None], str], checkpoint: Path | None = None, head: bool = False
) -> None:
    """ValueError when the regressor in the file ``file`` (with ``head``: its explanation head) was fitted on the
    features of another encoder than the checkpoint's (an ONNX file's: the one exported; else the published encoder),
    whose :func:`~arniqa.models.arniqa.model_fingerprint` rounded to ``rounded`` is ``fingerprint(rounded)``.
    ``arniqa evaluate`` and ``arniqa explain fit`` record their encoder's
    :func:`~arniqa.models.arniqa.pairing_fingerprints`; the file pairs when one of them is the encoder's (the exact
    one is compared first; older files record it alone), so a bf16 or fp16 copy of its encoder pairs too.
    ``fingerprint`` is called only when one is recorded. A regressor file that records none (a published
    ``regressor_<dataset>.pth``, a state dict, an older file) cannot be checked: a warning says so, except for the
    published encoder with a file that is no arniqa regressor file (the published regressors are its own); a head
    that records none (fitted before) is checked by its width only, in :func:`~arniqa.inference.loading.load`, which
    then says so (:func:`warn_unchecked_head`). A :class:`~arniqa.models.regressor.Regressor` object or a regressor
    name is not checked."""
    from ..models.arniqa import PAIRING_KEYS
    from ..models.checkpoint import REGRESSOR_FORMAT, arniqa_metadata

    if not isinstance(file, (str, os.PathLike)) or not Path(file).is_file():
        return
    path = Path(file)
    meta = (arniqa_metadata(path) if is_safetensors(path) else None) or {}
    record = meta.get("explainer") if head else meta
    record = record if isinstance(record, dict) else {}
    what, results = ("explanation head", "explanations") if head else ("regressor", "scores")
    encoder = _encoder_name(checkpoint)
    recorded = {rounded: record[key] for rounded, key in PAIRING_KEYS.items() if isinstance(record.get(key), str)}
    if not recorded:
        if not head and (checkpoint is not None or meta.get("format") == REGRESSOR_FORMAT):
            warnings.warn(
                f"{path}: the file does not record which encoder it was fitted on (a published "
                f"regressor_<dataset>.pth fits the published encoder only), so it is not checked against {encoder}; "
                "its scores are right only if it was fitted on that encoder's features (`arniqa evaluate` writes "
                "regressor files that record it)",
                stacklevel=3,
            )
        return
    if not any(fingerprint(rounded) == value for rounded, value in recorded.items()):
        fitted = record.get("encoder") or "another encoder"
        if head:
            remedy = _refit_head(checkpoint)
        elif checkpoint is not None:
            remedy = (
                f"fit a regressor on {checkpoint} (`arniqa evaluate --checkpoint {checkpoint} -o DIR` writes "
                "DIR/regressor_<dataset>.safetensors)"
            )
        else:
            remedy = (
                "pass a regressor of the published encoder (a dataset name, or a file of `arniqa evaluate` "
                "without --checkpoint)"
            )
        raise ValueError(
            file_line(
                path,
                f"this {what} was fitted on the features of {fitted}, not of {encoder}, so its {results} would be "
                "wrong",
                f"score with the encoder it was fitted on, or {remedy}",
            )
        )


def _encoder_name(checkpoint: Path | None) -> str:
    """The encoder a regressor or head file is checked against, in words (see :func:`check_pairing`)."""
    if checkpoint is None:
        return "the published encoder (ARNIQA.pth)"
    if is_onnx(checkpoint):
        return f"the encoder exported to {checkpoint}"
    return f"the checkpoint {checkpoint}"


def _refit_head(checkpoint: Path | None) -> str:
    """How to fit an explanation head on the encoder of ``checkpoint`` (None: the published one)."""
    if checkpoint is not None and is_onnx(checkpoint):
        return (
            "fit a head on the model it was exported from (`arniqa explain fit PRISTINE --checkpoint CHECKPOINT "
            "-o HEAD.safetensors`, without --checkpoint for the published model)"
        )
    fit = "arniqa explain fit PRISTINE" + ("" if checkpoint is None else f" --checkpoint {checkpoint}")
    return f"fit a head on it (`{fit} -o HEAD.safetensors`)"


def warn_unchecked_head(explainer, name_or_path) -> None:
    """A warning when the head file ``explainer`` (None: none given) was checked against the encoder of
    ``name_or_path`` by its width alone, not by :func:`check_pairing`: the head records no encoder (fitted before
    heads recorded it), or the ONNX file does not (its sidecar written before, or none). Called once the width
    passed, so that a head refused for its width is one line."""
    if explainer is None or not Path(explainer).is_file():
        return
    from ..models.arniqa import PAIRING_KEYS
    from ..models.checkpoint import arniqa_metadata

    path = Path(name_or_path)
    if is_onnx(path) and not any(key in (read_sidecar(path) or {}) for key in PAIRING_KEYS.values()):
        warnings.warn(
            f"{explainer}: {path} does not record the encoder it was exported from (no sidecar, or one written "
            "before sidecars recorded it), so only the explanation head's width is checked against it; its "
            "explanations are right only if it was fitted on that encoder's features; to be sure, export the model "
            "again (`arniqa export`)",
            stacklevel=3,
        )
        return
    meta = (arniqa_metadata(explainer) if is_safetensors(explainer) else None) or {}
    record = meta.get("explainer") if isinstance(meta.get("explainer"), dict) else {}
    if not any(isinstance(record.get(key), str) for key in PAIRING_KEYS.values()):
        checkpoint = path if is_onnx(path) or is_checkpoint(path) else None
        warnings.warn(
            f"{explainer}: the explanation head does not record which encoder it was fitted on (fitted before heads "
            f"recorded it), so only its width is checked against {_encoder_name(checkpoint)}; its explanations are "
            f"right only if it was fitted on that encoder's features; to be sure, {_refit_head(checkpoint)}",
            stacklevel=3,
        )
