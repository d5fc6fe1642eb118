import csv
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from imaging import write_phone_photos
from PIL import Image
from streams import stderr_writes
from typer.testing import CliRunner

from arniqa.cli import EXIT_USAGE, _register, app
from arniqa.constants import EXIT_INTERRUPTED
from arniqa.data import synthetic
from arniqa.data.folders import list_images
from arniqa.data.iqa import load_dataset
from arniqa.data.synthetic import KADID_MEAN_MOS, KADID_TYPES, build_synthetic, parse_size, prepare
from arniqa.degradations import LEVELS, kernels

TYPES = ("gaublur", "jpeg", "meanshift")


@pytest.fixture
def pristine(tmp_path):
    folder = tmp_path / "pristine" / "sub"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size in (("b.png", (60, 40)), ("a.jpg", (50, 70))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return tmp_path / "pristine"


def test_kadid_table_matches_published_severity():
    # spot checks against shared/docs/kadid-severity.md (KADID-10k mean MOS per type and level)
    assert len(KADID_TYPES) == 23 and set(KADID_TYPES) == set(KADID_MEAN_MOS)
    assert KADID_TYPES["jpeg2000"] == 9 and KADID_TYPES["lincontrchange"] == 25
    assert KADID_MEAN_MOS["gaublur"][0] == 4.612 and KADID_MEAN_MOS["colorblock"][4] == 2.035
    assert sorted(KADID_TYPES.values()) == [t for t in range(1, 26) if t not in (6, 15)]


def test_build_writes_kadid_layout_that_the_adapter_reads(pristine, tmp_path):
    paths = list_images(pristine)
    assert [p.name for p in paths] == ["a.jpg", "b.png"]
    out = tmp_path / "bench"
    build_synthetic(paths, out, size=(32, 24), types=TYPES)
    with open(out / "dmos.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(TYPES) * 5
    assert rows[0]["dist_img"] == "I01_01_01.png" and rows[0]["ref_img"] == "I01.png"
    assert Image.open(out / "images" / "I02_10_05.png").size == (32, 24)
    data = load_dataset("kadid10k", out)
    assert len(data) == len(rows)
    for record in data.records:
        assert record.score == pytest.approx(KADID_MEAN_MOS[record.distortion][record.level - 1])
    assert "mean MOS" in (out / "README.md").read_text()


def test_the_readme_counts_one_image_and_one_type_in_the_singular(pristine, tmp_path):
    """The benchmark's README.md said '1 pristine images x 1 distortion types' of a folder of one photo."""
    paths = list_images(pristine)
    build_synthetic(paths[:1], tmp_path / "one", size=(32, 24), types=TYPES[:1])
    build_synthetic(paths, tmp_path / "two", size=(32, 24), types=TYPES[:2])
    assert "\n1 pristine image x 1 distortion type x 5 levels, 32x24 px" in (tmp_path / "one/README.md").read_text()
    assert "\n2 pristine images x 2 distortion types x 5 levels" in (tmp_path / "two/README.md").read_text()


def test_a_photo_smaller_than_the_benchmark_is_upscaled_with_one_warning_line(tmp_path, monkeypatch):
    """A 1x1 pristine photo became a 32x24 reference without a word; the build still goes on, with one warning line
    naming the photo and its size, in one write (print wrote its newline apart). A photo covering the size on both
    sides gets none. They are warnings about single files: of 7 photos too small, the first 5 are named and one line
    counts the other 2 (each was printed, 10,000 lines for a folder of thumbnails)."""
    from arniqa.utils.messages import held_warnings, show_warning

    monkeypatch.delenv("ARNIQA_WARNINGS", raising=False)
    folder = tmp_path / "pristine"
    folder.mkdir()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "dot.png")
    Image.new("RGB", (40, 20), (10, 200, 10)).save(folder / "wide.png")  # 20 < 24 high
    Image.new("RGB", (32, 24), (10, 10, 200)).save(folder / "exact.png")
    for i in range(5):
        Image.new("RGB", (8, 30), (i, 90, 90)).save(folder / f"thin{i}.png")  # 8 < 32 wide
    small = [("dot.png", "1x1 px"), ("wide.png", "40x20 px"), *((f"thin{i}.png", "8x30 px") for i in range(5))]
    paths = [folder / "dot.png", folder / "wide.png", folder / "exact.png", *(folder / n for n, _ in small[2:])]
    held_warnings()  # counted from zero
    with warnings.catch_warnings(), stderr_writes() as writes:
        warnings.showwarning = show_warning  # as the commands show warnings
        build_synthetic(paths, tmp_path / "bench", size=(32, 24), types=("jpeg",))
    assert writes == [
        f"warning: {folder / name}: {size}, smaller than the benchmark's 32x24; its reference is upscaled (blurred): "
        "use a larger photo for a sharp one\n"
        for name, size in small[:5]
    ]
    assert held_warnings() == [
        "warning: 2 more images smaller than the benchmark's 32x24, each upscaled (blurred) as its reference (the "
        "first 5 are named above; ARNIQA_WARNINGS=all names every one)"
    ]
    reference = np.asarray(Image.open(tmp_path / "bench" / "images" / "I01.png"))
    assert reference.shape == (24, 32, 3) and (reference == (200, 10, 10)).all()  # built all the same
    with warnings.catch_warnings(), stderr_writes() as writes:
        warnings.showwarning = show_warning
        build_synthetic(paths, tmp_path / "bench", size=(32, 24), types=("jpeg",))  # a rerun with all on disk: silent
    assert writes == [] and held_warnings() == []


def _resize_whole_and_crop(pil, size):
    """The prepared image by definition: the whole photo resized (bicubic) to cover ``size``, its centre cut out."""
    (w, h), (tw, th) = pil.size, size
    scale = max(tw / w, th / h)
    rw, rh = max(tw, round(w * scale)), max(th, round(h * scale))
    left, top = (rw - tw) // 2, (rh - th) // 2
    return np.asarray(pil.resize((rw, rh), Image.BICUBIC).crop((left, top, left + tw, top + th)))


def _as_uint8(x):
    return (x * 255).round().byte().permute(1, 2, 0).numpy()


def _resizes_at_most(monkeypatch, pixels):
    """Make PIL's resize fail, before it allocates anything, when asked for more than ``pixels`` pixels; returns
    the list of the sizes it is asked for."""
    asked = []
    real = Image.Image.resize

    def resize(image, size, *args, **kwargs):
        asked.append(tuple(size))
        assert size[0] * size[1] <= pixels, f"resized to {size[0]}x{size[1]}"
        return real(image, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    return asked


@pytest.mark.parametrize("shape", [(2, 70000), (70000, 2), (1, 8000)])
def test_a_thin_strip_is_resized_only_where_it_is_cut_out(tmp_path, monkeypatch, shape):
    """A 2 x 70000 px strip was resized whole to cover 512x384 (512 x 17,920,000 px, 37 GB: a MemoryError
    under a 5 GB limit) before its centre was cut out. Only the part cut out is resized: its colours across the
    strip are the strip's resized, and its ends, another colour, leave no trace."""
    w, h = shape
    across = np.array([[200, 30, 10], [20, 90, 250]], dtype=np.uint8)[: min(w, h)]
    strip = np.repeat(across[None], max(w, h), axis=0)  # (length, across, 3)
    strip[:1000] = strip[-1000:] = (0, 255, 0)
    path = tmp_path / "strip.png"
    Image.fromarray(strip if h > w else strip.transpose(1, 0, 2)).save(path)
    asked = _resizes_at_most(monkeypatch, 512 * 384)
    got = _as_uint8(prepare(path, (512, 384)))
    assert asked and got.shape == (384, 512, 3)
    long = 512 if h > w else 384  # the side the strip's width is resized to
    expected = np.asarray(Image.fromarray(across[None]).resize((long, 1), Image.BICUBIC))[0]
    assert (got == (expected[None] if h > w else expected[:, None])).all()


@pytest.mark.parametrize(
    ("shape", "size"), [((2, 3000), (64, 48)), ((3000, 3), (48, 64)), ((1, 900), (40, 30)), ((4000, 5), (20, 100))]
)
def test_a_strip_resized_in_part_matches_its_whole_resize(tmp_path, monkeypatch, shape, size):
    """Resized in part, a strip's prepared image is its whole resize's centre within 2/255 (float rounding of PIL's
    box; noise is the worst case)."""
    monkeypatch.setattr(synthetic, "WHOLE_RESIZE_PIXELS", 0)
    pil = Image.fromarray(np.random.default_rng(0).integers(0, 256, (shape[1], shape[0], 3), dtype=np.uint8))
    pil.save(tmp_path / "strip.png")
    got = _as_uint8(prepare(tmp_path / "strip.png", size)).astype(int)
    assert np.abs(got - _resize_whole_and_crop(pil, size)).max() <= 2


def test_ordinary_photos_are_prepared_as_their_whole_resize(tmp_path):
    """Photos of any size and shape short of a strip are resized whole as they always were, byte for byte: a rerun
    keeps the images already written, so a benchmark folder would mix two resizes."""
    rng = np.random.default_rng(1)
    for i in range(8):
        w, h, tw, th = (int(v) for v in rng.integers(1, 400, 4))
        tw, th = max(tw, 16), max(th, 16)
        pil = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        pil.save(tmp_path / f"{i}.png")
        assert (_as_uint8(prepare(tmp_path / f"{i}.png", (tw, th))) == _resize_whole_and_crop(pil, (tw, th))).all()


@pytest.mark.parametrize(
    ("photo", "asked"), [((16, 4), (16384, 4096)), ((4, 16), (4096, 16384)), ((17, 4), (4096, 4096))]
)
def test_a_photo_within_4_to_1_is_resized_whole_at_the_largest_size(tmp_path, monkeypatch, photo, asked):
    """At 4096x4096 a 4:1 photo is resized whole (to 4 times 4096 x 4096 px); a wider one only in part."""
    Image.new("RGB", photo, (9, 99, 199)).save(tmp_path / "p.png")

    def resize(image, size, *args, **kwargs):  # what is asked, without the seconds of resizing
        raise LookupError(tuple(size))

    monkeypatch.setattr(Image.Image, "resize", resize)
    with pytest.raises(LookupError) as e:
        prepare(tmp_path / "p.png", (4096, 4096))
    assert e.value.args == (asked,)


def test_sources_name_pristine_files_in_any_bytes(tmp_path):
    """A pristine file named in bytes that are not UTF-8 failed the whole build at its last step (sources.csv);
    sources.csv names it as arniqa score's CSV does: a backslash doubled, such a byte as \\xNN."""
    import os

    folder = tmp_path / "pristine"
    folder.mkdir()
    names = [os.fsdecode(b"caf\xe9.png"), "back\\slash.png"]
    for name in names:
        Image.new("RGB", (40, 30), (120, 80, 40)).save(folder / name)
    build_synthetic(sorted(folder / n for n in names), tmp_path / "bench", size=(16, 12), types=("jpeg",))
    with open(tmp_path / "bench" / "sources.csv", encoding="utf-8") as f:
        sources = [row["source"] for row in csv.DictReader(f)]
    assert sources == sorted([str(folder / "back\\\\slash.png"), str(folder / "caf\\xe9.png")])


# A build in a process where Python flags every text file opened without an encoding (its bytes would follow the
# locale's encoding) as an error in arniqa's modules
IN_ANY_LOCALE = """
import sys, warnings
from pathlib import Path
from PIL import Image
from arniqa.data.synthetic import build_synthetic

warnings.filterwarnings("error", category=EncodingWarning, module=r"arniqa\\.")
photo = Path(sys.argv[1]) / "photo.png"
Image.new("RGB", (40, 30), (120, 80, 40)).save(photo)
build_synthetic([photo], Path(sys.argv[1]) / "bench", size=(16, 12), types=("jpeg",))
"""


def test_the_benchmark_files_are_utf8_whatever_the_locale(tmp_path):
    """README.md, sources.csv and dmos.csv were written in the locale's encoding, not as UTF-8 as arniqa's other
    files: a pristine path with a character that encoding lacks (Windows' cp1252 has no 'Ł') stopped the build
    at its last step, and other locales wrote bytes a UTF-8 reader misreads."""
    env = {**os.environ, "PYTHONWARNDEFAULTENCODING": "1"}
    done = subprocess.run([sys.executable, "-c", IN_ANY_LOCALE, str(tmp_path)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-800:]
    assert sorted(p.name for p in (tmp_path / "bench").glob("*.*")) == [
        "README.md",
        "dmos.csv",
        "settings.json",
        "sources.csv",
    ]


def test_rebuild_is_identical_and_keeps_existing_files(pristine, tmp_path):
    paths = list_images(pristine)
    a, b = tmp_path / "a", tmp_path / "b"
    build_synthetic(paths, a, size=(32, 24), types=TYPES, seed=3)
    build_synthetic(paths, b, size=(32, 24), types=TYPES, seed=3)
    for f in sorted((a / "images").iterdir()):
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(b / "images" / f.name)))
    target = a / "images" / "I01_10_03.png"
    before = target.stat().st_mtime_ns
    build_synthetic(paths, a, size=(32, 24), types=TYPES, seed=3)
    assert target.stat().st_mtime_ns == before


def test_a_rerun_with_other_settings_is_refused_and_one_that_extends_goes_on(pristine, tmp_path):
    """A rerun keeps the images on disk: one with another size, seed or reference list wrote a dmos.csv over
    the first run's images and its own (I01 at 32x24 beside I02 at 40x30, say), labelled as one set."""
    paths = list_images(pristine)
    out = tmp_path / "bench"
    build_synthetic(paths[:1], out, size=(32, 24), types=("jpeg",), seed=3)
    before = sorted(p.name for p in (out / "images").iterdir())
    for options in (dict(size=(40, 30), seed=3), dict(size=(32, 24), seed=4)):
        with pytest.raises(ValueError, match="holds images of 32x24 px, seed 3"):
            build_synthetic(paths, out, types=("jpeg",), **options)
    with pytest.raises(ValueError, match=f"reference I01 was made from {paths[0]}, not {paths[1]}"):
        build_synthetic(paths[1:], out, size=(32, 24), types=("jpeg",), seed=3)
    assert sorted(p.name for p in (out / "images").iterdir()) == before  # nothing written
    # more references, then fewer again: each image still what a clean build of all of them writes
    build_synthetic(paths, out, size=(32, 24), types=("jpeg",), seed=3)
    build_synthetic(paths[:1], out, size=(32, 24), types=("jpeg",), seed=3)
    build_synthetic(paths, tmp_path / "clean", size=(32, 24), types=("jpeg",), seed=3)
    for f in sorted((tmp_path / "clean" / "images").iterdir()):
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(out / "images" / f.name)))
    with pytest.raises(ValueError, match="reference I02 was made from"):
        build_synthetic(paths[:1] + paths[:1], out, size=(32, 24), types=("jpeg",), seed=3)
    (out / "settings.json").write_text('{"size": [32, 24]}')  # not what a build writes: one line, not a KeyError
    with pytest.raises(ValueError, match="settings.json: not a benchmark's settings"):
        build_synthetic(paths, out, size=(32, 24), types=("jpeg",), seed=3)


