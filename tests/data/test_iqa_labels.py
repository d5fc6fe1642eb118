"""The checks every dataset's labels pass in load_dataset: each image inside the dataset root, none named twice."""

import csv
import os
import re

import numpy as np
import pandas as pd
import pytest
import scipy.io
from faults import refuse_access
from PIL import Image

from arniqa.data.iqa import DatasetError, load_dataset

NOT_ONE = "so not a label file of one dataset; give the dataset's label file as it is distributed"


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (90, 120, 30)).save(path)


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def _rows(names, scores=None):
    return [[n, 50 + i if scores is None else scores[i]] for i, n in enumerate(names)]


# Each writer puts a label file naming `names` (with `scores`, default about 50) under `root` and returns it and
# the number of its first entry.
def flive(root, names, scores=None):
    _csv(root / "labels_image.csv", ["name", "mos"], _rows(names, scores))
    return root / "labels_image.csv", 2


def koniq(root, names, scores=None):
    _csv(root / "koniq10k_scores_and_distributions.csv", ["image_name", "MOS_zscore"], _rows(names, scores))
    return root / "koniq10k_scores_and_distributions.csv", 2


def custom(root, names, scores=None):
    _csv(root / "labels.csv", ["path", "score"], _rows(names, scores))
    return root / "labels.csv", 2


def live(root, names, scores=None):
    rows = [[f"LIVE/{n}", "jp2k", "LIVE/refimgs/r.bmp", s] for n, s in _rows(names, scores)]
    _csv(root / "LIVE.txt", ["dis_img_path", "dis_type", "ref_img_path", "score"], rows)
    return root / "LIVE.txt", 2


def clive(root, names, scores=None):
    (root / "Data").mkdir(exist_ok=True)
    cells = np.array(names, dtype=object).reshape(-1, 1)
    scipy.io.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
    scipy.io.savemat(
        root / "Data" / "AllMOS_release.mat",
        {"AllMOS_release": np.array([[50.0] * len(names) if scores is None else scores])},
    )
    return root / "Data" / "AllImages_release.mat", 1


def spaq(root, names, scores=None):
    pytest.importorskip("openpyxl")  # pandas writes the workbook with it (absent on the GPU host)
    (root / "Annotations").mkdir(exist_ok=True)
    path = root / "Annotations" / "MOS and Image attribute scores.xlsx"
    pd.DataFrame({"Image name": names, "MOS": [50.0] * len(names) if scores is None else scores}).to_excel(
        path, index=False
    )
    return path, 2


WRITERS = {"flive": flive, "koniq10k": koniq, "csv": custom, "live": live, "clive": clive, "spaq": spaq}
FOLDERS = {"flive": "database", "koniq10k": "1024x768", "spaq": "TestImage"}  # the names' folder, else the root


def _dataset(tmp_path, key, names, scores=None):
    root = tmp_path / "ds"
    root.mkdir()
    label, first = WRITERS[key](root, names, scores)
    folder = root / FOLDERS.get(key, "")
    for n in names:
        _img(folder / n)
    return root, label, folder, first


@pytest.mark.parametrize("key", WRITERS)
def test_an_image_named_twice_is_refused(tmp_path, key):
    root, label, folder, first = _dataset(tmp_path, key, ["a.png", "b.png", "sub/../a.png"])
    unit = "row" if label.suffix in (".mat", ".xlsx") else "line"
    name = str((folder / "a.png").relative_to(root))
    expected = (
        f"{label}: image {name!r} is named twice ({unit}s {first} and {first + 2}); remove the repeated {unit}, "
        "or a split could hold the image in train and test"
    )
    for check in (True, False):
        with pytest.raises(DatasetError) as info:
            load_dataset(key, root, check=check)
        assert str(info.value) == expected


@pytest.mark.parametrize("key", WRITERS)
def test_a_score_far_beyond_any_quality_scale_is_refused(tmp_path, key):
    """A MOS of ±1e308 loaded, and the ridge on it overflowed to a NaN regressor, written with exit 0."""
    root, label, _, first = _dataset(tmp_path, key, ["a.png", "b.png", "c.png"], [50.0, -1e308, 2e6])
    unit = "row" if label.suffix in (".mat", ".xlsx") else "line"
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == (
        f"{label}, {unit} {first + 1}: score -1e+308 is not a number within ±1e+06; "
        "give the scores on the dataset's own scale"
    )
    WRITERS[key](root, ["a.png", "b.png", "c.png"], [-1e6, 0.0, 1e6])  # the bounds themselves are scores
    assert load_dataset(key, root).scores.tolist() == [-1e6, 0.0, 1e6]


ESCAPES = [(key, escape) for key in WRITERS for escape in ("relative", "absolute")]
ESCAPES.remove(("live", "absolute"))  # LIVE.txt's first component stands for the root: "LIVE//x" is "LIVE/x"


