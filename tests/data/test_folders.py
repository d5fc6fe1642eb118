"""The one walk and image-file rule of every command that reads folders: which files, in which order, and what
is said of the rest."""

import os
import re
import sys

import numpy as np
import pytest
from imaging import APPLE_DOUBLE, POSTSCRIPT, write_phone_photos, write_photo
from PIL import Image
from streams import stderr_writes

from arniqa.data.folders import Broken, image_rule, is_image, list_images, skipped_summary, training_images, walk
from arniqa.data.images import IMAGE_EXTENSIONS


def _opens(path) -> bool:
    """The reference rule, independent of arniqa: PIL (or pillow-heif, registered) identifies the file."""
    try:
        with Image.open(path):
            return True
    except Exception:
        return False


def test_list_images_keeps_the_files_of_every_format_the_decoder_opens(tmp_path):
    """HEIC and AVIF photos too, hidden files too, in the whole tree, sorted; no other files, no folders."""
    phones = write_phone_photos(tmp_path / "photos" / "phones")
    plain = [write_photo(tmp_path / "photos" / name, 8, 8, 0) for name in ("b.PNG", ".hidden.jpg", "c.ppm")]
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "figure.eps").write_bytes(POSTSCRIPT)  # a format never opened
    (tmp_path / "photos" / "folder.png").mkdir()
    assert list_images(tmp_path / "photos") == sorted([*phones, *plain])
    with pytest.raises(ValueError, match="not a folder"):
        list_images(tmp_path / "photos" / "b.PNG")


def test_list_images_of_no_folder_says_what_to_give(tmp_path):
    """Said `photo.png: not a folder of images` and nothing to do (explain fit, benchmark synthetic, ablate)."""
    (tmp_path / "photo.png").write_bytes(b"")
    for path, problem in ((tmp_path / "photo.png", "not a folder"), (tmp_path / "typo", "no such folder")):
        with pytest.raises(ValueError) as e:
            list_images(path)
        assert str(e.value) == f"{path}: {problem}; give a folder holding image files"


def test_an_image_is_known_by_its_header_whatever_its_name(tmp_path):
    # before: training and benchmarks listed by extension only, so a photo saved without one (or as .dat) was
    # left out, while `arniqa score` of the same folder scored it
    pixels = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    for name, fmt in (("a.jpg", "JPEG"), ("b", "PNG"), ("c.dat", "JPEG"), ("d.txt", None)):
        path = tmp_path / name
        path.write_text("plain text") if fmt is None else Image.fromarray(pixels).save(path, fmt)
    expected = sorted(p for p in tmp_path.iterdir() if _opens(p))
    assert [p.name for p in expected] == ["a.jpg", "b", "c.dat"]
    assert list_images(tmp_path) == expected


def test_a_macs_appledouble_files_are_skipped_whatever_their_extension(tmp_path, capsys):
    """A Mac copying IMG_1.JPG to a share or a FAT disk writes ._IMG_1.JPG beside it (AppleDouble: its metadata, no
    image). Listed by their extension, each was an error row ('not an image file PIL can read'), exit 1 on every
    run of a library; now they are counted in the skipped note. An image so named is still known by its header."""
    write_photo(tmp_path / "IMG_1.JPG", 16, 12, 0)
    write_photo(tmp_path / "._real.png", 16, 12, 1)
    for name in ("._IMG_1.JPG", "._b.png", "._c"):
        (tmp_path / name).write_bytes(APPLE_DOUBLE)
    assert list_images(tmp_path) == [tmp_path / "._real.png", tmp_path / "IMG_1.JPG"]
    assert capsys.readouterr().err == (
        f"warning: {tmp_path}: skipped 3 files no decoder can open: 3 ._* (Mac AppleDouble)\n"
    )
    assert is_image(tmp_path / "IMG_1.JPG") and not is_image(tmp_path / "._IMG_1.JPG")