def test_a_folder_with_a_label_file_it_did_not_make_is_refused_untouched(pristine, tmp_path):
    """-o at a KADID-10k copy (dmos.csv and images/, no settings.json) replaced its dmos.csv with the benchmark's
    labels and kept its images under them, exit 0. Now refused, nothing written; a folder of other files is used."""
    out = tmp_path / "kadid"
    (out / "images").mkdir(parents=True)
    (out / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.1\n")
    Image.new("RGB", (32, 24)).save(out / "images" / "I01_01_01.png")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="did not make"):
        build_synthetic(list_images(pristine), out, size=(32, 24), types=("jpeg",))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (out / "dmos.csv").unlink()
    with pytest.raises(ValueError, match="did not make"):  # its images alone: dmos.csv would label them
        build_synthetic(list_images(pristine), out, size=(32, 24), types=("jpeg",))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    build_synthetic(list_images(pristine), other, size=(32, 24), types=("jpeg",))
    assert (other / "notes.txt").read_text() == "mine" and len(list((other / "images").iterdir())) == 2 * 6


def test_a_refused_folder_holding_a_label_file_alone_gets_no_images_folder(pristine, tmp_path):
    """A folder with a dmos.csv and no images/ was refused, but left holding an empty images/ the build made
    before it looked: nothing is made in a refused folder."""
    out = tmp_path / "labels"
    out.mkdir()
    (out / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.1\n")
    with pytest.raises(ValueError, match="did not make"):
        build_synthetic(list_images(pristine), out, size=(32, 24), types=("jpeg",))
    assert sorted(p.name for p in out.iterdir()) == ["dmos.csv"]


def test_a_photo_that_failed_can_be_taken_out_and_the_build_goes_on(pristine, tmp_path):
    """A photo that cannot be read stops the build after the references before it; the rerun without it was
    refused ("reference I02 was made from bad.png"), though no image of I02 had been written. Now it goes on,
    and each image is what a clean build of the remaining photos writes."""
    good = list_images(pristine)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    out = tmp_path / "bench"
    with pytest.raises(ValueError, match="empty file"):
        build_synthetic([good[0], bad, good[1]], out, size=(32, 24), types=("jpeg",))
    assert sorted(p.name[:3] for p in (out / "images").iterdir()) == ["I01"] * 6
    build_synthetic(good, out, size=(32, 24), types=("jpeg",))
    build_synthetic(good, tmp_path / "clean", size=(32, 24), types=("jpeg",))
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        p.name for p in (tmp_path / "clean" / "images").iterdir()
    )
    for f in (tmp_path / "clean" / "images").iterdir():
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(out / "images" / f.name)))
    assert len(json.loads((out / "settings.json").read_text())["sources"]) == 2  # no record of bad.png left


