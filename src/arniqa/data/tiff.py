"""TIFF checks a decode makes beyond Pillow's: a TIFF whose first image directory is not where its header points
(cut off, or its end overwritten with zero bytes: :func:`tiff_directory_lost`), and one whose first image is a
reduced-resolution preview, as a camera RAW file's is (:func:`tiff_preview`). Both read a few bytes of the file."""

from __future__ import annotations

import struct

from .headers import accepts, bytes_at

NEW_SUBFILE_TYPE = 254  # the TIFF tag whose bit 0 marks an image as a reduced-resolution copy of another


def _tiff_directory(head: bytes) -> tuple[str, bool, int] | None:
    """The byte order (``<``, ``>``), whether it is a BigTIFF, and the offset of the first image directory of a TIFF
    (``head``: its first 16 bytes); None for another format."""
    if not accepts("TIFF", head):
        return None
    order = "<" if head[:2] == b"II" else ">"
    big = b"+" in head[2:4]  # BigTIFF: 8-byte offsets and entry counts
    return order, big, struct.unpack(f"{order}Q", head[8:16])[0] if big else struct.unpack(f"{order}I", head[4:8])[0]


def tiff_directory_lost(source, head: bytes) -> str | None:
    """Why a TIFF (``head``: its first 16 bytes) has no first image directory where its header points, which libtiff
    writes after the image data: the file ends before it (cut off), or it holds no entry (zero bytes: overwritten);
    None for another format or a directory there."""
    if (tiff := _tiff_directory(head)) is None:
        return None
    order, big, at = tiff
    entries = bytes_at(source, at, 8 if big else 2)
    if len(entries) < (8 if big else 2):
        return f"the file ends before its image directory at byte {at}; cut off?"
    if not any(entries):
        return f"no entry in its image directory at byte {at}; its end overwritten with zero bytes?"
    return None


def tiff_preview(source, head: bytes) -> bool:
    """True for a TIFF (``head``: its first 16 bytes) whose first image is a reduced-resolution copy of another in the
    file (NewSubfileType bit 0), as a camera RAW file's is (DNG, NEF, ...): Pillow decodes that preview, never the
    photo. Tags are sorted and NewSubfileType is the lowest, so it is the first entry of a directory that has it."""
    if (tiff := _tiff_directory(head)) is None:
        return False
    order, big, at = tiff
    entry = bytes_at(source, at + (8 if big else 2), 20 if big else 12)  # after the count of entries
    if len(entry) < (20 if big else 12):
        return False
    tag, kind = struct.unpack(f"{order}HH", entry[:4])
    value = entry[12:] if big else entry[8:]
    if tag != NEW_SUBFILE_TYPE or kind not in (3, 4):  # SHORT, LONG
        return False
    return bool(struct.unpack(f"{order}{'H' if kind == 3 else 'I'}", value[: 2 if kind == 3 else 4])[0] & 1)
