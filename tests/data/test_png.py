"""The PNG reading beside PIL's decoder: plain RGB PNGs through Wuffs to PIL's pixels, image data that ends early
or runs on, text chunks and colour profiles past PIL's limits."""

import io
import struct
import zlib

import numpy as np
import pytest
from imaging import expect_error, noise, pattern, png_chunk, png_header_only
from PIL import Image, PngImagePlugin

from arniqa.data.images import ImageError, can_identify, decode_image, open_image

# ------------------------------------------------------------- plain RGB PNGs: Wuffs against PIL


def _pil_pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("options", [{}, {"compress_level": 1}, {"compress_level": 9, "optimize": True}])
def test_plain_png_goes_through_wuffs_to_pils_pixels(tmp_path, options):
    pytest.importorskip("pywuffs", reason="the fast-png extra (.ci/run installs it); a GPU host may lack it")
    from arniqa.data.png import decode_plain_png

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by a test")
    info.add_text("Title", "zipped", zip=True)
    smooth = np.kron(noise(12, 17, 1), np.ones((8, 8, 1), np.uint8))[:93, :131]  # Paeth/Sub/Up filters get used
    for k, pixels in enumerate([noise(37, 53), smooth, noise(1, 1)]):
        path = tmp_path / f"p{k}.png"
        Image.fromarray(pixels).save(path, pnginfo=info, dpi=(72, 72), **options)
        assert decode_plain_png(path.read_bytes()) is not None  # the fast path ran ...
        np.testing.assert_array_equal(np.asarray(open_image(path)), _pil_pixels(path))  # ... to PIL's pixels
        np.testing.assert_array_equal(np.asarray(open_image(path)), pixels)


def test_a_plain_png_keeps_its_icc_profile_as_pil_reads_it(tmp_path):
    """Wuffs decodes pixels alone: a Display-P3 or Adobe RGB PNG came back without its profile (PIL's decoder keeps
    it in info), so arniqa distort wrote the output untagged and viewers showed other colours."""
    pytest.importorskip("pywuffs", reason="the fast-png extra (.ci/run installs it); a GPU host may lack it")
    from PIL import ImageCms

    from arniqa.data.png import decode_plain_png

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "tagged.png"
    Image.fromarray(noise(9, 11)).save(path, icc_profile=profile)
    assert decode_plain_png(path.read_bytes()) is not None  # the fast path ran
    with Image.open(path) as img:
        assert img.info["icc_profile"] == profile  # PIL's reading, the reference
    assert open_image(path).info["icc_profile"] == profile
    Image.fromarray(noise(9, 11)).save(tmp_path / "plain.png")
    assert "icc_profile" not in open_image(tmp_path / "plain.png").info


def test_png_with_an_orientation_or_transparency_goes_through_pil(tmp_path):
    from arniqa.data.png import _plain_rgb_png, decode_plain_png

    a = pattern()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "exif.png", exif=exif)  # an eXIf chunk
    # XMP in an iTXt chunk, which PIL also reads an orientation from
    Image.fromarray(a).save(tmp_path / "plain.png")
    data = (tmp_path / "plain.png").read_bytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>'
    itxt = png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)
    (tmp_path / "xmp.png").write_bytes(data[:33] + itxt + data[33:])
    Image.fromarray(a).save(tmp_path / "trns.png", transparency=(220, 30, 30))
    for name, turns in (("exif", -1), ("xmp", 1), ("trns", 0)):
        path = tmp_path / f"{name}.png"
        assert not _plain_rgb_png(path.read_bytes()) and decode_plain_png(path.read_bytes()) is None, name
        np.testing.assert_array_equal(np.asarray(open_image(path)), np.rot90(a, turns), err_msg=name)
    assert _plain_rgb_png(data)


