"""``arniqa score``'s output file under faults: torn rows, the file size limit, a full disk, two writers,
kills. What is promised is in docs/reliability.md; the reference is always one clean run's bytes."""

import os
import random
import resource
import signal
import subprocess
import time

import pytest
import tiny_score
from faults import one_line_error
from tiny_score import child, write_images
from typer.testing import CliRunner

import arniqa.cli.score  # noqa: F401  (registers the verb)
from arniqa.cli import app
from arniqa.cli.result_files import iter_done, result_row
from arniqa.cli.results import RowWriter

WAIT = 300  # seconds a child may take on a busy 2-core machine


@pytest.fixture
def tiny(monkeypatch):
    """In-process runs score with the stand-in model."""
    import arniqa.inference

    monkeypatch.setattr(arniqa.inference, "load", tiny_score.load)


def _score(*args):
    return CliRunner().invoke(app, ["score", *map(str, args)])


def _finish(p) -> tuple[int, str]:
    _, err = p.communicate(timeout=WAIT)
    return p.returncode, err


def _file_limit(limit: int):
    def preexec() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of a signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _error_lines(stderr: str) -> list[str]:
    """The error lines of a run stopped after some rows (the progress bar's last frame beside them)."""
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_resume_drops_a_torn_csv_row_and_rescores_it(tiny, tmp_path):
    imgs = write_images(tmp_path / "imgs", 5)
    clean = tmp_path / "clean.csv"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    data = clean.read_bytes()
    lines = data.splitlines(keepends=True)
    kept, row = b"".join(lines[:3]), lines[3]  # the header, two rows; the third row torn
    cuts = {
        "in its score (0.7 looks like a number)": kept + row[: row.index(b",") + 4],
        "in its path": kept + row[:10],
        "before its newline": kept + row[:-1],
    }
    for where, cut in cuts.items():
        out = tmp_path / "out.csv"
        out.write_bytes(cut)
        r = _score(*imgs, "--protocol", "whole", "-o", out, "--resume")
        assert r.exit_code == 0 and "resuming: 2 of 5" in r.stderr, where
        assert out.read_bytes() == data, where


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_result_file_cut_at_any_byte_resumes_to_the_whole_file(tmp_path, fmt):
    rows = [
        ("a,b.png", 0.5, 3.0, None),
        ('q"uo\nte.png', 0.25, 2.0, None),
        ("caf\udce9.png", None, None, "bad\udcff"),
        ("back\\slash.png", 0.75, 4.0, None),
        ("d.png", 0.125, 1.5, None),
    ]
    path = tmp_path / f"r.{fmt}"
    with RowWriter(path, fmt) as w:
        for row in rows:
            w.write_row(result_row(*row))
    whole = path.read_bytes()
    for cut in range(len(whole) + 1):
        path.write_bytes(whole[:cut])
        done = set(iter_done(path, fmt))
        assert [r[0] for r in rows if r[0] in done] == [r[0] for r in rows][: len(done)], cut  # a prefix, in order
        with RowWriter(path, fmt, append=True) as w:
            for row in rows:
                if row[0] not in done:
                    w.write_row(result_row(*row))
        assert path.read_bytes() == whole, cut


def test_the_file_size_limit_exits_2_naming_the_file_and_resume_completes_it(tiny, tmp_path):
    # Long paths make rows long, so the limit (3/5 of the output, about 5 KB) lies above what the imports write:
    # torch 2.6 writes a 2 KB generated module (torch.distributed.nn's) to a temporary folder as torchvision loads.
    imgs = write_images(tmp_path / ("i" * 200) / ("j" * 200), 16)
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    data = clean.read_bytes()
    limit = len(data) * 3 // 5
    limit += data[limit - 1 : limit] == b"\n"  # inside a row
    code, err = _finish(child([*imgs, "--protocol", "whole", "-o", out], preexec_fn=_file_limit(limit)))
    assert code == 2
    [line] = _error_lines(err)
    assert line.startswith(f"error: {out}: file too large") and "(EFBIG)" in line and "--resume" in line
    # freeing space does not lift the limit (it said "free space")
    assert "; raise the file-size limit with ulimit -f (or choose" in line and "free space" not in line
    kept = out.read_bytes()
    assert kept.endswith(b"\n") and data.startswith(kept) and len(kept) <= limit  # whole rows only
    assert _score(*imgs, "--protocol", "whole", "-o", out, "--resume").exit_code == 0
    assert out.read_bytes() == data


