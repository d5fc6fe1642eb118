"""Random and file splits: sizes, disjointness, reference-disjointness, the reference's −1 padding."""

import re

import numpy as np
import pytest
from faults import refuse_access

from arniqa.evaluate.splits import SplitError, check_disjoint, choose_splits, load_splits, random_splits


@pytest.mark.parametrize("n,sizes", [(1162, (813, 117, 232)), (11125, (7787, 1113, 2225)), (10073, (7051, 1007, 2015))])
def test_image_splits_have_reference_sizes(n, sizes):
    splits = random_splits(n, n_splits=3, seed=1)
    for s in splits:
        assert (len(s.train), len(s.val), len(s.test)) == sizes
        assert np.array_equal(np.sort(np.concatenate([s.train, s.val, s.test])), np.arange(n))
        check_disjoint(s)
    assert not np.array_equal(splits[0].test, splits[1].test)


@pytest.mark.parametrize("refs,per,sizes", [(81, 125, (7125, 1000, 2000)), (25, 120, (2160, 240, 600))])
def test_reference_disjoint(refs, per, sizes):
    groups = np.repeat([f"I{r:02d}" for r in range(refs)], per)
    for s in random_splits(refs * per, n_splits=10, seed=0, groups=groups):
        assert (len(s.train), len(s.val), len(s.test)) == sizes
        parts = [set(groups[idx]) for idx in (s.train, s.val, s.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        check_disjoint(s, groups)


def test_interleaved_groups_and_seed():
    groups = np.tile(np.arange(29), 27)[:779]  # LIVE-like: references not contiguous
    a = random_splits(779, seed=5, groups=groups)
    b = random_splits(779, seed=5, groups=groups)
    c = random_splits(779, seed=6, groups=groups)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b))
    assert not np.array_equal(a[0].test, c[0].test)
    for s in a:
        check_disjoint(s, groups)
        assert len(set(groups[s.train])) == 20 and len(set(groups[s.val])) == 3 and len(set(groups[s.test])) == 6


def test_check_disjoint_catches_overlap():
    from arniqa.evaluate.splits import Split

    with pytest.raises(SplitError, match="train and test share"):
        check_disjoint(Split(np.array([0, 1]), np.array([2]), np.array([1, 3])))
    with pytest.raises(SplitError, match="train and val share"):
        check_disjoint(Split(np.array([0]), np.array([1]), np.array([2])), groups=["a", "a", "b"])


def test_reference_npy_files_drop_padding(tmp_path):
    train = np.array([[0, 1, 2, 3], [4, 5, 6, -1]], dtype=np.int64)
    val = np.array([[4, -1], [0, 1]], dtype=np.int64)
    test = np.array([[5, 6], [2, 3]], dtype=np.int64)
    (tmp_path / "splits").mkdir()
    for name, arr in (("train", train), ("val", val), ("test", test)):
        np.save(tmp_path / "splits" / f"{name}.npy", arr)
    splits = load_splits(tmp_path, n_images=7)  # finds splits/ below the dataset folder
    assert len(splits) == 2
    assert splits[1].train.tolist() == [4, 5, 6] and splits[0].val.tolist() == [4]
    assert all(-1 not in np.concatenate([s.train, s.val, s.test]) for s in splits)


def test_a_folder_in_place_of_a_split_file_is_named_as_such(tmp_path):
    """It was "train.npy: split file not found" while a folder of that name was there."""
    (tmp_path / "train.npy").mkdir()
    with pytest.raises(SplitError, match=r"train\.npy: not a file \(expected train\.npy, val\.npy and test\.npy\)"):
        load_splits(tmp_path, 5)


def test_flive_single_split_1d(tmp_path):
    for name, arr in (("train", [0, 1, 2, 5]), ("val", [3]), ("test", [4])):
        np.save(tmp_path / f"{name}.npy", np.array(arr, dtype=np.int64))
    (s,) = load_splits(tmp_path, n_images=6)
    assert s.train.tolist() == [0, 1, 2, 5] and s.test.tolist() == [4]