@pytest.mark.parametrize("key, escape", ESCAPES)
def test_an_image_outside_the_root_is_refused(tmp_path, key, escape):
    secret = tmp_path / "outside" / "secret.png"
    _img(secret)
    name = str(secret) if escape == "absolute" else os.path.relpath(secret, tmp_path / "ds" / FOLDERS.get(key, ""))
    root, label, folder, first = _dataset(tmp_path, key, ["a.png", name])
    unit = "row" if label.suffix in (".mat", ".xlsx") else "line"
    expected = (
        f"{label}, {unit} {first + 1}: image {str(folder / name)!r} is outside the dataset root {root}; "
        "name images inside it (no absolute path, no '..' above the root)"
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root, check=False)
    assert str(info.value) == expected


@pytest.mark.parametrize("key", [k for k in WRITERS if k != "csv"])
def test_a_root_a_level_off_names_the_folder_that_holds_the_label_file(tmp_path, key):
    """A --root one level too high (an archive unpacked into a folder of its own) or too low (the image folder) said
    where the label file was expected and no more; the folder a level up or down that holds it is named, where one
    does."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png"])
    rel = label.relative_to(root)
    (root / "images").mkdir()
    for given, holder in ((tmp_path, root), (root / "images", root)):
        with pytest.raises(DatasetError) as info:
            load_dataset(key, given)
        assert str(info.value).startswith(f"{given / rel}: file not found (expected ")
        assert str(info.value).endswith(f"; give the dataset's folder as it is distributed ({holder} holds {rel})")
    (tmp_path / "copy" / rel).parent.mkdir(parents=True)
    (tmp_path / "copy" / rel).write_bytes(label.read_bytes())  # two folders hold one: neither is named
    with pytest.raises(DatasetError) as info:
        load_dataset(key, tmp_path)
    assert str(info.value).endswith("; give the dataset's folder as it is distributed")


def test_inside_the_root_through_a_symlink_or_dot_dot_is_accepted(tmp_path):
    """The check is lexical: a symlinked image folder and a '..' that stays inside the root load."""
    _img(tmp_path / "elsewhere" / "a.png")
    root = tmp_path / "ds"
    (root / "imgs").mkdir(parents=True)
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    _img(root / "imgs" / "b.png")
    custom(root, ["linked/a.png", "imgs/../imgs/b.png"])
    data = load_dataset("csv", root)
    assert data.paths == [root / "linked" / "a.png", root / "imgs" / "b.png"]


@pytest.mark.parametrize("check", [True, False])
def test_a_dot_dot_after_a_linked_folder_reads_the_file_inside_the_root(tmp_path, check):
    """sub -> elsewhere/deep: 'sub/../secret.png' passed the lexical check (it is root/secret.png) but the OS read
    elsewhere/secret.png, outside the root. The record now names the file the check passed."""
    _img(tmp_path / "elsewhere" / "secret.png")
    (tmp_path / "elsewhere" / "deep").mkdir()
    root = tmp_path / "ds"
    root.mkdir()
    (root / "sub").symlink_to(tmp_path / "elsewhere" / "deep")
    _img(root / "a.png")
    custom(root, ["a.png", "sub/../secret.png"])
    if check:  # root/secret.png is not there
        with pytest.raises(DatasetError, match=r"labels.csv: 1 image it names not found: '.*/ds/secret.png'"):
            load_dataset("csv", root)
    else:
        data = load_dataset("csv", root, check=False)
        assert data.paths == [root / "a.png", root / "secret.png"]
        assert not data.paths[1].exists()  # nothing outside the root is named


def test_one_image_named_through_a_linked_folder_is_named_twice(tmp_path):
    """imgs/a.png and linked/a.png (linked -> imgs) are one file: it loaded as two images, which a split could put in
    train and test. Distinct files in a linked folder still load."""
    root = tmp_path / "ds"
    _img(root / "imgs" / "a.png")
    _img(root / "imgs" / "b.png")
    (root / "linked").symlink_to(root / "imgs")
    label, _ = custom(root, ["imgs/a.png", "linked/b.png", "linked/a.png"])
    with pytest.raises(DatasetError) as info:
        load_dataset("csv", root, check=False)
    assert str(info.value) == (
        f"{label}: image 'imgs/a.png' (also as 'linked/a.png', through a link) is named twice (lines 2 and 4); "
        "remove the repeated line, or a split could hold the image in train and test"
    )
    custom(root, ["imgs/a.png", "linked/b.png"])
    assert load_dataset("csv", root).paths == [root / "imgs" / "a.png", root / "linked" / "b.png"]


def test_one_image_under_two_names_through_a_hard_link_is_named_twice(tmp_path):
    """b.png a hard link of a.png (one file, two names): it loaded as two images, as the real paths differ. A copy
    of a.png (another file, the same bytes) still loads."""
    root = tmp_path / "ds"
    _img(root / "imgs" / "a.png")
    os.link(root / "imgs" / "a.png", root / "imgs" / "b.png")
    label, _ = custom(root, ["imgs/a.png", "imgs/b.png"])
    for check in (True, False):
        with pytest.raises(DatasetError) as info:
            load_dataset("csv", root, check=check)
        assert str(info.value) == (
            f"{label}: image 'imgs/a.png' (also as 'imgs/b.png', through a link) is named twice (lines 2 and 3); "
            "remove the repeated line, or a split could hold the image in train and test"
        )
    (root / "imgs" / "b.png").unlink()
    (root / "imgs" / "b.png").write_bytes((root / "imgs" / "a.png").read_bytes())
    assert load_dataset("csv", root).paths == [root / "imgs" / "a.png", root / "imgs" / "b.png"]


def test_a_nul_character_in_an_image_name_is_one_line_naming_the_line(tmp_path):
    """It was ValueError('embedded null byte') from the path check, which the CLI printed without the file."""
    root = tmp_path / "ds"
    _img(root / "a.png")
    label, _ = custom(root, ["a.png", "b\x00.png"])
    with pytest.raises(DatasetError) as info:
        load_dataset("csv", root, check=False)
    name = str(root / "b\x00.png")
    assert str(info.value) == f"{label}, line 3: image {name!r} holds a NUL character; correct the name"


def test_a_control_character_in_a_name_is_escaped(tmp_path):
    root, _, _, _ = _dataset(tmp_path, "flive", ["a.png"])
    for names in (["a.png", "\x1b]0;pwned\x07.png"], ["a.png", "../../\x1b]0;pwned\x07.png"], ["\x1b[2J.png"] * 2):
        flive(root, names)
        with pytest.raises(DatasetError) as info:
            load_dataset("flive", root)
        assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_tid2013_line_named_twice(tmp_path):
    (tmp_path / "distorted_images").mkdir()
    label = tmp_path / "mos_with_names.txt"
    label.write_text("5.1 i01_01_1.bmp\n\n4.0 i01_01_2.bmp\n3.2 i01_01_1.bmp\n")
    with pytest.raises(DatasetError) as info:
        load_dataset("tid2013", tmp_path, check=False)
    assert str(info.value) == (
        f"{label}: image 'distorted_images/i01_01_1.bmp' is named twice (lines 1 and 4); remove the repeated line, "
        "or a split could hold the image in train and test"
    )


def test_a_column_named_twice_in_a_csv_header_is_refused(tmp_path):
    """csv.DictReader kept the last 'mos' column: the image's score was silently 4, not 3."""
    root, label, _, _ = _dataset(tmp_path, "flive", ["a.png"])
    label.write_text("name,mos,mos\na.png,3,4\n")
    with pytest.raises(DatasetError) as info:
        load_dataset("flive", root)
    message = f"{label}: column 'mos' appears twice in the header (spaces around names and letter case are ignored)"
    assert str(info.value) == message + "; keep one"
    label.write_text("name,MOS,mos\na.png,3,4\n")  # one of them would be read as the other
    with pytest.raises(DatasetError) as info:
        load_dataset("flive", root)
    assert str(info.value) == message + "; keep one"