@pytest.mark.parametrize("small_disk", [3], indirect=True)  # a page each: the lock file, the settings file, rows
def test_a_full_disk_exits_2_naming_the_file_and_resume_completes_it(tiny, small_disk, tmp_path):
    disk, fillers = small_disk
    imgs = write_images(tmp_path / ("long-folder-name-" * 12) / "imgs", 20)  # rows of ~270 bytes: 5.4 KB in all
    clean, out = tmp_path / "clean.csv", disk / "out.csv"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    data = clean.read_bytes()
    code, err = _finish(child([*imgs, "--protocol", "whole", "-o", out]))
    assert code == 2
    [line] = _error_lines(err)
    assert line.startswith(f"error: {out}: disk full (ENOSPC)") and "--resume" in line and "; free space (or" in line
    kept = out.read_bytes()
    assert kept.endswith(b"\n") and data.startswith(kept) and len(kept) < len(data)  # whole rows only
    for f in fillers:
        f.unlink()
    assert _score(*imgs, "--protocol", "whole", "-o", out, "--resume").exit_code == 0
    assert out.read_bytes() == data


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_output_in_a_folder_without_write_permission_exits_2_naming_it(tiny, tmp_path):
    imgs = write_images(tmp_path / "imgs", 1)
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    r = _score(*imgs, "--protocol", "whole", "-o", folder / "s.csv")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        f"error: {folder}/s.csv: cannot write it: permission denied (EACCES); choose an output you can write to"
    ]


def test_an_output_on_a_read_only_file_system_exits_2_naming_it(tiny, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    imgs = write_images(tmp_path / "imgs", 1)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(disk)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = _score(*imgs, "--protocol", "whole", "-o", disk / "s.csv")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        f"error: {disk}/s.csv: cannot write it: read-only file system (EROFS); choose an output you can write to"
    ]