def test_the_files_arniqa_writes_beside_an_output_are_counted_as_its_own(tmp_path, capsys):
    """arniqa score photos/ -o photos/s.csv leaves .s.csv.arniqa.json beside it (and .s.csv.lock while a run
    writes it): the next walk of photos/ counted them as a .json and a .lock file the user never put there. A file
    so named beside no file of that name is not arniqa's: it is counted by its extension."""
    from arniqa.cli.result_files import settings_file
    from arniqa.utils.locks import lock_file

    write_photo(tmp_path / "a.png", 16, 12, 0)
    out = tmp_path / "s.csv"
    out.write_text("path,score,raw_score,error\n")
    for own in (settings_file(out), lock_file(out)):
        own.write_text("{}")
    (tmp_path / "notes.json").write_text("{}")  # the user's own: still by its extension
    # so named, but no file of arniqa's beside what they name (before: counted as arniqa's own, by name alone)
    for name in (".notes.lock", ".sync.arniqa.json", ".lock", "..lock"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / ".arniqa.lock").write_text("")  # arniqa map -o maps: the lock of its output folder
    assert list_images(tmp_path) == [tmp_path / "a.png"]
    assert capsys.readouterr().err == (
        f"warning: {tmp_path}: skipped 9 files no decoder can open: 3 arniqa's own (.NAME.lock, .NAME.arniqa.json), "
        "2 .json, 2 .lock, 1 (no extension), 1 .csv\n"
    )


def test_a_tree_deeper_than_the_recursion_limit_is_listed(tmp_path):
    # before: list_images went through Path.rglob, which recurses once per level: 1100 nested folders were a
    # RecursionError traceback from `arniqa train`, `benchmark synthetic` and `explain fit`
    depth = sys.getrecursionlimit() + 100
    fds = [os.open(tmp_path, os.O_RDONLY)]  # made through folder descriptors: os.makedirs recurses per level
    for _ in range(depth):
        os.mkdir("d", dir_fd=fds[-1])
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    with os.fdopen(os.open("x.png", os.O_CREAT | os.O_WRONLY, dir_fd=fds[-1]), "wb") as f:
        Image.new("RGB", (4, 4)).save(f, "PNG")
    try:
        assert list_images(tmp_path) == [tmp_path.joinpath(*["d"] * depth, "x.png")]
    finally:
        os.unlink("x.png", dir_fd=fds[-1])
        while len(fds) > 1:
            os.close(fds.pop())
            os.rmdir("d", dir_fd=fds[-1])
        os.close(fds[0])


def test_what_is_left_out_is_said_in_one_line(tmp_path):
    # before: dangling links, FIFOs and non-images vanished from a training or benchmark listing without a word;
    # then the line came in two writes (print's newline apart), which torchrun's ranks listing one folder interleaved
    write_photo(tmp_path / "a.png", 8, 8, 0)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    os.mkfifo(tmp_path / "pipe.png")
    line = (
        f"warning: {tmp_path}: skipped 1 file no decoder can open: 1 .txt; 2 entries that are no file: "
        f"{tmp_path / 'gone.jpg'} (dangling link), {tmp_path / 'pipe.png'} (FIFO)\n"
    )
    with stderr_writes() as writes:
        assert list_images(tmp_path) == [tmp_path / "a.png"]
        assert writes == [line]
        assert list_images(tmp_path) == [tmp_path / "a.png"] and writes == [line, line]  # said each time


def test_a_link_to_a_folder_is_named_not_followed(tmp_path, capsys):
    # before: a linked folder of a training or benchmark folder was left out without a word
    write_photo(tmp_path / "a.png", 8, 8, 0)
    (tmp_path / "elsewhere").mkdir()
    write_photo(tmp_path / "elsewhere" / "b.png", 8, 8, 0)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").symlink_to(tmp_path / "a.png")  # a link to a file is followed
    (tmp_path / "in" / "more").symlink_to(tmp_path / "elsewhere")
    assert list_images(tmp_path / "in") == [tmp_path / "in" / "a.png"]
    assert capsys.readouterr().err == (
        f"warning: {tmp_path / 'in'}: skipped 1 link to a folder: {tmp_path / 'in' / 'more'} (not followed)\n"
    )
    reported = []
    assert list(walk(tmp_path / "in", lambda path, why: reported.append((path, why)))) == [tmp_path / "in" / "a.png"]
    assert reported == [(str(tmp_path / "in" / "more"), "link to a folder")]


