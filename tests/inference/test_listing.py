"""Inputs listed lazily: folder order, --files-from, --resume by streaming, memory flat in the number of inputs."""

import csv
import errno
import os
import shutil
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from fresh_cli import fresh_cli
from imaging import APPLE_DOUBLE
from PIL import Image
from tiny_arniqa import tiny_onnx
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import app
from arniqa.inference.listing import LONGEST_PATH, ListError, iter_inputs, read_list, skip_finished


def _png(path, seed=0, size=(16, 12)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_folders_are_walked_in_sorted_rglob_order(tmp_path):
    for name in ("b/z.png", "b/a.jpg", "a.txt", "a/c/d.png", "a.png", "a-b/e.png", "B.png", "b.notes"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _png(tmp_path / name) if name.endswith(("png", "jpg")) else (tmp_path / name).write_text("x")
    skipped = []
    got = list(iter_inputs([tmp_path], skipped.append))
    files = [p for p in sorted(tmp_path.rglob("*")) if p.is_file()]  # the reference order
    assert got == [str(p) for p in files if p.suffix in (".png", ".jpg")]
    assert skipped == [str(p) for p in files if p.suffix not in (".png", ".jpg")]


@contextmanager
def _nested(folder, name, depth, file=None):
    """``depth`` folders ``name`` one in another under ``folder`` (``file``: an empty file in the last), removed
    after; made and removed through folder descriptors, as os.makedirs and shutil.rmtree recurse per level."""
    fds = [os.open(folder, os.O_RDONLY)]
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fds[-1])
            fds.append(os.open(name, os.O_RDONLY, dir_fd=fds[-1]))
        if file:
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, dir_fd=fds[-1]))
        yield
    finally:
        if file:
            os.unlink(file, dir_fd=fds[-1])
        while len(fds) > 1:
            os.close(fds.pop())
            os.rmdir(name, dir_fd=fds[-1])
        os.close(fds[0])


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path):
    # before: walk recursed once per level, so 1100 nested folders were a RecursionError (a traceback)
    depth = sys.getrecursionlimit() + 100
    (tmp_path / "y.jpg").write_bytes(b"")
    with _nested(tmp_path, "d", depth, "x.jpg"):
        got = list(iter_inputs([tmp_path]))
    assert len(got) == 2 and got[0] == str(tmp_path) + "/d" * depth + "/x.jpg" and got[1] == str(tmp_path / "y.jpg")


def test_a_folder_that_cannot_be_listed_is_reported_not_passed_over(tmp_path):
    # before: a folder whose listing failed was passed over in silence, its images gone from the run
    for name in ("a/1.png", "b/2.png", "c/3.png"):
        (tmp_path / name).parent.mkdir()
        _png(tmp_path / name)
    broken = []
    items = iter_inputs([tmp_path], on_broken=lambda path, why: broken.append((path, why)))
    assert next(items) == str(tmp_path / "a/1.png")
    shutil.rmtree(tmp_path / "b")  # replaced by a file between the listing of its parent and its own
    (tmp_path / "b").write_text("x")
    assert list(items) == [str(tmp_path / "c/3.png")]
    assert broken == [(str(tmp_path / "b"), "folder cannot be listed: Not a directory")]
    broken.clear()
    with _nested(tmp_path / "c", "d" * 200, 25):  # a path over PATH_MAX (4096 bytes) cannot be listed
        assert list(iter_inputs([tmp_path / "c"], on_broken=lambda path, why: broken.append((path, why)))) == [
            str(tmp_path / "c/3.png")
        ]
    [(path, why)] = broken  # the first folder whose path is too long
    assert why == "folder cannot be listed: File name too long" and len(path) >= 4095


