"""Writing files that must never be torn: a temporary file in the same folder, fsync, rename.

A crash at any moment leaves either the old file or the new one (:func:`atomic_writes`: the old files or the new
ones, for files that belong together); :func:`remove_left_temporaries` removes the temporary files of a killed
process. A device, a pipe or a descriptor named as the output (:mod:`.streams`) is written into, never replaced,
except in a command's own folder (:func:`own_folder`, :func:`own_files`). :func:`write_whole` appends a record whole
or not at all, :func:`reserve` gives a memory-mapped file its disk blocks before it is written; :func:`out_of_space`
tells a full disk from other errors. :func:`text_writer` writes text as UTF-8 whatever the locale (JSON:
:mod:`.jsonfile`).
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .messages import file_line, printable
from .streams import descriptor, is_stream, open_stream


def inside(path, folder) -> bool:
    """True when ``path`` lies in ``folder``'s tree, by their absolute paths (no link is followed): the files a
    command wrote into an output folder among its inputs, which a rerun must not take as inputs."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


Writer = Callable[[Path], object]  # writes a file's contents to the path it is given (a temporary file)


def folder_in_the_way(paths: Iterable[str | os.PathLike]) -> None:
    """IsADirectoryError naming the first of ``paths`` that is a folder where a file is to be written (a link to a
    folder is none: :func:`atomic_write`'s rename replaces the link): said before the work, not at its end."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))


def atomic_write(path: str | os.PathLike, write: Writer, fsync: bool = True) -> Path:
    """Call ``write(tmp)`` to write a temporary file next to ``path``, then rename it over ``path``.

    A file rewritten keeps its permission bits (0640 stays 0640, as with ``cp``, ``sed -i`` or an editor) and its
    group where this user may give it that group (a member of it, or root) and the file system takes it, a new one
    gets the usual (0666 less the umask); the temporary file is never looser than either. The file is then this
    user's, and the setuid, setgid and sticky bits are dropped.
    With ``fsync`` the file's data (before the rename) and the folder entry (after it) reach the disk.
    On any error the temporary file is removed and ``path`` is left as it was; an OSError names ``path``, not
    the temporary file. Returns ``path``.
    """
    return atomic_writes([(path, write)], fsync)[0]


TEMPORARY = ".{stem}.{pid}.{hex}.tmp{suffix}"  # the name of the temporary file of STEM.SUFFIX, hidden
# What TEMPORARY adds to a file's name, at most (Linux pids are at most 2**22, 7 digits)
TEMPORARY_EXTRA = len(TEMPORARY.format(stem="", pid=2**22, hex="0" * 8, suffix=""))


def fit_stem(stem: str, folder: str | os.PathLike, suffix_bytes: int) -> str:
    """``stem`` cut at a character so that a file in ``folder`` named ``stem`` and up to ``suffix_bytes`` bytes
    more, and the temporary name :func:`atomic_writes` gives it, fit the folder's longest file name (NAME_MAX,
    255 bytes on most file systems) in bytes."""
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # unknown, or no pathconf (Windows)
        name_max = 255
    room = max(1, name_max - TEMPORARY_EXTRA - suffix_bytes)
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return stem


def atomic_writes(files: list[tuple[str | os.PathLike, Writer]], fsync: bool = True) -> list[Path]:
    """:func:`atomic_write` of several files that belong together (the parts of a checkpoint, the outputs of one
    command): every temporary file is written first, and only when all are written are they renamed over their
    paths. A full disk or any other error while writing leaves every path as it was (a crash during the renames,
    which take no space, may still leave some replaced). A path that is a device or a named pipe (:func:`is_stream`:
    ``-o /dev/null``) is written into directly: renaming over it would replace ``/dev/null`` itself with a file;
    one naming a descriptor of this process (``-o /dev/stderr``) through that descriptor (:func:`open_stream`);
    except inside a folder a command writes as its own (:func:`own_folder`), whose files it names itself: there one
    (a FIFO planted under a map's name) is replaced like a file, never opened. Returns the paths."""
    written: list[tuple[Path, Path]] = []  # (temporary file, path)
    try:
        for path, write in files:
            path = Path(path)
            if is_stream(path) and not in_own_folder(path):  # /dev/null, a pipe named: written into, never replaced
                with naming(path):
                    if descriptor(path) is None:
                        write(path)
                    else:  # /dev/stderr: opened again by name, `2>> log` would be cut and written from its start
                        _write_through(path, write)
                continue
            tmp = path.with_name(
                TEMPORARY.format(stem=path.stem, pid=os.getpid(), hex=secrets.token_hex(4), suffix=path.suffix)
            )
            with naming(path):
                # Made with the permissions the file keeps, or the usual (0666 less the umask, as a plain open
                # gives), never looser (plus its owner's read and write, to be written: the owner is this user);
                # set after the write: safetensors' writer makes 0600 files, which other users could not read.
                kept, group = _permissions(path)
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 if kept is None else kept | 0o600)
                written.append((tmp, path))
                mode = os.fstat(fd).st_mode & 0o777 if kept is None else kept
                if group is not None and group != os.fstat(fd).st_gid:  # before a byte is written
                    # a group this user is not in, or one the file system will not give: this user's, as before
                    with suppress(OSError):
                        os.fchown(fd, -1, group)
                os.close(fd)
                write(tmp)
                if fsync:
                    with open(tmp, "rb+") as f:  # opened before the chmod: a read-only file's (0444) too
                        os.chmod(tmp, mode)
                        os.fsync(f.fileno())
                else:
                    os.chmod(tmp, mode)
        for tmp, path in written:
            with naming(path):
                os.replace(tmp, path)
    finally:
        for tmp, _ in written:
            with suppress(OSError):  # a folder made read-only meanwhile: the write's error is what is said
                tmp.unlink(missing_ok=True)
    if fsync:
        for folder in dict.fromkeys(path.parent for _, path in written):
            _fsync_folder(folder)
    return [Path(path) for path, _ in files]


