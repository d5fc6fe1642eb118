"""``arniqa distortions | distort | gallery`` through typer's CliRunner."""

import numpy as np
import pytest
from fresh_cli import fresh_cli
from imaging import png_header_only, write_jpeg
from PIL import Image, ImageCms, ImageOps
from typer.testing import CliRunner

from arniqa.cli import EXIT_USAGE, _register, app
from arniqa.degradations import LEVELS, NAMES

_register()
runner = CliRunner()


@pytest.fixture
def photo(tmp_path):
    """A small textured RGB PNG (40 x 56)."""
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.random((5, 7, 3)), np.ones((8, 8, 1)))
    pixels = (255 * np.clip(smooth + 0.05 * rng.standard_normal(smooth.shape), 0, 1)).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def messages(result) -> str:
    return result.output + (result.stderr or "")


def test_distortions_lists_all_names_and_values():
    result = runner.invoke(app, ["distortions"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert f" {name} " in result.output
    assert "170" in result.output and "0.0001" in result.output  # jpeg2000 level 5, whitenoiseCC level 1


def test_distortions_prints_every_value_whole_in_80_columns():
    # before: piped (80 columns) the table was squeezed and values were cut, meanshift's -0.08 printed '-0.…'
    result = runner.invoke(app, ["distortions"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    rows = {
        line.split("│")[2].strip(): line.split("│")[3:8] for line in result.output.splitlines() if line.count("│") == 8
    }
    assert [float(v) for v in rows["meanshift"]] == [0.0, 0.08, -0.08, 0.15, -0.15]  # the reference's values
    assert [float(v) for v in rows["lincontrchange"]] == [0.0, 0.15, -0.4, 0.3, -0.6]


def test_distortions_says_which_levels_are_not_ordered_by_strength():
    """The caption said every row goes from mild to strong; meanshift's and lincontrchange's values alternate in
    sign (KADID-10k's viewers found meanshift's level 3 the mildest)."""
    result = runner.invoke(app, ["distortions"])
    unordered = [n for n, v in LEVELS.items() if sorted(v) != list(v) and sorted(v, reverse=True) != list(v)]
    caption = " ".join(result.output.split("┘")[-1].split())  # the lines under the table, one space apart
    assert unordered == ["meanshift", "lincontrchange"]
    assert caption.endswith(f"from mild to strong ({' and '.join(unordered)}: not ordered, signs alternate)")


def test_distortions_lists_the_table_without_importing_torch():
    # before: listing the data imported every implementation, torch and torchvision: 6.4 s and 870 MB here
    done, report = fresh_cli("distortions")
    assert done.returncode == 0, done.stderr
    assert report["heavy"] == []
    listed = [line.split("│")[2].strip() for line in done.stdout.splitlines() if line.count("│") == 8]
    assert sorted(listed) == sorted(NAMES)


def test_distort_imports_torchvision_and_scipy_only_for_the_distortions_that_use_them(photo, tmp_path):
    # before: every distortion imported torchvision (jpeg's codec, and with it torchvision's models and torch._dynamo)
    # and scipy.interpolate (lincontrchange's spline): 3.5 s of the 8.5 s of `arniqa distort -n gaublur` here
    for name, torchvision, scipy in (("gaublur", False, False), ("jpeg", True, False), ("lincontrchange", False, True)):
        done, report = fresh_cli("distort", photo, "-n", name, "-l", "3", "-o", tmp_path / f"{name}.png")
        assert done.returncode == 0, done.stderr
        assert "torch" in report["heavy"]
        assert ("torchvision" in report["heavy"], "scipy.interpolate" in report["scipy"]) == (torchvision, scipy), name


def test_distort_writes_the_distorted_image(photo, tmp_path):
    out = tmp_path / "out" / "blurred.png"
    result = runner.invoke(app, ["distort", str(photo), "--name", "gaublur", "--level", "4", "-o", str(out)])
    assert result.exit_code == 0, messages(result)
    source = np.asarray(Image.open(photo), dtype=float)
    blurred = np.asarray(Image.open(out), dtype=float)
    assert blurred.shape == source.shape
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.7 * np.abs(np.diff(source, axis=1)).mean()


def test_distort_seed_reproduces_noise(photo, tmp_path):
    outs = [tmp_path / f"{i}.png" for i in range(3)]
    for out, seed in zip(outs, ["7", "7", "8"]):
        args = ["distort", str(photo), "-n", "whitenoise", "-l", "5", "-o", str(out), "--seed", seed]
        assert runner.invoke(app, args).exit_code == 0
    first, again, other = (np.asarray(Image.open(p)) for p in outs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--name", "blurr", "--level", "2"], "unknown distortion 'blurr'"),
        (["--name", "jpeg", "--level", "6"], "level must be an integer from 1 to 5"),
        (["--name", "jpeg", "--level", "0"], "level must be an integer from 1 to 5"),
    ],
)
def test_distort_bad_arguments_fail_with_message(photo, tmp_path, args, message):
    result = runner.invoke(app, ["distort", str(photo), *args, "-o", str(tmp_path / "o.png")])
    assert result.exit_code == EXIT_USAGE
    assert message in messages(result)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("verb", [["distort", "-n", "whitenoise", "-l", "1"], ["gallery", "--size", "16"]])
@pytest.mark.parametrize("seed", ["99999999999999999999", "4294967296", "-1"])
def test_a_seed_outside_0_to_2_to_the_32_is_refused_naming_the_option(photo, tmp_path, verb, seed):
    """--seed 99999999999999999999 was torch's 'Overflow when unpacking long long', naming nothing; the seeds are now
    0 to 2**32 - 1, as training's and the benchmark's, refused before any work."""
    out = tmp_path / "o.png"
    result = runner.invoke(app, [verb[0], str(photo), *verb[1:], "--seed", seed, "-o", str(out)])
    assert result.exit_code == EXIT_USAGE and "--seed" in result.output and not out.exists()


def test_distort_unreadable_image_fails_with_message(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = runner.invoke(app, ["distort", str(bad), "-n", "jpeg", "-l", "2", "-o", str(tmp_path / "o.png")])
    assert result.exit_code == EXIT_USAGE
    assert "notes.png" in messages(result)
    out = tmp_path / "x.png"
    missing = runner.invoke(app, ["distort", str(tmp_path / "nope.png"), "-n", "jpeg", "-l", "2", "-o", str(out)])
    assert missing.exit_code == EXIT_USAGE and "nope.png" in messages(missing)
    assert not out.exists()


@pytest.mark.parametrize("verb", [["distort", "-n", "jpeg", "-l", "2"], ["gallery", "--size", "16"]])
@pytest.mark.parametrize("width, height", [(20_000, 10_000), (10_001, 10_000)])
def test_an_image_over_the_pixel_bound_is_refused_with_the_other_verbs_line(tmp_path, verb, width, height):
    """distort and gallery opened with PIL's limit alone: 200 million pixels said PIL's own text ('exceeds limit of
    178956970 pixels, could be decompression bomb DOS attack'), 100,010,000 were decoded (1.2 GB, a traceback
    under a 2 GB memory limit). Now the project's bound of 100 million, in the line the other verbs print."""
    big, out = tmp_path / "big.png", tmp_path / "o.png"
    big.write_bytes(png_header_only(width, height))
    result = runner.invoke(app, [verb[0], str(big), *verb[1:], "-o", str(out)])
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip() == (
        f"error: {big}: image too large: {width * height} pixels, over the bound of 100000000; downscale it"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["distort", "missing.jpg", "-n", "jpeg", "-l", "2", "-o", "o.png"], "missing.jpg: no such file"),
        (["distort", "notes.png", "-n", "jpeg", "-l", "2", "-o", "o.png"], "notes.png: "),
        (["distort", "photo.png", "-n", "blurr", "-l", "2", "-o", "o.png"], "unknown distortion 'blurr'"),
        (["distort", "photo.png", "-n", "jpeg", "-l", "6", "-o", "o.png"], "level must be an integer from 1 to 5"),
        (["gallery", "missing.jpg"], "missing.jpg: no such file"),
        (["gallery", "photo.png", "--size", "4"], "tile size must be 16 to 1024 px, got 4"),
    ],
)
def test_a_usage_error_is_one_line_before_torch_is_imported(photo, tmp_path, monkeypatch, args, message):
    # before: the degradation model (torch, torchvision) was imported first: 3.9-4.2 s and 870 MB here
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    done, report = fresh_cli(*args)
    assert (done.returncode, report["heavy"]) == (EXIT_USAGE, []), done.stderr
    lines = done.stderr.splitlines()[:-1]  # the last: fresh_cli's report
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("name", ["[bold]o.png", "a[/]b.png"])  # rich markup: a wrong name, or a MarkupError
def test_distort_and_gallery_name_outputs_with_brackets_as_they_are(photo, tmp_path, name):
    for verb in (["distort", str(photo), "-n", "jpeg", "-l", "2"], ["gallery", str(photo), "--size", "16"]):
        out = tmp_path / verb[0] / name
        result = runner.invoke(app, [*verb, "-o", str(out)], env={"COLUMNS": "1000"})
        assert result.exit_code == 0, messages(result)
        assert f"wrote {out} (" in result.output and out.is_file()


def test_gallery_size_grows_with_the_tile_size(photo, tmp_path):
    sizes = {}
    for size in (24, 32):
        out = tmp_path / f"grid{size}.png"
        result = runner.invoke(app, ["gallery", str(photo), "-o", str(out), "--size", str(size)])
        assert result.exit_code == 0, messages(result)
        with Image.open(out) as picture:
            assert picture.format == "PNG" and picture.mode == "RGB"
            sizes[size] = picture.size
    (w24, h24), (w32, h32) = sizes[24], sizes[32]
    assert w32 - w24 == 5 * 8  # five level columns
    assert h32 - h24 == 24 * 8  # 24 distortion rows
    assert w24 > 5 * 24 and h24 > 24 * 24


def test_gallery_without_image_uses_the_sample_photo(tmp_path):
    out = tmp_path / "grid.png"
    result = runner.invoke(app, ["gallery", "-o", str(out), "--size", "24", "--seed", "1"])
    assert result.exit_code == 0, messages(result)
    assert "astronaut" in result.output
    assert Image.open(out).size[1] > 24 * 24


@pytest.mark.parametrize("size", [4, 100_000])  # 100,000 px tiles: a 120 GB allocation and a traceback
def test_gallery_rejects_a_tile_size_it_cannot_draw(photo, tmp_path, size):
    result = runner.invoke(app, ["gallery", str(photo), "-o", str(tmp_path / "g.png"), "--size", str(size)])
    assert result.exit_code == EXIT_USAGE
    assert f"tile size must be 16 to 1024 px, got {size}" in messages(result)
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("verb", [["gallery"], ["distort", "-n", "jpeg", "-l", "2"]])
def test_an_output_pillow_cannot_write_is_refused_before_any_work(photo, tmp_path, monkeypatch, verb):
    """gallery -o g.txt drew the 120 tiles, then said Pillow cannot write .txt; now it says so first."""
    import arniqa.degradations
    import arniqa.reports.gallery

    def no_work(*args, **kwargs):
        raise AssertionError("the picture was made before the output was checked")

    monkeypatch.setattr(arniqa.reports.gallery, "draw_gallery", no_work)
    monkeypatch.setattr(arniqa.degradations, "distort", no_work)
    result = runner.invoke(app, [verb[0], str(photo), *verb[1:], "-o", str(tmp_path / "g.txt")])
    assert result.exit_code == EXIT_USAGE, messages(result)
    assert "g.txt: cannot write it: Pillow has no writer for the extension .txt" in messages(result)


@pytest.mark.parametrize("folder", ["grid.png", "grid"])
@pytest.mark.parametrize("verb", [["gallery"], ["distort", "-n", "jpeg", "-l", "2"]])
def test_an_output_that_is_a_folder_is_refused_before_any_work(photo, tmp_path, monkeypatch, verb, folder):
    """-o grid.png, a folder, made the picture and then said it is a folder; -o grid (a folder) said Pillow has no
    writer for the extension (none). Both now say it is a folder, first."""
    import arniqa.degradations
    import arniqa.reports.gallery

    def no_work(*args, **kwargs):
        raise AssertionError("the picture was made before the output was checked")

    monkeypatch.setattr(arniqa.reports.gallery, "draw_gallery", no_work)
    monkeypatch.setattr(arniqa.degradations, "distort", no_work)
    out = tmp_path / folder
    out.mkdir()
    result = runner.invoke(app, [verb[0], str(photo), *verb[1:], "-o", str(out)])
    assert result.exit_code == EXIT_USAGE, messages(result)
    assert f"{out}: cannot write it: is a folder" in messages(result)
    assert out.is_dir() and not any(out.iterdir())


def test_an_image_a_distortion_cannot_take_is_one_line_naming_the_file(tmp_path):
    """A panorama wider than libjpeg's 65500 px said `error: jpeg codes images of at most 65500 px on a side, got
    (2, 65501)`: no file, nothing to do. Now the file, the problem and what to do, and no output."""
    wide, out = tmp_path / "wide.png", tmp_path / "o.png"
    Image.fromarray(np.zeros((2, 65501, 3), np.uint8)).save(wide)
    result = runner.invoke(app, ["distort", str(wide), "-n", "jpeg", "-l", "2", "-o", str(out)])
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip() == (
        f"error: {wide}: jpeg codes images of at most 65500 px on a side, got (2, 65501); downscale or crop it"
    )
    assert not out.exists()


def _profile(space: bytes = b"RGB ") -> bytes:
    """An ICC profile (lcms's sRGB) whose header names the colour space ``space``."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return srgb[:16] + space + srgb[20:]


@pytest.mark.parametrize("source", ["tagged.png", "tagged.jpg"])
def test_distort_and_gallery_keep_the_inputs_rgb_icc_profile(photo, tmp_path, source):
    """The output was written untagged: a Display-P3 or Adobe RGB photo came out in other colours than the input in
    any colour-managed viewer. The input's profile now goes on PNG and JPEG outputs."""
    profile = _profile()
    tagged = tmp_path / source
    Image.open(photo).save(tagged, icc_profile=profile)
    for verb in (["distort", str(tagged), "-n", "jpeg", "-l", "2"], ["gallery", str(tagged), "--size", "16"]):
        for suffix in (".png", ".jpg"):
            out = tmp_path / f"{verb[0]}{suffix}"
            result = runner.invoke(app, [*verb, "-o", str(out)])
            assert result.exit_code == 0, messages(result)
            with Image.open(out) as written:
                assert written.info.get("icc_profile") == profile, (verb[0], suffix)


def test_a_profile_of_other_colours_than_rgb_is_not_written_on(tmp_path):
    """A CMYK JPEG's profile (or a 16-bit gray PNG's) describes the file's CMYK (gray) values, not the RGB pixels
    decoded from them: written on an RGB output it would be wrong, so the output has none."""
    cmyk = write_jpeg(tmp_path / "cmyk.jpg", 40, 32, mode="CMYK")
    Image.open(cmyk).save(cmyk, icc_profile=_profile(b"CMYK"))
    gray = tmp_path / "gray16.png"
    Image.fromarray(np.arange(40 * 32, dtype=np.uint16).reshape(32, 40) * 50).save(gray, icc_profile=_profile(b"GRAY"))
    for source in (cmyk, gray):
        out = tmp_path / f"{source.stem}-out.png"
        result = runner.invoke(app, ["distort", str(source), "-n", "jpeg", "-l", "2", "-o", str(out)])
        assert result.exit_code == 0, messages(result)
        with Image.open(out) as written:
            assert written.mode == "RGB" and "icc_profile" not in written.info


def test_distort_writes_an_exif_rotated_photo_upright_as_viewers_show_it(tmp_path):
    rotated, out = write_jpeg(tmp_path / "phone.jpg", 48, 32, orientation=6), tmp_path / "o.png"
    result = runner.invoke(app, ["distort", str(rotated), "-n", "gaublur", "-l", "1", "-o", str(out)])  # identity
    assert result.exit_code == 0, messages(result)
    with Image.open(rotated) as source, Image.open(out) as written:
        upright = np.asarray(ImageOps.exif_transpose(source).convert("RGB"))
        assert written.size == (32, 48) and written.getexif().get(0x0112) is None
        np.testing.assert_array_equal(np.asarray(written), upright)


def test_distort_shows_a_spinner_while_it_reads_distorts_and_writes(photo, tmp_path, monkeypatch):
    """A 12-megapixel photo took 5-17 s (jitter, lensblur, jpeg2000 and the decoding and encoding around them) with
    nothing shown; the work now runs under the verbs' progress bar (drawn on a terminal), naming what it does."""
    import arniqa.cli.degradations as verb
    import arniqa.degradations
    from arniqa.utils.console import progress_bar

    tasks, live = [], []

    def recording(*columns, **options):
        bar = progress_bar(*columns, **options)
        add_task, stop = bar.add_task, bar.stop
        monkeypatch.setattr(bar, "add_task", lambda what, **kw: tasks.append(what) or add_task(what, **kw))
        monkeypatch.setattr(bar, "stop", lambda: tasks.append("stopped") or stop())
        return bar

    distort = arniqa.degradations.distort
    monkeypatch.setattr(verb, "progress_bar", recording)
    monkeypatch.setattr(arniqa.degradations, "distort", lambda *a, **k: live.append(list(tasks)) or distort(*a, **k))
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["distort", str(photo), "-n", "jitter", "-l", "3", "-o", str(out)])
    assert result.exit_code == 0, messages(result)
    assert live == [[f"jitter, level 3: {photo} -> {out}"]]  # the distortion ran with the bar up
    assert tasks[-1] == "stopped" and out.is_file()


@pytest.mark.parametrize(
    "verb",
    [
        ["distort", "missing.png", "-n", "jpeg", "-l", "2"],
        ["distort", "wide.png", "-n", "jpeg", "-l", "2"],  # fails in the distortion, after the decoding
        ["gallery", "missing.png"],
        ["gallery", "wide.png", "--size", "2000"],
    ],
)
def test_a_failed_distort_or_gallery_leaves_no_empty_folder_it_made(tmp_path, monkeypatch, verb):
    """-o new/deeper/o.png made both folders first, and a missing input, a panorama jpeg cannot code or a tile size
    out of bounds then left them empty; as the other verbs, a run that fails removes the empty folders it made."""
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((2, 65501, 3), np.uint8)).save("wide.png")
    result = runner.invoke(app, [*verb, "-o", str(tmp_path / "new" / "deeper" / "o.png")])
    assert result.exit_code == EXIT_USAGE, messages(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.png"]


@pytest.mark.parametrize("verb", ["distort", "gallery"])
def test_an_error_on_a_terminal_is_a_line_of_its_own_not_after_the_spinner(tmp_path, monkeypatch, verb):
    """On a terminal, an error while the spinner was drawn (a photo the distortion cannot take, a full disk) was
    written on the spinner's line: 'jpeg, level 2: wide.png -> o.png 0:00:00error: wide.png: ...'. The spinner is
    cleared first, and the error line starts a line of its own."""
    import re

    import arniqa.reports.gallery

    def cannot(*args, **kwargs):
        raise ValueError("no tiles today")

    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as rich sees one
    monkeypatch.setattr(arniqa.reports.gallery, "draw_gallery", cannot)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((2, 65501, 3), np.uint8)).save("wide.png")
    args = ["-n", "jpeg", "-l", "2"] if verb == "distort" else []
    result = runner.invoke(app, [verb, "wide.png", *args, "-o", "o.png"])
    assert result.exit_code == EXIT_USAGE
    assert "\x1b[" in result.stderr  # drawn
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr).replace("\r", "\n")  # colours, cursor moves
    problem = "jpeg codes images of at most 65500 px on a side, got (2, 65501); downscale or crop it"
    line = f"error: wide.png: {problem}" if verb == "distort" else "error: no tiles today"
    assert [text for text in screen.splitlines() if "error:" in text] == [line]