# a photo library on a NAS or a shared disk, as its systems leave it: (folder, a file they put there)
SYSTEM_FILES = [
    ("@eaDir", "IMG_1.JPG/SYNOPHOTO_THUMB_XL.jpg"),  # Synology's thumbnails, one folder per photo
    ("#recycle", "old.jpg"),
    ("#snapshot", "GMT+00_2026-01-01/IMG_1.JPG"),
    (".@__thumb", "default.IMG_1.JPG"),  # QNAP
    ("@Recycle", "old.jpg"),
    ("@Recently-Snapshot", "GMT+00_2026-01-01/IMG_1.JPG"),
    (".snapshot", "hourly.0/IMG_1.JPG"),
    ("~snapshot", "hourly.0/IMG_1.JPG"),
    ("$Recycle.Bin", "S-1-5-21/$R1.jpg"),  # Windows (its case since Vista)
    ("System Volume Information", "x.png"),
    (".Trashes", "501/old.jpg"),  # macOS
    (".Spotlight-V100", "Store-V2/x.png"),
    (".fseventsd", "x.png"),
    (".DocumentRevisions-V100", "x.png"),
    (".TemporaryItems", "x.png"),
    (".AppleDouble", "IMG_1.JPG"),  # netatalk: the metadata of IMG_1.JPG, no JPEG
    ("lost+found", "#1234.jpg"),  # Linux
    (".Trash", "old.jpg"),
    (".Trash-1000", "files/old.jpg"),
]


def test_the_system_folders_of_a_nas_or_a_disk_are_named_not_entered(tmp_path, capsys):
    """arniqa score library/ on a Synology share scored each photo's thumbnails in @eaDir as photos (and the trash,
    the snapshots: every photo again); training on such a root trained on them. A folder so named is not entered
    now, and named in the note; other folders, hidden ones too, are walked as before."""
    library = tmp_path / "library"
    for i, (folder, file) in enumerate(SYSTEM_FILES):
        (library / "2026" / folder / file).parent.mkdir(parents=True, exist_ok=True)
        write_photo(library / "2026" / folder / file, 8, 8, i)
    photos = [library / "2026" / name for name in (".edits/IMG_1.JPG", "IMG_1.JPG", "eaDir/b.png", "recycle/c.png")]
    for i, photo in enumerate(photos):
        photo.parent.mkdir(exist_ok=True)
        write_photo(photo, 8, 8, i)
    assert list_images(library) == photos
    systems = sorted(str(library / "2026" / folder) for folder, _ in SYSTEM_FILES)
    assert capsys.readouterr().err == (
        f"warning: {library}: skipped {len(SYSTEM_FILES)} system folders: {', '.join(systems[:10])}, ... "
        "(thumbnails, trash, snapshots: not entered)\n"
    )
    thumbs = library / "2026" / "@eaDir"
    assert list_images(thumbs) == [thumbs / "IMG_1.JPG" / "SYNOPHOTO_THUMB_XL.jpg"]  # named, it is walked
    assert capsys.readouterr().err == ""


def test_skipped_summary_names_system_folders_apart_and_says_how_to_take_one():
    reported = [("a/@eaDir", "system folder"), ("l0", "link to a folder"), ("f0", "FIFO")]
    assert skipped_summary([], reported, "score") == (
        "skipped 1 link to a folder: l0 (not followed; give it as a path to score it); 1 system folder: a/@eaDir "
        "(thumbnails, trash, snapshots: not entered; give it as a path to score it); 1 entry that is no file: f0 "
        "(FIFO)"
    )