def test_bad_split_files_named(tmp_path):
    advice = "; give --splits the folder of the three files, or a number of random splits$"
    with pytest.raises(SplitError, match=r"train.npy: split file not found \(expected .*\)" + advice):
        load_splits(tmp_path, 5)
    np.save(tmp_path / "train.npy", np.array([[0, 9]]))
    np.save(tmp_path / "val.npy", np.array([[1]]))
    np.save(tmp_path / "test.npy", np.array([[2]]))
    with pytest.raises(SplitError) as e:  # it said no more: files made for another dataset, as it turns out
        load_splits(tmp_path, 5)
    assert str(e.value) == (
        f"{tmp_path / 'train.npy'}: split 0 has index 9 outside 0..4 (the highest: 9; the dataset has 5 images); "
        "give split files made for this dataset and its label file"
    )
    np.save(tmp_path / "val.npy", np.array([[1], [3]]))  # one split saved transposed: a row per index
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, 10)
    assert str(e.value) == (
        f"{tmp_path}: train/val/test hold different numbers of splits {{'train': 1, 'val': 2, 'test': 1}}; give the "
        "three files of one set of splits, each with a row of image indices per split (shape (splits, n), not "
        "transposed)"
    )
    np.save(tmp_path / "test.npy", np.array([[0.5]]))
    np.save(tmp_path / "val.npy", np.array([[1]]))
    with pytest.raises(SplitError) as e:  # floats (NaN padding, a pandas column): it said no more than what it got
        load_splits(tmp_path, 10)
    assert str(e.value) == (
        f"{tmp_path / 'test.npy'}: expected an integer array of shape (splits, n) or (n,), got float64 (1, 1); save "
        "the image indices with np.save, as integers (np.int64), a row per split, -1 padding the shorter rows"
    )


@pytest.mark.parametrize("refs,counts", [(5, (3, 1, 1)), (8, (5, 1, 2)), (6, (4, 1, 1)), (2, None)])
def test_few_references_keep_a_validation_part(refs, counts):
    groups = np.repeat(np.arange(refs), 3)
    if counts is None:
        with pytest.raises(ValueError, match="cannot split 2 groups"):
            random_splits(refs * 3, groups=groups)
        return
    for s in random_splits(refs * 3, n_splits=4, groups=groups):
        assert tuple(len(set(groups[idx])) for idx in (s.train, s.val, s.test)) == counts
        check_disjoint(s, groups)


def _save_split(folder, train, val, test):
    for name, arr in (("train", train), ("val", val), ("test", test)):
        np.save(folder / f"{name}.npy", np.array(arr, dtype=np.int64))


@pytest.mark.parametrize(
    "train, val, test, message",
    [
        ([0, 1, 2, 3], [4], [3, 5], "split 0: train and test share 1 item, e.g. [3]; the parts of a split must"),
        ([0, 1, 2], [2], [4, 5], "split 0: train and val share 1 item, e.g. [2]"),
        ([0, 1, 1, 2], [3], [4, 5], "train.npy: split 0 names image 1 twice; fix the split files"),
        ([0, 1, 2], [3], [-1, -1], "split 0 has an empty test part"),
    ],
)
def test_split_files_that_leak_or_cannot_test_are_refused(tmp_path, train, val, test, message):
    """A split whose test (or val) part holds training images would score images the ridge was fitted on."""
    _save_split(tmp_path, train, val, test)
    with pytest.raises(SplitError, match=re.escape(message)):
        load_splits(tmp_path, n_images=6)


def test_a_pickled_split_file_is_refused_without_advice_to_unpickle(tmp_path):
    _save_split(tmp_path, [0, 1], [2], [3])
    np.save(tmp_path / "test.npy", np.array([{"index": 3}], dtype=object), allow_pickle=True)
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, n_images=6)
    assert str(e.value) == (
        f"{tmp_path / 'test.npy'}: not a readable .npy array of image indices "
        "(it holds pickled Python objects, which are never loaded); save the image indices with np.save, as "
        "integers (np.int64), a row per split, -1 padding the shorter rows"
    )


def test_split_files_that_leave_images_out_say_how_many_they_use(tmp_path):
    """Split files made for a smaller dataset (CLIVE's 1,162 images' on KonIQ's 10,073) were taken without a word:
    the results, on part of the dataset, read as the whole dataset's. The description now says how many images the
    files use where they leave some out, as FLIVE's official split does (39,807 of 39,810)."""

    class Authentic:  # what choose_splits reads of a dataset
        root = tmp_path
        references = None

        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    _save_split(tmp_path, [0, 2, 4], [1], [3, 5])
    assert choose_splits(Authentic(6), tmp_path)[1] == f"files in {tmp_path} (1 split)"
    assert (
        choose_splits(Authentic(10_000), tmp_path)[1]
        == f"files in {tmp_path} (1 split); they use 6 of the 10,000 images"
    )
    (tmp_path / "splits").mkdir()
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}.npy").rename(tmp_path / "splits" / f"{name}.npy")
    text = choose_splits(Authentic(7), None)[1]
    assert text == f"official {tmp_path / 'splits'} (1 split); they use 6 of the 7 images"


