"""WebDataset tar shards as scoring input, and the brace patterns that name them (``{000000..000099}``).

A shard is an uncompressed tar file (the WebDataset convention: members ``key.ext``, the files of one sample
sharing a key). Each member that is an image by the folder walk's rule (:func:`~arniqa.data.folders.is_image`:
an image extension, else a header a decoder recognises, and a Mac's ``._NAME`` AppleDouble member by its header
only) becomes one item, named ``<shard>/<member name>`` (``shards/000000.tar/n01440764_10026.jpg``); the other
members (labels, JSON metadata) are passed over, and so are the members under a system folder (a NAS's
thumbnails, a trash: :func:`~arniqa.data.folders.is_system_folder`), which a folder walk does not enter either.
The stdlib ``tarfile`` lists the headers and an item keeps the member's offset and size, so its bytes are read by
one seek from any thread or Ray worker, and a bad member is one error row while the rest of the shard goes on. A
shard that cannot be listed (missing, not a tar, its data cut short) gives an :class:`Unreadable` item named after
the shard (after the members listed before the damage). A member's read is bounded: one whose header declares more
bytes than the shard holds after it, or more than :data:`MAX_MEMBER_BYTES`, is an error row read from nowhere; an
extended header (PAX, GNU long name) is read to what the shard holds, whatever it declares. An image-named member
that is a link, a device or a FIFO is a row saying it was skipped.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..data.folders import is_apple_double, is_image, is_system_folder
from ..data.images import GET_AGAIN, ImageError, decode_image, not_there
from ..utils.messages import with_fix
from ..utils.names import count

SHARD_SUFFIX = ".tar"
MAX_EXPANSION = 1_000_000  # names one brace pattern may stand for
MAX_MEMBER_BYTES = 1 << 30  # an encoded image bigger than 1 GiB is refused unread
NAME_A_TAR = "name the tar file"  # what to do with a shard that is no file
HEADER_BYTES = 1 << 20  # of a member not named as an image, read to recognise an image by (a JPEG's EXIF: < 64 KiB)

COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}

_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"(-?\d+)\.\.(-?\d+)")
_COMPRESSED_TAR = re.compile(r"\.(tar\.(gz|bz2|xz|zst)|tgz|tbz2?|txz|tzst)$", re.IGNORECASE)


@dataclass(frozen=True)
class Member:
    """One image member of a shard: where its bytes lie in the tar file."""

    shard: str
    key: str  # the member's name in the tar
    offset: int
    size: int

    @property
    def name(self) -> str:
        return f"{self.shard}/{self.key}"

    def read(self) -> bytes:
        try:
            with open(self.shard, "rb") as f:
                held = max(0, min(self.size, os.fstat(f.fileno()).st_size - self.offset))
                if held == self.size <= MAX_MEMBER_BYTES:
                    f.seek(self.offset)
                    data = f.read(self.size)
                    held = len(data)
        except OSError as e:
            raise ImageError(
                self.name, f"cannot read the shard ({e.strerror or e})", not_there(self.shard, e)[1]
            ) from None
        if held != self.size:
            raise ImageError(
                self.name,
                f"tar member cut short ({held} of {self.size} bytes in the shard)",
                "copy or download the shard again",
            )
        if self.size > MAX_MEMBER_BYTES:
            raise ImageError(
                self.name,
                f"tar member too large ({self.size} bytes, over the bound of "
                f"{MAX_MEMBER_BYTES}); extract it to score it as a file",
            )
        return data

    def open(self, exif: bool = True, max_pixels: int | None = None):
        return decode_image(self.read(), self.name, exif, max_pixels)


@dataclass(frozen=True)
class Unreadable:
    """A shard, or the rest of one, that could not be listed: one error row."""

    name: str
    reason: str

    def open(self, exif: bool = True, max_pixels: int | None = None):
        raise ImageError(self.name, self.reason)


def is_shard(path: str | os.PathLike) -> bool:
    """A ``.tar`` name, but a Mac's AppleDouble file (``._000000.tar``, judged as a file: no image)."""
    return Path(path).suffix.lower() == SHARD_SUFFIX and not is_apple_double(path)