def test_nothing_skipped_says_nothing(tmp_path, capsys):
    write_photo(tmp_path / "a.png", 8, 8, 0)
    assert list_images(tmp_path) == [tmp_path / "a.png"]
    assert capsys.readouterr().err == ""
    assert skipped_summary() == ""


def test_an_output_folder_inside_is_excluded_with_its_files(tmp_path, capsys):
    write_photo(tmp_path / "a.png", 8, 8, 0)
    (tmp_path / "out" / "images").mkdir(parents=True)
    write_photo(tmp_path / "out" / "images" / "a_01_01.png", 8, 8, 0)
    (tmp_path / "out" / "labels.csv").write_text("x")
    (tmp_path / "out" / "gone.png").symlink_to(tmp_path / "missing.png")
    assert list_images(tmp_path, exclude=tmp_path / "out") == [tmp_path / "a.png"]
    assert capsys.readouterr().err == ""  # the output's own files are not reported as skipped


def test_an_output_folder_inside_is_never_listed(tmp_path, monkeypatch):
    """`arniqa map photos -o photos/maps` (or `benchmark synthetic --pristine photos -o photos/kadid`) listed every
    folder of its own output on each run and stat'ed each of its files (100,000 maps, or 10,125 distorted images)
    only to drop them afterwards; the walk now leaves the output folder out: no listing of it or of a folder in it,
    and no file of it given, also through a path written with `..`."""
    for name in ("a.png", "out/b.png", "out/deep/c.png", "outer/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_photo(tmp_path / name, 8, 8, 0)
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(os.path.abspath(path)) or scandir(path))
    out = tmp_path / "outer" / ".." / "out"
    assert list(walk(tmp_path, exclude=out)) == [tmp_path / "a.png", tmp_path / "outer" / "d.png"]
    assert list_images(tmp_path, exclude=out) == [tmp_path / "a.png", tmp_path / "outer" / "d.png"]
    assert list(walk(tmp_path / "out" / "deep", exclude=out)) == []
    own = str(tmp_path / "out")
    assert not [p for p in listed if p == own or p.startswith(own + os.sep)] and str(tmp_path / "outer") in listed


