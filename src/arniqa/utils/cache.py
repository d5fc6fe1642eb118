"""The cache (weights, exported models, features): its folder (:func:`cache_dir`), entries named by a file's digest
(:func:`sha256_of`, :func:`short_digest`), made by one process at a time (:func:`one_maker`), the least used pruned
(:func:`mark_used`, :func:`prune_cache`), and the line when it cannot be written (:func:`cache_unwritable`)."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from .files import make_room, out_of_space
from .locks import output_lock
from .messages import one_line, say


def cache_dir() -> Path:
    """The cache folder (weights, exported models, features): ``$ARNIQA_CACHE`` if set, else ``~/.cache/arniqa``."""
    env = os.environ.get("ARNIQA_CACHE")
    try:
        return Path(env).expanduser() if env else Path.home() / ".cache" / "arniqa"
    except RuntimeError:  # no HOME, and no home in the user database (a container's arbitrary user id)
        raise ValueError(
            f"{env or '~/.cache/arniqa'}: no home folder (HOME is not set, and the user database gives none); set "
            "ARNIQA_CACHE to a folder you can write"
        ) from None


def cache_unwritable(folder: Path, what: str, err: OSError, instead: str) -> OSError:
    """The error of ``what`` (the model's ONNX export) that cannot be written into the cache ``folder`` (a shared
    cache this user may read but not write, a full disk), saying what to do: free space, set ARNIQA_CACHE to a folder
    you can write, or ``instead``."""
    room = f"{make_room(full, ' there')}, or " if (full := out_of_space(err)) else ""
    return OSError(
        f"{folder}: cannot write {what} into the cache ({err.strerror or err}); {room}set ARNIQA_CACHE to a folder "
        f"you can write, or {instead}"
    )


_DIGESTS: dict[tuple, str] = {}  # sha256_of's, by the file's identity and change times: a file is hashed once


RACY_NS = 2 * 10**9  # a file changed this close to its hashing may change again with the same times (coarse clocks)


def sha256_of(path, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of the file ``path``. A file this process hashed before, unchanged since (same device,
    inode, size, modification and change times), is not read again; one changed within :data:`RACY_NS` of its
    hashing is (as git treats a racily clean file: a coarse clock gives a rewrite in the same tick the same times)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if (digest := _DIGESTS.get(key)) is not None:
            return digest
        h = hashlib.sha256()
        while block := f.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
        _DIGESTS[key] = digest
    return digest


def short_digest(digest: str) -> str:
    """The first 24 hex digits (96 bits) of the SHA-256 hex ``digest``: the name of a cache entry (an ONNX export,
    its int8 form, explain's samples of a photo), short, and shared by no two of a cache's entries in practice."""
    return digest[:24]


def mark_used(path: Path) -> bool:
    """Mark the cached file ``path`` as used now, for :func:`prune_cache`: its access time (its modification time,
    which says when it was made, is kept); False if it is not there."""
    try:
        os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))
    except FileNotFoundError:
        return False
    except OSError:  # a cache this user may read but not write
        pass
    return path.is_file()


def prune_cache(folder: Path, keep: int = 4, idle: float = 24 * 3600) -> None:
    """Delete the files of all but the ``keep`` entries of the cache ``folder`` (``<cache>/onnx/``) used last, except
    those used in the last ``idle`` seconds. An entry's files share the name up to the first dot (``KEY.onnx``,
    ``KEY.onnx.json``, ``KEY.int8-*.onnx``); it was last used when one of them was last made
    or read (:func:`mark_used`). Temporary files of writes under way (hidden) are left alone. A run reads a cached
    file within minutes of marking it used (a load, an int8 calibration), so none goes from under a run; one that
    went is made again when next used."""
    used: dict[str, float] = {}
    files: dict[str, list[Path]] = {}
    with suppress(OSError):
        for p in Path(folder).iterdir():
            with suppress(OSError):  # gone meanwhile: another run pruned it
                if not p.name.startswith(".") and p.is_file():
                    key = p.name.split(".")[0]
                    info = p.stat()
                    used[key] = max(used.get(key, 0.0), info.st_mtime, info.st_atime)
                    files.setdefault(key, []).append(p)
    now = time.time()
    for key in sorted(used, key=used.__getitem__, reverse=True)[keep:]:
        if now - used[key] >= idle:
            for p in files[key]:
                with suppress(OSError):  # gone already, or open elsewhere (Windows): the next prune takes it
                    p.unlink()


@contextmanager
def one_maker(path: Path, doing: str, tell: bool = True) -> Iterator[bool]:
    """Inside, this process alone makes the cache entry ``path`` (a download, an export): :func:`output_lock` on it,
    waiting for another process making it, with one line on stderr (``tell``), ``waiting for another arniqa process
    (pid N) DOING PATH``; check again inside whether ``path`` is there. Without a lock on a file system that has
    none (an NFS mount without its lock service): makers may overlap there, each writing whole files. Gives whether
    the lock is held (False there)."""

    said = []  # once: the processes waiting take the lock in turn after the maker, each to find its file there

    def waiting(pid: str) -> None:
        if tell and not said:
            say(one_line(f"waiting for another arniqa process ({pid}) {doing} {path}"))
            said.append(pid)

    with ExitStack() as stack:
        try:
            stack.enter_context(output_lock(path, waiting))
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
            locked = False
        else:
            locked = True
        yield locked
