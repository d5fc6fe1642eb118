"""atomic_write: the old file survives a failing write, no temp file is left."""

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from arniqa.utils.cache import cache_unwritable
from arniqa.utils.files import (
    atomic_write,
    atomic_writes,
    buffer_writer,
    folder_in_the_way,
    out_of_space,
    reserve,
    write_whole,
)
from arniqa.utils.locks import output_lock


def test_atomic_write_replaces_the_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    assert atomic_write(target, lambda tmp: tmp.write_text("new")) == target
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("fsync", [True, False])
def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, fsync):
    target = tmp_path / "state.pt"
    target.write_bytes(b"old contents")

    def torn(tmp: Path):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, torn, fsync=fsync)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["state.pt"]


def test_the_temp_file_is_in_the_same_folder_and_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "status.npy", lambda tmp: (seen.append(tmp), np.save(tmp, np.arange(3))))
    assert seen[0].parent == tmp_path and seen[0].suffix == ".npy" and seen[0].name != "status.npy"
    assert np.load(tmp_path / "status.npy").tolist() == [0, 1, 2]  # np.save added no second suffix
    assert os.listdir(tmp_path) == ["status.npy"]


def test_the_new_file_gets_the_usual_permissions(tmp_path):
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    atomic_write(atomic, lambda tmp: tmp.write_text("x"))
    assert atomic.stat().st_mode == plain.stat().st_mode


def test_a_writer_that_makes_private_files_still_gives_the_usual_permissions(tmp_path):
    """safetensors' save_file makes 0600 files: checkpoints and regressors others on the machine could not read."""
    from safetensors.torch import save_file

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    model = atomic_write(tmp_path / "model.safetensors", lambda tmp: save_file({"w": torch.zeros(2)}, str(tmp)))
    assert model.stat().st_mode == plain.stat().st_mode


def test_the_usual_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.bin", lambda tmp: tmp.write_bytes(b"x"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o444], ids=oct)
def test_a_rewritten_file_keeps_its_permission_bits_and_its_temporary_file_is_never_looser(tmp_path, mode):
    """A file kept at 0600 (scores naming private photos) came back 0644 from any rewrite: the temporary file got the
    usual permissions. It keeps them now, as cp, sed -i and editors keep them, beyond the umask too (0664)."""
    seen = []

    def write(tmp):
        seen.append(os.stat(tmp).st_mode & 0o777)
        tmp.write_text("new")

    path = tmp_path / "scores.csv"
    path.write_text("old")
    path.chmod(mode)
    old = os.umask(0o022)
    try:
        atomic_write(path, write)
    finally:
        os.umask(old)
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == mode
    assert seen[0] & ~(mode | 0o600) == 0  # others never had more than the file gives them


def _other_group() -> int | None:
    """A group this user may give a file that is not the one its new files get: one of its supplementary groups,
    or any for root."""
    if os.geteuid() == 0:
        return next(g for g in (100, 65534, 1) if g != os.getegid())
    return next((g for g in os.getgroups() if g != os.getegid()), None)


