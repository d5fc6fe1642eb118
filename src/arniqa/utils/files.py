"""Writing files that must never be torn: a temporary file in the same folder, fsync, rename; and the
lock that keeps two arniqa processes from writing one output (:func:`output_lock`).

A crash at any moment leaves either the old file or the new one. :func:`write_json` is the one JSON
writer of the package; its sanitiser turns NaN and infinities into ``null`` (standard JSON has no
token for them) and numpy / torch scalars and arrays, tuples and paths into plain JSON values.
:func:`output_lock` keeps a second arniqa process out of an output that one is writing.
:func:`escape_name` writes a file name in any bytes into a text file losslessly; :func:`printable` shows one,
:func:`one_line` in a message of one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, outputs are not guarded
    fcntl = None


def escape_name(name: str) -> str:
    """A path as a CSV field: a backslash is written ``\\\\``, a byte of the file name that is not UTF-8
    (held by Python as the lone surrogate U+DC80 + byte, ``os.fsdecode``) ``\\xNN``; :func:`unescape_name`
    reverses it. JSON needs no escape of its own: its ``\\udcNN`` keeps the surrogate."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", name.replace("\\", "\\\\"))


def unescape_name(field: str) -> str:
    """The path :func:`escape_name` wrote as ``field``."""
    return _ESCAPE.sub(lambda m: "\\" if m.group() == "\\\\" else chr(0xDC00 + int(m.group()[2:], 16)), field)


_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\\\|\\x[89a-f][0-9a-f]")


def inside(path, folder) -> bool:
    """True when ``path`` lies in ``folder``'s tree, by their absolute paths (no link is followed): the files a
    command wrote into an output folder among its inputs, which a rerun must not take as inputs."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def printable(text: str) -> str:
    """``text`` with the bytes of a file name that are not UTF-8 (held by Python as lone surrogates,
    ``os.fsdecode``) as ``\\xNN``: for people to read (messages, reports), not to be parsed back."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """:func:`printable` ``text`` with its control characters (a newline, a terminal escape in a file name)
    as ``\\xNN``: a message that stays one line."""
    return CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", printable(text))


def error_line(message: str) -> str:
    """``error: message`` as one line (:func:`one_line`): what a command prints on stderr when it stops."""
    return f"error: {one_line(message)}"


def warning_line(message: str) -> str:
    """``warning: message`` as one line (:func:`one_line`): what goes on stderr when a run goes on."""
    return f"warning: {one_line(message)}"


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
    On any error the temporary file is removed and ``path`` is left as it was; an OSError names ``path``, not
    the temporary file. Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        # The usual permissions (0666 less the umask), as a plain open gives; safetensors' writer makes 0600
        # files, which other users could not read.
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        usual = os.stat(tmp).st_mode & 0o777
        write(tmp)
        os.chmod(tmp, usual)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e  # the subclass of errno (IsADirectoryError, ...)
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


def parse_json(text: str) -> Any:
    """``json.loads``; nesting deeper than Python's parser goes is a ``JSONDecodeError`` too, not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``jsonable(obj)`` to ``path`` (indent 1) atomically, creating the folder; returns ``path``."""
    path = Path(path)
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


# ------------------------------------------------------------------------------------ output locks
LOCK_NAME = ".arniqa.lock"


class OutputBusy(OSError):
    """Another arniqa process holds the output (:func:`output_lock`)."""


def lock_file(path: str | os.PathLike) -> Path:
    """The lock file of an output: ``FOLDER/.arniqa.lock`` for a folder, ``.NAME.lock`` beside a file."""
    path = Path(path)
    return path / LOCK_NAME if path.is_dir() else path.with_name(f".{path.name}.lock")


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive advisory lock (``flock``) on the output ``path`` (a folder, which must exist,
    or a file) while inside; :class:`OutputBusy` at once when another process holds it.

    The lock file holds the owner's pid and is removed on exit; the lock is released when the process
    dies, however it dies. Advisory: only processes that take the same lock are kept out.
    """
    path = Path(path)
    if fcntl is None:
        yield path
        return
    name = lock_file(path)
    while True:
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = f"pid {owner}" if owner.isdigit() else "pid unknown"
            raise OutputBusy(
                f"{path} is in use by another arniqa process ({pid}); wait for it or choose another output"
            ) from None
        # The owner before us may have removed the file between our open and our lock: lock the new one.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(name))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        name.unlink(missing_ok=True)  # while still locked, so no one locks a file about to go
        os.close(fd)
