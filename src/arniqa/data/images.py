"""Robust image decoding: any file Pillow decodes itself -> 8-bit RGB, with one clear error per bad file.

Conversions (reference = ``PIL.Image.open(path).convert("RGB")``, what ARNIQA's scripts do):

* RGB, L (grayscale), 1 (bilevel), P/PA (palette), RGBX, YCbCr, LAB, HSV, CMYK: PIL's
  ``convert("RGB")``, exactly as the reference (gray is replicated to three channels; CMYK uses
  PIL's naive formula ``R = 255 - min(255, C + K)`` with no colour management).
* LA, RGBA, PA, RGBa (alpha): the alpha channel is **dropped**, not composited, as
  ``convert("RGB")`` does; fully transparent pixels keep whatever colour they store.
* 16-bit grayscale (modes I;16, I;16B, I;16L, I;16N, and I, which PIL uses for 16-bit data):
  **scaled** to 8 bit as ``round(v / 257)`` and replicated to three channels. The reference clips
  instead (every value above 255 becomes white), which turns most 16-bit images white; this is a
  deliberate improvement. Mode I holds 32-bit signed integers (a 16-bit PPM, a 32-bit or signed TIFF):
  a value outside 0..65535 is an error, not clipped. 16-bit RGB(A) PNGs are opened by PIL as
  8-bit RGB(A) (high byte kept), the same as the reference.
* EXIF orientation is applied (``ImageOps.exif_transpose``), so the image is scored upright, as
  viewers show it. The reference ignores the EXIF tag and scores the stored pixel grid; pass
  ``exif=False`` to get that behaviour.
* Multi-frame files (animated GIF, PNG, WebP; a TIFF of pages): the first frame, as PIL opens it and pyiqa scores
  it; ``info`` marks the image (:func:`first_frame_note` says so, and scoring warns). An ICO: its largest image, of
  the deepest colour of that size (PIL takes the lowest).
* The file's ICC profile stays in ``info["icc_profile"]``, as PIL reads it (a PNG decoded by Wuffs too, and a PNG's
  profile past PIL's 1 MiB limit, which PIL's decoder refuses, up to :data:`~.png.PROFILE_MAX`);
  :func:`rgb_profile` gives it when it describes RGB colour (``arniqa distort`` and ``gallery`` write it on).
* A TIFF whose first image is a reduced-resolution preview (NewSubfileType 1), as camera RAW files (DNG, NEF, ...)
  are, is an error (:data:`RAW_PREVIEW`), not scored as that preview; a folder walk passes it over.
* Never opened, whatever the file is named (a folder walk skips their extensions; a file or tar member
  of theirs is an error): EPS/PS, which Pillow renders by running the file's PostScript through
  Ghostscript, MPEG video, of which Pillow reads the frame size alone, and the formats Pillow only stubs
  (BUFR, GRIB, HDF5, WMF/EMF), whose pixels another package's handler or Windows would decode
  (:data:`REFUSED_FORMATS`). No byte of a file runs as code.
* Phone formats: HEIC/HEIF through pillow-heif, imported and registered as a Pillow opener the first
  time PIL cannot identify a file that holds an ISO media ``ftyp`` box (libheif applies the file's
  rotation and mirroring; pillow-heif then clears the EXIF orientation so it is not applied twice);
  without pillow-heif such a file is an error saying so. AVIF goes through Pillow's own plugin
  (Pillow >= 11.3 wheels; ``PIL.features.check("avif")``).

Errors are :class:`ImageError` (a ``ValueError``) naming the file: missing, directory, zero bytes,
not an image, a refused format, truncated or corrupt data, unsupported mode (floating-point ``F``, premultiplied
``La``), more pixels than ``max_pixels`` and PIL's decompression-bomb limit (twice
``PIL.Image.MAX_IMAGE_PIXELS``). The bound is checked where PIL checks sizes (``Image._decompression_bomb_check``,
which this module wraps): on the header, and on an image inside another (an ICO's or ICNS's PNG, a BLP's JPEG,
whose size the outer header does not tell), each before it is decoded. The check reads the bound of the decode
running in its own thread (a ``ContextVar``), no process-wide state, so decoding in threads keeps every bound;
an image within the bound gets no ``DecompressionBombWarning``, and PIL's other warnings while a file is decoded
here are not shown either (:data:`_QUIET`).

A PNG is read whole and decoded by Wuffs when it is plain, checked for image data that ends early or runs on, and
decoded again without its text chunks when PIL refuses them (:mod:`.png`); a TIFF's lost directory and a RAW
preview are told by :mod:`.tiff`. The decoded image as an array or a tensor: :mod:`.pixels`.
"""

