"""JSON files: :func:`write_json` is the one JSON writer of the package (through :func:`~.files.atomic_write`); its
sanitiser (:func:`jsonable`) turns NaN and infinities into ``null`` (standard JSON has no token for them) and numpy /
torch scalars and arrays, tuples and paths into plain JSON values. :func:`parse_json` reads JSON text, nesting bounded
(:data:`MAX_NESTING`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .files import Writer, atomic_write, text_writer


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


MAX_NESTING = 100  # levels of lists and mappings in a JSON file or config read (the project's nest a few)


def parse_json(text: str) -> Any:
    """``json.loads``; nesting deeper than :data:`MAX_NESTING` is a ``JSONDecodeError``, not a RecursionError here
    or in what walks the value later (``jsonable`` stops at about 500 levels, ``repr`` at about 1000), and so is a
    number of more digits than ``int`` converts (its ValueError escaped every reader's JSONDecodeError)."""
    problem = f"nested more than {MAX_NESTING} levels deep"
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(problem, text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion: ...; use sys..."
        raise json.JSONDecodeError(f"a number too long to read ({str(e).partition(';')[0]})", text, 0) from None
    if text.count("[") + text.count("{") <= MAX_NESTING:  # cannot nest deeper: no walk (resume reads a row a call)
        return value
    todo = [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            if level > MAX_NESTING:
                raise json.JSONDecodeError(problem, text, 0)
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``jsonable(obj)`` to ``path`` (indent 1) atomically, creating the folder; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json_writer(obj))


def json_writer(obj: Any) -> Writer:
    """What writes ``jsonable(obj)`` (indent 1) to a path: for :func:`atomic_write` and :func:`atomic_writes`."""
    return text_writer(json.dumps(jsonable(obj), indent=1, allow_nan=False))