def test_a_folder_or_shard_named_that_holds_no_image_is_reported(tmp_path):
    # before: a folder named x.jpg, an empty one, one of text files, a shard of labels gave nothing, unreported
    import tarfile

    for name in ("x.jpg", "empty", "notes", "full"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    good = str(_png(tmp_path / "full" / "a.png"))
    (tmp_path / "label.cls").write_text("3")
    with tarfile.open(tmp_path / "labels.tar", "w") as tar:
        tar.add(tmp_path / "label.cls", "0.cls")
    given = [tmp_path / n for n in ("x.jpg", "empty", "notes", "full", "labels.tar")]
    empty = []
    assert list(iter_inputs(given, on_empty=empty.append)) == [good]
    assert empty == [str(tmp_path / n) for n in ("x.jpg", "empty", "notes", "labels.tar")]


def test_an_output_folder_excluded_gives_no_item_and_nothing_said_of_its_files(tmp_path):
    # arniqa map's output inside an input: its maps are no input, and a folder holding only them is empty
    for folder in ("photos/maps", "old/maps"):
        (tmp_path / folder).mkdir(parents=True)
    photo = str(_png(tmp_path / "photos" / "a.png"))
    _png(tmp_path / "photos" / "maps" / "a.map.png")
    (tmp_path / "photos" / "maps" / "maps.csv").write_text("path\n")
    (tmp_path / "photos" / "maps" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    _png(tmp_path / "old" / "maps" / "b.map.png")
    skipped, broken, empty = [], [], []
    out = tmp_path / "photos" / "maps"
    given = [tmp_path / "photos", out / "a.map.png"]
    items = iter_inputs(given, skipped.append, lambda path, why: broken.append(path), empty.append, exclude=out)
    assert list(items) == [photo] and skipped == broken == [] and empty == []
    given = [tmp_path / "photos", tmp_path / "old"]
    items = iter_inputs(given, skipped.append, lambda path, why: broken.append(path), empty.append, tmp_path / "old")
    assert list(items) == [photo, str(out / "a.map.png")] and empty == [str(tmp_path / "old")]
    assert skipped == [str(out / "maps.csv")] and broken == [str(out / "gone.png")]  # outside the excluded: said


def test_an_output_folder_excluded_is_never_listed(tmp_path, monkeypatch):
    # `arniqa map photos -o photos/maps`: each rerun listed the maps folder and every folder in it, to drop them
    (tmp_path / "photos" / "maps" / "deep").mkdir(parents=True)
    photo = str(_png(tmp_path / "photos" / "a.png"))
    _png(tmp_path / "photos" / "maps" / "deep" / "a.map.png")
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(os.path.abspath(path)) or scandir(path))
    out = tmp_path / "photos" / "maps"
    assert list(iter_inputs([tmp_path / "photos"], exclude=out)) == [photo]
    assert listed == [str(tmp_path / "photos")]


def test_a_name_too_long_for_the_system_is_an_error_row_and_the_run_goes_on(tmp_path):
    # before: a name over NAME_MAX (255 bytes; a stray line of a list) stopped the run with an OSError traceback
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    good = str(_png(tmp_path / "a.png"))
    long_file, long_shard = str(tmp_path / ("x" * 300 + ".png")), str(tmp_path / ("y" * 300 + ".tar"))
    assert list(iter_inputs([long_file, good])) == [long_file, good]
    out = tmp_path / "scores.csv"
    r = CliRunner().invoke(app, ["score", long_file, good, long_shard, "--checkpoint", str(model), "-o", str(out)])
    assert r.exit_code == 1, r.output
    rows = list(csv.DictReader(open(out)))
    assert [row["path"] for row in rows] == [long_file, good, long_shard]
    assert [bool(row["score"]) for row in rows] == [False, True, False]
    assert "File name too long" in rows[0]["error"] and "File name too long" in rows[2]["error"]


def test_skip_finished_streams_a_prefix_and_falls_back_to_a_set():
    items = [f"p{i}" for i in range(6)]

    def rows(names):
        return iter([(name, False) for name in names])

    assert list(skip_finished(iter(items), rows(["p0", "p1", "p2"]))) == ["p3", "p4", "p5"]
    assert list(skip_finished(iter(items), rows(["p4", "p0", "p5"]))) == ["p1", "p2", "p3"]
    assert list(skip_finished(iter(items), rows([]))) == items
    left = []
    skipped = list(skip_finished(iter(items), rows(["p0", "x", "p3"]), lambda item, failed: left.append(item)))
    assert skipped == ["p1", "p2", "p4", "p5"] and left == ["p0", "p3"]


def test_skip_finished_keeps_the_finished_names_to_do_again_in_prefix_and_set_alike():
    """--retry-failed: a failed row's path is matched as finished (a prefix stays a prefix) but its item kept, its
    name told as it is given (before the items after it)."""
    items = [f"p{i}" for i in range(6)]
    for finished in (["p0", "p1", "p2"], ["p2", "p0", "p1"]):  # read in step with the items, then into a dict
        left, told = [], []
        rows = iter([(name, name == "p1") for name in finished])  # p1's row holds an error
        given = skip_finished(iter(items), rows, lambda item, failed: left.append(item), again=told.append)
        kept = [(item, list(told)) for item in given]
        assert kept == [("p1", ["p1"]), *((f"p{i}", ["p1"]) for i in (3, 4, 5))] and left == ["p0", "p2"]


def test_skip_finished_says_which_skipped_rows_failed_reading_a_prefix_one_row_ahead():
    """A plain --resume held the paths of every error row in a set (26 MB at 200,000 rows) only to count the failed
    ones it skipped. Each skipped item now comes with its own row's failed flag: in step with the items the rows are
    read one ahead and none is held; from the first item out of step on, as many as the rows held then (each item
    takes its name's first row not yet taken)."""
    items = [f"p{i}" for i in range(1000)]
    read = 0

    def rows(names):
        nonlocal read
        for name in names:
            read += 1
            yield name, int(name[1:]) % 3 == 0

    told = []
    kept = list(skip_finished(iter(items), rows(items[:900]), lambda item, failed: told.append((item, failed))))
    assert kept == items[900:]
    assert told == [(f"p{i}", i % 3 == 0) for i in range(900)]
    taken = 0

    def counted():
        nonlocal taken
        for item in items[:600]:
            taken += 1
            assert read <= taken + 1  # read at most one row ahead of the items: nothing held
            yield item

    read = 0
    assert list(skip_finished(counted(), rows(items[:900]))) == []
    told = []
    finished = [("p5", True), ("p2", False), ("p5", False), ("x", True)]  # out of step: held, p5's first row failed
    kept = list(skip_finished(iter(items[:7]), iter(finished), lambda item, failed: told.append((item, failed))))
    assert kept == ["p0", "p1", "p3", "p4", "p6"] and told == [("p2", False), ("p5", True)]


def test_skip_finished_matches_each_row_to_one_item_in_step_or_not():
    """A path given twice (a list with a duplicate line) has two rows in a fresh run. Out of step with the items, the
    rows were held as a set of names: both items matched one row, so a plain --resume wrote one row where a fresh run
    writes two, and --retry-failed scored the path twice with one error row to put them in (the second row lost).
    Each row now matches one item, in step or not, in the rows' order: what a fresh run writes, once each."""

    def resumed(items, rows, retry):
        left, told = [], []
        again = told.append if retry else None
        kept = list(skip_finished(iter(items), iter(rows), lambda i, failed: left.append((i, failed)), again))
        return kept, told, left

    for again in (True, False):
        # in step (a prefix), then out of step from the first item on (rows of another order)
        for rows in ([("a", True), ("b", False)], [("b", False), ("a", True)]):
            kept, told, left = resumed(["a", "b", "a"], rows, again)
            # a's one row matches the first a (kept to score again, or skipped as failed); the second a is new
            assert kept == (["a", "a"] if again else ["a"]) and told == (["a"] if again else [])
            assert left == ([("b", False)] if again else [("a", True), ("b", False)])
    # two rows of one name out of step: taken in their order, one per item; the third item is new
    kept, told, left = resumed(["a", "a", "a"], [("x", True), ("a", False), ("a", True)], True)
    assert (kept, told, left) == (["a", "a"], ["a"], [("a", False)])


def test_files_from_a_list_and_stdin_with_resume(tmp_path):
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    paths = [str(_png(tmp_path / f"{i}.png", i)) for i in range(5)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths[:3]) + "\n\n")
    out = tmp_path / "scores.csv"
    common = ["score", "--checkpoint", str(model), "--protocol", "whole", "-o", str(out)]
    r = CliRunner().invoke(app, [*common, "--files-from", str(listing)])
    assert r.exit_code == 0, r.output
    first = list(csv.DictReader(open(out)))
    assert [row["path"] for row in first] == paths[:3]
    # stdin, the rest appended; the rows already there are not scored again
    r = CliRunner().invoke(app, [*common, paths[0], "--files-from", "-", "--resume"], input="\n".join(paths[1:]) + "\n")
    assert r.exit_code == 0 and "resuming: 3 of 5 paths" in r.stderr, r.output
    rows = list(csv.DictReader(open(out)))
    assert [row["path"] for row in rows] == paths and rows[:3] == first
    r = CliRunner().invoke(app, ["score", "--checkpoint", str(model)])
    assert r.exit_code == 2 and "--files-from" in r.output