def test_tid2013_labels_with_a_byte_order_mark_load(tmp_path):
    """A BOM (as Windows editors save UTF-8) made the first score '\\ufeff5.1', not a number."""
    _img(tmp_path / "distorted_images" / "i01_01_1.bmp")
    (tmp_path / "mos_with_names.txt").write_bytes("\ufeff5.1 i01_01_1.bmp\r\n".encode())
    assert load_dataset("tid2013", tmp_path).scores.tolist() == [5.1]


CSV_KEYS = ["flive", "koniq10k", "csv", "live"]  # the label files read by base.read_csv_rows


def test_images_named_in_another_letter_case_are_found_as_on_disk(tmp_path):
    """TID2013's label file says i01_01_1.bmp where some of its files are I01_01_1.bmp: one file on Windows and
    macOS, but on Linux every such image was 'not found'. A name differing only in letter case, alone in its
    folder, is now the image (a folder's name too); a name of two such files stays not found; and two lines
    naming one file in two letter cases are an image named twice."""
    (tmp_path / "x").touch()
    if (tmp_path / "X").exists():
        pytest.skip("a file system that ignores letter case finds every such name itself")
    (tmp_path / "x").unlink()
    images = tmp_path / "distorted_images"
    for name in ("I01_01_1.bmp", "i01_01_2.BMP", "i01_01_3.bmp"):
        _img(images / name)
    label = tmp_path / "mos_with_names.txt"
    label.write_text("5.1 i01_01_1.bmp\n4.2 i01_01_2.bmp\n3.3 I01_01_3.BMP\n")
    data = load_dataset("tid2013", tmp_path)
    assert data.paths == [images / "I01_01_1.bmp", images / "i01_01_2.BMP", images / "i01_01_3.bmp"]
    assert data.scores.tolist() == [5.1, 4.2, 3.3]
    _img(images / "I01_01_1.BMP")  # i01_01_1.bmp could be either
    with pytest.raises(DatasetError, match=re.escape(f"{label}: 1 image it names not found: '{images}/i01_01_1.bmp'")):
        load_dataset("tid2013", tmp_path)
    label.write_text("5.1 i01_01_2.bmp\n4.2 I01_01_2.bmp\n")
    with pytest.raises(
        DatasetError, match=re.escape("image 'distorted_images/i01_01_2.BMP' is named twice (lines 1 and 2)")
    ):
        load_dataset("tid2013", tmp_path)
    root, _, _, _ = _dataset(tmp_path, "csv", ["Sub/A.png", "b.png"])  # a folder's name, in a CSV
    (root / "labels.csv").write_text("path,mos\nsub/a.PNG,1\nB.png,2\n")
    assert load_dataset("csv", root).paths == [root / "Sub" / "A.png", root / "b.png"]


