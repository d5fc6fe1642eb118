"""output_lock: a second process is refused at once, naming the holder's pid; the lock goes with the
holder however it ends (even SIGKILL); no lock file is left behind, by a command stopped by a signal too."""

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import tiny_score
from faults import hold
from tiny_score import write_images

from arniqa.utils.locks import OutputBusy, output_lock


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_second_process_is_refused_naming_the_holder_and_gets_the_lock_after_it_dies(tmp_path, kind):
    target = tmp_path / "out"
    target.mkdir() if kind == "folder" else target.write_text("rows")
    child = hold(target)
    try:
        with pytest.raises(OutputBusy) as err:
            with output_lock(target):
                pass
        assert str(err.value) == (
            f"{target} is in use by another arniqa process (pid {child.pid}); wait for it or choose another output"
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with output_lock(target):  # the kernel released the dead holder's lock
        pass
    expected = [] if kind == "folder" else ["out"]
    assert sorted(os.listdir(target if kind == "folder" else tmp_path)) == expected


def test_the_lock_is_free_again_after_the_block_even_on_an_error(tmp_path):
    with pytest.raises(KeyError):
        with output_lock(tmp_path):
            raise KeyError("boom")
    with output_lock(tmp_path):
        assert os.listdir(tmp_path) == [".arniqa.lock"]
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads which files this process holds open in /proc")
@pytest.mark.parametrize("where", ["flock", "fstat", "stat", "ftruncate"])
def test_ctrl_c_while_the_lock_is_taken_leaves_it_free(tmp_path, monkeypatch, where):
    """Ctrl-C after the lock file was opened and before the block's try (here: as each call there returns) left
    the file open and locked: in a Python session that goes on (a notebook), every later use of the folder was
    'in use by another arniqa process (pid unknown)'. Now the file is closed and the lock free at once."""
    import fcntl

    module = fcntl if where == "flock" else os
    real = getattr(module, where)

    def interrupted(*args, **kwargs):
        result = real(*args, **kwargs)
        if sys._getframe(1).f_code.co_name == "output_lock":  # not Path.is_dir's stat, say
            monkeypatch.setattr(module, where, real)  # once
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(module, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        with output_lock(tmp_path):
            pass
    assert _files_open_in(tmp_path) == []  # not a count of all open files: other threads open and close theirs
    with output_lock(tmp_path):
        assert os.listdir(tmp_path) == [".arniqa.lock"]
    assert os.listdir(tmp_path) == []


def _files_open_in(folder: Path) -> list[str]:
    """The files in ``folder`` (removed ones too) that this process holds open."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the fd listdir itself used, closed by now
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [target for target in targets if target.startswith(f"{folder}{os.sep}")]


def _command(tmp_path, verb: str) -> tuple[list, Path]:
    """``verb``'s arguments with the stand-in model on 3 images and the lock file it holds."""
    imgs = write_images(tmp_path / "imgs", 3)
    if verb == "score":
        out = tmp_path / "out.csv"
        return ["score", *imgs, "--protocol", "whole", "-o", out], tmp_path / ".out.csv.lock"
    if verb.startswith("explain fit"):  # "explain fit into a new folder": -o names a folder the run makes
        out = tmp_path / "new" / "head.safetensors" if verb.endswith("folder") else tmp_path / "head.safetensors"
        args = ["explain", "fit", tmp_path / "imgs", "-o", out, "--protocol", "whole", "--size", "32x24"]
        cache = ["--cache", tmp_path / "cache"] if verb.endswith("cache") else []  # a folder the run makes
        return [*args, *cache, "--chains", 1, "--device", "cpu"], out.parent / ".head.safetensors.lock"
    out = tmp_path / "maps"  # a folder the run makes
    return ["map", *imgs, "-o", out, "--crop", 8, "--device", "cpu"], out / ".arniqa.lock"


@pytest.mark.parametrize(
    ("verb", "signum"),
    [
        ("score", signal.SIGTERM),
        ("explain fit", signal.SIGTERM),
        ("map", signal.SIGTERM),
        ("score", signal.SIGHUP),
        ("explain fit", signal.SIGINT),  # Ctrl-C: the way it already stopped
        ("explain fit into a new folder", signal.SIGTERM),  # the folder stayed, empty
        ("explain fit with a cache", signal.SIGTERM),
    ],
)
def test_a_command_stopped_by_a_signal_removes_its_lock_file(tmp_path, verb, signum):
    """SIGTERM (a scheduler's time limit, ``timeout``) and SIGHUP killed the process where it was: its lock file
    stayed behind (``arniqa explain fit`` under ``timeout`` left ``.head.safetensors.lock``), a folder it made stayed
    too. Now they stop it as Ctrl-C does: the lock file and the empty folder removed, one line, 128 + the signal."""
    args, lock = _command(tmp_path, verb)
    before = sorted(os.listdir(tmp_path))
    # The stand-in model holds every forward pass until the file `never` exists: the run stays inside its lock.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TINY_SCORE_HOLD": str(tmp_path / "never")}
    child = subprocess.Popen(
        [sys.executable, tiny_score.__file__, *map(str, args)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:  # the lock is held once it names its holder
            with suppress(OSError):
                if lock.read_text() == str(child.pid):
                    break
            time.sleep(0.01)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    advice = {  # how the verb goes on, and no other verb's way
        "score": "; the rows written so far are kept and --resume goes on from them",
        "map": "; the maps written are kept and listed in maps.csv, and --resume goes on from them",
        "explain fit with a cache": "; the features in --cache are kept and a rerun skips them",
    }.get(verb, "")
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [f"error: {name}{advice}"]
    assert child.returncode == 128 + signum
    assert not lock.exists()
    assert sorted(os.listdir(tmp_path)) == before  # no output yet, no folder made for it


@pytest.mark.skipif(os.name == "nt", reason="flock")
def test_a_file_system_without_locks_is_left_without_a_lock_file(tmp_path, monkeypatch):
    """On a file system without locks (flock: ENOLCK, an NFS mount without its lock service) the lock file opened
    for the lock no one could take stayed in the folder (the cache: `.ARNIQA.pth.lock` beside the weights, for
    ever). It is removed now, the error kept; one holding a holder's pid is left."""
    import errno
    import fcntl

    from arniqa.utils.cache import one_maker
    from arniqa.utils.locks import lock_file

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OSError) as err:
        with output_lock(tmp_path):
            pass
    assert err.value.errno == errno.ENOLCK and os.listdir(tmp_path) == []
    with one_maker(tmp_path / "ARNIQA.pth", "downloading") as locked:
        (tmp_path / "ARNIQA.pth").write_bytes(b"w")
    assert not locked and os.listdir(tmp_path) == ["ARNIQA.pth"]
    lock_file(tmp_path / "ARNIQA.pth").write_text("123")  # a holder's, on a client that has locks
    with one_maker(tmp_path / "ARNIQA.pth", "downloading"):
        pass
    assert sorted(os.listdir(tmp_path)) == [".ARNIQA.pth.lock", "ARNIQA.pth"]