def test_identity_level_equals_reference(pristine, tmp_path):
    # meanshift level 1 shifts by 0: the distorted image equals its reference
    build_synthetic(list_images(pristine), tmp_path / "o", size=(32, 24), types=("meanshift",))
    ref = np.asarray(Image.open(tmp_path / "o" / "images" / "I01.png"))
    assert np.array_equal(ref, np.asarray(Image.open(tmp_path / "o" / "images" / "I01_18_01.png")))


def test_lens_blur_is_matlabs_disk_as_in_kadid(pristine, tmp_path):
    # KADID-10k was made with MATLAB's fspecial('disk'), not the reference's training kernels.
    build_synthetic(list_images(pristine), tmp_path / "o", size=(32, 24), types=("lensblur",))
    ref = torch.from_numpy(np.array(Image.open(tmp_path / "o" / "images" / "I01.png"))).permute(2, 0, 1) / 255
    for level, radius in enumerate(LEVELS["lensblur"], start=1):
        padded = torch.nn.functional.pad(ref[None].double(), (radius,) * 4, mode="replicate")
        disk = kernels.disk(radius)
        blurred = sum(
            disk[i, j] * padded[..., i : i + 24, j : j + 32]
            for i in range(2 * radius + 1)
            for j in range(2 * radius + 1)
        )
        expected = (blurred[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        written = np.asarray(
            Image.open(tmp_path / "o" / "images" / f"I01_{KADID_TYPES['lensblur']:02d}_{level:02d}.png")
        )
        assert np.abs(written.astype(int) - expected).max() <= 1  # float32 filtering rounds differently


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="missing: no such folder; give a folder holding image files"):
        list_images(tmp_path / "missing")
    with pytest.raises(ValueError, match="no pristine images"):
        build_synthetic([], tmp_path / "o")
    with pytest.raises(ValueError, match="nonlincontrchange"):
        build_synthetic([tmp_path / "x.png"], tmp_path / "o", types=("nonlincontrchange",))
    for seed in (2**32, 10**20, -1):  # 10**20 was torch's 'Overflow when unpacking long long' after settings.json
        with pytest.raises(
            ValueError, match=rf"^seed {seed}: the seed of the distortions must be from 0 to 2\*\*32 - 1"
        ):
            build_synthetic([tmp_path / "x.png"], tmp_path / "o", seed=seed)
        assert not (tmp_path / "o").exists()


def test_parse_size():
    assert parse_size("512x384") == (512, 384)
    assert parse_size("16X20") == (16, 20)  # either case; 16 is the smallest side
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("12x")
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("1x2x3")
    with pytest.raises(ValueError, match="from 16 to 4096"):
        parse_size("15x100")
    assert parse_size("4096x16") == (4096, 16)
    with pytest.raises(ValueError, match="from 16 to 4096"):  # was the OOM killer, some 20 GB later
        parse_size("100000x100000")


def test_cli(pristine, tmp_path):
    _register()
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["benchmark", "synthetic", "--pristine", str(pristine), "-o", str(out), "--images", "1", "--size", "24x16"]
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "images").glob("I01_*.png"))) == 23 * 5
    bad = runner.invoke(app, ["benchmark", "synthetic", "--pristine", str(tmp_path / "none"), "-o", str(out)])
    assert bad.exit_code == EXIT_USAGE and "no such folder" in bad.output
    bad = runner.invoke(app, ["benchmark", "synthetic", "--pristine", str(pristine), "-o", str(out), "--size", "9"])
    assert bad.exit_code == EXIT_USAGE and "WIDTHxHEIGHT" in bad.output