def test_corrupt_plain_png_is_an_error_not_noise(tmp_path):
    from arniqa.data.png import decode_plain_png

    Image.fromarray(noise(64, 64)).save(tmp_path / "good.png")
    data = bytearray((tmp_path / "good.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the image data: Wuffs' checksums catch it
    (tmp_path / "bad.png").write_bytes(data)
    assert decode_plain_png(bytes(data)) is None
    expect_error(tmp_path / "bad.png", "truncated or corrupt")


def _png_of(pixels: np.ndarray, colour: int, interlace: bool, missing: int = 0) -> bytes:
    """An 8-bit PNG of ``pixels`` (h, w, channels), Adam7-interlaced or not, every row unfiltered, its image data
    stream ending cleanly ``missing`` rows short of what the header declares."""
    import struct
    import zlib

    h, w = pixels.shape[:2]
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = [
        b"\0" + pixels[y, range(x0, w, dx)].tobytes()
        for x0, y0, dx, dy in (passes if interlace else [(0, 0, 1, 1)])
        if range(x0, w, dx)
        for y in range(y0, h, dy)
    ]
    stream = b"".join(rows[: len(rows) - missing])
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, int(interlace))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(stream))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("colour, channels", [(2, 3), (0, 1), (6, 4)])
@pytest.mark.parametrize("w, h", [(13, 10), (13, 9), (13, 1), (1, 1)])
def test_a_png_whose_image_data_ends_early_is_an_error_not_a_blank_image(tmp_path, interlace, colour, channels, w, h):
    """A PNG whose image data stream ended cleanly before its last row was decoded whole, the rest black (libpng:
    'Not enough image data'): ``arniqa score`` scored a blank image. Now it is truncated or corrupt image data, through
    Wuffs (which refuses it) and PIL, from a file or bytes; the whole stream still decodes, a black corner too."""
    pixels = np.full((h, w, channels), 200, np.uint8)
    pixels[-1, -1] = 0  # a black bottom-right pixel, where the missing rows' zeros would show
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if channels == 1 else pixels[..., :3]
    whole = _png_of(pixels, colour, interlace)
    (tmp_path / "whole.png").write_bytes(whole)
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "whole.png")), rgb)
    np.testing.assert_array_equal(np.asarray(decode_image(whole, "whole")), rgb)
    short = _png_of(pixels, colour, interlace, missing=1)  # the last row (Adam7: of its last pass) missing
    for name in ("short.png", "short.jpg"):  # read whole (the Wuffs path first), and by PIL from the file
        (tmp_path / name).write_bytes(short)
        expect_error(tmp_path / name, "truncated or corrupt image data (")
    with pytest.raises(ImageError, match="truncated or corrupt image data"):
        decode_image(short, "member.png")


def test_a_png_whose_end_was_overwritten_with_zero_bytes_is_an_error_not_black_rows(tmp_path):
    """A PNG whose second half was overwritten with zero bytes (a crash, a preallocated download), its length kept:
    in the image data's Huffman block (no stored block: the photo compresses) zero bits inflated to zero bytes, rows of
    black past the declared rows, which PIL decoded as the photo's bottom half. Now it is truncated or corrupt image
    data; so is a stream holding one row more than its header declares (libpng: 'Too much image data')."""
    photo = np.random.default_rng(0).normal(128, 40, (96, 128, 3)).clip(1, 255).astype(np.uint8)  # compressible
    Image.fromarray(photo).save(tmp_path / "whole.png")
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "whole.png")), photo)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "zeroed.png").write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    pil = Image.open(tmp_path / "zeroed.png")
    pil.load()  # what PIL alone gives: the whole size, the bottom rows black
    assert pil.size == (128, 96) and not np.asarray(pil)[-8:].any()
    expect_error(
        tmp_path / "zeroed.png", "truncated or corrupt image data (the image data runs on past the 36960"
    )  # 96 x (1 + 3 x 128)
    rows = [b"\0" + bytes([200] * 21)] * 3 + [b"\0" + bytes(21)] * 2  # 5 rows of 7 RGB pixels, the last 2 black
    header = struct.pack(">IIBBBBB", 7, 4, 8, 2, 0, 0, 0)  # declares 4 rows of 1 + 21 bytes: 88
    longer = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
    (tmp_path / "longer.png").write_bytes(longer + png_chunk(b"IEND", b""))
    expect_error(tmp_path / "longer.png", "runs on past the 88 bytes its header declares")


def test_a_png_header_with_one_row_of_data_is_an_error_and_a_black_jpeg_decodes(tmp_path):
    (tmp_path / "header.png").write_bytes(png_header_only(64, 48))
    expect_error(tmp_path / "header.png", "truncated or corrupt image data (the image data ends after 193 of the 9264")
    Image.new("RGB", (9, 7)).save(tmp_path / "black.jpg")
    assert not np.asarray(open_image(tmp_path / "black.jpg")).any()
    Image.new("RGB", (9, 7)).save(tmp_path / "black.png")
    assert np.asarray(open_image(tmp_path / "black.png")).shape == (7, 9, 3)


def test_png_bytes_and_the_pil_fallback_give_the_same_pixels(tmp_path, monkeypatch):
    """A PNG's bytes (a tar member) take the Wuffs path too; without pywuffs PIL decodes the same pixels."""
    import arniqa.data.images as images
    import arniqa.data.png as png

    pixels = noise(41, 29)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    data = (tmp_path / "p.png").read_bytes()
    np.testing.assert_array_equal(np.asarray(images.decode_image(data, "member.png")), pixels)
    monkeypatch.setattr(png, "ImageDecoder", None)  # as on a platform without pywuffs
    assert png.decode_plain_png(data) is None
    np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / "p.png")), pixels)
    np.testing.assert_array_equal(np.asarray(images.decode_image(data, "member.png")), pixels)


