"""The JSON sidecar of an exported ONNX file (``model.onnx.json``): where it lies and how it is read, without torch."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ..data.iqa.registry import SCORE_KINDS
from ..data.views import PROTOCOLS
from ..degradations.registry import LABELS
from ..utils.files import parse_json

SIDECAR_FORMAT = "arniqa-onnx"
EXPORT_AGAIN = "export the model again"  # what to do about a sidecar that is not one arniqa export wrote


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of an exported file, or None when there is none; ValueError when it is not one."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = parse_json(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{side}: not a JSON sidecar ({e}); {EXPORT_AGAIN}") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{side}: not an arniqa ONNX sidecar (format {SIDECAR_FORMAT!r} expected); {EXPORT_AGAIN}")
    dataset, score_range, labels = meta.get("dataset"), meta.get("score_range"), meta.get("explain_labels")
    if dataset is not None and not isinstance(dataset, str):
        raise ValueError(f"{side}: 'dataset' must be a dataset name, got {dataset!r}; {EXPORT_AGAIN}")
    if score_range is not None and not _is_score_range(score_range):
        raise ValueError(
            f'{side}: \'score_range\' must be [low, high, "mos" or "dmos"], got {score_range!r}; {EXPORT_AGAIN}'
        )
    for key in ("protocol", "explain_protocol"):  # the file's views, and those its head was fitted on
        protocol = meta.get(key)
        if protocol is not None and not (isinstance(protocol, str) and protocol in PROTOCOLS):
            raise ValueError(f"{side}: {key!r} must be one of {', '.join(PROTOCOLS)}, got {protocol!r}; {EXPORT_AGAIN}")
    for key, value in meta.items():  # the encoder's fingerprints (arniqa.models.arniqa.PAIRING_KEYS)
        if key.startswith("encoder_fingerprint") and not (
            isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value)
        ):
            raise ValueError(f"{side}: {key!r} must be a SHA-256 digest (64 hex digits), got {value!r}; {EXPORT_AGAIN}")
    if labels is not None and labels != list(LABELS):  # they name files (arniqa map --explain): never other names
        raise ValueError(
            f"{side}: 'explain_labels' must be this version's groups ({', '.join(LABELS)}), got {labels!r}; "
            f"{EXPORT_AGAIN}"
        )
    return meta


def _is_score_range(value) -> bool:
    numbers = isinstance(value, list) and len(value) == 3 and value[:2]
    return (
        bool(numbers)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
        and numbers[0] < numbers[1]
        and value[2] in SCORE_KINDS
    )