def test_cli_a_photo_that_cannot_be_read_is_one_line_saying_what_to_do(pristine, tmp_path):
    """It said `error: bad.png: empty file (0 bytes)` and no more; now it says to take the photo out and rerun."""
    (pristine / "sub" / "c.png").write_bytes(b"")
    _register()
    out = tmp_path / "cli"
    args = ["benchmark", "synthetic", "--pristine", str(pristine), "-o", str(out), "--size", "16x16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip().splitlines()[-1:] == [  # after the warning about the fixture's notes.txt
        f"error: {pristine / 'sub' / 'c.png'}: empty file (0 bytes); take it out of the pristine photos (or replace "
        "it) and rerun"
    ]
    (pristine / "sub" / "c.png").unlink()
    assert CliRunner().invoke(app, args).exit_code == 0


def test_cli_takes_phone_photos(tmp_path):
    """HEIC and AVIF references: at their own size each is written as it decodes (PNG, lossless)."""
    phones = write_phone_photos(tmp_path / "phones", 40, 24)
    _register()
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["benchmark", "synthetic", "--pristine", str(tmp_path / "phones"), "-o", str(out), "--size", "40x24"]
    )
    assert result.exit_code == 0, result.output
    for i, path in enumerate(sorted(phones), start=1):
        assert np.array_equal(np.asarray(Image.open(out / "images" / f"I{i:02d}.png")), phones[path])
        assert len(list((out / "images").glob(f"I{i:02d}_*.png"))) == 23 * 5


