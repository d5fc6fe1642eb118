"""Writing files that must never be torn: a temporary file in the same folder, fsync, rename.

A crash at any moment leaves either the old file or the new one. :func:`write_json` is the one JSON
writer of the package; its sanitiser turns NaN and infinities into ``null`` (standard JSON has no
token for them) and numpy / torch scalars and arrays, tuples and paths into plain JSON values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The cache folder (weights, exported models, features): ``$ARNIQA_CACHE`` if set, else ``~/.cache/arniqa``."""
    env = os.environ.get("ARNIQA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "arniqa"


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], fsync: bool = True) -> Path:
    """Call ``write(tmp)`` to write a temporary file next to ``path``, then rename it over ``path``.

    With ``fsync`` the file's data (before the rename) and the folder entry (after it) reach the disk.
    On any error the temporary file is removed and ``path`` is left as it was. Returns ``path``.
    """
    path = Path(path)
    # A unique name that ``write`` creates itself, so the file gets the usual permissions (umask).
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if fsync:
        _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy of ``obj``: NaN and +-inf -> None; numpy / torch values, tuples and paths to
    plain values; dict keys to strings. Anything else JSON cannot hold raises ``TypeError``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy and torch scalars and arrays
        return jsonable(obj.tolist())
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``jsonable(obj)`` to ``path`` (indent 1) atomically, creating the folder; returns ``path``."""
    path = Path(path)
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