def test_split_files_sharing_references_are_said_so(tmp_path):
    """Image-disjoint split files that put a reference's images in train and test: used, and the description says so."""

    class Synthetic:  # what choose_splits reads of a dataset: 6 images of references a, a, b, b, c, c
        root = tmp_path
        references = ["a", "a", "b", "b", "c", "c"]

        def __len__(self):
            return 6

    _save_split(tmp_path, [0, 2], [4], [1, 5])
    splits, text = choose_splits(Synthetic(), tmp_path)
    assert splits[0].test.tolist() == [1, 5]
    assert text.endswith("; NOT reference-disjoint (split 0: train and test share 1 item, e.g. ['a'])")
    _save_split(tmp_path, [0, 1], [2, 3], [4, 5])
    assert choose_splits(Synthetic(), tmp_path)[1] == f"files in {tmp_path} (1 split)"


@pytest.mark.parametrize(
    "refs, parts",
    [(29, (20, 3, 6)), (30, (21, 3, 6)), (25, (18, 2, 5)), (81, (57, 8, 16))],  # LIVE, CSIQ, TID2013, KADID-10k
)
def test_without_split_files_ten_reference_disjoint_splits_of_the_reference_sizes(tmp_path, refs, parts):
    """A synthetic dataset without splits/ gets 10 random 70/10/20 splits by reference, of the reference's
    sizes in references (arniqa-reference.md section 3, Splits)."""

    class Synthetic:  # what choose_splits reads of a dataset: 3 images per reference
        root = tmp_path
        references = [f"r{i // 3}" for i in range(3 * refs)]

        def __len__(self):
            return 3 * refs

    splits, text = choose_splits(Synthetic())
    assert len(splits) == 10 and text == "10 random 70/10/20 splits, reference-disjoint, seed 0"
    for s in splits:
        assert tuple(len({Synthetic.references[i] for i in part}) for part in (s.train, s.val, s.test)) == parts


@pytest.mark.parametrize("synthetic", [False, True])
def test_too_small_a_dataset_for_random_splits_is_named_with_what_to_do(tmp_path, synthetic):
    """It was `cannot split 2 images into 70/10/20`, naming no dataset or file. A part of a split needs one image
    (reference): 3 are the fewest that split (train 1, val 1, test 1 by the reference's rounding)."""
    from arniqa.data.iqa.base import IQADataset, Record
    from arniqa.data.iqa.registry import ScoreRange

    n = 4 if synthetic else 2  # 2 references of 2 images, or 2 images
    records = [
        Record(tmp_path / f"{i}.png", float(i), f"r{i // 2}" if synthetic else None, line=i + 2) for i in range(n)
    ]
    labels = tmp_path / "labels.csv"
    data = IQADataset("csv", tmp_path, records, ScoreRange(0, 3, "mos"), synthetic=synthetic, label_file=labels)
    with pytest.raises(SplitError) as e:
        choose_splits(data, 2)
    kind = "2 groups (references)" if synthetic else "2 images"
    assert str(e.value) == (
        f"csv ({labels}): cannot split {kind} into 70/10/20: each part needs one, so 3 or more; "
        "give a larger dataset, or split files (a folder of train/val/test.npy)"
    )
    assert all(min(map(len, (s.train, s.val, s.test))) >= 1 for s in random_splits(3, n_splits=5))


class _Authentic:  # what choose_splits reads of a dataset without references: 20 images
    name, label_file, references = "csv", None, None

    def __init__(self, root):
        self.root = root

    def __len__(self):
        return 20


@pytest.mark.parametrize(
    "splits, message",
    [
        ("-1", "splits '-1': expected a number of random splits from 1 to 1000, or a folder of .npy files"),  # was
        # "-1/train.npy: split file not found"
        (" 0 ", "splits ' 0 ': expected a number of random splits from 1 to 1000, or a folder of .npy files"),
        ("1001", "splits '1001': expected a number of random splits from 1 to 1000, or a folder of .npy files"),
    ],
)
def test_split_counts_out_of_range_are_refused(tmp_path, splits, message):
    """--splits 1000000000 made a billion splits (memory and hours) before any message."""
    with pytest.raises(SplitError) as e:
        choose_splits(_Authentic(tmp_path), splits)
    assert str(e.value) == message
    assert len(choose_splits(_Authentic(tmp_path), "1000")[0]) == 1000


@pytest.mark.parametrize("splits", ["3.5", "1e3", "labels.csv", "nosuchfolder"])
def test_splits_that_are_neither_a_count_nor_a_folder_are_named(tmp_path, splits):
    """`--splits 3.5` said `3.5/train.npy: split file not found`: a folder the user never meant; a file given there
    was called 'no such folder' though it is there."""
    (tmp_path / "labels.csv").write_text("path,score\n")
    given = str(tmp_path / splits) if splits == "labels.csv" else splits
    with pytest.raises(SplitError) as e:
        choose_splits(_Authentic(tmp_path), given)
    expected = "expected a number of random splits from 1 to 1000, or a folder of .npy files"
    what = "not a folder" if splits == "labels.csv" else "no such folder"
    assert str(e.value) == f"splits {given!r}: {what}; {expected}"