def _upper_case_below(root):
    """Every file and folder under ``root`` renamed to its upper-case name (``dmos.csv`` to ``DMOS.CSV``)."""
    for folder, folders, files in os.walk(root, topdown=False):
        for name in files + folders:
            os.rename(os.path.join(folder, name), os.path.join(folder, name.upper()))


@pytest.mark.parametrize("key", [*WRITERS, "kadid10k", "tid2013"])
def test_label_files_and_folders_named_in_another_letter_case_are_found(tmp_path, key):
    """A dataset whose label file or folders differ from the documented names only in letter case (DMOS.csv,
    Distorted_Images/, 1024X768/, an archive re-packed or a folder renamed on Windows) was 'not found' on Linux,
    though there; LIVE's jp2k/img29.bmp, given without its LIVE/ prefix, lost its folder. They are found as images
    are, with the same scores."""
    (tmp_path / "x").touch()
    if (tmp_path / "X").exists():
        pytest.skip("a file system that ignores letter case finds every such name itself")
    names = ["a.png", "b.png"]
    if key == "kadid10k":
        root = tmp_path / "ds"
        names = ["I01_01_01.png", "I01_01_02.png"]
        for n in names:
            _img(root / "images" / n)
        _csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos"], [[n, "I01.png", 4 - i] for i, n in enumerate(names)])
    elif key == "tid2013":
        root = tmp_path / "ds"
        names = ["i01_01_1.bmp", "i01_01_2.bmp"]
        for n in names:
            _img(root / "distorted_images" / n)
        (root / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\n4.2 i01_01_2.bmp\n")
    else:
        root, label, _, _ = _dataset(tmp_path, key, ["jp2k/a.png", "jp2k/b.png"] if key == "live" else names)
        if key == "live":  # paths without the LIVE/ prefix, as jp2k/img29.bmp
            label.write_text(label.read_text().replace("LIVE/", ""))
    data = load_dataset(key, root)
    _upper_case_below(root)
    moved = load_dataset(key, root)
    assert moved.scores.tolist() == data.scores.tolist() and len(data) == 2
    assert moved.paths == [root / p.relative_to(root).as_posix().upper() for p in data.paths]
    assert all(p.is_file() for p in moved.paths)


@pytest.mark.parametrize("key", [*CSV_KEYS, "spaq"])
def test_column_names_are_matched_ignoring_letter_case(tmp_path, key):
    """A header written as 'Image_name', 'MOS' (by hand, or by another tool) for 'image_name', 'mos' was 'missing
    column'; the columns are found whatever their letter case, as the same file with the names as documented."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"], [5.1, 4.25])
    if key == "spaq":
        table = pd.read_excel(label)
        table.rename(columns=str.swapcase).to_excel(label, index=False)
    else:
        header, rest = label.read_text().split("\n", 1)
        label.write_text(header.swapcase() + "\n" + rest)
    assert load_dataset(key, root).scores.tolist() == [5.1, 4.25]


@pytest.mark.parametrize("key", [*CSV_KEYS, "tid2013"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("mark", ["\ufeff", ""], ids=["bom", "no bom"])
def test_label_files_saved_as_utf16_load(tmp_path, key, encoding, mark):
    """A label file re-saved as Windows' "Unicode" text (UTF-16, as TID2013's mos_with_names.txt circulates) was
    'not a TID2013 name like i01_01_1.bmp' with NULs shown between the letters, 'missing columns ... found
    ['i\\x00m\\x00a...'] or 'not a readable CSV file ('utf-8' codec can't decode byte 0xff ...)'; with its byte order
    mark or without it (a tool writing UTF-16 with none), it loads as the UTF-8 file."""
    if key == "tid2013":
        root, label = tmp_path, tmp_path / "mos_with_names.txt"
        for name in ("i01_01_1.bmp", "i01_01_2.bmp"):
            _img(root / "distorted_images" / name)
        label.write_text("5.1 i01_01_1.bmp\n4.25 i01_01_2.bmp\n")
    else:
        root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"], [5.1, 4.25])
    text = label.read_text()
    label.write_bytes((mark + text.replace("\n", "\r\n")).encode(encoding))
    assert load_dataset(key, root).scores.tolist() == [5.1, 4.25]


@pytest.mark.parametrize("key", CSV_KEYS)
@pytest.mark.parametrize("where", ["header", "row"])
def test_a_label_line_longer_than_the_bound_is_refused_before_it_is_held(tmp_path, key, where):
    """A 100 MB line of commas (an empty field each) was read whole and split into 100 million fields: 1.5 GB and
    13 s for a 100 MB file. Now a line over MAX_LINE (1 MiB) is refused, naming it, having read no more of it."""
    from arniqa.data.iqa.base import MAX_LINE

    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"])
    lines = label.read_text().splitlines(keepends=True)
    at = 0 if where == "header" else 1
    line = lines[at].rstrip("\n") + "," * (MAX_LINE - len(lines[at])) + "\n"  # MAX_LINE characters in all
    for over in (True, False):
        lines[at] = line.replace(",", ",,", 1) if over else line
        label.write_text("".join(lines))
        if over:
            with pytest.raises(DatasetError, match=re.escape(f"{label}, line {at + 1}: longer than 1,048,576 chara")):
                load_dataset(key, root)
    assert load_dataset(key, root).scores.tolist() == [50.0, 51.0]  # a line of MAX_LINE characters is read


@pytest.mark.parametrize("key", CSV_KEYS)
def test_a_name_longer_than_any_path_is_refused_at_its_line_before_the_rest_is_read(tmp_path, key, monkeypatch):
    """A custom CSV of 1 GB holding 8,000 names of 128 KB was read whole (13 s, 1 GB held) and only then refused,
    as images not found, quoting a 128 KB name. A field longer than a path (PATH_MAX bytes, os.pathconf's: 4096 on
    Linux) names no image: it is refused at its line, the lines after it unread. Bytes count, not characters (an
    emoji is 4); a name of PATH_MAX bytes is read."""
    from arniqa.data.iqa import base
    from arniqa.utils.files import PATH_MAX

    read = []

    def counted(f, path):
        for line in label_lines(f, path):
            read.append(line)
            yield line

    label_lines = base.label_lines
    monkeypatch.setattr(base, "label_lines", counted)
    root = tmp_path / "ds"
    root.mkdir()
    emoji = "\U0001f600"  # 4 bytes in UTF-8
    over = emoji * (PATH_MAX // 4 + 1)  # PATH_MAX + 4 bytes in PATH_MAX // 4 + 1 characters
    label, first = WRITERS[key](root, ["a.png", over, *(f"{i}.png" for i in range(100))])
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root, check=False)
    size = PATH_MAX + 4 + (len("LIVE/") if key == "live" else 0)  # live names "LIVE/NAME"
    assert re.fullmatch(
        rf"{re.escape(str(label))}, line {first + 1}: its \w+ field is {size:,} bytes, longer than any path this "
        rf"system opens \({PATH_MAX:,} bytes\), so no image name \(nor a number\); correct the file",
        str(info.value),
    )
    assert len(read) == first + 1  # the header, a.png and the long name
    exact = emoji * (PATH_MAX // 4 - (2 if key == "live" else 0))  # PATH_MAX bytes at most, "LIVE/" too
    WRITERS[key](root, ["a.png", exact])
    assert len(load_dataset(key, root, check=False)) == 2


@pytest.mark.parametrize(
    "key, needed", [("flive", "2 are needed (up to its mos"), ("koniq10k", "2 are needed (up to its MOS_zscore"),
                    ("live", "4 are needed (up to its score")]
)  # fmt: skip
def test_a_row_cut_short_says_how_many_fields_it_has_and_needs(tmp_path, key, needed):
    """A row without its score field said "score '' is not a number", as if the score were written empty. Now the
    row's fields are counted against those its columns need; a score field there but empty is said to be missing."""
    root, label, _, first = _dataset(tmp_path, key, ["a.png", "b.png"])
    rows = list(csv.reader(label.read_text().splitlines()))
    has = len(rows[1]) - 1
    _csv(label, rows[0], [rows[1][:-1], rows[2]])
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == (
        f"{label}, line {first}: {has} field{'s' * (has > 1)} where {needed} column); complete the row or remove it"
    )
    _csv(label, rows[0], [[*rows[1][:-1], ""], rows[2]])
    with pytest.raises(DatasetError, match=re.escape(f"{label}, line {first}: {MISSING}")):
        load_dataset(key, root)


