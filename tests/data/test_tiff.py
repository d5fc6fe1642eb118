"""TIFFs whose image directory was cut off or zeroed, and a camera RAW file's preview."""

import io
import re
import struct

import numpy as np
import pytest
from imaging import expect_error
from PIL import Image, UnidentifiedImageError

from arniqa.data.folders import is_image
from arniqa.data.images import ImageError, can_identify, decode_image, open_image


def _tiff(pixels: np.ndarray, order: str, big: bool, subfile: tuple[int, int] | None = None) -> bytes:
    """A grey 8-bit TIFF (BigTIFF) in byte order ``order`` (``<`` or ``>``), built from the TIFF 6.0 and BigTIFF
    layouts: the header, one uncompressed strip, then the image directory, as libtiff writes a file. ``subfile``:
    a NewSubfileType entry (tag 254), its type (3 SHORT, 4 LONG) and value."""
    h, w = pixels.shape
    header = 16 if big else 8
    at = header + w * h  # the directory, after the strip
    short, long = ("HHQH6x", "HHQI4x") if big else ("HHIH2x", "HHII")
    fields = [] if subfile is None else [(254, *subfile)]  # the lowest tag: first, as tags are sorted
    fields += [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, header)]
    fields += [(277, 3, 1), (278, 4, h), (279, 4, w * h)]
    entries = b"".join(struct.pack(order + (short if kind == 3 else long), tag, kind, 1, v) for tag, kind, v in fields)
    mark = b"II" if order == "<" else b"MM"
    if big:
        start, directory = struct.pack(order + "HHHQ", 43, 8, 0, at), struct.pack(order + "Q", len(fields))
        return mark + start + pixels.tobytes() + directory + entries + bytes(8)
    start, directory = struct.pack(order + "HI", 42, at), struct.pack(order + "H", len(fields))
    return mark + start + pixels.tobytes() + directory + entries + bytes(4)


def test_a_tiff_whose_directory_was_cut_off_or_zeroed_is_corrupt_image_data_not_an_unknown_file(tmp_path):
    """A TIFF (LZW, deflate: libtiff writes the image directory after the data) whose end was overwritten with zero
    bytes or cut off got 'not an image file PIL can read', as a text file does; it is a TIFF whose data is damaged.
    Now the row says so, with the byte its header points the directory at, from a file and as bytes (a tar
    member); a whole file decodes to its pixels."""
    photo = np.random.default_rng(0).normal(128, 40, (96, 128, 3)).clip(1, 255).astype(np.uint8)
    for compression in ("tiff_lzw", "tiff_adobe_deflate"):
        Image.fromarray(photo).save(tmp_path / "whole.tif", compression=compression)
        np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "whole.tif")), photo)
        data = (tmp_path / "whole.tif").read_bytes()
        at = struct.unpack("<I", data[4:8])[0]
        assert data[:4] == b"II*\x00" and at > len(data) // 2  # the premise: the directory after the data
        zeroed = data[: len(data) // 2] + bytes(len(data) - len(data) // 2)
        (tmp_path / "zeroed.tif").write_bytes(zeroed)
        with pytest.raises(UnidentifiedImageError):  # PIL alone
            Image.open(tmp_path / "zeroed.tif")
        reason = f"truncated or corrupt image data (no entry in its image directory at byte {at}; its end overwritten"
        expect_error(tmp_path / "zeroed.tif", reason)
        with pytest.raises(ImageError, match=re.escape(reason)):
            decode_image(zeroed, "member.tif")
        (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
        expect_error(tmp_path / "cut.tif", f"(the file ends before its image directory at byte {at}; cut off?)")
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12)
    for order, big in (("<", False), (">", False), ("<", True)):  # Pillow 13 reads no big-endian BigTIFF
        data = _tiff(grey, order, big)
        at = 16 + grey.size if big else 8 + grey.size
        np.testing.assert_array_equal(np.asarray(decode_image(data, "whole.tif"))[..., 0], grey)
        with pytest.raises(ImageError, match=f"no entry in its image directory at byte {at};"):
            decode_image(data[:at] + bytes(len(data) - at), "zeroed.tif")
        with pytest.raises(ImageError, match=f"the file ends before its image directory at byte {at};"):
            decode_image(data[:at], "cut.tif")


def test_a_tiff_whose_first_image_is_a_reduced_resolution_preview_is_an_error_not_scored(tmp_path):
    """A camera RAW file (DNG, NEF: a TIFF layout whose first image is a small preview, NewSubfileType 1, the photo in
    a sub-directory Pillow does not read) was scored as that preview: the score of a thumbnail, exit 0, in a
    folder walk too (a header PIL recognises). Now it is an error saying so, and a folder walk passes it over as a
    file no decoder opens; a TIFF whose first image is no preview (NewSubfileType 0, or 2: a page) decodes."""
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12)
    for order, big in (("<", False), (">", False), ("<", True)):  # Pillow 13 reads no big-endian BigTIFF
        for subfile, preview in (((4, 1), True), ((3, 1), True), ((4, 3), True), ((4, 0), False), ((3, 2), False)):
            data = _tiff(grey, order, big, subfile)
            assert Image.open(io.BytesIO(data)).size == (12, 10)  # the premise: PIL alone opens the preview
            if preview:
                with pytest.raises(ImageError, match=r"a reduced-resolution preview \(TIFF NewSubfileType 1\)"):
                    decode_image(data, "a.dng")
            else:
                np.testing.assert_array_equal(np.asarray(decode_image(data, "a.tif"))[..., 0], grey)
    photo = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "DSC_0001.NEF", format="TIFF", tiffinfo={254: 1})  # Pillow's writer
    (tmp_path / "IMG_0002.dng").write_bytes(_tiff(grey, ">", False, (4, 1)))
    for raw in (tmp_path / "DSC_0001.NEF", tmp_path / "IMG_0002.dng"):
        expect_error(raw, "a reduced-resolution preview (TIFF NewSubfileType 1), as in a camera RAW file")
        assert not can_identify(raw) and not is_image(raw)
    Image.fromarray(photo).save(tmp_path / "page.tiff", format="TIFF", tiffinfo={254: 2})
    assert can_identify(tmp_path / "page.tiff")
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "page.tiff")), photo)