def test_a_negative_seed_is_named(tmp_path):
    """It was numpy's 'expected non-negative integer', naming neither the seed nor what to give."""
    with pytest.raises(SplitError) as e:
        random_splits(20, seed=-1)
    assert str(e.value) == "seed -1: the seed of the random splits must be 0 or more"
    with pytest.raises(SplitError) as e:  # it said "...; give a larger dataset, or split files" as well
        choose_splits(_Authentic(tmp_path), 3, seed=-1)
    assert str(e.value) == "seed -1: the seed of the random splits must be 0 or more"


SAVE_NPY = "save the image indices with np.save, as integers (np.int64), a row per split, -1 padding the shorter rows"


def test_split_files_that_are_empty_garbage_or_hold_no_split_are_named(tmp_path):
    _save_split(tmp_path, [0, 1], [2], [3])
    (tmp_path / "val.npy").write_bytes(b"")  # it was EOFError's traceback
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, n_images=6)
    assert (
        str(e.value)
        == f"{tmp_path / 'val.npy'}: not a .npy file (expected an integer array of image indices); {SAVE_NPY}"
    )
    (tmp_path / "val.npy").write_bytes(b"0,1,2\n")  # it was said to hold pickled Python objects
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, n_images=6)
    assert (
        str(e.value)
        == f"{tmp_path / 'val.npy'}: not a .npy file (expected an integer array of image indices); {SAVE_NPY}"
    )
    for name in ("train", "val", "test"):  # no split at all: every reported number was NaN
        np.save(tmp_path / f"{name}.npy", np.zeros((0, 4), dtype=np.int64))
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, n_images=6)
    assert str(e.value) == f"{tmp_path}: the split files hold no splits (arrays of shape (0, n))"
    _save_split(tmp_path, [0, 1], [2], [3])
    np.save(tmp_path / "train.npy", np.array([0, 2**63 + 5], dtype=np.uint64))  # was named as -9223372036854775803
    with pytest.raises(SplitError, match=re.escape(f"split 0 has index {2**63 + 5} outside 0..5")):
        load_splits(tmp_path, n_images=6)


def test_a_split_file_declaring_more_than_it_holds_is_refused_before_any_allocation(tmp_path):
    """A 200-byte .npy whose header declares 10**10 indices: numpy allocated 75 GiB first (a MemoryError, which
    `arniqa evaluate` reported as running out of memory computing the features)."""
    for name in ("train", "val", "test"):
        np.save(tmp_path / f"{name}.npy", np.array([[0, 1]], dtype=np.int64))
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (10000000000,), }".ljust(117) + b"\n"
    (tmp_path / "val.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(16))
    with pytest.raises(SplitError) as e:
        load_splits(tmp_path, n_images=5)
    assert str(e.value) == (
        f"{tmp_path / 'val.npy'}: its header declares (10000000000,) int64 (80,000,000,000 bytes), but it holds 16; "
        "copy or download it again"
    )


def test_split_files_this_user_may_not_read_are_one_line_naming_them(tmp_path, monkeypatch):
    """A split file without read permission, or a splits folder without search permission, was a bare '[Errno 13]
    Permission denied: ...' from arniqa evaluate (and a traceback from training's validation). Now it is the line of
    a dataset file that cannot be read: the file, or the folder that cannot be entered; the dataset's own splits/
    too."""
    root = tmp_path / "ds"
    (root / "splits").mkdir(parents=True)
    _save_split(root / "splits", [0, 1, 2], [3], [4, 5])
    assert len(choose_splits(_Authentic(root), None)[0]) == 1
    val = root / "splits" / "val.npy"
    with monkeypatch.context() as patch:
        refuse_access(patch, lambda path: path == str(val), lookup=False)
        for given in (None, root / "splits"):
            with pytest.raises(SplitError) as e:
                choose_splits(_Authentic(root), given)
            assert str(e.value) == f"{val}: cannot read file (Permission denied); check its permissions"
    refuse_access(monkeypatch, lambda path: path.startswith(f"{root / 'splits'}/"))
    for given in (None, root / "splits"):
        with pytest.raises(SplitError) as e:
            choose_splits(_Authentic(root), given)
        assert str(e.value) == f"{root / 'splits'}: cannot open folder (Permission denied); check its permissions"