def test_an_output_that_is_not_a_result_file_is_never_replaced(tiny, tmp_path):
    """`arniqa score a.png -o a.png` (or `-o *.png`, the shell putting a photo after -o) replaced the photo
    with a CSV. A file that is not a result file of arniqa score is refused, byte for byte untouched; a result
    file, an empty file and a missing one are written as before."""
    imgs = write_images(tmp_path / "imgs", 2)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    for victim in (imgs[0], notes):
        before = victim.read_bytes()
        result = _score(*imgs, "--protocol", "whole", "-o", victim)
        assert result.exit_code == 2 and victim.read_bytes() == before
        line = one_line_error(result.stderr)
        assert line.startswith(f"error: {victim}: not an arniqa csv result file") and "choose another output" in line
        # the photo's first bytes were quoted ('\udcff\udcd8\udcff\udce0\x00\x10JFIF...'), the text file's line is
        said = "it holds binary data" if victim == imgs[0] else "its first line is 'my notes'"
        assert said in line
    out = tmp_path / "scores.csv"
    for existing in (None, b"", b"path,score,raw_score,error\nold.png,0.1,1.4,\n"):
        if existing is not None:
            out.write_bytes(existing)
        assert _score(*imgs, "--protocol", "whole", "-o", out).exit_code == 0
        assert sorted(set(iter_done(out, "csv"))) == sorted(map(str, imgs))  # replaced by this run's rows


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_result_file_edited_by_hand_is_resumed_or_refused_never_cut(tiny, tmp_path, fmt):
    imgs = write_images(tmp_path / "imgs", 5)
    clean, out = tmp_path / f"clean.{fmt}", tmp_path / f"out.{fmt}"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    lines = clean.read_bytes().splitlines()
    head = [] if fmt == "jsonl" else lines[:1]  # JSON Lines: no header line
    rows = [line.rstrip(b",") if fmt == "json" else line for line in lines[len(head) : len(head) + 5]]  # JSON: commas

    def result_file(body: list[bytes]) -> bytes:
        if fmt == "json":
            return b"[\n" + b",\n".join(body) + b"\n]\n"
        return b"".join(line + b"\n" for line in [*head, *body])

    def resumed(body: list[bytes]) -> list[str]:
        out.write_bytes(result_file(body))
        r = _score(*imgs, "--protocol", "whole", "-o", out, "--resume")
        assert r.exit_code == 0, r.stderr
        return list(iter_done(out, fmt))

    assert result_file(rows) == clean.read_bytes()
    # rows reordered, one deleted, one twice: the missing one scored, none lost
    assert resumed([rows[3], rows[0], rows[0], rows[1], rows[4]]) == [
        *map(str, [imgs[k] for k in (3, 0, 0, 1, 4)]),
        str(imgs[2]),
    ]
    # the last row edited: taken for a torn row, scored again
    assert resumed([*rows[:4], b"garbage"]) == list(map(str, imgs))
    # a row in the middle edited (a note in its score): before, --resume cut it and the 3 rows after it away
    # and scored them again; now refused, the file as it was
    note = rows[1].replace(b'"score": ', b'"score": good ') if fmt != "csv" else rows[1].replace(b",", b",good ", 1)
    out.write_bytes(before := result_file([rows[0], note, *rows[2:]]))
    r = _score(*imgs, "--protocol", "whole", "-o", out, "--resume")
    assert r.exit_code == 2 and out.read_bytes() == before
    assert r.stderr.splitlines() == [
        f"error: {out}: row 2 does not parse as a result row and more rows follow it (a run cut short tears only "
        "its last row: an edit?); --resume would cut them all away: fix or delete that row, or choose another output"
    ]


@pytest.mark.parametrize("named", ["out.csv", "link.csv"])
def test_a_second_writer_of_one_output_is_refused_naming_the_first(tiny, tmp_path, named):
    # before: a second writer naming the file through a link took another lock, and both wrote into the file
    first, second = write_images(tmp_path / "first", 3), write_images(tmp_path / "second", 3, seed=1)
    out, release = tmp_path / "out.csv", tmp_path / "release"
    (tmp_path / "link.csv").symlink_to(out)
    a = child([*first, "--protocol", "whole", "-o", out], env={"TINY_SCORE_HOLD": str(release)})
    try:
        deadline = time.monotonic() + WAIT
        while not (out.is_file() and out.stat().st_size) and time.monotonic() < deadline:  # a holds the lock
            time.sleep(0.05)
        r = _score(*second, "--protocol", "whole", "-o", tmp_path / named)  # this process is the second writer
        assert r.exit_code == 2
        line = one_line_error(r.stderr)
        assert line == (
            f"error: {out} is in use by another arniqa process (pid {a.pid}); wait for it or choose another output"
        )
    finally:
        release.touch()
    code, err = _finish(a)
    assert code == 0, err
    assert set(iter_done(out, "csv")) == {str(p) for p in first}
    assert not (tmp_path / ".out.csv.lock").exists()


def test_kills_and_file_size_faults_then_resume_until_done_equal_one_clean_run(tiny, tmp_path):
    imgs = write_images(tmp_path / "imgs", 20)
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    args = [*imgs, "--protocol", "whole", "-o", out]
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    data = clean.read_bytes()
    rng = random.Random(26)
    faults = []
    for k in range(5):
        resume = ["--resume"] if k else []
        size = out.stat().st_size if out.exists() else 0
        if rng.random() < 0.5:  # the file size limit, somewhere past what is written
            limit = rng.randint(size + 1, len(data) - 1)
            code, _ = _finish(child([*args, *resume], preexec_fn=_file_limit(limit)))
            faults.append(("file size", code))
        else:  # SIGKILL once some more rows are written (a few milliseconds apart)
            p = child([*args, *resume], env={"TINY_SCORE_DELAY": "0.02"})
            last_row = data.rstrip(b"\n").rfind(b"\n") + 1  # a goal in the last row could let the run end first
            goal = rng.randint(min(size + 1, last_row), last_row)
            while p.poll() is None and (not out.exists() or out.stat().st_size < goal):
                time.sleep(0.005)
            p.kill()
            faults.append(("kill", _finish(p)[0]))
    assert {code for _, code in faults} <= {2, -signal.SIGKILL}, faults  # every fault stopped its run
    for _ in range(3):  # in this process: no fault left to inject
        r = _score(*args, "--resume")
        if r.exit_code == 0:
            break
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes() == data