MISSING = "the score is missing (an empty field, or the row ends before it); write the image's score or remove the row"


@pytest.mark.parametrize("column", ["score", "mos", "dmos"])
def test_a_custom_csv_row_without_its_score_says_the_score_is_missing(tmp_path, column):
    """The custom CSV's score column is one of three, so its rows are not counted against it: a row that ends before
    its score ("b.png"), or holds it empty ("b.png,"), said "score '' is not a number". Both now say the score is
    missing, on that line, and what to do."""
    root, label, _, first = _dataset(tmp_path, "csv", ["a.png", "b.png", "c.png"])
    for row in (["b.png"], ["b.png", ""], ["b.png", " "]):
        _csv(label, ["path", column, "distortion"], [["a.png", 3, "x"], row, ["c.png", 4, "x"]])
        with pytest.raises(DatasetError) as info:
            load_dataset("csv", root)
        assert str(info.value) == f"{label}, line {first + 1}: {MISSING}", row


@pytest.mark.parametrize("key", CSV_KEYS)
def test_spaces_after_commas_and_lines_of_spaces_are_read_as_they_look(tmp_path, key):
    """A CSV written with ', ' between quoted fields kept the quotes of every field after the first ('missing column'
    '"mos"'), and a trailing line of spaces or tabs (an editor's) was a row with the score '' ('not a number')."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"], [5.1, 4.25])
    rows = list(csv.reader(label.read_text().splitlines()))
    label.write_text("".join(", ".join(f'"{cell}"' for cell in row) + "\r\n" for row in rows) + "   \r\n\t\n")
    assert load_dataset(key, root).scores.tolist() == [5.1, 4.25]


@pytest.mark.parametrize("key", CSV_KEYS)
@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_is_said_so(tmp_path, key, separator):
    """A spreadsheet's CSV saved with ';' (where the locale writes decimal commas) or tabs was 'missing columns
    [...]; found ['image_name;c1;...']' with nothing on what to do; the line says how it is separated and to save
    it comma-separated."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"])
    rows = list(csv.reader(label.read_text().splitlines()))
    label.write_text("".join(separator.join(row) + "\n" for row in rows))
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    why = {";": "CSV in a locale that writes decimal commas", "\t": "'Text (Tab delimited)'"}[separator]
    assert str(info.value).startswith(
        f"{label}: its fields are separated by {separator!r}, not commas, as a spreadsheet saves {why} (the header "
        f"is one column, {separator.join(rows[0])!r}); save it again as a comma-separated CSV (expected "
    )


