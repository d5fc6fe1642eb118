"""What the checks around a decode read of a file, a path or its bytes in memory (a BytesIO): a few bytes from any
offset (:func:`bytes_at`, by default the first 16, what Pillow identifies a format by) or the whole
(:func:`all_bytes`), and Pillow's header test of a format on them (:func:`accepts`, :func:`takes`)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def bytes_at(source, at: int = 0, size: int = 16) -> bytes:
    """``size`` bytes from byte ``at`` (by default the first 16: what Pillow identifies a format by) of a path or a
    BytesIO; fewer where it ends."""
    if hasattr(source, "getvalue"):
        return source.getvalue()[at : at + size]
    with open(source, "rb") as f:
        f.seek(at)
        return f.read(size)


def all_bytes(source) -> bytes:
    """The whole of ``source``, a path or a BytesIO."""
    return source.getvalue() if hasattr(source, "getvalue") else Path(source).read_bytes()


def accepts(fmt: str, head: bytes) -> bool:
    """True when Pillow's header test of ``fmt`` (which reads bytes only) takes ``head``."""
    accept = Image.OPEN[fmt][1]
    verdict = accept(head) if accept else False
    return bool(verdict) and not isinstance(verdict, str)  # a string is Pillow's warning, not a match


def takes(fmt: str, head: bytes) -> bool:
    """:func:`accepts`, False where the header test fails on ``head`` (PIL's open passes over the format then)."""
    try:
        return accepts(fmt, head)
    except Exception:
        return False