def in_shard(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a shard member (``shard.tar/x.jpg``, as rows name them): a folder above it is a shard."""
    # a name without ".tar" in it is no member, known without parsing it (arniqa report asks of every row)
    return SHARD_SUFFIX in os.fspath(path).lower() and any(is_shard(folder) for folder in Path(path).parents)


def shard_items(path: str | os.PathLike) -> Iterator[Member | Unreadable]:
    """The image members of the shard at ``path`` in archive order (an :class:`Unreadable` last when
    the shard is missing, not a tar, or cut short), listed as they are read: memory stays flat whatever
    the number of members."""
    shard = str(path)
    listed, opened = 0, False  # opened: its first header is a tar header
    try:
        mode = os.stat(shard).st_mode
    except OSError as e:  # a name too long, a link loop: as a file's row says it
        yield Unreadable(shard, with_fix(*not_there(shard, e)))
        return
    try:
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # reading a FIFO never ends
            yield Unreadable(shard, f"not a regular file (a device, FIFO or socket), not a tar shard; {NAME_A_TAR}")
            return
        with _Bounded(shard) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            opened = True
            while (info := tar.next()) is not None:
                tar.members.clear()  # tarfile keeps every header it read; nothing here looks back
                if info.isdir() or in_system_folder(info.name) or not is_image(info.name, lambda: _header(tar, info)):
                    continue
                listed += 1
                if info.isfile() and not info.issparse():
                    yield Member(shard, info.name, info.offset_data, info.size)
                else:
                    yield Unreadable(f"{shard}/{info.name}", f"skipped: {_kind(info)}")
            _check_end(tar)
    except FileNotFoundError as e:  # removed since
        yield Unreadable(shard, with_fix(*not_there(shard, e)))
    except IsADirectoryError:
        yield Unreadable(shard, f"is a directory, not a tar shard; {NAME_A_TAR}")
    # tarfile raises ValueError and OverflowError too, on numbers in PAX headers it cannot use, and RecursionError
    # on a chain of extended headers (it reads each by a call into itself)
    except (tarfile.TarError, OSError, EOFError, ValueError, OverflowError, RecursionError) as e:
        why = "too many extended headers (PAX or GNU long names) in a row" if isinstance(e, RecursionError) else e
        if opened:
            yield Unreadable(shard, f"tar data unreadable after {count(listed, 'image member')} ({why}); {GET_AGAIN}")
        else:
            yield Unreadable(shard, f"not a tar file ({why}); {compressed(shard) or f'{NAME_A_TAR}, or {GET_AGAIN}'}")


class _Bounded(io.BufferedReader):
    """A shard's file whose reads ask no more bytes than it holds after the position: tarfile reads a GNU long name
    or a PAX header in one read of the size its header declares, and a read allocates what it asks first (3 KB
    declaring 1 TiB: a MemoryError)."""

    def __init__(self, path: str):
        super().__init__(io.FileIO(path, "rb"))
        self.size = os.fstat(self.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > 0:
            size = min(size, max(0, self.size - self.tell()))
        return super().read(size)


def in_system_folder(member: str) -> bool:
    """True for a member name under a system folder (``photos/@eaDir/IMG_1.JPG/SYNOPHOTO_THUMB_XL.jpg``)."""
    return any(map(is_system_folder, member.split("/")[:-1]))


def _header(tar: tarfile.TarFile, info: tarfile.TarInfo) -> io.BytesIO:
    """The first :data:`HEADER_BYTES` of a member, what a decoder recognises it by (none for a link, device or
    sparse member: not read), read where the member lies (``tar.next()`` seeks back to the next header itself;
    ``extractfile`` cost twice as much)."""
    if not info.isfile() or info.issparse():
        return io.BytesIO(b"")
    size = min(info.size, HEADER_BYTES)
    tar.fileobj.seek(info.offset_data)
    data = tar.fileobj.read(size)
    if len(data) != size:
        raise tarfile.ReadError("unexpected end of data")  # as extractfile says it
    return io.BytesIO(data)


def _check_end(tar: tarfile.TarFile) -> None:
    """Raise :class:`tarfile.ReadError` unless the listing ended at the end of the file or at a block of zeros (the
    end-of-archive marker): ``tar.next()`` ends the listing silently at a header cut short or corrupt after the
    first, which hid the members after it."""
    tar.fileobj.seek(tar.offset)
    block = tar.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) not in (0, tarfile.BLOCKSIZE):
        raise tarfile.ReadError(f"header cut short at byte {tar.offset}")
    if block.count(0) != len(block):
        raise tarfile.ReadError(f"invalid header at byte {tar.offset}")


def compressed_shard(path: str | os.PathLike) -> str:
    """:func:`compressed` of a file named as a compressed tar (``x.tar.gz``, ``x.tgz``: the ``webdataset`` package
    reads them), else empty."""
    return compressed(str(path)) if _COMPRESSED_TAR.search(str(path)) else ""


def compressed(shard: str) -> str:
    """``it is gzip-compressed: ...`` when the file starts as a compressed file does, else empty."""
    try:
        with open(shard, "rb") as f:
            head = f.read(6)
    except OSError:
        return ""
    kind = next((name for magic, name in COMPRESSED.items() if head.startswith(magic)), None)
    return f"it is {kind}-compressed: decompress it to score it (shards are plain tar files)" if kind else ""


def _kind(info: tarfile.TarInfo) -> str:
    if info.issparse():
        return "a sparse file, its holes not stored in the tar (repack the shard without --sparse)"
    if info.issym():
        kind = f"a symbolic link to {info.linkname} (links in shards are not followed)"
    elif info.islnk():
        kind = f"a hard link to {info.linkname} (links in shards are not followed)"
    elif info.isdev():
        kind = "a FIFO" if info.isfifo() else "a device"
    else:
        kind = "not a regular file"
    return f"{kind}, not a file"


def expand_braces(pattern: str) -> list[str]:
    """The names a shell's brace expansion gives (``a{1..3}`` -> a1 a2 a3, ``{000..010}`` zero-padded,
    ``{x,y}`` alternatives, left to right); a brace that is neither stays literal."""
    m = _BRACE.search(pattern)
    if m is None:
        return [pattern]
    head, body, rest = pattern[: m.start()], m.group(1), expand_braces(pattern[m.end() :])
    if (r := _RANGE.fullmatch(body)) is not None:
        a, b = int(r.group(1)), int(r.group(2))
        padded = any(g.lstrip("-").startswith("0") and len(g.lstrip("-")) > 1 for g in r.groups())
        width = max(len(g) for g in r.groups()) if padded else 0
        step = 1 if b >= a else -1
        if (abs(b - a) + 1) * len(rest) > MAX_EXPANSION:
            raise ValueError(f"{pattern}: stands for more than {MAX_EXPANSION} names")
        choices = [f"{v:0{width}d}" for v in range(a, b + step, step)]
    elif "," in body:
        choices = body.split(",")
    else:
        return [head + "{" + body + "}" + s for s in rest]
    return [head + c + s for c in choices for s in rest]