def test_a_macs_appledouble_files_listed_by_find_are_skipped_as_in_a_folder(tmp_path):
    """`find /share -name '*.jpg'` lists the ._IMG_1.jpg AppleDouble file a Mac writes beside each photo it copies:
    each was an error row, exit 1 on every run of the list; named (in a list or as an argument) it is now skipped
    and counted in the note, as a folder walk does. An image so named is scored; other files named keep their
    error row, and a missing ._ file its 'no such file' row."""
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    photo, real = _png(tmp_path / "IMG_1.jpg"), _png(tmp_path / "._real.png", 1)
    (tmp_path / "._IMG_1.jpg").write_bytes(APPLE_DOUBLE)
    (tmp_path / "._000000.tar").write_bytes(APPLE_DOUBLE)
    (tmp_path / "notes.jpg").write_text("no image")
    listing = tmp_path / "list.txt"
    named = [tmp_path / n for n in ("._IMG_1.jpg", "IMG_1.jpg", "._000000.tar", "._real.png", "notes.jpg", "._gone")]
    listing.write_text("".join(f"{p}\n" for p in named))
    out = tmp_path / "scores.csv"
    args = ["score", "--checkpoint", str(model), "--protocol", "whole", "-o", str(out), "--files-from", str(listing)]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "._IMG_1.jpg")])
    assert r.exit_code == 1, r.output
    rows = {row["path"]: row["error"] for row in csv.DictReader(open(out))}
    assert list(rows) == [str(photo), str(real), str(tmp_path / "notes.jpg"), str(tmp_path / "._gone")]
    assert (
        not rows[str(photo)]
        and not rows[str(real)]
        and rows[str(tmp_path / "._gone")] == "no such file; check the path"
    )
    assert "skipped 3 files no decoder can open: 3 ._* (Mac AppleDouble)" in r.stderr