from __future__ import annotations

import codecs
import errno
import io
import math
import os
import re
import stat
import struct
import threading
import warnings
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from PIL import __version__ as PILLOW_VERSION

from ..utils.files import cannot_read
from ..utils.messages import GET_AGAIN, file_line, with_fix
from .headers import accepts, all_bytes, bytes_at, takes
from .png import decode_plain_png, png_data_short, png_profile, without_text
from .tiff import tiff_directory_lost, tiff_preview

PathLike = str | os.PathLike

DEFAULT_MAX_PIXELS = 100_000_000  # scoring's bound (arniqa score --max-pixels): 300 MB of decoded RGB
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
UNSUPPORTED_MODES = frozenset({"F", "La"})

Image.init()  # every Pillow plugin registered, so the lists below are whole
# Formats never opened, whatever a file is named: for these Pillow's own code does not decode the pixels.
# EPS/PS is rendered by running the file's PostScript (a program) through Ghostscript; MPEG is video, of which
# Pillow reads the frame size alone (a camera's .MPG clips were error rows); the stub formats (BUFR, GRIB, HDF5,
# WMF/EMF) go to a handler that another package or Windows provides.
_REFUSED_WHY = {
    "EPS": "Pillow renders it by running the PostScript program in it through Ghostscript",
    "MPEG": "it is video, and Pillow reads its frame size, never its pixels",
}
REFUSED_FORMATS = {
    fmt: _REFUSED_WHY.get(fmt, "Pillow has no decoder of its own for it")
    for fmt, (factory, _) in Image.OPEN.items()
    if fmt in _REFUSED_WHY or (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))
}
# Extensions of the formats decoded (not Pillow's save-only ones, not the refused), lower case with the
# dot, and pillow-heif's.
HEIF_EXTENSIONS = frozenset({".heic", ".heics", ".heif", ".heifs", ".hif"})
IMAGE_EXTENSIONS = HEIF_EXTENSIONS | {
    ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and fmt not in REFUSED_FORMATS
}