def _stopped_after_two_rows(imgs, out, signum) -> tuple[int, str]:
    """The exit code and stderr of a slowed ``score imgs --protocol whole -o out`` sent ``signum`` once it has
    written two rows."""
    p = child([*imgs, "--protocol", "whole", "-o", out], env={"TINY_SCORE_DELAY": "0.2"})
    deadline = time.monotonic() + WAIT
    while len(set(iter_done(out, "csv")) if out.is_file() else ()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signum)
    return _finish(p)


def test_ctrl_c_is_one_line_exit_130_and_resume_completes_the_file(tiny, tmp_path):
    """Ctrl-C ended the run silently with 130 (typer >= 0.29) or `Aborted!` and 1 (older typer); now one line,
    130 (the code shells give an interrupted process), the rows written whole, and --resume finishes the file."""
    imgs = write_images(tmp_path / "imgs", 8)
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    code, err = _stopped_after_two_rows(imgs, out, signal.SIGINT)
    assert code == 130
    assert _error_lines(err) == ["error: interrupted; the rows written so far are kept and --resume goes on from them"]
    assert 2 <= len(set(iter_done(out, "csv"))) < len(imgs)
    assert _score(*imgs, "--protocol", "whole", "-o", out, "--resume").exit_code == 0
    assert out.read_bytes() == clean.read_bytes()


def test_a_resumed_run_exits_as_one_clean_run_when_an_image_failed(tiny, tmp_path):
    """A run cut short after an error row, then `--resume`d, exited 0 (only the images scored by the resume
    counted), while one clean run of the same inputs, to the same bytes, exits 1: a pipeline's `&&` went on."""
    imgs = write_images(tmp_path / "imgs", 5)
    imgs[1].write_bytes(b"not an image")
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    args = ["--protocol", "whole", "-o"]
    assert _score(*imgs, *args, clean).exit_code == 1
    assert _score(*imgs[:2], *args, out).exit_code == 1  # as a run stopped after its second row leaves it
    r = _score(*imgs, *args, out, "--resume")
    assert r.exit_code == 1 and "1 of 5 images could not be scored, 1 of them in the rows resumed" in r.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert _score(*imgs, *args, out, "--resume").exit_code == 1  # nothing left to score: still that file's status
    assert _score(*imgs[2:], *args, out, "--resume").exit_code == 0  # the failed image is not among these inputs


def test_the_settings_file_outlives_a_sigterm_and_resume_checks_it(tiny, tmp_path):
    """The settings the rows were scored with are on disk before the first row, so a run stopped by a scheduler is
    resumed only under the same ones."""
    imgs = write_images(tmp_path / "imgs", 8)
    clean, out = tmp_path / "clean.csv", tmp_path / "out.csv"
    assert _score(*imgs, "--protocol", "whole", "-o", clean).exit_code == 0
    code, err = _stopped_after_two_rows(imgs, out, signal.SIGTERM)
    assert code == 143, err
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        ".clean.csv.arniqa.json",
        ".out.csv.arniqa.json",
        "clean.csv",
        "imgs",
        "out.csv",
    ]
    kept = out.read_bytes()
    r = _score(*imgs, "--protocol", "crops", "-o", out, "--resume")
    assert r.exit_code == 2 and "its rows were scored with --protocol whole → crops" in r.stderr
    assert out.read_bytes() == kept
    assert _score(*imgs, "--protocol", "whole", "-o", out, "--resume").exit_code == 0
    assert out.read_bytes() == clean.read_bytes()
