"""PNG reading beside PIL's decoder: plain 8-bit RGB PNGs decoded by Wuffs (:func:`decode_plain_png`), the ICC
profile (:func:`png_profile`), a PNG without the text chunks PIL refuses (:func:`without_text`), and the image data
stream checked against the header's size (:func:`png_data_short`).

A PNG whose image data stream ends cleanly before its last row is truncated data too (PIL decodes it whole, the rest
black; Wuffs and libpng refuse it), and so is one whose stream runs on past its last row (a file whose end was
overwritten with zero bytes, after a crash or a preallocated download: they inflate to black rows): when one of its
bottom-right 2x2 pixels is zero, where those rows would show, the stream is inflated again and its length checked
against the header's (4 us otherwise; a black corner costs about two thirds of a decode more).

A PNG that PIL refuses (a text chunk unpacking past its 1 MB ``PngImagePlugin.MAX_TEXT_CHUNK``, a broken text
chunk) is decoded again without its text chunks: no score reads text. Those named like EXIF or XMP are kept when
the orientation is applied (PIL reads it from them); one of those over PIL's limit is an error saying so.

Plain PNGs (8-bit RGB, not interlaced, no transparency, animation, EXIF or XMP; KADIS-700k's kind)
of up to :data:`WUFFS_MAX_PIXELS` are decoded by Wuffs (pywuffs) with every checksum checked, about
twice as fast as PIL's decoder (2.6 against 5.1 ms for a 512x384 photo on a 2-core AMD EPYC) and to
the same pixels; any other PNG, or one Wuffs rejects, goes through PIL. Bigger ones go
through PIL too: Wuffs' 3-byte pixels are copied into PIL's 4-byte ones, so its peak is 7 bytes per
pixel against PIL's 4 (``arniqa score`` of a 12000x12000 PNG peaked at 1.96 GB through Wuffs, 1.53 GB
through PIL, 0.70 GB for a tiny image).
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image, PngImagePlugin

from .headers import all_bytes, bytes_at

try:  # the fast-png extra (pip install arniqa[fast-png]; built from source on Linux); else PIL decodes every PNG
    from pywuffs import ImageDecoderQuirks, ImageDecoderType, PixelFormat
    from pywuffs.aux import ImageDecoder, ImageDecoderConfig
except ImportError:
    ImageDecoder = None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that change neither PIL's 8-bit RGB pixels nor the EXIF orientation it applies (text chunks
# may hold EXIF or XMP, see _plain_rgb_png); any other chunk sends a PNG through PIL.
PLAIN_PNG_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs",
                              b"tIME", b"bKGD", b"tEXt", b"zTXt", b"iTXt"})  # fmt: skip
TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
WUFFS_MAX_PIXELS = 16_000_000
# Samples per pixel of each PNG colour type (gray, RGB, palette, gray and alpha, RGBA), and Adam7's passes (first
# column and row, steps).
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _plain_rgb_png(data: bytes, max_pixels: int | None = None) -> bool:
    """True when ``data`` is a whole 8-bit RGB PNG, not interlaced, holding only :data:`PLAIN_PNG_CHUNKS`
    (no text chunk named like EXIF or XMP, which PIL reads an orientation from), within PIL's pixel limit,
    ``max_pixels`` (a bigger one goes to PIL, whose header check names the problem) and
    :data:`WUFFS_MAX_PIXELS`."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return False
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    limits = [n for n in (Image.MAX_IMAGE_PIXELS, max_pixels, WUFFS_MAX_PIXELS) if n is not None]
    if depth != 8 or colour != 2 or interlace or any(width * height > n for n in limits):
        return False
    for kind, pos, length in _png_chunks(data):
        if kind not in PLAIN_PNG_CHUNKS:
            return False
        if kind in TEXT_CHUNKS and _orientation_text(data, pos, length):
            return False
        if kind == b"IEND":
            return pos + 12 + length == len(data)
    return False