def test_an_output_inside_the_pristine_folder_is_not_read_back_as_pristine(pristine, tmp_path):
    """With -o inside --pristine, a rerun took the first run's 232 images as references: 26,910 distorted
    images instead of 230, without a word. The output's own images are left out of the pristine list."""
    _register()
    out = pristine / "bench"
    args = ["benchmark", "synthetic", "--pristine", str(pristine), "-o", str(out), "--size", "16x16"]
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        with open(out / "dmos.csv") as f:
            assert len(list(csv.DictReader(f))) == 2 * 23 * 5  # the fixture's two pristine images
    assert [p.name for p in list_images(pristine, exclude=out)] == ["a.jpg", "b.png"]
    assert len(list_images(pristine)) == 2 + 2 + 2 * 23 * 5  # without exclude: every image in the tree


def test_cli_stopped_before_an_image_is_written_leaves_no_folder(pristine, tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM after `images/` was made but before anything was written there left `-o` with an empty
    `images/` in it. Now both go, as with every verb's output folders."""
    import arniqa.data.synthetic as synthetic

    def stopped(*args):
        raise KeyboardInterrupt

    _register()
    monkeypatch.setattr(synthetic, "_claim", stopped)
    out = tmp_path / "new" / "bench"
    args = ["benchmark", "synthetic", "--pristine", str(pristine), "-o", str(out), "--images", "1", "--size", "24x16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert not (tmp_path / "new").exists()
