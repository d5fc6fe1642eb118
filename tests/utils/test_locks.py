"""output_lock: what is planted at the lock's name is replaced, never written into, and a process waiting for the
lock names the owner that has just taken it."""

import contextlib
import os
import time

import pytest

from arniqa.utils.locks import output_lock


def test_a_fifo_device_or_link_planted_as_the_lock_file_is_replaced_never_written_into(tmp_path):
    """output_lock opened what it found at its lock name: a FIFO planted as `.x.csv.lock` failed ftruncate, so
    `arniqa score -o x.csv` said `x.csv: cannot write it: Invalid argument (EINVAL)`, exit 2 (and removed it); a
    symbolic link there had the file it names truncated to the pid, exit 0. Arniqa makes neither: such a path is
    no lock anyone holds, and is replaced by a lock file, nothing opened through it."""
    import stat

    from arniqa.utils.locks import lock_file, output_lock

    output, victim = tmp_path / "x.csv", tmp_path / "victim.txt"
    victim.write_text("precious")
    name = lock_file(output)
    planted = [lambda: os.mkfifo(name), lambda: name.symlink_to(victim), lambda: name.symlink_to(tmp_path / "gone")]
    with contextlib.suppress(PermissionError):  # root only: what /dev/null is
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        planted.append(lambda: os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(1, 3)))
    for plant in planted:
        plant()
        with output_lock(output):
            assert stat.S_ISREG(os.lstat(name).st_mode) and name.read_text() == str(os.getpid())
        assert not os.path.lexists(name)
    assert victim.read_text() == "precious" and not (tmp_path / "gone").exists()


@pytest.mark.skipif(os.name == "nt", reason="flock")
def test_a_process_waiting_for_a_lock_names_the_owner_that_has_just_taken_it(tmp_path, monkeypatch):
    """The owner takes the lock, then writes its pid into it: a process that found it locked in between said
    'waiting for another arniqa process (pid unknown)' (4 jobs starting together on one cache). It now gives the
    owner a moment to write it. Here the owner writes it as the waiter first pauses (a timer thread writing it
    0.05 s on was sometimes late on a busy machine: the waiter had given up)."""
    import fcntl

    from arniqa.utils import locks
    from arniqa.utils.locks import lock_file

    class Owner:  # the waiter's clock: its first pause is when the owner writes its pid
        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds):
            os.pwrite(fd, b"4242", 0)
            time.sleep(seconds)

    target = tmp_path / "model.onnx"
    fd = os.open(lock_file(target), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the owner does, its pid not written yet
    monkeypatch.setattr(locks, "time", Owner())
    said = []

    def waiting(pid):
        said.append(pid)
        fcntl.flock(fd, fcntl.LOCK_UN)

    with output_lock(target, waiting):
        pass
    os.close(fd)
    assert said == ["pid 4242"]
