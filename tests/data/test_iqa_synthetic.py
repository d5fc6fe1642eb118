"""Adapters for the synthetic datasets (LIVE, CSIQ, TID2013, KADID-10k) on tiny copies of their layouts."""

import csv

import numpy as np
import pytest
from PIL import Image

from arniqa.data.iqa import DatasetError, load_dataset


def _png(path, size=(12, 10), value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value // 2, 30)).save(path)


def _icbcbicc(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dis_img_path", "dis_type", "ref_img_path", "score"])
        w.writerows(rows)


def make_live(root):
    rows = [
        ("LIVE/jp2k/img29.bmp", "jp2k", "LIVE/refimgs/coinsinfountain.bmp", "45.1"),
        ("LIVE/wn/img3.bmp", "wn", "LIVE/refimgs/sailing4.bmp", "-2.6"),
        ("LIVE/fastfading/img7.bmp", "fastfading", "LIVE/refimgs/coinsinfountain.bmp", "111.8"),
    ]
    for r in rows:
        _png(root / r[0].split("/", 1)[1])
        _png(root / r[2].split("/", 1)[1])
    _icbcbicc(root / "LIVE.txt", rows)
    return rows


def test_live(tmp_path):
    rows = make_live(tmp_path)
    data = load_dataset("live", tmp_path)
    assert len(data) == 3 and data.synthetic
    assert data.paths[0] == tmp_path / "jp2k" / "img29.bmp"
    np.testing.assert_array_equal(data.scores, [45.1, -2.6, 111.8])
    assert data.references == ["coinsinfountain", "sailing4", "coinsinfountain"]
    assert data.distortions == [r[1] for r in rows]
    assert data.score_kind == "dmos" and data.score_range.lower_better


def test_live_paths_without_the_live_prefix_are_read_under_the_root(tmp_path):
    """`jp2k/img29.bmp` lost its `jp2k/` as if it were the `LIVE/` prefix: `img29.bmp` in the root, and since LIVE's
    names repeat across its folders, a refusal for an image "named twice" that the file names once."""
    rows = make_live(tmp_path)
    _png(tmp_path / "wn" / "img29.bmp")  # the name of the jp2k image, in another folder
    rows.append(("LIVE/wn/img29.bmp", "wn", "LIVE/refimgs/sailing4.bmp", "20.0"))
    expected = [tmp_path / r[0].split("/", 1)[1] for r in rows]
    _icbcbicc(tmp_path / "LIVE.txt", rows)
    assert load_dataset("live", tmp_path).paths == expected
    _icbcbicc(tmp_path / "LIVE.txt", [(r[0].split("/", 1)[1], *r[1:]) for r in rows])
    assert load_dataset("live", tmp_path).paths == expected


@pytest.mark.parametrize("name", ["live", "csiq"])
def test_an_empty_distortion_type_is_a_bad_label_line(tmp_path, name):
    """LIVE.txt (and CSIQ.txt, the same format) with an empty dis_type loaded, and the reports had a per-type row
    without a name; KADID-10k and TID2013 refuse a type they do not know, naming the line."""
    rows = make_live(tmp_path)
    rows[0] = (rows[0][0], "", *rows[0][2:])
    label = tmp_path / f"{name.upper()}.txt"
    _icbcbicc(label, rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(name, tmp_path, check=False)
    assert str(info.value) == f"{label}, line 2: empty dis_type; give the image's distortion type"


def test_csiq(tmp_path):
    rows = [
        ("CSIQ/dst_imgs/awgn/1600.AWGN.3.png", "awgn", "CSIQ/src_imgs/1600.png", "0.21"),
        ("CSIQ/dst_imgs/jpeg/woman.JPEG.5.png", "jpeg", "CSIQ/src_imgs/woman.png", "0.8"),
    ]
    for r in rows:
        _png(tmp_path / r[0].split("/", 1)[1])
    _icbcbicc(tmp_path / "CSIQ.txt", rows)
    data = load_dataset("csiq", tmp_path)
    assert [r.level for r in data.records] == [3, 5]
    assert data.references == ["1600", "woman"] and data.distortions == ["awgn", "jpeg"]
    assert data.score_range[:2] == (0.0, 1.0) and data.score_kind == "dmos"


def test_tid2013(tmp_path):
    names = ["i01_01_1.bmp", "i01_08_5.bmp", "i25_24_2.bmp"]
    for n in names:
        _png(tmp_path / "distorted_images" / n)
    _png(tmp_path / "reference_images" / "I01.BMP")
    (tmp_path / "mos_with_names.txt").write_text("5.51429 i01_01_1.bmp\n1.2 i01_08_5.bmp\n6.0 i25_24_2.bmp\n")
    data = load_dataset("tid2013", tmp_path)
    assert data.references == ["I01", "I01", "I25"]
    assert data.distortions == ["awgn", "gaussian_blur", "sparse_sampling"]
    assert [r.level for r in data.records] == [1, 5, 2]
    np.testing.assert_allclose(data.scores, [5.51429, 1.2, 6.0])
    assert data.score_kind == "mos" and data.score_range[:2] == (0.0, 9.0)


def make_kadid(root, refs=3, types=(1, 9), levels=(1, 3)):
    rows = []
    for r in range(1, refs + 1):
        for t in types:
            for lv in levels:
                name = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                _png(root / "images" / name, value=40 * lv)
                rows.append((name, f"I{r:02d}.png", f"{5 - lv * 0.9:.3f}", "0.5"))
    with open(root / "dmos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        w.writerows(rows)
    return rows


def test_kadid(tmp_path):
    rows = make_kadid(tmp_path)
    data = load_dataset("kadid", tmp_path)  # pyiqa alias
    assert data.name == "kadid10k" and len(data) == len(rows)
    assert data.records[0].path == tmp_path / "images" / "I01_01_01.png"
    assert data.records[2].distortion == "jpeg2000" and data.records[2].level == 1
    assert data.references[:4] == ["I01"] * 4 and data.references[4] == "I02"
    assert data.score_kind == "mos" and data.score_range[:2] == (1.0, 5.0)


def test_a_kadid_row_without_its_score_says_how_many_fields_it_has_and_needs(tmp_path):
    """`I01_01_02.png,I01.png` (a row cut short) said "score '' is not a number"."""
    (tmp_path / "images").mkdir()
    label = tmp_path / "dmos.csv"
    label.write_text("dist_img,ref_img,dmos\nI01_01_01.png,I01.png,4.5\nI01_01_02.png,I01.png\n")
    with pytest.raises(DatasetError) as info:
        load_dataset("kadid10k", tmp_path, check=False)
    assert str(info.value) == (
        f"{label}, line 3: 2 fields where 3 are needed (up to its dmos column); complete the row or remove it"
    )


def test_missing_label_file_is_named(tmp_path):
    for name, label in [
        ("live", "LIVE.txt"),
        ("csiq", "CSIQ.txt"),
        ("tid2013", "mos_with_names.txt"),
        ("kadid10k", "dmos.csv"),
    ]:
        with pytest.raises(DatasetError, match=label):
            load_dataset(name, tmp_path)


def test_malformed_labels_are_named(tmp_path):
    make_kadid(tmp_path)
    text = (tmp_path / "dmos.csv").read_text().replace("dmos", "score", 1)
    (tmp_path / "dmos.csv").write_text(text)
    with pytest.raises(DatasetError, match=r"dmos\.csv.*missing column.*dmos"):
        load_dataset("kadid10k", tmp_path)
    make_kadid(tmp_path)
    lines = (tmp_path / "dmos.csv").read_text().splitlines()
    lines[2] = lines[2].replace("2.300", "n/a")
    (tmp_path / "dmos.csv").write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"dmos\.csv, line 3: score 'n/a'"):
        load_dataset("kadid10k", tmp_path)
    (tmp_path / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\nnonsense\n")
    (tmp_path / "distorted_images").mkdir()
    with pytest.raises(DatasetError, match=r"mos_with_names\.txt, line 2"):
        load_dataset("tid2013", tmp_path)


def test_missing_image_is_named(tmp_path):
    """The line named the missing images with nothing on what to do, and said the same when none of them was there
    (the images a folder deeper than the root, as an archive unpacks): then it names the folder looked in."""
    make_live(tmp_path)
    (tmp_path / "wn" / "img3.bmp").unlink()
    label = tmp_path / "LIVE.txt"
    with pytest.raises(DatasetError) as info:
        load_dataset("live", tmp_path)
    assert str(info.value) == (
        f"{label}: 1 image it names not found: '{tmp_path / 'wn' / 'img3.bmp'}'; copy or download them again"
    )
    assert len(load_dataset("live", tmp_path, check=False)) == 3
    for folder in ("jp2k", "fastfading"):
        (tmp_path / folder).rename(tmp_path / f"{folder}-moved")
    with pytest.raises(DatasetError) as info:
        load_dataset("live", tmp_path)
    assert str(info.value) == (
        f"{label}: none of the 3 images it names is there (the first: '{tmp_path / 'jp2k' / 'img29.bmp'}'); "
        f"give the dataset's folder as it is distributed, with its images in {tmp_path / 'jp2k'}"
    )
    (tmp_path / "jp2k").mkdir()
    (tmp_path / "jp2k-moved").rename(tmp_path / "jp2k" / "jp2k")  # unpacked into a folder of its own
    with pytest.raises(DatasetError) as info:
        load_dataset("live", tmp_path)
    assert str(info.value).endswith(
        f"with its images in {tmp_path / 'jp2k'} ({tmp_path / 'jp2k' / 'jp2k'} holds img29.bmp)"
    )


def test_a_folder_in_place_of_an_image_or_the_label_file_is_named_as_such(tmp_path):
    """Both were "not found" while something of that name was there: the message now says it is not a file."""
    make_live(tmp_path)
    (tmp_path / "wn" / "img3.bmp").unlink()
    (tmp_path / "wn" / "img3.bmp").mkdir()
    with pytest.raises(DatasetError, match=r"LIVE\.txt: 1 image it names not found: '[^']*img3\.bmp' \(not a file\);"):
        load_dataset("live", tmp_path)
    (tmp_path / "LIVE.txt").unlink()
    (tmp_path / "LIVE.txt").mkdir()
    with pytest.raises(DatasetError, match=r"LIVE\.txt: not a file \(expected LIVE\.txt with columns"):
        load_dataset("live", tmp_path)


def test_a_tid2013_line_longer_than_the_bound_is_refused_before_it_is_held(tmp_path):
    """The whole file was read and split into lines: a line of 1 MiB and more was held, and repeated in the error."""
    (tmp_path / "distorted_images").mkdir()
    labels = tmp_path / "mos_with_names.txt"
    labels.write_text("5.5 i01_01_1.bmp\n" + "1" * (1 << 20) + " i01_01_2.bmp\n")
    with pytest.raises(
        DatasetError,
        match=r"mos_with_names.txt, line 2: longer than 1,048,576 characters, so not a label file of one dataset; "
        r"give the dataset's label file as it is distributed$",
    ):
        load_dataset("tid2013", tmp_path, check=False)


def test_a_tid2013_label_file_without_labels_says_what_to_give(tmp_path):
    """A mos_with_names.txt of blank lines was named with the problem alone."""
    (tmp_path / "distorted_images").mkdir()
    (tmp_path / "mos_with_names.txt").write_text("\n\n")
    with pytest.raises(DatasetError) as e:
        load_dataset("tid2013", tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'mos_with_names.txt'}: no labels (expected lines of 'MOS filename'); give the dataset's label "
        "file as it is distributed"
    )