def test_distort_keeps_a_png_profile_past_pils_limit_and_says_when_the_output_cannot_hold_one(photo, tmp_path):
    """A PNG's ICC profile over PIL's 1 MiB limit was dropped from the output without a word (read as none); a
    BMP output, which holds no profile, dropped it silently too."""
    from arniqa.data.images import open_image
    from arniqa.data.png import PROFILE_MAX

    big = _profile() + bytes(range(256)) * (2 << 12)  # 2 MiB more: a LUT-based profile's size
    tagged = tmp_path / "tagged.png"
    Image.open(photo).convert("RGBA").save(tagged, icc_profile=big)
    out = tmp_path / "o.png"
    result = runner.invoke(app, ["distort", str(tagged), "-n", "gaublur", "-l", "1", "-o", str(out)])
    assert result.exit_code == 0 and "warning" not in messages(result), messages(result)
    assert open_image(out).info["icc_profile"] == big  # PIL's own decoder refuses a profile this size
    bmp = tmp_path / "o.bmp"
    result = runner.invoke(app, ["distort", str(tagged), "-n", "gaublur", "-l", "1", "-o", str(bmp)])
    assert result.exit_code == 0, messages(result)
    said = f"warning: {bmp}: written without the input's colour profile (BMP files hold none); write a .png to keep it"
    assert said in messages(result).splitlines()
    huge = _profile() + bytes(PROFILE_MAX)  # past what a JPEG holds: PIL would write a broken profile
    Image.open(photo).save(tmp_path / "huge.tif", icc_profile=huge)
    jpg = tmp_path / "o.jpg"
    result = runner.invoke(app, ["distort", str(tmp_path / "huge.tif"), "-n", "gaublur", "-l", "1", "-o", str(jpg)])
    assert result.exit_code == 0, messages(result)
    assert f"({len(huge):,} bytes, more than the 16,707,345 a JPEG holds)" in messages(result)
    with Image.open(jpg) as written:
        assert "icc_profile" not in written.info


def test_distort_ends_its_spinner_before_the_colour_profile_warning(photo, tmp_path, monkeypatch):
    """The warning that the output holds no colour profile was written while distort's spinner was drawn (on a
    terminal the two ran into one line). Now the spinner is stopped first, as before an error line."""
    from arniqa.utils import console, messages

    said = []

    class Spinner:  # a progress bar being drawn
        def stop(self):
            said.append("spinner stopped")
            console._DRAWN.remove(self)

    monkeypatch.setattr(console, "_DRAWN", [Spinner()])
    monkeypatch.setattr(messages, "say", said.append)
    tagged = tmp_path / "tagged.png"
    Image.open(photo).save(tagged, icc_profile=_profile())
    from arniqa.cli.degradations import _save

    _save(Image.open(tagged).convert("RGB"), tmp_path / "o.bmp", "BMP", Image.open(tagged))
    assert said == [
        "spinner stopped",
        f"warning: {tmp_path / 'o.bmp'}: written without the input's colour profile (BMP files hold none); "
        "write a .png to keep it",
    ]