def test_list_lines_are_file_names_in_any_bytes_and_a_byte_order_mark_is_dropped(tmp_path):
    """`find | arniqa score --files-from -` stopped with a UnicodeDecodeError at a name that is not UTF-8 where
    standard input is strict (a UTF-8 locale); a list saved with a byte-order mark lost its first image."""
    import codecs
    import os
    import subprocess
    import sys

    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    names = [os.fsencode(_png(tmp_path / "a.png", 1)), os.fsencode(_png(tmp_path / os.fsdecode(b"\xff.png"), 2))]
    listing = tmp_path / "bom.txt"
    listing.write_bytes(codecs.BOM_UTF8 + b"\r\n".join(names) + b"\r\n")
    common = ["score", "--checkpoint", str(model), "--protocol", "whole"]
    for source, stdin in ((listing, None), ("-", b"\n".join(names) + b"\n")):
        env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
        command = [sys.executable, "-c", "from arniqa.cli import main; main()", *common, "--files-from", str(source)]
        done = subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        rows = list(csv.DictReader(done.stdout.decode().splitlines()))
        assert [r["path"] for r in rows] == [str(tmp_path / "a.png"), str(tmp_path / "\\xff.png")]
        assert all(r["score"] and not r["error"] for r in rows)


def test_a_10k_line_list_scores_in_bounded_memory(tmp_path):
    _, _, model = tiny_onnx(tmp_path / "tiny.onnx")
    image = _png(tmp_path / "tiny.png")
    peaks = {}
    for n in (1000, 10_000):
        listing = tmp_path / f"list-{n}.txt"
        listing.write_text("".join(f"{image}\n" for _ in range(n)))
        out = tmp_path / f"scores-{n}.csv"
        args = ["--checkpoint", model, "--protocol", "whole", "--batch-size", 64, "-o", out]
        done, report = fresh_cli("score", "--files-from", listing, *args, timeout=600)
        assert done.returncode == 0, done.stderr
        assert sum(1 for _ in open(out)) == n + 1
        peaks[n] = report["peak_kb"]
    # ten times the inputs: the peak grows by less than 8 MB (10k paths held in lists would be ~1.5 MB,
    # their rows and results several MB more)
    assert peaks[10_000] - peaks[1000] < 8 * 1024, peaks