@pytest.mark.parametrize("key", CSV_KEYS)
def test_a_csv_in_a_windows_code_page_is_said_so(tmp_path, key):
    """A CSV saved in Windows-1252 (an accented image name) was "not a readable CSV file ('utf-8' codec can't decode
    byte 0xe9 in position 12: invalid continuation byte); expected ...", nothing on what to do. In the `csv`
    dataset's path column, where a name on disk may be any bytes, it is the image not found, and why."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "café.png"])
    label.write_bytes(label.read_text().encode("cp1252"))
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    save = "save it as UTF-8 ('CSV UTF-8' in a spreadsheet)"
    if key == "csv":
        assert str(info.value) == (
            f"{label}, line 3: no image b'caf\\xe9.png' is there, a name that is not UTF-8 text (byte b'\\xe9'); "
            f"where the names on disk are UTF-8, {save}"
        )
    else:
        assert str(info.value) == f"{label}, line 3: not UTF-8 text (byte b'\\xe9'); {save}"


@pytest.mark.skipif(os.fsencode("\udce9") != b"\xe9", reason="file names in bytes: POSIX")
def test_a_csv_naming_a_file_in_bytes_that_are_not_utf8_finds_it(tmp_path):
    """A file named in Latin-1 on an old file server (the byte 0xe9 for é), listed in a CSV in the same bytes, was
    "not UTF-8 text; save it as UTF-8", which then named another file (é in UTF-8: 0xc3 0xa9); it is that file now,
    and its features' cache key is made of its name's bytes (a UnicodeEncodeError stopped evaluate)."""
    from arniqa.evaluate.features import FeatureProtocol, cache_key

    root = tmp_path / os.fsdecode(b"r\xe9")  # the dataset's folder too
    _img(root / os.fsdecode(b"caf\xe9.png"))
    _img(root / "b.png")
    (root / "labels.csv").write_bytes(b"path,mos\ncaf\xe9.png,3.5\nb.png,2.0\n")
    data = load_dataset("csv", root)
    assert [os.fsencode(p.name) for p in data.paths] == [b"caf\xe9.png", b"b.png"]
    assert data.scores.tolist() == [3.5, 2.0]
    assert cache_key("f" * 64, FeatureProtocol(), data.paths) != cache_key("f" * 64, FeatureProtocol(), data.paths[1:])
    (root / "b.png").unlink()  # a missing UTF-8 name in a folder whose name is not: not found, as any
    with pytest.raises(DatasetError, match=re.escape(f"{root / 'labels.csv'}: 1 image it names not found: ")):
        load_dataset("csv", root)


@pytest.mark.parametrize("key", CSV_KEYS)
def test_lines_named_in_messages_are_the_files_lines_after_blank_lines(tmp_path, key):
    """Rows were numbered from 2 in the order read, so after a blank line (an editor's, a merge's) every message
    named a line one too early: the repeated image and the bad score were sent to the wrong lines."""
    root, label, folder, _ = _dataset(tmp_path, key, ["a.png", "b.png", "a.png"])
    lines = label.read_text().splitlines(keepends=True)
    label.write_text("".join([*lines[:2], "\n", "\r\n", *lines[2:]]))  # the rows of a.png on lines 2 and 6
    name = str((folder / "a.png").relative_to(root))
    with pytest.raises(DatasetError, match=re.escape(f"image {name!r} is named twice (lines 2 and 6)")):
        load_dataset(key, root, check=False)
    label.write_text(
        "".join([*lines[:2], "\n", lines[2], lines[3].replace(",5", ",x5")])
    )  # the second a.png on line 5, score x52
    with pytest.raises(DatasetError, match=re.escape(f"{label}, line 5: score 'x52")):
        load_dataset(key, root, check=False)


@pytest.mark.parametrize("key", CSV_KEYS)
def test_a_score_is_read_only_when_written_as_a_decimal_number(tmp_path, key):
    """float() took '4_5' (a typo of 4.5) as 45 and Arabic-Indic '٣' as 3, silently; now such a cell is refused,
    naming its line, and the ways a decimal number is written are read as before."""
    root, label, _, first = _dataset(tmp_path, key, ["a.png", "b.png", "c.png"])
    for bad in ("4_5", "\u0663", "0x10"):
        WRITERS[key](root, ["a.png", "b.png", "c.png"], [1.0, bad, 2.0])
        with pytest.raises(DatasetError) as info:
            load_dataset(key, root)
        assert str(info.value) == f"{label}, line {first + 1}: score {bad!r} is not a number"
    good = {"+4.": 4.0, ".5": 0.5, "-2E-1": -0.2, "1e1": 10.0, " 3 ": 3.0}
    for text, value in good.items():
        WRITERS[key](root, ["a.png", "b.png", "c.png"], [1.0, text, 2.0])
        assert load_dataset(key, root).scores.tolist() == [1.0, value, 2.0]


@pytest.mark.parametrize("key", CSV_KEYS)
def test_a_score_with_a_decimal_comma_is_one_line_saying_to_write_a_point(tmp_path, key):
    """A spreadsheet's CSV in a European locale writes 3,45: unquoted, the row read 3 as the score and dropped 45
    (a wrong number, silently); quoted, the line said 'not a number' without why. Both name the line and what to
    do; a row that ends in empty fields (a spreadsheet's trailing commas) still loads."""
    names = ["a.png", "b.png", "c.png"]
    root, label, _, first = _dataset(tmp_path, key, names)
    WRITERS[key](root, names, [1.0, "3,45", 2.0])  # csv quotes a field holding a comma
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == (
        f"{label}, line {first + 1}: score '3,45' is not a number; write decimal numbers with a point, not a comma"
    )
    label.write_text(label.read_text().replace('"3,45"', "3,45"))
    fields = len(label.read_text().splitlines()[0].split(","))
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == (
        f"{label}, line {first + 1}: {fields + 1} fields where the header names {fields} (a decimal comma?); write "
        "decimal numbers with a point, and quote a field holding a comma"
    )
    label.write_text(label.read_text().replace("3,45", "3.45,,"))
    assert load_dataset(key, root).scores.tolist() == [1.0, 3.45, 2.0]


def test_rows_hold_the_columns_read_and_their_number_is_bounded(tmp_path, monkeypatch):
    """Every column of every row was kept (a file of many columns held each cell as a string); rows beyond
    MAX_ROWS (a million) were read on until memory ran out."""
    import arniqa.data.iqa.base as base

    path = tmp_path / "labels.csv"
    _csv(path, ["path", *[f"x{i}" for i in range(50)], "mos", "level"], [["a.png", *range(50), 3, 1]] * 2)
    rows = base.read_csv_rows(path, ["path"], "labels", optional=("mos", "reference", "level"))
    assert rows == [(2, {"path": "a.png", "mos": "3", "level": "1"}), (3, {"path": "a.png", "mos": "3", "level": "1"})]
    monkeypatch.setattr(base, "MAX_ROWS", 2)
    assert len(base.read_csv_rows(path, ["path"], "labels")) == 2
    _csv(path, ["path", "mos"], [["a.png", 1], [], ["b.png", 2], ["c.png", 3]])  # a blank line is no row
    with pytest.raises(DatasetError, match=re.escape(f"{path}: more than 2 rows, {NOT_ONE}") + "$"):
        base.read_csv_rows(path, ["path"], "labels")


BLANK_LINES = [(key, blank) for key in [*CSV_KEYS, "tid2013"] for blank in ("\n", ",,,\n", "  \t\r\n")]
BLANK_LINES.remove(("tid2013", ",,,\n"))  # a line of TID2013's is two fields split by spaces: ",,," is no blank one


@pytest.mark.parametrize("key, blank", BLANK_LINES)
def test_a_label_file_of_blank_lines_is_refused_at_the_bound_on_lines(tmp_path, monkeypatch, key, blank):
    """Blank lines (or lines of empty fields) hold no row, so they were never counted: 100 MB of them was read for
    80 s before 'no rows'. Now the lines are bounded (MAX_LINES, blank ones too): a file of that many loads, and one
    line more is refused, naming the file."""
    import arniqa.data.iqa.base as base

    monkeypatch.setattr(base, "MAX_LINES", 8)
    if key == "tid2013":
        root = tmp_path / "ds"
        label = root / "mos_with_names.txt"
        rows = [f"{5 - (i - 1) / 4} i01_01_{i}.bmp" for i in (1, 2, 3)]
        for i in (1, 2, 3):
            _img(root / "distorted_images" / f"i01_01_{i}.bmp")
        head = ""
    else:
        root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png", "c.png"], [5.0, 4.75, 4.5])
        head, *rows = label.read_text().splitlines()
        rows = [head, *rows]
    text = "".join(line + "\r\r\n" for line in rows)  # a blank line after each (a CSV written in text mode)
    text += blank * (8 - 2 * len(rows))
    label.write_bytes(text.encode())  # 8 lines
    assert load_dataset(key, root).scores.tolist() == [5.0, 4.75, 4.5]
    label.write_bytes((text + blank).encode())  # 9 lines
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == f"{label}: more than 8 lines, {NOT_ONE}"
    label.write_bytes((head + "\n" + blank * 10).encode())  # no row at all
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == f"{label}: more than 8 lines, {NOT_ONE}"


@pytest.mark.parametrize("key", WRITERS)
def test_a_label_file_this_user_may_not_read_is_one_line_naming_it(tmp_path, monkeypatch, key):
    """A label file without read permission was a bare '[Errno 13] Permission denied: ...' (arniqa evaluate) or a
    traceback (the API; ablate); CLIVE's said 'not a readable MATLAB file', SPAQ's 'not a readable .xlsx workbook'.
    Now it is the line of any file that cannot be read, naming it."""
    root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"])
    refuse_access(monkeypatch, lambda path: path == str(label), lookup=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == f"{label}: cannot read file (Permission denied); check its permissions"


@pytest.mark.parametrize("key", WRITERS)
def test_a_folder_this_user_may_not_enter_is_one_line_naming_it(tmp_path, monkeypatch, key):
    """An image folder (or the root) without search permission: nothing in it can be looked up, so each image was
    'not found', or the check's stat raised a bare '[Errno 13] Permission denied: IMAGE', naming an image whose own
    permissions are fine. Now the line names the folder (the image folder; for some, the root)."""
    root, label, folder, _ = _dataset(tmp_path, key, ["a.png", "b.png"])
    refuse_access(monkeypatch, lambda path: path.startswith(f"{folder}{os.sep}"))
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    assert str(info.value) == f"{folder}: cannot open folder (Permission denied); check its permissions"


@pytest.mark.parametrize("key", [*(k for k in WRITERS if k != "clive"), "tid2013"])
def test_an_empty_label_file_is_said_to_be_empty(tmp_path, key):
    """A label file of 0 bytes (a download or copy cut short) said 'missing columns [...]; found []' (TID2013's: 'no
    labels', SPAQ's: 'not a readable .xlsx workbook (File is not a zip file)'); now it says it is empty."""
    if key == "tid2013":
        root, label = tmp_path, tmp_path / "mos_with_names.txt"
        (root / "distorted_images").mkdir()
        what = "TID2013 labels: lines of 'MOS filename'"
    else:
        root, label, _, _ = _dataset(tmp_path, key, ["a.png", "b.png"])
        what = None
    label.write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        load_dataset(key, root)
    problem, fix = str(info.value).rsplit("; ", 1)
    assert problem.startswith(f"{label}: empty file (0 bytes; expected ") and fix == "copy or download it again"
    assert what is None or problem.endswith(f"expected {what})")


def test_a_csv_of_a_header_alone_or_unreadable_says_what_to_give(tmp_path):
    """A label file of its header alone said 'no rows (expected ...)', and one the csv module cannot read ended
    'expected ...': what the file should be, not what to do."""
    labels = tmp_path / "labels_image.csv"
    labels.write_text("name,mos\n")
    with pytest.raises(DatasetError) as info:
        load_dataset("flive", tmp_path)
    assert str(info.value) == f"{labels}: no rows; give FLIVE labels_image.csv with columns name, mos"
    labels.write_text('name,mos\n"' + "a" * (csv.field_size_limit() + 1) + "\n")  # a quote never closed
    with pytest.raises(DatasetError) as info:
        load_dataset("flive", tmp_path)
    assert str(info.value) == (
        f"{labels}: not a readable CSV file (field larger than field limit (131072)); give FLIVE labels_image.csv "
        "with columns name, mos"
    )