@pytest.mark.parametrize("setgid", [False, True], ids=["folder", "setgid-folder"])
def test_a_rewritten_file_keeps_its_group(tmp_path, setgid):
    """A group-writable scores.csv of a project group, in a shared folder, came back in the writer's own group from
    --resume --retry-failed (its bits kept, so that group could then write it, and the project could not), unless the
    folder was setgid and of the file's group. It keeps its group now."""
    group = _other_group()
    if group is None:
        pytest.skip("this user is in no group but its own")
    shared = tmp_path / "shared"
    shared.mkdir()
    if setgid:  # new files get the folder's group (the user's own here), not the file's
        shared.chmod(0o2775)
    path = shared / "scores.csv"
    path.write_text("old")
    os.chown(path, -1, group)
    path.chmod(0o664)
    before = os.stat(path)
    seen = []

    def write(tmp):
        seen.append(os.stat(tmp).st_gid)
        tmp.write_text("new")

    atomic_write(path, write)
    after = os.stat(path)
    assert path.read_text() == "new" and not os.path.samestat(before, after)  # replaced, not written into
    assert (after.st_gid, after.st_mode & 0o777) == (group, 0o664)
    assert seen == [group]  # the group given before any byte was written


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.EPERM])
def test_a_rewrite_whose_group_cannot_be_kept_is_written_in_this_users_group(tmp_path, monkeypatch, code):
    """Keeping the group is a courtesy: where the file system refuses it in words other than 'no permission' (EINVAL:
    an NFSv4 group it cannot map; ENOSYS: a FUSE file system without chown), the rewrite failed with that error and
    wrote nothing. It is written, in this user's group, as before the group was kept."""
    group = _other_group()
    if group is None:
        pytest.skip("this user is in no group but its own")
    path = tmp_path / "scores.csv"
    path.write_text("old")
    os.chown(path, -1, group)

    def refused(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fchown", refused)
    atomic_write(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new" and os.stat(path).st_gid == os.getegid()


def test_a_rewritten_model_keeps_its_permissions_though_its_writer_makes_private_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda tmp: save_file({"w": torch.zeros(2)}, str(tmp)))
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_link_rewritten_becomes_a_file_with_the_permission_bits_it_pointed_to_and_no_setuid(tmp_path):
    target, link = tmp_path / "target.sh", tmp_path / "link.sh"
    target.write_text("old")
    target.chmod(0o4750)  # setuid: not given to a file that is now this user's
    link.symlink_to(target)
    atomic_write(link, lambda tmp: tmp.write_text("new"), fsync=False)
    assert not link.is_symlink() and link.stat().st_mode & 0o7777 == 0o750
    assert target.read_text() == "old"


def test_atomic_writes_replace_no_file_when_one_cannot_be_written(tmp_path):
    """Parts of one checkpoint: the third write fails (a full disk); the first two are not renamed either."""
    names = [tmp_path / f"m-{i}.safetensors" for i in range(1, 4)]
    for name in names:
        name.write_text("old")

    def full(tmp: Path):
        tmp.write_text("ne")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as err:
        atomic_writes([(names[0], lambda tmp: tmp.write_text("new")), (names[1], lambda tmp: tmp.write_text("new")),
                       (names[2], full)])  # fmt: skip
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(names[2])
    assert [n.read_text() for n in names] == ["old"] * 3
    assert sorted(os.listdir(tmp_path)) == [n.name for n in names]  # no temporary file left
    assert atomic_writes([(n, lambda tmp: tmp.write_text("new")) for n in names]) == names
    assert [n.read_text() for n in names] == ["new"] * 3 and sorted(os.listdir(tmp_path)) == [n.name for n in names]


def test_a_folder_made_read_only_during_a_write_keeps_the_writes_error_and_frees_the_lock(tmp_path, monkeypatch):
    """A run folder made read-only (chmod, a file system remounted read-only) while a command wrote in it under its
    lock: the write's error (named after its file, and a training run's one line from it) was replaced by the error of
    removing the temporary file, then by that of removing the lock file on the way out: a traceback, exit 1. The
    lock file now stays, released all the same: the next command takes the folder."""
    read_only = []

    def refused(real):
        def call(path, *args, **kwargs):
            if read_only:
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real(path, *args, **kwargs)

        return call

    def write(tmp: Path):
        tmp.write_text("new")
        read_only.append(True)

    monkeypatch.setattr(os, "unlink", refused(os.unlink))
    monkeypatch.setattr(os, "replace", refused(os.replace))
    with pytest.raises(OSError) as err, output_lock(tmp_path):
        atomic_write(tmp_path / "state.pt", write)
    assert (err.value.errno, err.value.filename) == (errno.EROFS, str(tmp_path / "state.pt"))
    read_only.clear()  # writable again
    with output_lock(tmp_path):
        assert (tmp_path / ".arniqa.lock").read_text() == str(os.getpid())
    left = os.listdir(tmp_path)  # the temporary file the read-only folder kept (the next training run removes it)
    assert len(left) == 1 and left[0].startswith(".state.") and left[0].endswith(".tmp.pt")


def test_write_whole_cuts_a_failing_write_back_to_the_last_whole_record(tmp_path, monkeypatch):
    path = tmp_path / "maps.csv"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    end = write_whole(fd, b"path,map\n", 0, str(path))
    end = write_whole(fd, b"a.png,a.map.png\n", end, str(path))
    real = os.pwrite

    def full_after(fd, data, offset, room=[6]):  # a disk with room for 6 more bytes
        written = real(fd, bytes(data[: room[0]]), offset)
        room[0] -= written
        if not written:
            raise OSError(errno.ENOSPC, "No space left on device")
        return written

    monkeypatch.setattr(os, "pwrite", full_after)
    with pytest.raises(OSError) as err:
        write_whole(fd, b"b.png,b.map.png\n", end, str(path))
    os.close(fd)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert path.read_bytes() == b"path,map\na.png,a.map.png\n"


def test_reserve_gives_a_sparse_file_its_blocks(tmp_path):
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no preallocation on this system")
    path = tmp_path / "features.npy"
    with open(path, "wb") as f:
        f.truncate(1 << 20)  # a hole: no block behind it, as np.lib.format.open_memmap makes
    if os.stat(path).st_blocks * 512 >= 1 << 20:
        pytest.skip("this file system has no sparse files")
    reserve(path, 1 << 20)
    assert os.stat(path).st_blocks * 512 >= 1 << 20 and path.read_bytes() == bytes(1 << 20)


def test_out_of_space_finds_a_full_disk_among_the_causes():
    full = OSError(errno.ENOSPC, "No space left on device", "state.pt")
    try:
        try:
            raise full
        except OSError as e:
            raise RuntimeError("state.pt: cannot write it") from e  # as train.state.checkpoint_write does
    except RuntimeError as wrapped:
        assert out_of_space(wrapped) is full
    assert out_of_space(OSError(errno.EFBIG, "File too large")).errno == errno.EFBIG
    assert out_of_space(OSError(errno.EACCES, "Permission denied")) is None and out_of_space(ValueError()) is None


def test_a_file_size_limit_is_told_to_raise_the_limit_not_to_free_space(tmp_path):
    """EFBIG (a write past ``ulimit -f``) was told to free space, which leaves the limit where it was."""
    from arniqa.utils.files import make_room

    assert make_room(OSError(errno.ENOSPC, "No space left on device"), " there") == "free space there"
    assert make_room(OSError(errno.EDQUOT, "Disk quota exceeded")) == "free space"
    assert make_room(OSError(errno.EFBIG, "File too large"), " there") == "raise the file-size limit with ulimit -f"
    # the one a cache write gets (an ONNX export into ARNIQA_CACHE)
    said = str(cache_unwritable(tmp_path, "the export", OSError(errno.EFBIG, "File too large"), "pass --engine torch"))
    assert said == (
        f"{tmp_path}: cannot write the export into the cache (File too large); raise the file-size limit with "
        "ulimit -f, or set ARNIQA_CACHE to a folder you can write, or pass --engine torch"
    )


def test_bytes_in_memory_are_written_whole_and_let_go_of_after_a_failed_write(tmp_path):
    # before: `tmp.write_bytes(buffer.getbuffer())` left a view of the buffer in the failed write's traceback; on
    # Python 3.12 a full disk under save_torch (state.pt) or an evaluation's plots then ended the process with
    # SIGSEGV ("deallocated BytesIO object has exported buffers") after its one-line error, instead of exit 2
    data = os.urandom(3 << 20)
    buffer = io.BytesIO(data)
    buffer_writer(buffer)(tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data
    with pytest.raises(OSError) as failed:
        buffer_writer(buffer)(tmp_path / "missing" / "f.bin")
    assert failed.value.__traceback__ is not None  # the traceback and its frames are still held here
    buffer.write(b"x")  # BufferError ("Existing exports of data") while a view of the buffer is still held
    buffer.close()


def test_a_device_or_a_named_pipe_is_written_into_never_replaced_by_a_file(tmp_path):
    """`arniqa report scores.csv -o /dev/null` (or `score --html /dev/null`), run as root, renamed its temporary file
    over /dev/null: the machine's null device became a regular file holding the report. A device (here a copy of
    /dev/null, made where root can) or a named pipe is now written into and stays what it was."""
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    assert atomic_writes([(tmp_path / "a.txt", lambda p: p.write_text("a")), (fifo, lambda p: p.write_text("row"))])
    reader.join(timeout=20)
    assert got == ["row"] and stat.S_ISFIFO(os.stat(fifo).st_mode)  # the reader got the bytes; still a pipe
    assert (tmp_path / "a.txt").read_text() == "a" and sorted(os.listdir(tmp_path)) == ["a.txt", "pipe"]
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        return  # not root: neither can it replace /dev/null
    atomic_write(device, lambda p: p.write_text("<html>"))
    assert stat.S_ISCHR(os.stat(device).st_mode) and device.read_bytes() == b""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
def test_a_descriptor_named_by_path_is_written_through_it_after_what_it_holds(tmp_path):
    """`arniqa report scores.csv -o /dev/stderr 2> log` (and /dev/fd/N, /proc/self/fd/N) took the path, a link to the
    regular file `log`, for a file of its own: its temporary file went beside the link (in /dev, where only root
    may write; in /proc/self/fd, where none may: ENOENT), and as root the rename replaced the link /dev/stderr itself
    with a file. Then it opened the path again by name with "w": `2>> log` lost what the log held. A descriptor of
    the process is now written through a duplicate of it: the text before stays, each write follows the last, and a
    write that fails puts nothing into it."""
    from arniqa.utils.streams import is_stream

    log = tmp_path / "log"
    log.write_text("earlier\n")
    with open(log, "a") as f:  # as a shell's 2>> log
        for i, path in enumerate((f"/dev/fd/{f.fileno()}", f"/proc/self/fd/{f.fileno()}")):
            assert is_stream(path) and not is_stream(log)
            atomic_write(path, lambda p, i=i: Path(p).write_text(f"<html>{i}\n"))

        def full(p):  # half the file written, then the disk is full
            Path(p).write_text("torn")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with pytest.raises(OSError, match=f"/dev/fd/{f.fileno()}"):  # named, as the verb's line says it
            atomic_write(f"/dev/fd/{f.fileno()}", full)
        f.write("after\n")  # the process's own descriptor writes after the output, not over it
    assert log.read_text() == "earlier\n<html>0\n<html>1\nafter\n" and os.listdir(tmp_path) == ["log"]
    assert not is_stream(log)  # closed: no descriptor names it


def test_a_device_or_a_pipe_in_a_commands_own_folder_is_replaced_never_opened(tmp_path):
    """A FIFO planted in `arniqa map -o maps` under a map's name (or as maps.csv) was written into as if the user had
    named it: the run waited for a reader forever. A folder held by output_lock (or own_folder) holds the command's
    own files: such a path is replaced there (atomic_writes) or removed before it is opened (clear_own); outside it,
    a pipe is still written into."""
    import stat
    import threading

    from arniqa.utils.files import clear_own, own_files, own_folder
    from arniqa.utils.locks import output_lock

    folder, other = tmp_path / "maps", tmp_path / "cache"
    folder.mkdir()
    (other / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(other)
    for path in (folder / "a.map.png", folder / "maps.csv", other / "sub" / "e.pt", tmp_path / "head.json"):
        os.mkfifo(path)

    def writes() -> None:
        with output_lock(folder):
            atomic_writes([(folder / "a.map.png", lambda p: p.write_text("png"))])
            clear_own(folder / "maps.csv")
            (folder / "maps.csv").write_text("rows")
        with own_folder(tmp_path / "link"):  # held through a link, written by its real path
            atomic_write(other / "sub" / "e.pt", lambda p: p.write_text("entry"))
        with own_files(tmp_path / "head.json"):  # a sidecar the command names beside the user's file
            atomic_write(tmp_path / "head.json", lambda p: p.write_text("sidecar"))

    done = threading.Thread(target=writes, daemon=True)
    done.start()
    done.join(timeout=20)
    assert not done.is_alive(), "a planted pipe was opened"
    written = [(folder / "a.map.png", "png"), (folder / "maps.csv", "rows"), (other / "sub" / "e.pt", "entry")]
    for path, text in [*written, (tmp_path / "head.json", "sidecar")]:
        assert stat.S_ISREG(os.lstat(path).st_mode) and path.read_text() == text
    fifo = tmp_path / "named"
    os.mkfifo(fifo)
    with output_lock(folder):  # held elsewhere: a pipe the user named is still written into
        got = []
        reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
        reader.start()
        atomic_write(fifo, lambda p: p.write_text("report"))
        reader.join(timeout=20)
    assert got == ["report"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_is_in_the_way_of_a_file_and_a_link_to_one_is_not(tmp_path):
    """score --html, explain fit -o and evaluate -o refuse a folder where a file goes before the work, by one rule:
    evaluate took a link to a folder (the rename replaces the link) while the others refused it."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    folder_in_the_way([tmp_path / "file", tmp_path / "missing", tmp_path / "link"])
    with pytest.raises(IsADirectoryError) as caught:
        folder_in_the_way([tmp_path / "file", tmp_path / "folder"])
    assert caught.value.filename == str(tmp_path / "folder")
    atomic_write(tmp_path / "link", lambda tmp: Path(tmp).write_text("new"))  # the link replaced, the folder kept
    assert (tmp_path / "link").read_text() == "new" and not (tmp_path / "link").is_symlink()
    assert (tmp_path / "folder").is_dir()


def test_text_is_written_whole_or_in_pieces_as_utf8(tmp_path):
    """text_writer takes a string or its pieces in turn (a report of 200,000 rows is never one string): the file is
    the text as UTF-8 either way, and an error in the pieces leaves the file as it was."""
    from arniqa.utils.files import atomic_write, text_writer

    text = "café → naïve\n" * 3
    atomic_write(tmp_path / "whole.txt", text_writer(text))
    atomic_write(tmp_path / "pieces.txt", text_writer(iter(text.splitlines(keepends=True))))
    assert (tmp_path / "whole.txt").read_bytes() == (tmp_path / "pieces.txt").read_bytes() == text.encode("utf-8")

    def broken():
        yield "half"
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "pieces.txt", text_writer(broken()))
    assert (tmp_path / "pieces.txt").read_bytes() == text.encode("utf-8") and len(list(tmp_path.iterdir())) == 2


def test_a_read_that_fails_on_its_path_says_to_fix_the_path_not_the_disk(tmp_path):
    """A folder named where a file is read, a path through a file, a name too long and a link loop said 'check the
    disk or share it is on', as a failing disk does; each now says what is wrong with the path. The errors are the
    system's own, from open()."""
    from arniqa.utils.files import cannot_read

    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    expected = {
        "gone.png": ("No such file or directory", "check the path"),
        ".": ("Is a directory", "name a file, not a folder"),
        "a.jpg/b.png": ("Not a directory", "check the path: a folder in it is a file"),
        "y" * 300 + ".png": (
            "File name too long",
            "give a shorter path (a name in it, or the whole, is longer than the system takes)",
        ),
        "loop": ("Too many levels of symbolic links", "check the symbolic links on the path (ls -l)"),
    }
    for name, (strerror, fix) in expected.items():
        with pytest.raises(OSError) as e:
            open(tmp_path / name, "rb")
        assert cannot_read(e.value) == (f"cannot read file ({strerror})", fix), name
    assert cannot_read(OSError(errno.EIO, "Input/output error")) == (
        "cannot read file (Input/output error)",
        "check the disk or share it is on",
    )


# Run in a process of its own: its limit of open files lowered to 32, every descriptor taken, then an image read and
# a folder listed (as a batch's decoding and walk do), each line printed.
AT_THE_LIMIT = """
import os, resource, sys
from pathlib import Path
from arniqa.data.folders import walk
from arniqa.data.images import ImageError, open_image
resource.setrlimit(resource.RLIMIT_NOFILE, (32, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    open_image(sys.argv[1])
except ImageError as e:
    print(e.reason)
list(walk(Path(sys.argv[2]), lambda path, why: print(why)))
"""


def test_a_read_failing_on_too_many_open_files_says_to_raise_the_limit(tmp_path):
    """With the process's open files at their limit (ulimit -n), each image of a batch read then said 'check the
    disk or share it is on', and a folder 'cannot be listed' with no word of what to do: the fault is the limit, not
    the file or the disk. Both now say to raise it (the errors are the system's own, EMFILE)."""
    import subprocess
    import sys

    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    r = subprocess.run(
        [sys.executable, "-c", AT_THE_LIMIT, str(tmp_path / "a.jpg"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    fix = "raise the limit of open files of this shell (ulimit -n 4096) and run again"
    assert r.stdout.splitlines() == [
        f"cannot read file ({os.strerror(errno.EMFILE)}); {fix}",
        f"folder cannot be listed: {os.strerror(errno.EMFILE)}; {fix}",
    ]