def test_walk_order_is_sorted_rglob_order(tmp_path):
    for name in ("b/z.png", "b/a.jpg", "a.txt", "a/c/d.png", "a.png", "a-b/e.png", "B.png", "b.notes"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert list(walk(tmp_path)) == [p for p in sorted(tmp_path.rglob("*")) if p.is_file()]


def test_skipped_summary_names_ten_entries_and_counts_the_rest():
    broken = [(f"f{i}", "dangling link") for i in range(12)]
    line = skipped_summary(["a.txt", "b.txt", "c"], broken)
    assert line.startswith("skipped 3 files no decoder can open: 2 .txt, 1 (no extension); 12 entries that are no")
    assert line.count("(dangling link)") == 10 and line.endswith("f9 (dangling link), ...")


def test_skipped_summary_names_links_to_folders_apart_from_the_entries_that_are_no_file():
    # before: the links were counted, not named ("2 links to folders (not followed: ...)")
    reported = [("f0", "dangling link"), ("l0", "link to a folder"), ("l1", "link to a folder")]
    broken = Broken()
    for path, why in reported:
        broken(path, why)
    for entries in (reported, broken):  # collect_paths's list, score's Broken
        assert skipped_summary([], entries, "map") == (
            "skipped 2 links to folders: l0, l1 (not followed; give each as a path to map it); 1 entry that is no "
            "file: f0 (dangling link)"
        )
    assert skipped_summary([], reported[1:2]) == "skipped 1 link to a folder: l0 (not followed)"


def test_skipped_summary_names_ten_links_to_folders_and_counts_the_rest():
    broken = Broken()
    for i in range(12):
        broken(f"l{i:02}", "link to a folder")
    assert skipped_summary([], broken) == (
        "skipped 12 links to folders: " + ", ".join(f"l{i:02}" for i in range(10)) + ", ... (not followed)"
    )


def test_image_rule_names_suffixes_the_rule_takes_and_counts_the_others(tmp_path):
    """What `no image files found` tells to give: the suffixes named are ones a folder walk keeps (in any case),
    the count of the others makes up the whole set, and a file of another name counts by its header."""
    m = re.fullmatch(
        r"files ending in (.+) or (\d+) other suffixes \(any case\), or whose header a decoder recognises", image_rule()
    )
    shown = m.group(1).split(", ")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.dat", format="PNG")
    assert ".jpg" in shown and ".png" in shown and is_image(tmp_path / "photo.dat")
    for suffix in shown:
        (tmp_path / f"a{suffix.upper()}").write_bytes(b"")
        assert is_image(tmp_path / f"a{suffix.upper()}"), suffix
    assert len(set(shown)) + int(m.group(2)) == len(IMAGE_EXTENSIONS)


def test_lists_a_tree_recursively_and_sorted(image_folder, tmp_path):
    (image_folder / "notes.txt").write_text("not an image")
    files = training_images(image_folder)
    assert len(files) == 6 and files == sorted(files)
    assert any(f.parent.name == "nested" for f in files)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files found"):
        training_images(tmp_path / "empty")
    with pytest.raises(ValueError, match="missing: no such folder \\(the training images\\)"):
        training_images(tmp_path / "missing")


def test_kadis_layout_takes_the_reference_pngs_only(tmp_path):
    root = tmp_path / "KADIS700"
    (root / "ref_imgs").mkdir(parents=True)
    (root / "dist_imgs").mkdir()
    for name in ("b.png", "a.png"):
        Image.new("RGB", (8, 8)).save(root / "ref_imgs" / name)
    Image.new("RGB", (8, 8)).save(root / "dist_imgs" / "a_01_01.png")
    assert [p.name for p in training_images(root)] == ["a.png", "b.png"]
    assert [p.name for p in training_images(tmp_path)] == ["a.png", "b.png"]  # the parent of KADIS700 works too


def test_a_kadis_copy_from_a_mac_trains_on_its_images_only(tmp_path, capsys):
    """KADIS-700k copied by a Mac to a share has ._a.png (AppleDouble metadata) beside each PNG: ref_imgs was listed
    by its own *.png glob, so training took them and stopped at the first batch holding one ('not an image file
    PIL can read'); ref_imgs is now listed by the folder walk's rule, the AppleDouble files counted in its note."""
    refs = tmp_path / "ref_imgs"
    refs.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(refs / name)
        (refs / f"._{name}").write_bytes(APPLE_DOUBLE)
    assert training_images(tmp_path) == [refs / "a.png", refs / "b.png"]
    assert capsys.readouterr().err == f"warning: {refs}: skipped 2 files no decoder can open: 2 ._* (Mac AppleDouble)\n"


def test_a_training_root_on_a_nas_trains_on_its_photos_not_their_thumbnails(tmp_path, capsys):
    """A Synology share keeps four thumbnails of each photo in @eaDir/NAME/: training took them as photos."""
    for name in ("a.jpg", "@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg", "@eaDir/a.jpg/SYNOPHOTO_THUMB_SM.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    assert training_images(tmp_path) == [tmp_path / "a.jpg"]
    assert f"1 system folder: {tmp_path / '@eaDir'} (" in capsys.readouterr().err


def test_a_folder_without_images_is_one_line_naming_it_and_what_counts(tmp_path, capsys):
    """An empty data.root was "no images (files of a format PIL or pillow-heif opens) found under '...'": the folder
    last, quoted, and no word of what to give, where every other verb names the folder first and the rule. What
    it skipped was a warning line before it; it is in the one line now, as arniqa score says it."""
    (tmp_path / "notes.txt").write_text("no image")
    with pytest.raises(ValueError) as err:
        training_images(tmp_path)
    message = str(err.value)
    assert message.startswith(
        f"{tmp_path}: no image files found, skipped 1 file no decoder can open: 1 .txt; give a folder holding image "
        "files: files ending in "
    )
    assert "\n" not in message and ".png" in message
    assert capsys.readouterr().err == ""
