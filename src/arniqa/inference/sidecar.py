"""The JSON sidecar of an exported ONNX file (``model.onnx.json``): where it lies and how it is read, without torch."""

from __future__ import annotations

import math
import os
import re
from contextlib import suppress
from pathlib import Path

from ..data.iqa.registry import SCORE_KINDS
from ..data.views import PROTOCOLS
from ..degradations.registry import LABELS
from ..utils.cache import cache_dir
from ..utils.jsonfile import parse_json

SIDECAR_FORMAT = "arniqa-onnx"
EXPORT_AGAIN = "export the model again"  # what to do about a sidecar that is not one arniqa export wrote
CACHED_AGAIN = "a file of arniqa's cache: delete it, and the next run makes it again"  # such a file in <cache>/onnx
# a sidecar holds a few kB at most; parsing a 256 MB one (a JSON array of numbers) took 6 s and 1.3 GB
MAX_SIDECAR_BYTES = 1 << 20


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def in_cache(path: Path) -> bool:
    """Whether ``path`` is a file of ``<cache>/onnx``: the engine's exports and int8 forms, no file of the user's."""
    with suppress(ValueError):  # no cache folder known (no home): not in it
        return path.parent.resolve() == (cache_dir() / "onnx").resolve()
    return False


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of an exported file, or None when there is none; ValueError when it is not one, saying to export
    again, or for a file of the cache (:func:`in_cache`) to delete it with the file: deleted alone, it is not made
    again, and an int8 form would lose its scores' range."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    again = (  # CACHED_AGAIN's words, for both files
        f"a file of arniqa's cache: delete it and {side.stem} beside it, and the next run makes them again"
        if in_cache(side)
        else EXPORT_AGAIN
    )
    with open(side, "rb") as f:
        data = f.read(MAX_SIDECAR_BYTES + 1)  # no more: a multi-GB file is not read whole
    if len(data) > MAX_SIDECAR_BYTES:
        raise ValueError(
            f"{side}: larger than {MAX_SIDECAR_BYTES:,} bytes, which no sidecar is (one holds a few kB at most); "
            f"{again}"
        )
    try:
        meta = parse_json(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{side}: not a JSON sidecar ({e}); {again}") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{side}: not an arniqa ONNX sidecar (format {SIDECAR_FORMAT!r} expected); {again}")
    dataset, score_range, labels = meta.get("dataset"), meta.get("score_range"), meta.get("explain_labels")
    if dataset is not None and not isinstance(dataset, str):
        raise ValueError(f"{side}: 'dataset' must be a dataset name, got {dataset!r}; {again}")
    if score_range is not None and not _is_score_range(score_range):
        raise ValueError(f'{side}: \'score_range\' must be [low, high, "mos" or "dmos"], got {score_range!r}; {again}')
    for key in ("protocol", "explain_protocol"):  # the file's views, and those its head was fitted on
        protocol = meta.get(key)
        if protocol is not None and not (isinstance(protocol, str) and protocol in PROTOCOLS):
            raise ValueError(f"{side}: {key!r} must be one of {', '.join(PROTOCOLS)}, got {protocol!r}; {again}")
    for key, value in meta.items():  # the encoder's fingerprints (arniqa.models.arniqa.PAIRING_KEYS)
        if key.startswith("encoder_fingerprint") and not (
            isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value)
        ):
            raise ValueError(f"{side}: {key!r} must be a SHA-256 digest (64 hex digits), got {value!r}; {again}")
    if labels is not None and labels != list(LABELS):  # they name files (arniqa map --explain): never other names
        raise ValueError(
            f"{side}: 'explain_labels' must be this version's groups ({', '.join(LABELS)}), got {labels!r}; {again}"
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
