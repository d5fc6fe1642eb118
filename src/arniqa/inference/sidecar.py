"""The JSON sidecar of an exported ONNX file (``model.onnx.json``): where it lies and how it is read, without torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

SIDECAR_FORMAT = "arniqa-onnx"


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
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{side}: not a JSON sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{side}: not an arniqa ONNX sidecar (format {SIDECAR_FORMAT!r} expected)")
    return meta