class ImageError(ValueError):
    """A file that cannot be decoded to an RGB image; ``path`` says which, ``problem`` what is wrong and ``reason``
    that with what to do (``fix``, kept too), for a caller that has no advice of its own."""

    def __init__(self, path: PathLike | str, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem, self.fix = problem, fix
        self.reason = with_fix(problem, fix)
        super().__init__(file_line(self.path or repr(self.path), problem, fix))


EXPAND = "pass the images arniqa score takes from it: arniqa.inference.listing.iter_inputs([PATH]) lists them"
SAVE_AS = "save it as an 8- or 16-bit RGB or gray image"  # what to do with an image of a mode not scored


RAW_PREVIEW = (
    "its first image is a reduced-resolution preview (TIFF NewSubfileType 1), as in a camera RAW file (DNG, NEF, "
    "...), not the photo, which Pillow cannot decode; convert the photo to JPEG, PNG or TIFF to score it"
)


def is_image_file(path: PathLike) -> bool:
    """True when the file's extension, in any case, is one of :data:`IMAGE_EXTENSIONS` (the formats decoded, not
    the refused ones). The rule of the commands adds a decoder's look at the header (:func:`~.folders.is_image`)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def can_identify(path: PathLike) -> bool:
    """True when some decoder recognises the file's header (PIL reads the header only, whatever the name). No
    pixel is decoded: a bound of 0 stops PIL at its size check, which follows a recognised header (in an ICO, before
    its image is decoded); PIL's warnings are not shown (:func:`_quiet_pil_warnings`). A PNG is identified as
    :func:`_decode` decodes it: without its text chunks when PIL refuses them. A header no format can take
    (:func:`_may_identify`: a label, JSON, text) is answered without PIL's open."""
    try:
        if not _may_identify(bytes_at(path, size=PCD_HEAD)):
            return False
    except OSError:  # PIL's open says why (not an image either)
        pass
    bound = _BOUND.set(0)
    _quiet_pil_warnings()
    try:
        if _identifies(path):
            return True
        data = without_text(path, exif=False)
        return data is not None and _identifies(io.BytesIO(data))
    finally:
        _BOUND.reset(bound)


# What the formats registered without a header test (tried on any bytes) need in a file's first bytes to open it,
# read from the ``_open`` of Pillow 13's plugins: a header that none of them and no header test takes is no image,
# known without PIL's open. Under another Pillow, or for a format missing here, such a format is tried as before.
PILLOW_READ = "13."
PCD_HEAD = 2052  # the bytes the checks read: a PCD's "PCD_" lies at byte 2048
_MAY_OPEN = {
    "IM": lambda h: b"\n" in h[:100] and re.match(rb"\r*[A-Za-z][^:\n]*:", h) is not None,  # a "key: value" line
    "IMT": lambda h: b"\n" in h[:100] and (h[:1] == b"*" or re.match(rb"[a-z]* ", h) is not None),
    "IPTC": lambda h: h[:1] == b"\x1c",
    "PCD": lambda h: h[2048:PCD_HEAD] == b"PCD_",
    "SPIDER": lambda h: len(h) >= 108 and h[16:20] in (b"\x3f\x80\x00\x00", b"\x00\x00\x80\x3f"),  # iform 1.0
    "TGA": lambda h: len(h) >= 18 and h[1] in (0, 1) and h[16] in (1, 8, 16, 24, 32),
}
if not PILLOW_VERSION.startswith(PILLOW_READ):
    _MAY_OPEN = {}


def _may_identify(head: bytes) -> bool:
    """False when no decoded format can open a file that starts with ``head`` (its first :data:`PCD_HEAD` bytes,
    fewer where it ends): no header test takes its first 16 bytes, no format tried on any bytes finds what its
    ``_open`` needs (:data:`_MAY_OPEN`), and it is no ISO media file (HEIF: pillow-heif is registered on need)."""
    if head[4:8] == b"ftyp":
        return True
    prefix = head[:16]  # what PIL's open gives the header tests
    for fmt in _decoded_formats():
        accept = Image.OPEN[fmt][1]
        try:
            verdict = accept(prefix) if accept else _MAY_OPEN.get(fmt, lambda h: True)(head)
        except (SyntaxError, IndexError, TypeError, struct.error):  # PIL's open passes over the format too
            continue
        except Exception:  # PIL's open says what that means
            return True
        if verdict and not isinstance(verdict, str):  # a string is Pillow's warning, not a match
            return True
    return False


def _identifies(source) -> bool:
    try:
        with _open(source, "<image>"):
            return True
    except _OverBound:  # recognised: PIL stopped at its size check, before the checks _open makes after it
        try:
            return not tiff_preview(source, bytes_at(source))
        except OSError:
            return False
    except Exception:  # any other failure means: not an image we can open
        return False


def to_rgb(img: Image.Image, name: str = "<image>") -> Image.Image:
    """Convert a PIL image of any supported mode to 8-bit RGB (rules in the module docstring)."""
    if img.mode == "RGB":
        return img
    if img.mode in UNSUPPORTED_MODES:
        raise ImageError(name, f"unsupported image mode {img.mode}", SAVE_AS)
    if img.mode in SIXTEEN_BIT_MODES:
        v = np.asarray(img)
        if img.mode == "I" and v.size and not 0 <= v.min() <= v.max() <= 65535:  # 32-bit or signed integers
            raise ImageError(
                name,
                f"integer pixel values from {v.min()} to {v.max()}, outside the 16-bit range 0..65535 (mode I); "
                "save it as an 8- or 16-bit image",
            )
        return Image.fromarray(np.rint(v / 257.0).astype(np.uint8), "L").convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise ImageError(name, f"unsupported image mode {img.mode} ({e})", SAVE_AS) from e


def _jpeg_ends(source) -> bool:
    """Whether the JPEG ``source`` (a path or a BytesIO) holds an end-of-image marker (FF D9) after its first scan
    header. PIL decodes a JPEG whose scan runs into bytes that are no marker (zero bytes written over the file's end
    decode as image data; libjpeg: "Premature end of JPEG file") as whole; a file cut short fails in PIL already.
    Entropy-coded data holds no FF D9 (an FF there is followed by 00 or a restart marker), so the last FF D9 of a
    whole file lies after the scan header; the two last bytes answer for most files."""
    if hasattr(source, "getvalue"):
        data = source.getvalue()
    else:
        with open(source, "rb") as f:
            f.seek(-2, os.SEEK_END)
            if f.read(2) == b"\xff\xd9":
                return True
            f.seek(0)
            data = f.read()
    pos = 2  # after SOI: marker segments up to the first scan header (SOS, FF DA)
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            return data.rfind(b"\xff\xd9") > pos
        pos += 1 if marker == 0xFF else 2 if 0xD0 <= marker <= 0xD8 or marker == 0x01 else 2 + _u16(data, pos + 2)
    return True  # no scan header found by this walk: PIL decoded it, its decoder is the judge


def _u16(data: bytes, pos: int) -> int:
    return (data[pos] << 8) | data[pos + 1]


def rgb_profile(img: Image.Image) -> bytes | None:
    """The ICC profile ``img`` was decoded with when it describes RGB colour (its header's colour space), else
    None: a CMYK or gray profile does not describe the 8-bit RGB pixels decoded from such a file."""
    profile = img.info.get("icc_profile")
    return profile if isinstance(profile, bytes) and profile[16:20] == b"RGB " else None


def read_image(path: PathLike, exif: bool = True, draft: int | None = None) -> Image.Image:
    """``path`` as training, evaluation, the benchmarks, ``explain fit`` and the report's thumbnails read it:
    :func:`open_image` bounded by :data:`DEFAULT_MAX_PIXELS` (no option sets it: an image over it is to be
    downscaled). A 484 KB PNG of 12000x12000 pixels took 1.5 GB to evaluate (PIL refuses only past twice its own
    limit, 179 million). ``draft``: see :func:`open_image`."""
    return open_image(path, exif, DEFAULT_MAX_PIXELS, option=None, draft=draft)


def open_image(
    path: PathLike,
    exif: bool = True,
    max_pixels: int | None = None,
    option: str | None = "--max-pixels",
    draft: int | None = None,
) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB PIL image; raise :class:`ImageError` if it cannot, or
    if its header declares more than ``max_pixels`` pixels (None: PIL's limit only). ``option``: what sets
    the bound, named in that error (None: nothing does). ``draft``, for a thumbnail: a JPEG is decoded at the
    smallest of 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, :meth:`PIL.Image.Image.draft`) whose longer side
    is still at least ``draft`` pixels, several times faster; of a HEIC, the smallest thumbnail stored in it (a
    phone stores one) that is a scaled copy of the photo and at least that size is decoded instead (pillow-heif's
    ``draft``), if any; other formats are decoded whole. The bound is the whole image's."""
    if not os.fspath(path):  # Path("") is the current folder
        raise ImageError(path, "an empty path, naming no file; give the image file's path")
    p = Path(path)
    try:
        info = p.stat()
    except OSError as e:
        raise ImageError(p, *not_there(p, e)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(p, "is a directory, not an image file", "name an image file")
    if not stat.S_ISREG(info.st_mode):  # reading /dev/zero or a FIFO would never end
        raise ImageError(p, "not a regular file (a device, FIFO or socket), not an image file", "name an image file")
    if info.st_size == 0:
        raise ImageError(p, "empty file (0 bytes)", GET_AGAIN)
    if p.suffix.lower() == ".png":  # read whole: a plain PNG is decoded by Wuffs from the bytes
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ImageError(p, *cannot_read(e)) from None
        return decode_image(data, str(p), exif, max_pixels, option, draft)
    return _decode(p, str(p), exif, max_pixels, option, draft)


def decode_image(
    data: bytes,
    name: str,
    exif: bool = True,
    max_pixels: int | None = None,
    option: str | None = "--max-pixels",
    draft: int | None = None,
) -> Image.Image:
    """Decode an image file's bytes (e.g. a tar member) as :func:`open_image` decodes a file, errors
    naming ``name``."""
    if not data:
        raise ImageError(name, "empty file (0 bytes)", GET_AGAIN)
    if (image := decode_plain_png(data, max_pixels)) is not None:
        return image  # no EXIF or XMP: nothing to turn
    return _decode(io.BytesIO(data), name, exif, max_pixels, option, draft)


# The pixel bound of the decode running in this thread (None: none running). PIL checks the size of every image
# it opens, and of an image inside another (an ICO's or ICNS's PNG, a BLP's JPEG) before decoding it, by
# calling Image._decompression_bomb_check: that call is where the bound is checked, so its decision depends on
# no process-wide state (a hook on PIL's warning did: warnings' filters and hook are the whole process's).
_BOUND: ContextVar[float | None] = ContextVar("arniqa_pixel_bound", default=None)
_pil_size_check = Image._decompression_bomb_check


class _OverBound(Image.DecompressionBombError):
    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        super().__init__(f"{pixels} pixels, over the bound")


def _size_check(size: tuple[int, int], *args, **kwargs) -> None:
    """PIL's size check, outside :func:`_decode`; inside it, an image over the bound is refused, and one within
    it gets no warning, only PIL's error past twice its limit."""
    bound = _BOUND.get()
    if bound is None:
        return _pil_size_check(size, *args, **kwargs)
    pixels = max(1, size[0]) * max(1, size[1])
    if pixels > bound:
        raise _OverBound(pixels)
    if Image.MAX_IMAGE_PIXELS is not None and pixels > 2 * Image.MAX_IMAGE_PIXELS:
        _pil_size_check(size)  # raises PIL's error
    return None


Image._decompression_bomb_check = _size_check


class _Decoding:
    """The message pattern of :data:`_QUIET`: it matches every message while this thread decodes or identifies a
    file here (its ``_BOUND`` is set)."""

    def match(self, message: str) -> bool:
        return _BOUND.get() is not None


# PIL's warnings while a file is decoded here (an ICO's image not the size its directory says, a palette's
# transparency in bytes, a TIFF's or EXIF block's damaged tags) are not shown: they name no file, and a batch of
# 10,000 images would print them. Python's warning filters are the whole process's, and warnings.catch_warnings()
# around each decode is not thread-safe (threads restore each other's filters), so this one filter asks whether
# its own thread is decoding; PIL's warnings elsewhere are left alone.
_QUIET = ("ignore", _Decoding(), Warning, re.compile(r"PIL\."), 0)


_QUIET_LOCK = threading.Lock()


def _quiet_pil_warnings() -> None:
    """Put :data:`_QUIET` first among the warning filters (again, when a filter was put before it since, or a
    ``catch_warnings()`` block began without it)."""
    if warnings.filters[:1] == [_QUIET]:
        return
    with _QUIET_LOCK:  # one thread moves it at a time
        filters = warnings.filters
        if filters[:1] != [_QUIET]:
            if _QUIET in filters:
                filters.remove(_QUIET)
            filters.insert(0, _QUIET)


# The info key of a decoded image whose file holds several frames (an animation, pages), of which the first was
# decoded (:func:`first_frame_note`). MPO's further images are no frames: a camera's preview, a stereo pair's other
# view, a gain map.
ANIMATED = "arniqa_animated"
ANIMATED_KIND = "animated or multi-page, each scored on its first frame"  # its FileWarning's kind
STILL_FORMATS = ("MPO",)


def first_frame_note(image: Image.Image, name: str) -> str | None:
    """What to say of ``image``, decoded from the file ``name``, when that file holds several frames (an
    animated GIF, PNG or WebP, a TIFF of pages): only the first was decoded, as pyiqa and PIL read it; else None."""
    if image.info.get(ANIMATED):
        return f"{name}: an animated or multi-page image; its first frame is scored, the others are not"
    return None


def _deepest_icon(img: Image.Image) -> Image.Image:
    """The image of the ICO ``img`` at its largest size and, of the images of that size, the deepest colour. PIL
    opens the largest size at its lowest depth (a 48x48 icon of 4-, 8- and 32-bit images gave the 16-colour one)."""
    icons = img.ico.entry
    best = max(icons, key=lambda h: (h.square, h.color_depth))
    if best is icons[0]:
        return img
    return img.ico.getimage(best.dim, best.color_depth)


DRAFTED = ("JPEG", "MPO", "HEIF")  # the formats a decoder reduces on load (PIL's draft): JPEG 1/2, 1/4, 1/8; a HEIC's
# stored thumbnails


def _decode(
    source, name: str, exif: bool, max_pixels: int | None, option: str | None, draft: int | None
) -> Image.Image:
    over = f" ({option}); raise the bound to score it" if option else "; downscale it"
    bound = _BOUND.set(math.inf if max_pixels is None else max_pixels)
    _quiet_pil_warnings()
    try:
        with _open(source, name) as img:  # reads the header only (an ICO decodes its image, checked first)
            fmt = img.format
            frames = fmt not in STILL_FORMATS and getattr(img, "is_animated", False)  # before load: GIF seeks
            if fmt == "ICO":
                img = _deepest_icon(img)
            if draft and fmt in DRAFTED:  # the smallest scale leaving the longer side >= draft
                img.draft(None, (draft, 1) if img.width >= img.height else (1, draft))
            img.load()  # decode now: truncated data fails here, not later
            if fmt == "PNG" and (short := png_data_short(img, source)):
                raise ImageError(name, f"truncated or corrupt image data ({short})", GET_AGAIN)
            if fmt in ("JPEG", "MPO") and not _jpeg_ends(source):
                raise ImageError(
                    name,
                    "truncated or corrupt image data (no end marker after the image data; its end overwritten?)",
                    GET_AGAIN,
                )
            if exif:
                ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
            rgb = to_rgb(img, name)
            if frames:
                rgb.info[ANIMATED] = True
            return rgb
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(name, *_not_an_image(source)) from None
    except _OverBound as e:
        raise ImageError(name, f"image too large: {e.pixels} pixels, over the bound of {max_pixels}{over}") from None
    except Image.DecompressionBombError as e:  # past twice PIL's limit, within the bound: the bound is no help
        fix = "raise PIL.Image.MAX_IMAGE_PIXELS to score it" if max_pixels is not None and option else "downscale it"
        raise ImageError(name, f"image too large ({e})", fix) from None
    except (OSError, SyntaxError, EOFError, ValueError) as e:
        if (data := without_text(source, exif)) is not None:  # PIL refuses a text chunk or profile (over its limit)
            image = _decode(io.BytesIO(data), name, exif, max_pixels, option, draft)
            if "icc_profile" not in image.info and (profile := png_profile(all_bytes(source))) is not None:
                image.info["icc_profile"] = profile
            return image
        if "MAX_TEXT" in str(e):  # PngImagePlugin.MAX_TEXT_CHUNK or MAX_TEXT_MEMORY, in an EXIF or XMP chunk
            raise ImageError(
                name,
                f"an EXIF or XMP text chunk, which the orientation is read from, unpacks past Pillow's limit ({e}); "
                "save the image again without that metadata",
            ) from None
        if isinstance(e, OSError) and e.errno is not None:  # the system's, not the decoder's (it sets no errno)
            raise ImageError(name, *cannot_read(e)) from None
        raise ImageError(name, f"truncated or corrupt image data ({e})", GET_AGAIN) from None
    finally:
        _BOUND.reset(bound)


def not_there(path: PathLike, e: OSError, what: str = "file") -> tuple[str, str]:
    """The problem and the fix of ``path``, whose ``stat`` failed with ``e``: no such ``what``, a symbolic link to
    nothing or in a loop, or one the system will not read."""
    if e.errno == errno.ELOOP:
        return "a symbolic link loop (following it leads back to it)", "make the link point to the file, or remove it"
    if e.errno != errno.ENOENT:
        return cannot_read(e)
    if os.path.islink(path):
        return "a symbolic link to nothing (what it points to is not there)", "check where it points (ls -l)"
    return f"no such {what}", "check the path"


def _not_an_image(source) -> tuple[str, str]:
    """The problem and the fix of a file no decoder opens: one whose header a format's test takes (its data damaged),
    one holding text (a web page or an error message saved under an image's name), or another kind of file."""
    try:
        head = bytes_at(source, size=512)
    except OSError:
        head = b""
    if fmt := next((fmt for fmt in _decoded_formats() if takes(fmt, head[:16])), None):
        return f"truncated or corrupt image data (it starts as a {fmt} file, which Pillow cannot read)", GET_AGAIN
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at the end is no error
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\t\n\r" for c in text):
        return "a text file, not an image (a web page or an error message saved under an image's name?)", GET_AGAIN
    if head[257:262] == b"ustar":  # a tar header's magic (POSIX and GNU): a shard's bytes read as one file
        return "a tar archive, not an image file", EXPAND
    return "not an image file Pillow can read", "convert it to PNG or JPEG, or copy or download it again"


@cache
def _heif_opener() -> bool:
    """Register pillow-heif's Pillow opener (once); False when pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _open(source, name: str) -> Image.Image:
    """``Image.open`` limited to the formats Pillow decodes itself (``Image.ID`` less
    :data:`REFUSED_FORMATS`), registering the HEIF opener on first need: when PIL cannot identify a file
    that starts with an ISO media ``ftyp`` box (HEIC, HEIF)."""
    try:
        img = Image.open(source, formats=_decoded_formats())
    except UnidentifiedImageError:
        head = bytes_at(source)
        if refused := next((fmt for fmt in REFUSED_FORMATS if accepts(fmt, head)), None):
            raise ImageError(
                name,
                f"an image in the {refused} format, not read: {REFUSED_FORMATS[refused]}; convert it to PNG or JPEG",
            ) from None
        if lost := tiff_directory_lost(source, head):
            raise ImageError(name, f"truncated or corrupt image data ({lost})", GET_AGAIN) from None
        if head[4:8] != b"ftyp":
            raise
        first_try = _heif_opener.cache_info().currsize == 0
        if not _heif_opener():
            raise ImageError(name, "a HEIF/HEIC image, but pillow-heif is not installed; pip install pillow-heif")
        if not first_try:
            raise  # the opener was already there: not a file it reads either
    else:
        try:
            preview = img.format == "TIFF" and tiff_preview(source, bytes_at(source))
        except OSError:  # unreadable since PIL opened it: its decoding says so
            preview = False
        if preview:
            img.close()
            raise ImageError(name, RAW_PREVIEW)
        return img
    if hasattr(source, "seek"):
        source.seek(0)
    return Image.open(source, formats=_decoded_formats())


def _decoded_formats() -> list[str]:
    """Pillow's identification order, pillow-heif's opener included once registered, less the refused."""
    return [fmt for fmt in Image.ID if fmt not in REFUSED_FORMATS]