def test_a_nul_separated_list_keeps_names_as_they_are_and_is_read_as_taken(tmp_path, monkeypatch):
    """`find -print0 | arniqa score --files-from -` was one path: the whole list, NULs and all."""
    names = [b"a\nb.png", b" c .png", b"d\r", b"\xff.png", b"e.png"]
    listing = tmp_path / "list0"
    listing.write_bytes(b"\0".join(names) + b"\0\0")  # an empty name between the last two NULs: passed over
    assert list(read_list(listing, null=True)) == [os.fsdecode(n) for n in names]
    listing.write_bytes(b"\0".join(names))  # no NUL after the last name
    assert list(read_list(listing, null=True)) == [os.fsdecode(n) for n in names]
    listing.write_bytes(b"\0\0" + b"\0\0".join(names))  # empty names, as xargs -0 takes them, are passed over
    assert list(read_list(listing, null=True)) == [os.fsdecode(n) for n in names]

    class Endless:  # a pipe that is never closed: a name per read
        reads = 0

        def read1(self, size):
            self.reads += 1
            return b"x.png\0"

    stdin = Endless()
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stdin})())
    paths = read_list("-", null=True)
    assert [next(paths) for _ in range(3)] == ["x.png"] * 3 and stdin.reads == 3


def test_a_line_longer_than_a_path_is_one_bad_item_not_the_list_refused(tmp_path):
    """A list's bound (LONGEST_PATH) is on reading no list, not on a path's length (PATH_MAX): a line too long to
    open is listed, to get its error row, and the lines after it are read."""
    from arniqa.utils.files import PATH_MAX

    long = "x" * (PATH_MAX + 1)
    listing = tmp_path / "list"
    listing.write_text(f"{long}\na.png\n")
    assert list(read_list(listing)) == [long, "a.png"]
    with pytest.raises(OSError) as e:
        open(long, "rb")
    assert e.value.errno == errno.ENAMETOOLONG  # what its row says


@pytest.mark.parametrize(
    "data, null, said",
    [
        (b"a.png\0b.png\0", False, "holds a NUL byte, which no file name holds; for a NUL-separated list"),
        (b"a.png\nb.png\n", True, "holds lines but no NUL byte; for a list of one path per line drop -0"),
        (b"a.png\n" * (LONGEST_PATH // 4), True, f"no NUL byte in {LONGEST_PATH} bytes"),
        (b"a" * (LONGEST_PATH + 1), False, f"no line end in {LONGEST_PATH} bytes"),
        # before: read for ever (-0 --files-from /dev/zero spun with no output), empty names passed over
        (b"\0" * (LONGEST_PATH + 2) + b"a.png\0", True, f"{LONGEST_PATH} NUL bytes in a row, no path; give a list"),
        # before: 'holds a NUL byte ...; for a NUL-separated list add -0' for PowerShell 5's `dir -Name > list.txt`
        ("a.png\r\nb.png\r\n".encode("utf-16"), False, "UTF-16 text, not UTF-8; save it as UTF-8"),
        ("a.png\nb.png\n".encode("utf-16-le"), False, "UTF-16 text, not UTF-8; save it as UTF-8"),  # no BOM
    ],
)
def test_a_list_of_the_other_kind_is_refused(tmp_path, data, null, said):
    listing = tmp_path / "list"
    listing.write_bytes(data)
    with pytest.raises(ListError, match=f"^{listing}: {said}"):
        read_list(listing, null)  # on the call: each shows before the first path is complete
    with pytest.raises(ListError, match="no such file or directory; give --files-from a file listing paths"):
        read_list(tmp_path / "missing")  # on the call, before the first path is taken


def test_a_list_that_is_no_list_is_refused_on_the_call_and_a_list_is_read_up_to_its_first_path(tmp_path, monkeypatch):
    """A photo or /dev/zero given as the list was refused only when the run reached it, after the PATHS before it
    were scored; a read error was an OSError traceback."""
    photo = _png(tmp_path / "photo.png")
    for source in (photo, "/dev/zero"):
        with pytest.raises(ListError, match=f"^{source}: holds a NUL byte, which no file name holds"):
            read_list(source)

    class Stdin:  # what read1 is asked for, in order; EIO once the list's first chunk is given
        def __init__(self, chunks):
            self.chunks = list(chunks)

        def read1(self, size):
            if not self.chunks:
                raise OSError(5, "Input/output error")
            return self.chunks.pop(0)

    stdin = Stdin([b"\n\n", b"a.png\nb", b".png\n"])  # blank lines, then a path in two reads
    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": stdin})())
    paths = read_list("-")
    assert stdin.chunks == [b".png\n"]  # read up to its first path, no further
    assert next(paths) == "a.png" and next(paths) == "b.png"
    with pytest.raises(ListError, match="^standard input: input/output error; give --files-from a file listing"):
        next(paths)
    stdin.chunks = []
    with pytest.raises(ListError, match="^standard input: input/output error"):
        read_list("-")
