"""Adapters for authentic datasets (KonIQ-10k, CLIVE, FLIVE, SPAQ) and the generic CSV, on tiny layouts."""

import csv
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image

from arniqa.data.iqa import DatasetError, load_dataset


def _img(path, size=(16, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)


def _csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_koniq(tmp_path):
    header = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]
    rows = [
        ["10004473376.jpg", 0, 0, 25, 73, 7, 105, 3.828571, 0.527, 77.383621],
        ["10007357496.jpg", 0, 3, 45, 47, 1, 96, 3.479167, 0.580, 68.728571],
    ]
    _csv(tmp_path / "koniq10k_scores_and_distributions.csv", header, rows)
    for r in rows:
        _img(tmp_path / "1024x768" / r[0])
    data = load_dataset("koniq", tmp_path)
    assert data.name == "koniq10k" and not data.synthetic and data.references is None
    np.testing.assert_allclose(data.scores, [77.383621, 68.728571])
    assert data.score_range[:2] == (1.0, 100.0)
    five = load_dataset("koniq10k", tmp_path, column="MOS")
    np.testing.assert_allclose(five.scores, [3.828571, 3.479167])
    assert five.score_range[:2] == (1.0, 5.0)
    assert data.paths[1] == tmp_path / "1024x768" / "10007357496.jpg"


def test_clive_mat_files_drop_training_images(tmp_path):
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["3.bmp", "100.bmp", "1001.JPG"]
    mos = np.array([[50.0] * 7 + [63.9, 25.5, 70.1]])
    (tmp_path / "Data").mkdir()
    scipy.io.savemat(
        tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": np.array(names, dtype=object).reshape(-1, 1)}
    )
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos})
    for n in names[7:]:
        _img(tmp_path / "Images" / n)
    for n in names[:7]:
        _img(tmp_path / "Images" / "trainingImages" / n)
    data = load_dataset("clive", tmp_path)
    assert [p.name for p in data.paths] == ["3.bmp", "100.bmp", "1001.JPG"]
    np.testing.assert_allclose(data.scores, [63.9, 25.5, 70.1])
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos[:, :-1]})
    with pytest.raises(DatasetError, match="AllMOS_release.mat: 9 scores"):
        load_dataset("clive", tmp_path)
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"MOS": mos})
    with pytest.raises(DatasetError) as e:  # it named the problem alone
        load_dataset("clive", tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'Data' / 'AllMOS_release.mat'}: no variable 'AllMOS_release' (found ['MOS']); give the "
        "dataset's label file as it is distributed"
    )


@pytest.mark.parametrize("entry", [{"x": 1}, 5.0, np.array([1, 2, 3])], ids=["struct", "number", "numbers"])
def test_a_clive_name_that_is_not_text_is_named_by_its_index(tmp_path, entry):
    """A struct in AllImages_release became the image name "(array([[1]]),)" (scipy's tuple of its fields), looked
    for and reported as not found; a number became the name "5.0". Now the entry is named by its index, counted
    from 1 as MATLAB counts."""
    (tmp_path / "Data").mkdir()
    cells = np.empty((3, 1), dtype=object)
    cells[0, 0], cells[1, 0], cells[2, 0] = "3.bmp", entry, "4.bmp"
    images = tmp_path / "Data" / "AllImages_release.mat"
    scipy.io.savemat(images, {"AllImages_release": cells})
    scipy.io.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[50.0, 60.0, 70.0]])})
    for n in ("3.bmp", "4.bmp"):
        _img(tmp_path / "Images" / n)
    with pytest.raises(DatasetError) as info:
        load_dataset("clive", tmp_path, check=False)
    assert str(info.value) == (
        f"{images}: AllImages_release holds a non-text entry at index 2 (counted from 1, as MATLAB does); expected "
        "image names, as in the release file as distributed"
    )
    cells[1, 0] = "5.bmp"
    scipy.io.savemat(images, {"AllImages_release": cells})
    assert [p.name for p in load_dataset("clive", tmp_path, check=False).paths] == ["3.bmp", "5.bmp", "4.bmp"]