def _write_through(path: Path, write: Writer) -> None:
    """``write`` a temporary file in the system's temporary folder, then copy it through :func:`open_stream` of the
    descriptor ``path`` names: the stream gets the whole file or, when the write fails, nothing of it."""
    with tempfile.TemporaryDirectory(prefix="arniqa-") as folder:
        tmp = Path(folder) / (path.name or "output")
        write(tmp)
        with open(tmp, "rb") as source, open_stream(path, "wb") as stream:
            shutil.copyfileobj(source, stream)


def _permissions(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """The permission bits (``0o777``) and the group of the file at ``path``, following a link, or None, None where
    none is there or they cannot be read (a link into a folder this user may not enter)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None, None
    return (info.st_mode & 0o777, info.st_gid) if stat.S_ISREG(info.st_mode) else (None, None)


_OWN_PATHS: list[str] = []  # the folders inside own_folder() (links resolved) and files inside own_files()


@contextmanager
def own_folder(folder: str | os.PathLike) -> Iterator[None]:
    """While inside, the files in ``folder``'s tree are a command's own (it names them: ``map``'s ``NAME.map.png``,
    ``evaluate``'s results, the explain cache's entries): one that is a device or a pipe was planted there, not named
    by the user, so :func:`atomic_writes` replaces it and :func:`clear_own` removes it, never opening it (a FIFO
    would block the run until someone read it). :func:`output_lock` on a folder holds it as its own too."""
    folder = os.path.realpath(folder)
    _OWN_PATHS.append(folder)
    try:
        yield
    finally:
        _OWN_PATHS.remove(folder)


@contextmanager
def own_files(*paths: str | os.PathLike) -> Iterator[None]:
    """While inside, ``paths`` are files a command names itself beside the one the user named (a sidecar
    ``FILE.json``): as in :func:`own_folder`, one that is a device or a pipe is replaced, never opened; only the
    user's own output may be one."""
    named = [_folder_resolved(p) for p in paths]
    _OWN_PATHS.extend(named)
    try:
        yield
    finally:
        for name in named:
            _OWN_PATHS.remove(name)


def _folder_resolved(path: str | os.PathLike) -> str:
    """``path`` with its folder's links resolved; its own name, maybe a link, is not followed."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))


def in_own_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` lies in a folder held by :func:`own_folder`, reached through links or not (its own name,
    maybe a link, is not followed), or is a file held by :func:`own_files`."""
    path = _folder_resolved(path)
    return any(inside(path, folder) for folder in _OWN_PATHS)


def clear_own(path: str | os.PathLike) -> None:
    """Before a command opens ``path``, a file it names in its own folder, to write it in place (``maps.csv``, the
    feature cache, a training log): remove it when it is a device or a pipe (planted there), so the open makes a
    file and never waits on a pipe."""
    if is_stream(path):
        with naming(path):
            os.unlink(path)


def remove_left_temporaries(folder: str | os.PathLike, age: float) -> None:
    """Remove the temporary files in ``folder`` that :func:`atomic_writes` left when its process was killed
    (:data:`TEMPORARY`, of any file): those whose process is gone and which were untouched for ``age`` seconds (a
    process on another machine or in another container sharing the folder has a pid that means nothing here).
    A file that cannot be removed is left; nothing is done on Windows, where no pid is probed."""
    if os.name == "nt":
        return
    pattern = re.compile(
        TEMPORARY.replace(".", r"\.").format(stem=".+", pid=r"(\d+)", hex="[0-9a-f]{8}", suffix=r"(?:\.[^.]+)?")
    )
    with suppress(OSError):
        for tmp in Path(folder).iterdir():
            found = pattern.fullmatch(tmp.name)
            with suppress(OSError):
                if found and not process_running(int(found[1])) and time.time() - tmp.lstat().st_mtime > age:
                    tmp.unlink()


def process_running(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone; a number no pid can be
        return False
    except PermissionError:  # another user's
        return True
    return True


@contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """An OSError inside (one a library raised without a file name) names ``path``; the subclass of its errno is
    kept (IsADirectoryError, ...)."""
    try:
        yield
    except OSError as e:
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _path_max() -> int:
    try:
        longest = os.pathconf("/", "PC_PATH_MAX")
    except (AttributeError, OSError, ValueError):  # Windows has no pathconf
        longest = -1
    return longest if longest > 0 else 4096  # -1: no limit said


# the most bytes a path the system opens may hold (Linux: 4096): a longer one names no file
PATH_MAX = _path_max()


def too_long_for_a_path(text: str) -> int | None:
    """The bytes of ``text`` (as :func:`os.fsencode` writes it) where more than :data:`PATH_MAX`, else None; text of
    at most a quarter of that (4 bytes a character at most) is not encoded."""
    if len(text) <= PATH_MAX // 4:
        return None
    size = len(os.fsencode(text))
    return size if size > PATH_MAX else None


# what to do when a read fails with an errno: a path that names no file to read (mistyped, a folder, too long, a link
# loop) is fixed in the path, a refusal in the permissions, too many files open in the limits (not the file's fault:
# a batch goes on); any other errno (EIO, ESTALE) in the disk or share
READ_FIXES = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path: a folder in it is a file",
    errno.EISDIR: "name a file, not a folder",
    errno.ENAMETOOLONG: "give a shorter path (a name in it, or the whole, is longer than the system takes)",
    errno.ELOOP: "check the symbolic links on the path (ls -l)",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EMFILE: "raise the limit of open files of this shell (ulimit -n 4096) and run again",
    errno.ENFILE: "the system's open files are at its limit: close other programs, or raise it (sysctl fs.file-max)",
}
_DISK_FIX = "check the disk or share it is on"
LIMIT_ERRORS = frozenset({errno.EMFILE, errno.ENFILE})  # too many files open: no fault of the file's
PATH_ERRORS = frozenset(READ_FIXES) - {errno.EACCES, errno.EPERM} - LIMIT_ERRORS  # the path is the fix


def cannot_read(e: OSError) -> tuple[str, str]:
    """The problem and the fix of a file the system will not read (an image, a checkpoint): :data:`READ_FIXES`."""
    return f"cannot read file ({e.strerror or e})", READ_FIXES.get(e.errno, _DISK_FIX)


def unreadable(path: str | os.PathLike, e: OSError) -> str:
    """The line of a file the system will not read: ``PATH: problem; fix`` (:func:`cannot_read`)."""
    return file_line(printable(os.fspath(path)), *cannot_read(e))


def cannot_open(e: OSError, fallback: str | os.PathLike) -> str:
    """The line of the file ``e`` names (else ``fallback``) that the system will not read: the file's
    (:func:`unreadable`), or, where it will not even look the file up (no permission to enter a folder above it),
    that folder's."""
    path = os.fsdecode(e.filename) if e.filename is not None else os.fspath(fallback)
    shut = path
    while e.errno in (errno.EACCES, errno.EPERM) and not os.path.lexists(shut):
        above = os.path.dirname(shut) or "."
        if above == shut:
            break
        shut = above
    if shut != path:
        return f"{printable(shut)}: cannot open folder ({e.strerror}); check its permissions"
    return unreadable(path, e)


def out_of_space(err: BaseException | None) -> OSError | None:
    """The OSError saying there is no room to write (disk full, quota, file size limit) that ``err`` is or was
    raised from (its causes and contexts), or None."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            return err
        err = err.__cause__ or err.__context__
    return None


def make_room(err: OSError, there: str = "") -> str:
    """What to do when ``err`` (its errno one of :data:`NO_SPACE`) left no room to write: free space (``there``
    appended: " there") on a full disk or quota; for EFBIG, which freed space does not help, raise the file-size
    limit (a file system's own, FAT's 4 GiB, is the rarer cause)."""
    return "raise the file-size limit with ulimit -f" if err.errno == errno.EFBIG else f"free space{there}"


def write_whole(fd: int, data: bytes, end: int, name: str) -> int:
    """Write ``data`` at offset ``end`` of the open file ``fd``, all of it: a write that fails (disk full) cuts the
    file back to ``end`` and raises the OSError naming ``name``, so the file never ends in a torn record. Returns
    the new end."""
    view = memoryview(data)
    with naming(name):
        try:
            while view:
                view = view[os.pwrite(fd, view, end + len(data) - len(view)) :]
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, end)
            raise
    return end + len(data)


def reserve(path: Path, size: int) -> None:
    """Allocate the disk blocks of the first ``size`` bytes of the file ``path``, so that writes through a memory
    map of it cannot run out of space: a full disk is an OSError naming ``path`` here, not a SIGBUS that kills the
    process at the first write to a page without a block. File systems without preallocation are left as they are."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows
        return
    fd = os.open(path, os.O_RDWR)
    try:
        with naming(path):
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
    finally:
        os.close(fd)


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_write`, serialised in memory first: a full disk is an
    OSError naming ``path``, not torch's RuntimeError ("unexpected pos")."""
    import torch  # here: this module is imported where torch is not (arniqa score on an ONNX file)

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, buffer_writer(buffer))


def buffer_writer(buffer: io.BytesIO) -> Writer:
    """What writes ``buffer``'s bytes to a path, without a copy. Its view of the buffer is released whatever
    happens: one left in a failed write's traceback (``Path.write_bytes(buffer.getbuffer())`` on a full disk) made
    Python 3.12 crash with SIGSEGV when the buffer was freed ("deallocated BytesIO object has exported buffers")."""

    def write(tmp: Path) -> None:
        with buffer.getbuffer() as view, open(tmp, "wb") as f:
            f.write(view)

    return write


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


def text_writer(text: str | Iterable[str]) -> Writer:
    """What writes ``text`` to a path as UTF-8, whatever the locale's encoding (Windows' cp1252 has no ``→``): for
    :func:`atomic_write` and :func:`atomic_writes`. ``text``: a string, or its pieces in turn (an iterator: a report
    of 200,000 rows is never one string)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines([text] if isinstance(text, str) else text)

    return write
