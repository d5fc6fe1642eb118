"""The cache: its folder without a home, a file hashed once until it changes, the least used entries pruned whole,
and the one line of a maker waiting for another."""

import os
import time

import pytest

from arniqa.utils.cache import cache_dir, mark_used, prune_cache


def test_prune_cache_keeps_the_entries_used_last_and_of_late_and_deletes_the_others_whole(tmp_path):
    """Exports in <cache>/onnx/ (about 100 MB each) stayed forever once no run used their key. Now a new one prunes:
    the 4 entries used last stay, and any used within a day; the others go, all their files. An entry's last use is
    its files' last access (an old export whose int8 form was used an hour ago is in use); a hidden temporary
    file of a write under way is never touched."""
    hour = 3600
    ages = {  # entry -> {file: hours since it was last used}
        "r0": {"r0.onnx": 0, "r0.fingerprint": 0},
        "r1": {"r1.onnx": 1},
        "r2": {"r2.onnx": 2},
        "mixed": {"mixed.onnx": 9 * 24, "mixed.int8-k.onnx": 3},
        "r4": {"r4.onnx": 4, "r4.onnx.json": 4},  # 5th: past the 4, but used within a day
        "o1": {"o1.onnx": 48, "o1.onnx.json": 48, "o1.fingerprint": 48, "o1.int8-k.onnx": 50},
        "o2": {"o2.int8-j.onnx": 72},
    }
    now = time.time()
    for files in ages.values():
        for name, age in files.items():
            (tmp_path / name).write_text(name)
            os.utime(tmp_path / name, (now - age * hour, now - age * hour))
    (temporary := tmp_path / ".o2.123.0badcafe.tmp.onnx").write_text("a write under way")
    os.utime(temporary, (now - 99 * hour, now - 99 * hour))
    prune_cache(tmp_path)
    kept = {name for key in ("r0", "r1", "r2", "mixed", "r4") for name in ages[key]} | {temporary.name}
    assert {p.name for p in tmp_path.iterdir()} == kept

    os.utime(tmp_path / "r4.onnx", ns=(0, 1_234_567_890_123_456_789))  # to the nanosecond
    assert mark_used(tmp_path / "r4.onnx") and time.time() - (tmp_path / "r4.onnx").stat().st_atime < 60
    assert (tmp_path / "r4.onnx").stat().st_mtime_ns == 1_234_567_890_123_456_789  # when it was made: kept
    assert not mark_used(tmp_path / "gone.onnx") and not (tmp_path / "gone.onnx").exists()


def test_sha256_of_reads_a_file_once_until_it_changes(tmp_path, monkeypatch):
    """A checkpoint was hashed for its cached ONNX export and again for the settings of arniqa score's rows."""
    import hashlib

    from arniqa.utils import cache

    reads = []  # the bytes sha256_of read, call by call
    real = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def fileno(self):
            return self.f.fileno()

        def read(self, n):
            block = self.f.read(n)
            reads[-1] += len(block)
            return block

    def counting_open(*args, **kwargs):
        reads.append(0)
        return Counting(real(*args, **kwargs))

    monkeypatch.setattr(cache, "open", counting_open, raising=False)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"a" * 3000)
    assert cache.sha256_of(path, chunk=1024) == hashlib.sha256(b"a" * 3000).hexdigest()  # just written: racy
    assert cache.sha256_of(path, chunk=1024) == hashlib.sha256(b"a" * 3000).hexdigest()
    later = time.time_ns() + cache.RACY_NS + 1  # a file written long before it is hashed
    monkeypatch.setattr(cache.time, "time_ns", lambda: later)
    assert cache.sha256_of(path, chunk=1024) == hashlib.sha256(b"a" * 3000).hexdigest()
    assert cache.sha256_of(path, chunk=1024) == hashlib.sha256(b"a" * 3000).hexdigest()
    written = path.stat().st_mtime_ns
    path.write_bytes(b"b" * 3000)  # the same size, rewritten in place, a second later
    os.utime(path, ns=(written + 10**9, written + 10**9))
    assert cache.sha256_of(path) == hashlib.sha256(b"b" * 3000).hexdigest()
    assert reads == [3000, 3000, 3000, 0, 3000]


def test_no_home_folder_for_the_cache_is_one_line_with_what_to_do(tmp_path, monkeypatch):
    """A container's user id with no HOME and no entry in /etc/passwd: every command using the cache (score, the
    published weights) ended in a traceback, 'RuntimeError: Could not determine home directory.'"""
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("ARNIQA_CACHE", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    advice = r"no home folder \(HOME is not set, and the user database gives none\); set ARNIQA_CACHE to a folder"
    with pytest.raises(ValueError, match=r"^~/\.cache/arniqa: " + advice):
        cache_dir()
    monkeypatch.setenv("ARNIQA_CACHE", "~/arniqa")
    with pytest.raises(ValueError, match=r"^~/arniqa: " + advice):
        cache_dir()
    monkeypatch.setenv("ARNIQA_CACHE", str(tmp_path))  # the way out
    assert cache_dir() == tmp_path


@pytest.mark.skipif(os.name == "nt", reason="flock")
def test_the_waiting_line_of_a_cache_maker_is_one_line_whatever_the_folder_name(tmp_path, capsys):
    """A maker waiting on another said its line through a rich console, a newline in the cache folder's name
    splitting it in two; it is one line now, written in one write as every stderr line."""
    import fcntl
    import threading

    from arniqa.utils.cache import one_maker
    from arniqa.utils.locks import lock_file

    target = tmp_path / "a\nb" / "model.onnx"
    target.parent.mkdir()
    fd = os.open(lock_file(target), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process making it
    os.pwrite(fd, b"4242", 0)
    threading.Timer(0.2, lambda: fcntl.flock(fd, fcntl.LOCK_UN)).start()
    with one_maker(target, "exporting") as locked:
        assert locked
    os.close(fd)
    assert (
        capsys.readouterr().err
        == f"waiting for another arniqa process (pid 4242) exporting {tmp_path}/a\\x0ab/model.onnx\n"
    )
