"""Decoding every image mode to RGB, EXIF orientation, and per-file errors."""

import ast
import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import zlib

import numpy as np
import pytest
import torch
from imaging import (
    POSTSCRIPT,
    as_hwc,
    expect_error,
    fake_ghostscript,
    noise,
    pattern,
    png_chunk,
    png_header_only,
    write_phone_photos,
)
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin

from arniqa.data import images
from arniqa.data.folders import is_image
from arniqa.data.images import (
    ImageError,
    can_identify,
    decode_image,
    is_image_file,
    open_image,
)
from arniqa.data.pixels import load_image


def test_grayscale_is_replicated(tmp_path):
    g = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = as_hwc(load_image(str(tmp_path / "g.png")))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g / np.float32(255))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_dropped_not_composited(tmp_path, mode):
    a = pattern()
    alpha = np.zeros(a.shape[:2], np.uint8)
    alpha[:, ::2] = 255  # half the pixels fully transparent
    if mode == "RGBA":
        Image.fromarray(np.dstack([a, alpha]), "RGBA").save(tmp_path / "a.png")
        expected = a
    else:
        gray = a[..., 0]
        Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "a.png")
        expected = np.repeat(gray[..., None], 3, axis=2)
    assert Image.open(tmp_path / "a.png").mode == mode
    np.testing.assert_array_equal(as_hwc(load_image(tmp_path / "a.png")), expected / np.float32(255))


def test_palette_maps_to_palette_colours(tmp_path):
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
    idx = (np.arange(12 * 16).reshape(12, 16) % 4).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([v for rgb in palette for v in rgb])
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    expected = np.array(palette, np.float32)[idx] / 255
    np.testing.assert_array_equal(as_hwc(load_image(tmp_path / "p.png")), expected)


def test_16bit_gray_is_scaled_not_clipped(tmp_path):
    v = np.array([[0, 257, 1000, 30000], [32896, 40000, 65280, 65535]], np.uint16)
    Image.fromarray(v).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    expected8 = np.array([[0, 1, 4, 117], [128, 156, 254, 255]], np.float32)  # round(v / 257) by hand
    out = as_hwc(load_image(tmp_path / "d.png"))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected8 / 255)


def test_cmyk_jpeg_matches_pil_convert(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:8] = (0, 0, 0, 0)  # white
    cmyk[8:] = (0, 255, 255, 0)  # red
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=100)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = as_hwc(load_image(tmp_path / "c.jpg"))
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB")) / np.float32(255))
    np.testing.assert_allclose(out[2, 2], [1, 1, 1], atol=3 / 255)
    np.testing.assert_allclose(out[13, 13], [1, 0, 0], atol=3 / 255)


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, -1), (8, 1)])  # k: np.rot90 turns (counter-clockwise)
def test_exif_orientation_is_applied(tmp_path, orientation, k):
    a = pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "r.jpg", quality=100, subsampling=0, exif=exif)
    stored = load_image(tmp_path / "r.jpg", exif=False)  # the pixel grid as stored (the reference's view)
    shown = load_image(tmp_path / "r.jpg")
    np.testing.assert_array_equal(as_hwc(shown), np.rot90(as_hwc(stored), k))
    # and the upright image is the pattern turned the documented way, up to JPEG error
    np.testing.assert_allclose(as_hwc(shown), np.rot90(a, k) / 255, atol=0.05)


def test_exif_no_tag_is_unchanged(tmp_path):
    a = pattern()
    Image.fromarray(a).save(tmp_path / "n.jpg", quality=95)
    assert torch.equal(load_image(tmp_path / "n.jpg"), load_image(tmp_path / "n.jpg", exif=False))


def test_errors_name_the_file(tmp_path):
    expect_error(tmp_path / "missing.png", "no such file")
    (tmp_path / "empty.jpg").write_bytes(b"")
    expect_error(tmp_path / "empty.jpg", "0 bytes")
    (tmp_path / "notes.png").write_text("this is not an image\n")
    expect_error(tmp_path / "notes.png", "not an image")
    (tmp_path / "dir.png").mkdir()
    expect_error(tmp_path / "dir.png", "directory")
    os.mkfifo(tmp_path / "pipe.png")  # reading it would wait for a writer forever
    expect_error(tmp_path / "pipe.png", "not a regular file (a device, FIFO or socket)")
    expect_error("/dev/zero", "not a regular file")  # reading it would never end


