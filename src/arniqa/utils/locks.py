"""The lock that keeps a second arniqa process out of an output that one is writing (:func:`output_lock`; who holds
it: :func:`lock_holder`), and the names of the files arniqa keeps beside an output (its lock, score's settings),
which a walk of input images skips."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .files import own_folder, process_running

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, outputs are not guarded
    fcntl = None


LOCK_NAME = ".arniqa.lock"


LOCK_SUFFIX = ".lock"  # a file's lock beside it: .NAME.lock


SETTINGS_SUFFIX = ".arniqa.json"  # arniqa score's (and map's) settings beside -o NAME: .NAME.arniqa.json


class OutputBusy(OSError):
    """Another arniqa process holds the output (:func:`output_lock`)."""


def lock_file(path: str | os.PathLike) -> Path:
    """The lock file of an output: ``FOLDER/.arniqa.lock`` for a folder, ``.NAME.lock`` beside a file."""
    path = Path(path)
    return path / LOCK_NAME if path.is_dir() else path.with_name(f".{path.name}{LOCK_SUFFIX}")


def _open_lock(name: Path) -> int:
    """The lock file ``name`` opened (created if missing). What is there but no regular file (a FIFO, a device, a
    symbolic link: arniqa makes none) is no lock anyone holds: it is removed, never opened, truncated or written."""
    while True:
        with suppress(FileNotFoundError):
            if not stat.S_ISREG(os.lstat(name).st_mode):
                with suppress(FileNotFoundError):
                    os.unlink(name)
        try:  # no link followed, no wait on a FIFO put there since
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                continue
            raise
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)


def _owner(fd: int, patience: float = 0.5) -> str:
    """``pid N`` of the process holding the lock file ``fd``, or ``pid unknown``: it writes its pid just after taking
    the lock, so an empty file is read again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while not (owner := os.pread(fd, 32, 0).decode(errors="replace").strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return f"pid {owner}" if owner.isdigit() else "pid unknown"


def lock_holder(path: str | os.PathLike) -> str | None:
    """``pid N`` of another running process that holds :func:`output_lock` on ``path``, else None; read from the
    lock file, which its holder removes when done (a killed holder's pid runs no more), without taking the lock."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock_file(path), flags)
    except OSError:
        return None
    try:
        owner = _owner(fd, patience=0) if stat.S_ISREG(os.fstat(fd).st_mode) else "none"
    finally:
        os.close(fd)
    pid = owner.removeprefix("pid ")
    return owner if pid.isdigit() and int(pid) != os.getpid() and process_running(int(pid)) else None


@contextmanager
def output_lock(path: str | os.PathLike, wait: Callable[[str], object] | None = None) -> Iterator[Path]:
    """Hold an exclusive advisory lock (``flock``) on the output ``path`` (a folder, which must exist,
    or a file) while inside; :class:`OutputBusy` at once when another process holds it, or, with ``wait``,
    ``wait("pid N")`` is called and the lock waited for.

    The lock file holds the owner's pid and is removed on exit; the lock is released when the process
    dies, however it dies. Advisory: only processes that take the same lock are kept out.
    """
    path = Path(path)
    if fcntl is None:
        yield path
        return
    name = lock_file(path)
    fd, held = None, False
    try:  # from the open on: Ctrl-C anywhere closes the file (so no lock stays held in this process)
        while True:
            fd = _open_lock(name)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _owner(fd)
                if wait is None:
                    raise OutputBusy(
                        f"{path} is in use by another arniqa process ({pid}); wait for it or choose another output"
                    ) from None
                wait(pid)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without locks (ENOLCK): the lock file, which no one holds, is not left
                with suppress(OSError):
                    if os.fstat(fd).st_size == 0:  # the pid a holder writes is not there
                        name.unlink()
                raise
            # The owner before us may have removed the file between our open and our lock: lock the new one.
            try:
                held = os.path.samestat(os.fstat(fd), os.stat(name))
            except FileNotFoundError:
                held = False
            if held:
                break
            os.close(fd)
            fd = None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        if path.is_dir():  # a command's output folder: the files in it are its own
            with own_folder(path):
                yield path
        else:
            yield path
    finally:
        if held:  # while still locked, so no one locks a file about to go; in a folder made read-only it stays,
            with suppress(OSError):  # released all the same, and the next command takes it over
                name.unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)