def test_clive_pyiqa_csv(tmp_path):
    rows = [[f"trainingImages/t{i}.bmp", 50.0, 1.0] for i in range(1, 8)] + [["3.bmp", 63.9, 2.0]]
    _csv(tmp_path / "meta_info_LIVEChallengeDataset.csv", ["img_name", "mos", "std"], rows)
    _img(tmp_path / "Images" / "3.bmp")
    data = load_dataset("livec", tmp_path)
    assert len(data) == 1 and data.paths[0] == tmp_path / "Images" / "3.bmp"


def test_clive_missing_files_named(tmp_path):
    with pytest.raises(DatasetError, match="AllImages_release.mat"):
        load_dataset("clive", tmp_path)


def test_flive(tmp_path):
    rows = [["voc_emotic_ava/a.jpg", 72.1], ["EE371R/b.jpg", 55.0], ["blur_dataset/c.png", 30.5]]
    _csv(tmp_path / "labels_image.csv", ["name", "mos"], rows)
    for r in rows:
        _img(tmp_path / "database" / r[0])
    data = load_dataset("flive", tmp_path)
    assert data.paths[1] == tmp_path / "database" / "EE371R" / "b.jpg"
    np.testing.assert_allclose(data.scores, [72.1, 55.0, 30.5])


def test_spaq(tmp_path):
    pytest.importorskip("openpyxl")  # pandas writes the workbook with it
    table = pd.DataFrame({"Image name": ["00001.jpg", "00002.jpg"], "MOS": [42.5, 80.0], "Brightness": [40, 70]})
    (tmp_path / "Annotations").mkdir()
    table.to_excel(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx", index=False)
    for n in table["Image name"]:
        _img(tmp_path / "TestImage" / n)
    data = load_dataset("spaq", tmp_path)
    assert data.short_side == 512
    np.testing.assert_allclose(data.scores, [42.5, 80.0])
    assert data.paths[0] == tmp_path / "TestImage" / "00001.jpg"
    table.drop(columns="MOS").to_excel(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx", index=False)
    labels = tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx"
    with pytest.raises(DatasetError) as e:  # it ended '; found [...] (expected ...)', nothing to do
        load_dataset("spaq", tmp_path)
    assert str(e.value) == (
        f"{labels}: missing column ['MOS'] (found ['Image name', 'Brightness']); give the SPAQ annotation workbook "
        "with columns 'Image name', 'MOS'"
    )
    labels.write_text("not a workbook")
    with pytest.raises(DatasetError) as e:  # it named the problem alone
        load_dataset("spaq", tmp_path)
    assert str(e.value) == (
        f"{labels}: not a readable .xlsx workbook (File is not a zip file); copy or download it again, or save it as "
        ".xlsx from a spreadsheet"
    )


def test_spaq_mos_that_is_not_a_number_names_the_rows_and_what_to_do(tmp_path):
    """A MOS cell holding a word or nothing was named with the problem alone."""
    pytest.importorskip("openpyxl")
    labels = tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx"
    labels.parent.mkdir()
    table = pd.DataFrame({"Image name": ["1.jpg", "2.jpg", "3.jpg"], "MOS": ["bad", 50.0, None]})
    table.to_excel(labels, index=False)
    with pytest.raises(DatasetError) as e:
        load_dataset("spaq", tmp_path, check=False)
    assert str(e.value) == (  # rows as a spreadsheet numbers them: the header is row 1
        f"{labels}: MOS is not a number in rows [2, 4]; give SPAQ's workbook as it is distributed, or give those rows "
        "a number"
    )


def test_spaq_without_openpyxl_says_what_to_install(tmp_path, monkeypatch):
    # before: "not a readable .xlsx workbook (Missing optional dependency 'openpyxl' ...)", blaming a sound file
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx").write_bytes(b"PK\x03\x04")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as on a machine without it: importing it fails
    with pytest.raises(
        DatasetError, match=r"scores\.xlsx: reading SPAQ's \.xlsx labels needs openpyxl .*; pip install"
    ):
        load_dataset("spaq", tmp_path)


def test_generic_csv(tmp_path):
    _csv(
        tmp_path / "labels.csv",
        ["path", "score", "reference", "distortion", "level"],
        [["a/x1.png", 0.2, "x", "blur", 1], ["a/x2.png", 0.9, "x", "noise", 2], ["b/y1.png", 0.5, "y", "blur", 1]],
    )
    for p in ("a/x1.png", "a/x2.png", "b/y1.png"):
        _img(tmp_path / p)
    data = load_dataset("csv", tmp_path)
    assert data.synthetic and data.references == ["x", "x", "y"] and data.records[1].level == 2
    assert data.score_range[:2] == (0.2, 0.9) and data.score_kind == "mos"
    plain = tmp_path / "plain.csv"
    _csv(plain, ["path", "score"], [["a/x1.png", 3], ["b/y1.png", 4]])
    d2 = load_dataset("csv", plain, kind="dmos", score_range=(0, 10))
    assert not d2.synthetic and d2.score_kind == "dmos" and d2.score_range[:2] == (0.0, 10.0)
    # an infinite or unreadable range was taken (scale_score then gave 0 for every image)
    with pytest.raises(DatasetError) as e:
        load_dataset("csv", plain, score_range=(0, float("inf")))
    said = "the scores need a finite range with high > low, got (0.0, inf); pass score_range=(low, high) with finite"
    assert str(e.value) == f"{plain}: {said} low < high"
    _csv(tmp_path / "same.csv", ["path", "score"], [["a/x1.png", 3], ["b/y1.png", 3]])
    with pytest.raises(DatasetError) as e:
        load_dataset("csv", tmp_path / "same.csv")
    said = "the scores need a finite range with high > low, got (3.0, 3.0); give scores that are not all the same"
    assert str(e.value) == f"{tmp_path / 'same.csv'}: {said}"
    with pytest.raises(DatasetError, match=r"^score_range must be two numbers \(low, high\), got 'ab'$"):
        load_dataset("csv", plain, score_range="ab")
    _csv(plain, ["file", "score"], [["a/x1.png", 3]])
    with pytest.raises(DatasetError, match=r"plain\.csv: missing column \['path'\]"):
        load_dataset("csv", plain)


def test_a_csv_says_mos_or_dmos_by_its_score_column(tmp_path):
    """A DMOS file could only be read as DMOS through kind="dmos" in Python: arniqa evaluate, training's validation
    sets and the ablation took its DMOS for MOS (lower-is-better scores scaled as higher-is-better)."""
    for name in ("a.png", "b.png"):
        _img(tmp_path / name)
    for column, kind in (("dmos", "dmos"), ("mos", "mos"), ("score", "mos")):
        _csv(tmp_path / "labels.csv", ["path", column], [["a.png", 1], ["b.png", 3]])
        data = load_dataset("csv", tmp_path)
        assert data.score_kind == kind and [r.score for r in data.records] == [1, 3], column
    _csv(tmp_path / "labels.csv", ["path", "dmos"], [["a.png", 1], ["b.png", 3]])
    with pytest.raises(DatasetError) as e:
        load_dataset("csv", tmp_path / "labels.csv", kind="mos")
    said = "its scores are in a dmos column, but kind='mos' was asked for; pass kind='dmos' or none"
    assert str(e.value) == f"{tmp_path / 'labels.csv'}: {said}"
    _csv(tmp_path / "labels.csv", ["path", "mos", "dmos"], [["a.png", 1, 5], ["b.png", 3, 2]])
    with pytest.raises(DatasetError, match="labels.csv: both mos and dmos columns; keep the one"):
        load_dataset("csv", tmp_path)
    _csv(tmp_path / "labels.csv", ["path", "quality"], [["a.png", 1], ["b.png", 3]])
    with pytest.raises(DatasetError, match=r"labels.csv: no score column \(found \['path', 'quality'\]\)"):
        load_dataset("csv", tmp_path)


def test_a_csv_with_references_and_no_distortion_column_has_no_distortion_types(tmp_path):
    """Its images' types were all None: `arniqa evaluate` wrote a per-type table and plot of one type named
    "None", and coloured the t-SNE by it; now there are no types (reference-disjoint splits still)."""
    rows = [[f"{i}.png", i, f"r{i // 2}"] for i in range(4)]
    _csv(tmp_path / "labels.csv", ["path", "score", "reference"], rows)
    for row in rows:
        _img(tmp_path / row[0])
    data = load_dataset("csv", tmp_path)
    assert data.synthetic and data.references == ["r0", "r0", "r1", "r1"] and data.distortions is None
    _csv(tmp_path / "labels.csv", ["path", "score", "reference", "distortion"], [[*rows[0], "blur"], *rows[1:]])
    assert load_dataset("csv", tmp_path).distortions == ["blur", None, None, None]  # some typed: kept as they are


def test_unknown_dataset_and_root(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", tmp_path)
    with pytest.raises(DatasetError, match="nowhere: dataset root not found; give the dataset.s folder as it is"):
        load_dataset("live", tmp_path / "nowhere")
    (tmp_path / "dmos.csv").write_text("dist_img,ref_img,dmos\n")  # the label file given for the folder holding it
    with pytest.raises(DatasetError, match=r"dmos.csv: a file, not a folder; give the kadid10k folder as it is"):
        load_dataset("kadid", tmp_path / "dmos.csv")  # it said ".../dmos.csv/dmos.csv: file not found"


@pytest.mark.parametrize(
    "values, what",
    [
        (np.array(["a", "b"]), "holds <U1 values, not real numbers; expected the MOS"),
        (np.array([[50.0 + 1j, 60.0]]), "holds complex128 values, not real numbers; expected the MOS"),
        (np.array([[50.0, np.nan]]), "value 2 is nan, not a finite number"),
    ],
)
def test_clive_mos_that_are_not_real_numbers_name_the_mos_file(tmp_path, values, what):
    names = np.array(["3.bmp", "100.bmp"], dtype=object).reshape(-1, 1)
    (tmp_path / "Data").mkdir()
    scipy.io.savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    mos = tmp_path / "Data" / "AllMOS_release.mat"
    scipy.io.savemat(mos, {"AllMOS_release": values})
    with pytest.raises(DatasetError) as info:
        load_dataset("clive", tmp_path, check=False)
    assert str(info.value) == f"{mos}: AllMOS_release {what}"


def test_spaq_column_repeated_after_stripping_spaces(tmp_path):
    pytest.importorskip("openpyxl")  # pandas writes the workbook with it
    (tmp_path / "Annotations").mkdir()
    path = tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx"
    pd.DataFrame([["00001.jpg", 42.5, 40.0]], columns=["Image name", "MOS", "MOS "]).to_excel(path, index=False)
    with pytest.raises(DatasetError) as info:
        load_dataset("spaq", tmp_path, check=False)
    assert str(info.value) == (
        f"{path}: column 'MOS' appears twice in the header (spaces around names and letter case are ignored); keep one"
    )


@pytest.mark.parametrize("name", [None, "  "], ids=["empty-cell", "spaces"])
def test_spaq_row_without_an_image_name_is_named(tmp_path, name):
    """An empty cell was the image 'TestImage/nan' (spaces: the folder TestImage itself), then "not found"."""
    pytest.importorskip("openpyxl")  # pandas writes the workbook with it
    (tmp_path / "Annotations").mkdir()
    path = tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx"
    pd.DataFrame({"Image name": ["00001.jpg", name, "00003.jpg"], "MOS": [42.5, 50.0, 80.0]}).to_excel(
        path, index=False
    )
    for check in (True, False):
        with pytest.raises(DatasetError) as info:
            load_dataset("spaq", tmp_path, check=check)
        assert str(info.value) == f"{path}, row 3: empty Image name; name the image of each row, or remove the row"


def _compressed_mat(path, name, values: int):
    """A MATLAB 5 file whose one compressed variable ``name`` holds ``values`` zeros (1 x values doubles), written
    without holding them: zlib packs the zeros about 1000 to 1."""
    import struct
    import zlib

    label = name.encode() + b"\0" * (-len(name) % 8)
    head = struct.pack("<8I", 6, 8, 6, 0, 5, 8, 1, values) + struct.pack("<2I", 1, len(name)) + label
    head += struct.pack("<2I", 9, 8 * values)  # the doubles
    pack = zlib.compressobj(9)
    body = [pack.compress(struct.pack("<2I", 14, len(head) + 8 * values) + head)]
    body += [pack.compress(bytes(min(8 << 20, 8 * values - at))) for at in range(0, 8 * values, 8 << 20)]
    body.append(pack.flush())
    body = b"".join(body)
    header = b"MATLAB 5.0 MAT-file, written by a test".ljust(124) + b"\x00\x01IM"
    path.write_bytes(header + struct.pack("<2I", 15, len(body)) + body)


def test_clive_mat_files_that_unpack_past_the_bound_are_refused_before_unpacking(tmp_path):
    """A 40 KB AllMOS_release.mat of 40 MB of zeros was unpacked whole by loadmat (a 780 KB file: 1 GB); a
    MATLAB 7.3 (HDF5) file said "Please use HDF reader ... e.g. h5py", which arniqa does not use."""
    (tmp_path / "Data").mkdir()
    names = np.array(["a.bmp", "b.bmp"], dtype=object).reshape(-1, 1)
    scipy.io.savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": names}, do_compression=True)
    mos = tmp_path / "Data" / "AllMOS_release.mat"
    _compressed_mat(mos, "AllMOS_release", 5 << 20)  # 40 MiB of doubles
    assert mos.stat().st_size < 100_000
    with pytest.raises(DatasetError, match=r"AllMOS_release.mat: its variables unpack to more than 33,554,432 bytes"):
        load_dataset("clive", tmp_path, check=False)
    _compressed_mat(mos, "AllMOS_release", 2)
    assert load_dataset("clive", tmp_path, check=False).scores.tolist() == [0.0, 0.0]  # the writer is a MAT file
    mos.write_bytes(b"MATLAB 7.3 MAT-file, HDF5 schema 1.00".ljust(124) + b"\x00\x02IM" + b"\0" * 384 + b"\x89HDF")
    with pytest.raises(DatasetError, match=r"AllMOS_release.mat: a MATLAB 7.3 \(HDF5\) file, which is not read; use"):
        load_dataset("clive", tmp_path, check=False)


def test_a_spaq_workbook_that_unpacks_past_the_bound_is_refused_before_it_is_read(tmp_path):
    """A 1.3 MB workbook whose sheet unpacked to 400 MB of cells took 145 s and 2 GB of memory, then a MemoryError;
    zipfile reads no more than a part declares, so the declared sizes bound what is read."""
    import zipfile

    pytest.importorskip("openpyxl")
    path = tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx"
    path.parent.mkdir()
    pd.DataFrame({"Image name": ["a.jpg"], "MOS": [50.0]}).to_excel(tmp_path / "small.xlsx", index=False)
    with zipfile.ZipFile(tmp_path / "small.xlsx") as small, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as big:
        for part in small.namelist():
            big.writestr(part, small.read(part))
        big.writestr("xl/media/padding.bin", bytes(33 << 20))  # 33 MiB of zeros: about 33 KB packed
    assert path.stat().st_size < 100_000
    with zipfile.ZipFile(tmp_path / "small.xlsx") as small:
        unpacked = sum(len(small.read(part)) for part in small.namelist()) + (33 << 20)  # the bytes written
    with pytest.raises(DatasetError) as e:  # it ended "; not SPAQ's workbook", nothing to do
        load_dataset("spaq", tmp_path, check=False)
    assert str(e.value) == (
        f"{path}: its parts unpack to {unpacked:,} bytes, more than the 33,554,432 a label workbook may, so not "
        "SPAQ's workbook; give SPAQ's workbook as it is distributed"
    )
    path.write_bytes((tmp_path / "small.xlsx").read_bytes())
    assert load_dataset("spaq", tmp_path, check=False).scores.tolist() == [50.0]