def test_a_bad_file_is_one_line_saying_what_is_wrong_and_what_to_do(tmp_path, monkeypatch):
    """A text file or a saved error page named .jpg, an unknown binary, an empty file and a cut-off JPEG said 'not an
    image file PIL can read', 'empty file (0 bytes)' or 'truncated or corrupt image data (...)' and nothing on what
    to do, and a JPEG the system would not read was 'truncated or corrupt'. Each is now one line with the problem and
    what to do, read from a file and (all but the unreadable one) from its bytes, as a tar member is."""
    Image.fromarray(pattern()).save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    cases = {
        "notes.jpg": (b"shot list\n\tday 1: harbour\r\n", "a text file, not an image", "copy or download it again"),
        "page.jpg": (b"<!DOCTYPE html><html><title>404 Not Found</title></html>", "a text file, not an image", "copy"),
        "blob.jpg": (bytes(range(256)) * 4, "not an image file Pillow can read", "convert it to PNG or JPEG"),
        "sig.png": (b"\x89PNG\r\n\x1a\n not really", "truncated or corrupt image data (it starts as a PNG", "copy"),
        "cut.jpg": (whole[: len(whole) // 2], "truncated or corrupt image data (", "copy or download it again"),
        "empty.jpg": (b"", "empty file (0 bytes)", "copy or download it again"),
    }
    for name, (data, problem, fix) in cases.items():
        (tmp_path / name).write_bytes(data)
        for source in (lambda: open_image(tmp_path / name), lambda: decode_image(data, name)):
            with pytest.raises(ImageError) as e:
                source()
            reason = e.value.reason
            assert reason.startswith(problem) and "; " in reason and fix in reason.rsplit("; ", 1)[1], reason
            assert "\n" not in str(e.value)
    real_open = open

    def refused(file, *args, **kwargs):  # root reads a chmod 000 file, so the refusal is made here
        if str(file).endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    (tmp_path / "locked.jpg").write_bytes(whole)
    monkeypatch.setattr("builtins.open", refused)
    with pytest.raises(ImageError) as e:
        open_image(tmp_path / "locked.jpg")
    assert e.value.reason == "cannot read file (Permission denied); check its permissions"


@pytest.mark.parametrize("form", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_tar_shard_read_as_one_file_says_so(tmp_path, form):
    """A tar shard's bytes scored as one image (Ray Data's read_binary_files over a folder of shards, a shard named
    .jpg) said 'not an image file Pillow can read; convert it to PNG or JPEG': it says it is a tar archive now, and
    how its images are scored."""
    Image.fromarray(pattern()).save(tmp_path / "a.jpg")
    with tarfile.open(tmp_path / "shard.jpg", "w", format=form) as tar:
        tar.add(tmp_path / "a.jpg", "0000.jpg")
    data = (tmp_path / "shard.jpg").read_bytes()
    for source in (lambda: open_image(tmp_path / "shard.jpg"), lambda: decode_image(data, "shard.tar")):
        with pytest.raises(ImageError) as e:
            source()
        assert e.value.reason == (
            "a tar archive, not an image file; pass the images arniqa score takes from it: "
            "arniqa.inference.listing.iter_inputs([PATH]) lists them"
        )
    assert tarfile.open(fileobj=io.BytesIO(data)).getnames() == ["0000.jpg"]


def test_an_image_past_pils_limit_says_to_raise_pils_limit_not_the_bound(tmp_path, monkeypatch):
    """An image past twice PIL's limit and within a bound (the Python API's ``max_pixels``) said 'raise the bound
    (--max-pixels) to score it', which changes nothing; it now names the limit that refuses it, and raising that
    limit scores it."""
    Image.fromarray(np.kron(pattern(), np.ones((2, 2, 1), np.uint8))).save(tmp_path / "big.png")  # 96x64
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses past 2000 pixels
    for bound in (10_000, 10**7):
        with pytest.raises(ImageError) as e:
            open_image(tmp_path / "big.png", max_pixels=bound)
        assert e.value.reason.endswith("; raise PIL.Image.MAX_IMAGE_PIXELS to score it"), e.value.reason
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 64)
    assert open_image(tmp_path / "big.png", max_pixels=10_000).size == (96, 64)


@pytest.mark.parametrize("name", ["scan.eps", "photo.jpg", "photo.png", "photo.tif"])
def test_postscript_is_refused_and_never_run_whatever_its_name(tmp_path, monkeypatch, name):
    """Pillow would run an EPS file's PostScript through Ghostscript (here a stand-in leaving a marker):
    as a file, a tar member's bytes or a header check, it is one error and Ghostscript never runs."""
    marker = fake_ghostscript(monkeypatch, tmp_path)
    path = tmp_path / name
    path.write_bytes(POSTSCRIPT)
    with pytest.raises(Exception), Image.open(path) as unsafe:  # the oracle: unrestricted Pillow runs it
        unsafe.load()
    assert marker.exists()
    marker.unlink()
    expect_error(path, "an image in the EPS format, not read: Pillow renders it by running the PostScript")
    with pytest.raises(ImageError, match="member.jpg: an image in the EPS format, not read.*convert it to PNG"):
        decode_image(POSTSCRIPT, "member.jpg")
    assert not can_identify(path)
    assert not marker.exists()


def test_formats_pillow_only_stubs_are_refused(tmp_path):
    (tmp_path / "drawing.jpg").write_bytes(b"\xd7\xcd\xc6\x9a\x00\x00" + bytes(40))  # a placeable WMF header
    expect_error(tmp_path / "drawing.jpg", "an image in the WMF format, not read: Pillow has no decoder of its own")


def test_mpeg_video_is_refused_and_passed_over_by_a_folder_walk(tmp_path):
    """Pillow registers .mpg and .mpeg for MPEG video and reads its frame size alone, no pixels: a library's camera
    clips (.MPG) were listed as images and each was an error row (exit 1) where .mp4 and .mov clips were passed over.
    Now MPEG is refused as the stub formats are: a folder walk passes the clips over, one named is an error row."""
    sequence = b"\x00\x00\x01\xb3" + bytes([0x16, 0x00, 0xF0, 0x13]) + bytes(200)  # 352x240, MPEG-1 header
    program = b"\x00\x00\x01\xba\x44" + bytes(200)  # a program stream's pack header: what cameras write
    (tmp_path / "es.mpeg").write_bytes(sequence)
    (tmp_path / "MVI_0001.MPG").write_bytes(program)
    assert Image.open(tmp_path / "es.mpeg").size == (352, 240)  # the premise: PIL identifies it
    assert not any(map(is_image, [tmp_path / "es.mpeg", tmp_path / "MVI_0001.MPG"]))
    assert not is_image_file("x.mpg") and not is_image_file("x.MPEG")
    (tmp_path / "frame.jpg").write_bytes(sequence)
    expect_error(tmp_path / "frame.jpg", "an image in the MPEG format, not read: it is video")


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_truncated_file_is_an_error(tmp_path, fmt):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"full.{fmt}")
    data = (tmp_path / f"full.{fmt}").read_bytes()
    (tmp_path / f"cut.{fmt}").write_bytes(data[: len(data) // 2])
    expect_error(tmp_path / f"cut.{fmt}", "truncated")


def test_float_mode_is_unsupported(tmp_path):
    Image.fromarray(np.ones((8, 8), np.float32), "F").save(tmp_path / "f.tif")
    expect_error(tmp_path / "f.tif", "unsupported image mode F; save it as an 8- or 16-bit RGB or gray image")


def test_a_folder_a_fifo_and_a_mode_pillow_cannot_convert_say_what_to_do(tmp_path):
    """'is a directory, not an image file', 'not a regular file (...), not an image file' and 'unsupported image mode
    X (...)' (a mode PIL holds but cannot convert to RGB) ended there, saying nothing on what to do."""
    (tmp_path / "dir.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    expect_error(tmp_path / "dir.png", "is a directory, not an image file; name an image file")
    expect_error(tmp_path / "pipe.png", "not a regular file (a device, FIFO or socket), not an image file; name an")

    class Unconvertible:  # what PIL gives for such a mode: its ValueError
        mode = "I;16S"

        def convert(self, mode):
            raise ValueError("conversion from I;16S to RGB not supported")

    with pytest.raises(ImageError) as e:
        images.to_rgb(Unconvertible(), "s.tif")
    assert str(e.value) == (
        "s.tif: unsupported image mode I;16S (conversion from I;16S to RGB not supported); save it as an 8- or 16-bit "
        "RGB or gray image"
    )


def test_open_image_gives_rgb_and_extensions():
    assert is_image_file("a/b/C.JPG") and is_image_file("x.png") and is_image_file("x.webp")
    assert not is_image_file("x.txt") and not is_image_file("x.pdf")  # pdf is save-only in PIL
    assert not any(map(is_image_file, ["x.eps", "x.PS", "x.wmf", "x.emf", "x.h5", "x.grib", "x.bufr"]))  # refused


def test_phone_photos_decode_to_their_pixels(tmp_path):
    """HEIC and AVIF, through pillow-heif and Pillow's plugin."""
    phones = write_phone_photos(tmp_path / "phones")
    assert all(np.array_equal(np.asarray(open_image(path)), pixels) for path, pixels in phones.items())


def test_open_image_returns_rgb(tmp_path):
    Image.fromarray(np.zeros((5, 7), np.uint8), "L").save(tmp_path / "g.bmp")
    img = open_image(tmp_path / "g.bmp")
    assert img.mode == "RGB" and img.size == (7, 5)


def test_a_jpeg_whose_end_was_overwritten_with_zero_bytes_is_an_error_and_a_trailer_is_kept(tmp_path):
    """A baseline JPEG whose second half was overwritten with zero bytes, its length kept: the zero bytes decoded as
    image data (no FF D9 end marker ever came) and PIL gave a whole image, its bottom half garbage, which ``arniqa
    score`` scored. Now it is truncated or corrupt image data, from a file and as bytes (a tar member), also when an
    EXIF thumbnail (its own FF D9, before the scan) precedes it. Bytes after the end marker (a camera's trailer) and
    a whole file still decode to PIL's pixels."""
    photo = np.random.default_rng(0).normal(128, 40, (96, 128, 3)).clip(1, 255).astype(np.uint8)
    thumb = io.BytesIO()
    Image.fromarray(photo[:8, :8]).save(thumb, "JPEG")
    for kind, extra in (("plain", {}), ("thumb", {"exif": _exif_with_thumbnail(thumb.getvalue())})):
        Image.fromarray(photo).save(tmp_path / f"{kind}.jpg", quality=90, **extra)
        data = (tmp_path / f"{kind}.jpg").read_bytes()
        assert data.endswith(b"\xff\xd9") and (kind == "plain") == (data.count(b"\xff\xd9") == 1)
        zeroed = data[: len(data) // 2] + bytes(len(data) - len(data) // 2)
        (tmp_path / f"{kind}-zeroed.jpg").write_bytes(zeroed)
        assert Image.open(tmp_path / f"{kind}-zeroed.jpg").convert("RGB").size == (128, 96)  # PIL alone: decoded
        expect_error(tmp_path / f"{kind}-zeroed.jpg", "truncated or corrupt image data (no end marker after")
        with pytest.raises(ImageError, match="no end marker"):
            decode_image(zeroed, "member.jpg")
        (tmp_path / f"{kind}-trailer.jpg").write_bytes(data + bytes(100) + b"trailer")
        pil = np.asarray(Image.open(tmp_path / f"{kind}.jpg").convert("RGB"))
        np.testing.assert_array_equal(np.asarray(open_image(tmp_path / f"{kind}-trailer.jpg", exif=False)), pil)
        np.testing.assert_array_equal(np.asarray(decode_image(data, "member.jpg", exif=False)), pil)


def _exif_with_thumbnail(jpeg: bytes) -> bytes:
    """A little-endian EXIF block whose IFD1 holds ``jpeg`` as its thumbnail (JPEGInterchangeFormat and its
    length, tags 0x0201 and 0x0202)."""
    ifd0 = struct.pack("<H", 0) + struct.pack("<I", 8 + 6)  # no entries; IFD1 follows it
    ifd1_at = 8 + len(ifd0)
    data_at = ifd1_at + 2 + 2 * 12 + 4
    ifd1 = (
        struct.pack("<H", 2)
        + struct.pack("<HHII", 0x0201, 4, 1, data_at)
        + struct.pack("<HHII", 0x0202, 4, 1, len(jpeg))
    )
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd0 + ifd1 + struct.pack("<I", 0) + jpeg


def test_pillow_heif_is_imported_only_for_a_heif_file(tmp_path):
    """Importing the decoder and opening other images leaves pillow-heif unimported (a GPU host may lack
    it); the first HEIC file imports it and decodes; without it, the error names the missing package."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    Image.new("RGB", (40, 24), (200, 30, 60)).save(tmp_path / "phone.heic", quality=95)
    Image.new("RGB", (40, 24), (200, 30, 60)).save(tmp_path / "plain.png")
    script = (
        "import sys\n"
        "from arniqa.data.images import ImageError, open_image\n"
        "open_image(sys.argv[1] + '/plain.png')\n"
        "print('pillow_heif' in sys.modules)\n"
        "try:\n"
        "    print(open_image(sys.argv[1] + '/phone.heic').getpixel((20, 12)))\n"
        "except ImageError as e:\n"
        "    print(e)\n"
    )

    def run(*pre):
        command = [sys.executable, "-c", "".join(pre) + script, str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()

    before, pixel = run()
    assert before == "False"
    assert all(abs(a - b) <= 8 for a, b in zip(ast.literal_eval(pixel), (200, 30, 60)))  # a lossy copy of the colour
    _, error = run("import sys; sys.modules['pillow_heif'] = None\n")  # import pillow_heif now fails
    assert error.endswith("phone.heic: a HEIF/HEIC image, but pillow-heif is not installed; pip install pillow-heif")


def _reader(name):
    """What reads an image for training, evaluation (and ablation), the benchmarks and explain fit."""
    from arniqa.data.pristine import PristinePairs
    from arniqa.data.synthetic import prepare
    from arniqa.evaluate.features import FeatureProtocol

    return {
        "train": lambda path: PristinePairs([path, path], crop_size=16)[0],
        "evaluate": lambda path: FeatureProtocol(crop_size=16).views(path),
        "benchmark, explain fit": lambda path: prepare(path, (32, 24)),
    }[name]


def _holding(fmt, w, h):
    """An ICO, ICNS or BLP file whose header declares a small image (16x16, 128x128, 16x16) and which holds a
    w x h PNG (in the BLP a JPEG) in its place."""
    import io
    import struct

    inner = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(inner, "JPEG" if fmt == "blp" else "PNG")
    data = inner.getvalue()
    if fmt == "ico":  # a directory of one 16x16 entry, at byte 22
        return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(data), 22) + data
    if fmt == "icns":  # one 128x128 entry (ic07)
        return b"icns" + struct.pack(">I", 16 + len(data)) + b"ic07" + struct.pack(">I", 8 + len(data)) + data
    # BLP1, JPEG-compressed, 16x16: the first of its 16 mipmap offsets and lengths is the JPEG at byte 160
    header = b"BLP1" + struct.pack("<iIIIiI", 0, 0, 16, 16, 0, 0)
    return header + struct.pack("<16I", 160, *[0] * 15) + struct.pack("<16I", len(data), *[0] * 15) + bytes(4) + data


def _count_decodes(monkeypatch, *kinds):
    """The sizes of the images of these PIL classes decoded from now on (a list that grows)."""
    decoded = []
    for kind in kinds:
        monkeypatch.setattr(kind, "load", lambda self, load=kind.load: decoded.append(self.size) or load(self))
    return decoded


@pytest.mark.parametrize("reader", ["train", "evaluate", "benchmark, explain fit"])
def test_every_reader_refuses_an_image_over_the_bound_before_decoding(tmp_path, monkeypatch, reader):
    """Only `arniqa score` had a bound: the others opened images with PIL's limit alone, which refuses past twice
    its own (179 million pixels): a 484 KB PNG of 12000x12000 took 1.5 GB to evaluate, exit 0. Now they keep
    DEFAULT_MAX_PIXELS (100 million), checked on the header; no option sets it, so the error says downscale it."""
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    big.write_bytes(png_header_only(10_001, 10_000))  # 100,010,000 pixels in 100 bytes
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)).save(small)
    decoded = _count_decodes(monkeypatch, PngImagePlugin.PngImageFile)
    with pytest.raises(ImageError) as caught:
        _reader(reader)(big)
    assert str(caught.value) == f"{big}: image too large: 100010000 pixels, over the bound of 100000000; downscale it"
    assert decoded == []
    _reader(reader)(small)  # within it: read


def test_a_bound_above_pils_limit_still_stops_the_png_inside_an_icon_before_decoding(tmp_path, monkeypatch):
    """PIL warns before decoding an image over its own limit; the warning stopped an image only when PIL's limit
    was at least the bound (`arniqa score` sets it so). Above it, an ICO declaring 16x16 and holding a 3000x3000
    PNG had its PNG decoded and was returned whole (the 16x16 header passed the bound)."""
    icon = tmp_path / "icon.ico"
    icon.write_bytes(_holding("ico", 3000, 3000))
    decoded = _count_decodes(monkeypatch, PngImagePlugin.PngImageFile)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000_000)  # below the bound: PIL warns past 5 million
    with pytest.raises(ImageError, match=r"icon.ico: image too large: 9000000 pixels, over the bound of 6000000 "):
        open_image(icon, max_pixels=6_000_000)
    assert decoded == []
    assert open_image(icon, max_pixels=9_000_000).size == (3000, 3000) and decoded == [(3000, 3000)]  # within it


def test_the_bound_holds_while_other_threads_decode_and_identify_images(tmp_path, monkeypatch):
    """`arniqa score` decodes in threads while its folder walk identifies files; the Python API may decode
    without a bound in another thread. The PNG inside an ICO was stopped by a hook on PIL's warning, set with
    `warnings.catch_warnings()`, whose filters and hook are the whole process's: another thread's context
    ignored the warning, or restored the filters and hook while this one decoded, and the PNG was decoded (then
    refused by its size). Here a 1200x1200 PNG, over the bound of 1 million and within PIL's error past twice its
    limit (set to the bound, as score does), is never decoded, and the ordinary images decode to their pixels."""
    import threading

    bomb = _holding("ico", 1200, 1200)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.kron(pattern(), np.ones((8, 8, 1), np.uint8))).save(photo)  # 256x384: decoding takes a while
    with Image.open(photo) as reference:
        pixels = np.asarray(reference.convert("RGB"))
    decoded = _count_decodes(monkeypatch, PngImagePlugin.PngImageFile)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often
    wrong = []

    def bombs():
        for _ in range(3000):
            try:
                decode_image(bomb, "bomb.ico", max_pixels=1_000_000)
                wrong.append("bomb returned")
            except ImageError as e:
                wrong.extend([] if "over the bound of 1000000" in e.reason else [e.reason])
            if decoded:
                return

    def ordinary(bound):
        for _ in range(150):
            if not np.array_equal(np.asarray(open_image(photo, max_pixels=bound)), pixels):
                wrong.append("pixels")
            can_identify(photo)
            if decoded:
                return

    workers = [threading.Thread(target=ordinary, args=(bound,)) for bound in (None, 1_000_000, None)]
    workers.append(threading.Thread(target=bombs))
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert decoded == [] and wrong == []


def test_pils_warnings_while_decoding_are_not_shown_in_any_thread_and_left_alone_elsewhere():
    """An ICO whose directory says 16x16 and which holds a 40x40 PNG (within the bound): PIL's 'Image was not the
    expected size' reached the console of `arniqa score` as a warning line naming no file. Decoded in 4 threads,
    it now shows nothing and decodes to the PNG's pixels; PIL opening it outside arniqa still warns."""
    import threading
    import warnings

    icon = _holding("ico", 40, 40)
    sizes = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # put before every other filter, as a user's or -W's would be
        threads = [
            threading.Thread(target=lambda: sizes.extend(decode_image(icon, "x.ico").size for _ in range(20)))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [str(w.message) for w in shown] == [] and sizes == [(40, 40)] * 80
        with Image.open(io.BytesIO(icon)) as outside:
            assert outside.size == (40, 40)
        assert [str(w.message) for w in shown] == ["Image was not the expected size"]


def _written_formats() -> dict[str, bytes]:
    """An 8x8 image in each format this Pillow writes (in the first mode it takes of RGB, L, 1, F)."""
    written = {}
    for fmt in Image.SAVE:
        for mode in ("RGB", "L", "1", "F"):
            buf = io.BytesIO()
            try:
                Image.new(mode, (8, 8), 1).save(buf, fmt)
            except Exception:
                continue
            written[fmt] = buf.getvalue()
            break
    return written


def test_the_quick_no_answers_as_pils_open_does(monkeypatch):
    """Listing a WebDataset shard gave each label member (.cls, .json) to PIL's open, which tries every format
    registered without a header test (35 us a member, 3x the listing by extension); a header that no header test
    and none of those formats' needs take is now no image at once. Its answers are PIL's: can_identify against
    itself with the quick answer taken out (the reference), on every format Pillow writes and each cut short,
    the formats tried on any bytes (their files and near misses), refused formats, HEIF/AVIF heads, text, JSON,
    random bytes."""
    written = _written_formats()
    assert {"IM", "SPIDER", "PNG", "JPEG", "TIFF"} <= written.keys()
    heads = [bytes(4) + b"ftyp" + brand + bytes(12) for brand in (b"heic", b"mif1", b"avif")]
    texts = [b"3\n", b"7", b"a tench held by an angler", b"Image type: L image\n", b"width 8\nheight 8\n", b"* note\n"]
    texts += [json.dumps({"key": "n01440764_10026", "label": 3, "caption": "a fish"}).encode(), b"\x1c\x02\x00"]
    imt = b"width 8\nheight 8\npixel n8\n\x0c" + bytes(64)  # a file Pillow's IMT plugin opens
    pcd = bytes(2048) + b"PCD_" + bytes(4000)  # Kodak Photo CD: its header at byte 2048
    iptc = b"".join(  # an 8x8 gray IPTC/NAA image: fields 0x1c, record, tag, size, data
        bytes([0x1C, rec, tag]) + struct.pack(">H", len(data)) + data
        for rec, tag, data in (
            (3, 60, b"\1\0"),
            (3, 20, b"\0\10"),
            (3, 30, b"\0\10"),
            (3, 120, b"\1"),
            (8, 10, bytes(64)),
        )
    )
    buf = io.BytesIO()
    Image.new("L", (8, 8), 1).save(buf, "TGA")  # gray: no CUR header test takes it as an RGB one's
    tga = buf.getvalue()
    refused = [POSTSCRIPT, b"\x00\x00\x01\xb3" + bytes(16), b"BUFR" + bytes(16), b"GRIB" + bytes(16)]
    refused += [b"\x89HDF\r\n\x1a\n" + bytes(16), b"\xd7\xcd\xc6\x9a" + bytes(40)]
    files = [*written.values(), imt, pcd, iptc, tga]
    cut = [f[:n] for f in files for n in {*range(48), 100, 107, 108, 2051, 2052, len(f) - 1}]
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in rng.integers(0, 2100, 300)]
    noise += [rng.choice(list(b"ab:* \n\r\x0c019{}"), n).astype(np.uint8).tobytes() for n in rng.integers(0, 120, 300)]
    inputs = [b"", *heads, *texts, *refused, *files, *cut, *noise]

    quick = [can_identify(io.BytesIO(data)) for data in inputs]
    monkeypatch.setattr(images, "_may_identify", lambda head: True)
    assert quick == [can_identify(io.BytesIO(data)) for data in inputs]
    monkeypatch.undo()
    assert all(can_identify(io.BytesIO(f)) for f in (written["IM"], written["SPIDER"], imt, pcd, iptc, tga))
    if images.PILLOW_VERSION.startswith(images.PILLOW_READ):  # the quick answer is given, and for every such format
        assert not any(images._may_identify(t) for t in [b"", *texts[:3], texts[6]])
        tried_on_anything = {fmt for fmt in images._decoded_formats() if Image.OPEN[fmt][1] is None}
        assert tried_on_anything == images._MAY_OPEN.keys()


def test_identifying_a_file_hides_no_other_threads_warnings_and_decodes_nothing(tmp_path, monkeypatch):
    """can_identify (score's folder walk, for names without an image extension) silenced PIL's warnings with
    warnings.catch_warnings(), whose filters are the whole process's: another thread's warnings in that time were
    lost (score's --max-side notice, decoding in its threads), and an ICO's PNG was decoded to identify it."""
    import threading
    import warnings

    photo = tmp_path / "photo"  # no extension: identified by its header
    Image.fromarray(np.kron(pattern(), np.ones((8, 8, 1), np.uint8))).save(photo, "JPEG")
    icon = tmp_path / "icon"
    icon.write_bytes(_holding("ico", 1200, 1200))
    (tmp_path / "notes").write_text("not an image")
    decoded = _count_decodes(monkeypatch, PngImagePlugin.PngImageFile)
    assert can_identify(icon) and decoded == []
    assert can_identify(photo) and not can_identify(tmp_path / "notes")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often
    stop = threading.Event()

    def identify():
        while not stop.is_set():
            can_identify(photo)

    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            walker = threading.Thread(target=identify)
            walker.start()
            for i in range(2000):
                warnings.warn(f"notice {i}", UserWarning)
            stop.set()
            walker.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(shown) == 2000


@pytest.mark.parametrize("fmt", ["ico", "icns", "blp"])
def test_an_image_inside_another_over_a_bound_below_pils_limit_is_refused_before_decoding(monkeypatch, fmt):
    """ICO, ICNS and BLP files hold a PNG or JPEG whose size their header does not tell; PIL checks it before
    decoding it but warns only past its own limit (89 million pixels). With a lower bound (the Python API's
    `max_pixels`) the image inside was decoded: the ICO was refused after, the ICNS was called corrupt, and the
    BLP's 1200x1200 JPEG was decoded to return a 16x16 image."""
    decoded = _count_decodes(monkeypatch, PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile)
    with pytest.raises(ImageError) as caught:
        decode_image(_holding(fmt, 1200, 1200), f"x.{fmt}", max_pixels=1_000_000)
    assert str(caught.value) == (
        f"x.{fmt}: image too large: 1440000 pixels, over the bound of 1000000 (--max-pixels); raise the bound to "
        "score it"
    )
    assert decoded == []
    with contextlib.suppress(ImageError):  # within the bound PIL decodes it (what comes of it is PIL's)
        decode_image(_holding(fmt, 1200, 1200), f"x.{fmt}", max_pixels=1_440_000)
    assert (1200, 1200) in decoded


def test_32_bit_integers_outside_the_16_bit_range_are_an_error_not_saturated(tmp_path):
    """Mode I (32-bit signed integers: a 32-bit or signed 16-bit TIFF) is scaled as 16-bit data; values past
    65535 or below 0 were clipped to white or black without a word."""
    within = np.array([[0, 257, 1000, 30000], [32896, 40000, 65280, 65535]], np.int32)
    Image.fromarray(within, "I").save(tmp_path / "within.tif")
    assert Image.open(tmp_path / "within.tif").mode == "I"
    expected8 = np.array([[0, 1, 4, 117], [128, 156, 254, 255]], np.float32)  # round(v / 257) by hand
    np.testing.assert_array_equal(as_hwc(load_image(tmp_path / "within.tif")), np.dstack([expected8 / 255] * 3))
    for name, values, shown in (("over", [0, 70000], "0 to 70000"), ("negative", [-5, 100], "-5 to 100")):
        Image.fromarray(np.array([values], np.int32), "I").save(tmp_path / f"{name}.tif")
        expect_error(
            tmp_path / f"{name}.tif",
            f"integer pixel values from {shown}, outside the 16-bit range 0..65535 (mode I); save it as an 8- or "
            "16-bit image",
        )


def test_a_link_loop_and_a_link_to_nothing_say_so_and_what_to_do(tmp_path):
    """`ln -s loop.png loop.png`: 'cannot read file (Too many levels of symbolic links); check the disk or share it is
    on', and a link whose file is gone 'no such file; check the path', though ls lists it. Each says what it is."""
    (tmp_path / "loop.png").symlink_to("loop.png")
    (tmp_path / "gone.png").symlink_to("moved-away.png")
    for name, said in (
        (
            "loop.png",
            "a symbolic link loop (following it leads back to it); make the link point to the file, or remove it",
        ),
        ("gone.png", "a symbolic link to nothing (what it points to is not there); check where it points (ls -l)"),
    ):
        expect_error(tmp_path / name, said)


@pytest.mark.parametrize(
    "draft,size",  # 1600x1200: 1/2 is 800x600, 1/4 400x300, 1/8 200x150
    [(None, (1600, 1200)), (200, (200, 150)), (201, (400, 300)), (400, (400, 300)), (799, (800, 600)),
     (1601, (1600, 1200))],
)  # fmt: skip
def test_draft_decodes_a_jpeg_at_the_smallest_scale_whose_longer_side_is_at_least_draft(tmp_path, draft, size):
    from imaging import write_jpeg

    whole = np.asarray(open_image(write_jpeg(tmp_path / "a.jpg", 1600, 1200)))
    image = open_image(tmp_path / "a.jpg", draft=draft)
    assert image.size == size and image.mode == "RGB"
    resized = np.asarray(Image.fromarray(whole).resize(size, Image.Resampling.BOX), np.float64)  # mean of each block
    assert np.abs(np.asarray(image, np.float64) - resized).mean() < 3


@pytest.mark.parametrize("orientation,mode", [(6, "RGB"), (8, "RGB"), (3, "CMYK"), (6, "CMYK")])
def test_draft_keeps_the_exif_orientation_and_cmyk(tmp_path, orientation, mode):
    """Upright and in RGB as the whole image decoded is, at a quarter of its size (1600x1200 stored, drafted to 400)."""
    from imaging import write_jpeg

    write_jpeg(tmp_path / "r.jpg", 1600, 1200, orientation, mode)
    whole = Image.open(tmp_path / "r.jpg")  # the reference: PIL's own decode, turned and converted
    whole = ImageOps.exif_transpose(whole).convert("RGB")
    image = open_image(tmp_path / "r.jpg", draft=400)
    assert image.size == (whole.width // 4, whole.height // 4) and image.mode == "RGB"
    resized = np.asarray(whole.resize(image.size, Image.Resampling.BOX), np.float64)
    assert np.abs(np.asarray(image, np.float64) - resized).mean() < 3


def test_draft_keeps_the_pixel_bound_of_the_whole_image_and_decodes_other_formats_whole(tmp_path):
    from imaging import write_jpeg

    write_jpeg(tmp_path / "a.jpg", 1600, 1200)
    with pytest.raises(ImageError, match="image too large: 1920000 pixels, over the bound of 1919999"):
        open_image(tmp_path / "a.jpg", max_pixels=1600 * 1200 - 1, draft=200)  # 200x150 decoded, 1600x1200 bound
    assert decode_image((tmp_path / "a.jpg").read_bytes(), "a.jpg", draft=200).size == (200, 150)  # a tar member
    a = np.asarray(open_image(tmp_path / "a.jpg"))
    for name in ("a.png", "a.tif"):
        Image.fromarray(a).save(tmp_path / name)
        assert open_image(tmp_path / name, draft=200).size == (1600, 1200)
        assert decode_image((tmp_path / name).read_bytes(), name, draft=200).size == (1600, 1200)


def test_draft_decodes_a_heic_by_the_thumbnail_stored_in_it(tmp_path):
    """A HEIC's thumbnail for the report was decoded from the whole photo (benchmarks/thumbnails.py, 12 MP). The
    smallest stored thumbnail whose longer side is at least ``draft`` is decoded now, and the report's thumbnail made
    from it differs from the whole photo's by less than half what the report's own JPEG encoding changes; with none
    large enough, or no draft, the whole photo is decoded. The bound is still the whole photo's."""
    from imaging import write_photo

    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    smooth = write_photo(tmp_path / "a.png", 960, 640, 3)
    Image.open(smooth).save(tmp_path / "a.heic", quality=95, thumbnails=[240, 320])
    heif = pillow_heif.open_heif(tmp_path / "a.heic")
    assert sorted(heif.info["thumbnails"]) == [240, 320]
    for draft, size in ((200, (240, 160)), (288, (320, 212)), (400, (960, 640)), (None, (960, 640))):
        assert open_image(tmp_path / "a.heic", draft=draft).size == size
    with pytest.raises(ImageError, match="image too large: 614400 pixels"):
        open_image(tmp_path / "a.heic", max_pixels=960 * 640 - 1, draft=200)
    thumbs = []
    for draft in (288, None):
        image = open_image(tmp_path / "a.heic", draft=draft)
        image.thumbnail((96, 96))
        thumbs.append(image)
    drafted, whole = (np.asarray(t, np.float64) for t in thumbs)
    buffer = io.BytesIO()
    thumbs[1].save(buffer, "JPEG", quality=70)  # the report's own encoding, for scale
    encoded = np.asarray(Image.open(buffer), np.float64)
    assert drafted.shape == whole.shape == (64, 96, 3)
    assert np.abs(drafted - whole).mean() < np.abs(encoded - whole).mean() / 2


def _icon(entries: list[tuple[int, Image.Image]]) -> bytes:
    """An ICO file of PNG images, each with the colour depth (bits per pixel) its directory entry states, laid
    out as the ICO format puts them: a 6-byte header, a 16-byte entry per image, then the images."""
    pngs = []
    for _, image in entries:
        buf = io.BytesIO()
        image.save(buf, "PNG")
        pngs.append(buf.getvalue())
    at = 6 + 16 * len(entries)
    out = [struct.pack("<HHH", 0, 1, len(entries))]
    for (bpp, image), png in zip(entries, pngs):
        out.append(struct.pack("<BBBBHHII", image.width % 256, image.height % 256, 0, 0, 1, bpp, len(png), at))
        at += len(png)
    return b"".join(out + pngs)


def test_an_icon_gives_its_largest_image_at_its_deepest_colour(tmp_path):
    """PIL opens an ICO's largest size at its lowest colour depth: of a 32x32 icon held in 8 and 32 bits the
    16-colour image was scored."""
    full = noise(32, 32)
    few = Image.fromarray(full).quantize(16)  # the same picture in 16 colours
    small = Image.fromarray(noise(16, 16))
    for order in ((8, 32), (32, 8)):
        by_depth = {8: few, 32: Image.fromarray(full)}
        icon = _icon([(32, small), *((bpp, by_depth[bpp]) for bpp in order)])
        (tmp_path / "i.ico").write_bytes(icon)
        for got in (open_image(tmp_path / "i.ico"), decode_image(icon, "i.ico")):
            np.testing.assert_array_equal(np.asarray(got), full)
    largest = _icon([(32, small), (8, few)])  # the largest size wins over a deeper smaller one
    np.testing.assert_array_equal(np.asarray(decode_image(largest, "l.ico")), np.asarray(few.convert("RGB")))


def _frames(fmt: str, frames: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    first, *rest = (Image.fromarray(f) for f in frames)
    options = {"lossless": True} if fmt == "WEBP" else {}
    first.save(buf, fmt, save_all=bool(rest), append_images=rest, duration=100, **options)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animated_image_gives_its_first_frame_and_says_so(tmp_path, fmt):
    """The first frame of an animation was scored without a word; it still is (as pyiqa scores it), and the image
    is marked so that scoring warns."""
    from arniqa.data.images import first_frame_note

    flat = [np.zeros((12, 10, 3), np.uint8) for _ in range(3)]
    for i, (f, colour) in enumerate(zip(flat, [(255, 0, 0), (0, 0, 255), (0, 255, 0)])):
        f[:, : 4 + 2 * i] = colour  # few colours: a GIF's palette holds them exactly
    for frames, animated in ((flat, True), (flat[:1], False)):
        data = _frames(fmt, frames)
        path = tmp_path / f"a.{fmt.lower()}"
        path.write_bytes(data)
        with Image.open(path) as img:
            assert getattr(img, "n_frames", 1) == len(frames)  # the file is what it should be
        for got in (open_image(path), decode_image(data, path.name)):
            np.testing.assert_array_equal(np.asarray(got), flat[0])
            note = first_frame_note(got, path.name)
            if animated:
                assert (
                    note
                    == f"{path.name}: an animated or multi-page image; its first frame is scored, the others are not"
                )
            else:
                assert note is None


def test_a_camera_mpo_is_not_taken_for_an_animation(tmp_path):
    """An MPO (a JPEG holding a preview or a stereo pair's second view) is one photo, not frames."""
    from arniqa.data.images import first_frame_note

    path = tmp_path / "c.jpg"
    photo, preview = Image.fromarray(pattern()), Image.fromarray(pattern()[::2, ::2].copy())
    photo.save(path, "MPO", save_all=True, append_images=[preview])
    with Image.open(path) as img:
        assert img.format == "MPO" and img.n_frames == 2
    assert first_frame_note(open_image(path), "c.jpg") is None


def test_a_palette_png_with_transparency_a_pa_image_and_a_16_bit_rgb_png(tmp_path):
    """The modes left untested: a palette PNG with a tRNS chunk (PIL opens it as P, its transparency in info),
    a PA image (alpha dropped), a 16-bit RGB PNG (PIL keeps the high byte of each sample)."""
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
    idx = (np.arange(12 * 16).reshape(12, 16) % 4).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([v for rgb in palette for v in rgb])
    img.save(tmp_path / "t.png", transparency=bytes([0, 128, 255, 255]))  # colour 0 transparent, 1 half
    with Image.open(tmp_path / "t.png") as opened:
        assert opened.mode == "P" and "transparency" in opened.info
    expected = np.array(palette, np.uint8)[idx]
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "t.png")), expected)
    pa = img.convert("PA")
    assert pa.mode == "PA"
    np.testing.assert_array_equal(np.asarray(images.to_rgb(pa)), expected)
    v = np.random.default_rng(0).integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in v)  # filter 0, big-endian samples
    ihdr = struct.pack(">IIBBBBB", 7, 5, 16, 2, 0, 0, 0)
    data = b"".join([b"\x89PNG\r\n\x1a\n", png_chunk(b"IHDR", ihdr), png_chunk(b"IDAT", zlib.compress(rows))])
    (tmp_path / "d.png").write_bytes(data + png_chunk(b"IEND", b""))
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "d.png")), (v >> 8).astype(np.uint8))


def test_an_animated_gif_is_known_so_by_its_second_frame_not_by_all(tmp_path, monkeypatch):
    """Telling a GIF is animated reads as far as its second frame's header, never its further frames (counting
    them all, n_frames, walks the whole file: 500 frames are 100 MB): the frames PIL seeks to are counted."""
    from PIL import GifImagePlugin

    from arniqa.data.images import ANIMATED, open_image

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)) for _ in range(30)]
    frames[0].save(tmp_path / "long.gif", save_all=True, append_images=frames[1:])
    seen = []
    seek = GifImagePlugin.GifImageFile._seek

    def counted(self, frame, *args, **kwargs):
        seen.append(frame)
        return seek(self, frame, *args, **kwargs)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counted)
    image = open_image(tmp_path / "long.gif")
    assert image.info[ANIMATED] and max(seen) == 1
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / "long.gif").convert("RGB")))