def _png_chunks(data: bytes):
    """(kind, position, data length) of each whole chunk of the PNG ``data``, up to its IEND."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        yield kind, pos, length
        if kind == b"IEND":
            return
        pos += 12 + length


def _orientation_text(data: bytes, pos: int, length: int) -> bool:
    """Whether the PNG text chunk at ``pos`` of ``data`` is named like EXIF or XMP (PIL reads an orientation from
    those)."""
    keyword = data[pos + 8 : pos + 8 + min(length, 80)].split(b"\0", 1)[0].lower()
    return b"exif" in keyword or b"xmp" in keyword


def without_text(source, exif: bool) -> bytes | None:
    """The PNG ``source`` (a path or bytes in memory) without the text chunks the score has no use for: all, or
    (``exif``) all but those named like EXIF or XMP; and without an ICC profile past PIL's limit (its decoder
    refuses the file; :func:`png_profile` reads it). None when it is no whole PNG or has none to drop."""
    try:
        if not bytes_at(source).startswith(PNG_SIGNATURE):
            return None
        data = all_bytes(source)
    except OSError:
        return None
    kept, dropped = [PNG_SIGNATURE], False
    for kind, pos, length in _png_chunks(data):
        if (kind in TEXT_CHUNKS and not (exif and _orientation_text(data, pos, length))) or (
            kind == b"iCCP" and _inflated(data[pos + 8 : pos + 8 + length], PngImagePlugin.MAX_TEXT_CHUNK) is None
        ):
            dropped = True
        else:
            kept.append(data[pos : pos + 12 + length])
        if kind == b"IEND":
            return b"".join(kept) if dropped and pos + 12 + length <= len(data) else None
    return None


def png_data_short(img: Image.Image, source) -> str | None:
    """Why the loaded PNG ``img`` read from ``source`` (a path or a BytesIO) is incomplete, or None. PIL takes an
    image data stream that ends cleanly before the last row for the whole image (its decoder stops where the
    stream does, the rest left zero); libpng says "Not enough image data". Nor one that runs on past the last row
    (zero bytes written over the file's end inflate to black rows; libpng: "Too much image data"). The last row the
    stream fills ends at the bottom-right 2x2 pixels (Adam7's last pass included), so only when one of those is zero
    is the stream inflated again and its length checked against the header's."""
    w, h = img.size
    corner = [img.getpixel((x, y)) for x in range(max(0, w - 2), w) for y in range(max(0, h - 2), h)]
    if all(any(p) if isinstance(p, tuple) else p for p in corner):
        return None
    data = all_bytes(source)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    bits = depth * PNG_CHANNELS[colour]
    need = 0
    for x0, y0, dx, dy in ADAM7 if interlace else ((0, 0, 1, 1),):
        cols, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if cols and rows:
            need += rows * (1 + (cols * bits + 7) // 8)  # a filter byte per row
    stream = zlib.decompressobj()
    rest = b"".join(data[pos + 8 : pos + 8 + n] for kind, pos, n in _png_chunks(data) if kind == b"IDAT")
    got = 0
    try:  # one byte past the need: a stream running on is a tail overwritten (zero bytes inflate to black rows)
        while got <= need and (out := stream.decompress(rest, min(need + 1 - got, 1 << 20))):
            got, rest = got + len(out), stream.unconsumed_tail
    except zlib.error as e:
        return str(e)
    if got > need:
        return f"the image data runs on past the {need} bytes its header declares (its end overwritten?)"
    return None if got == need else f"the image data ends after {got} of the {need} bytes its header declares"


def decode_plain_png(data: bytes, max_pixels: int | None = None) -> Image.Image | None:
    """``data`` decoded by Wuffs when it is a plain RGB PNG (:func:`_plain_rgb_png`) that Wuffs decodes
    with every CRC-32 and Adler-32 checksum right; else None (PIL decodes it, or names the problem)."""
    if ImageDecoder is None or not _plain_rgb_png(data, max_pixels):
        return None
    config = ImageDecoderConfig()
    config.enabled_decoders = [ImageDecoderType.PNG]
    config.pixel_format = PixelFormat.RGB
    config.quirks = {ImageDecoderQuirks.IGNORE_CHECKSUM: 0}  # pywuffs ignores checksums unless told
    result = ImageDecoder(config).decode(data)
    if result.error_message or result.pixbuf.ndim != 3:
        return None
    image = Image.fromarray(result.pixbuf)
    if (profile := png_profile(data)) is not None:  # as PIL's decoder keeps it
        image.info["icc_profile"] = profile
    return image


# The largest ICC profile a JPEG holds: 255 APP2 segments of 65,519 profile bytes (PIL's writer wraps the count past
# 255, and the file's profile is lost). It bounds the profile read from a PNG too: PIL's decoder refuses one past
# 1 MiB (MAX_TEXT_CHUNK), which PNG allows (a chunk of up to 2 GiB) and PIL's encoder writes (a LUT-based camera or
# printer profile passes it), and a profile unpacks from a small chunk, as a text bomb does.
PROFILE_MAX = 255 * 65_519  # a segment's 65,533 bytes less its 14 of header


def png_profile(data: bytes) -> bytes | None:
    """The ICC profile in the iCCP chunk of the whole PNG ``data`` (name, NUL, method 0, zlib data), None when
    there is none or it unpacks past :data:`PROFILE_MAX` or not at all."""
    for kind, pos, length in _png_chunks(data):
        if kind == b"IDAT":  # iCCP comes before the image data
            return None
        if kind == b"iCCP":
            return _inflated(data[pos + 8 : pos + 8 + length], PROFILE_MAX)
    return None


def _inflated(chunk: bytes, limit: int) -> bytes | None:
    """The profile of the iCCP chunk data ``chunk`` unpacked, None when it unpacks past ``limit`` bytes or not at
    all."""
    inflate = zlib.decompressobj()
    try:
        profile = inflate.decompress(chunk.partition(b"\0")[2][1:], limit)
    except zlib.error:
        return None
    return None if inflate.unconsumed_tail else profile