def _with_text(data: bytes, *chunks: bytes) -> bytes:
    """The PNG ``data`` with ``chunks`` put after its IHDR (where PIL reads them on opening)."""
    return data[:33] + b"".join(chunks) + data[33:]


def _ztxt(keyword: bytes, size: int) -> bytes:
    """A zTXt chunk whose text unpacks to ``size`` zero bytes (compressed a MiB at a time)."""
    import zlib

    z = zlib.compressobj(9)
    packed = b"".join(z.compress(bytes(min(1 << 20, size - i))) for i in range(0, size, 1 << 20)) + z.flush()
    return png_chunk(b"zTXt", keyword + b"\0\0" + packed)


def test_a_png_text_chunk_over_pils_limit_is_passed_over_cheaply(tmp_path):
    """An L-mode PNG whose text unpacked past PIL's 1 MB limit was 'truncated or corrupt image data' (the same
    pixels in RGB went through Wuffs, which reads no text, and scored)."""
    import tracemalloc

    a = pattern()[..., 0]
    buf = io.BytesIO()
    Image.fromarray(a, "L").save(buf, "PNG")
    big = _with_text(buf.getvalue(), _ztxt(b"comment", 2 << 20))
    (tmp_path / "big.png").write_bytes(big)
    (tmp_path / "big.img").write_bytes(big)  # a PNG by another name: PIL reads it from the path
    assert can_identify(tmp_path / "big.img")  # a folder walk keeps it
    expected = np.repeat(a[..., None], 3, axis=2)  # grey replicated into R, G and B
    for got in (open_image(tmp_path / "big.png"), open_image(tmp_path / "big.img"), decode_image(big, "big")):
        np.testing.assert_array_equal(np.asarray(got), expected)
    # a text bomb: 256 MiB of text in a 256 KB chunk; decoded without ever being unpacked
    bomb = _with_text(buf.getvalue(), _ztxt(b"comment", 256 << 20))
    tracemalloc.start()
    try:
        np.testing.assert_array_equal(np.asarray(decode_image(bomb, "bomb")), expected)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # PIL unpacks at most its 1 MB limit


def test_a_png_text_chunk_an_orientation_is_read_from_is_kept_and_over_pils_limit_named(tmp_path):
    a = pattern()
    buf = io.BytesIO()
    Image.fromarray(a).convert("RGBA").save(buf, "PNG")  # through PIL, not Wuffs
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>'
    small_xmp = png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)
    turned = _with_text(buf.getvalue(), _ztxt(b"comment", 2 << 20), small_xmp)
    (tmp_path / "turned.png").write_bytes(turned)
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "turned.png")), np.rot90(a, 1))
    big_xmp = _with_text(buf.getvalue(), _ztxt(b"XML:com.adobe.xmp", 2 << 20))
    said = r"an EXIF or XMP text chunk, which the orientation is read from, unpacks past Pillow's limit \(.*MAX_TEXT"
    with pytest.raises(ImageError, match=said + r"_CHUNK\); save the image again without that metadata$"):
        decode_image(big_xmp, "x.png")
    np.testing.assert_array_equal(np.asarray(decode_image(big_xmp, "x.png", exif=False)), a)  # none read: dropped


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_png_colour_profile_past_pils_limit_is_read_and_the_image_decoded(tmp_path, mode):
    """A PNG whose ICC profile unpacks past PIL's 1 MiB limit (PNG allows it, PIL writes it) lost its profile
    (an RGB one, through Wuffs) or was an error naming an 'EXIF or XMP text chunk' (RGBA, through PIL)."""
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    big = srgb + bytes(range(256)) * (5 << 12)  # 5 MiB more
    a = pattern()
    path = tmp_path / "big.png"
    Image.fromarray(a).convert(mode).save(path, icc_profile=big)
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):  # PIL's decoder refuses it
        Image.open(path).load()
    for got in (open_image(path), decode_image(path.read_bytes(), "big.png")):
        np.testing.assert_array_equal(np.asarray(got), a)
        assert got.info["icc_profile"] == big
    assert can_identify(path)


def test_a_png_colour_profile_bomb_is_not_unpacked_past_the_bound(tmp_path):
    import tracemalloc

    from arniqa.data.png import PROFILE_MAX

    assert PROFILE_MAX == 255 * (65533 - 14)  # JPEG: 255 APP2 segments of 65,533 bytes, 14 of them a header
    a = pattern()
    path = tmp_path / "bomb.png"
    Image.fromarray(a).convert("RGBA").save(path, icc_profile=bytes(256 << 20))  # 256 MiB in a 256 KB chunk
    tracemalloc.start()
    try:
        got = open_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(np.asarray(got), a)
    assert "icc_profile" not in got.info and peak < 3 * PROFILE_MAX, peak
