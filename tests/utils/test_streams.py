"""stream_kind and descriptor: which stream a path names (a device, a pipe, this process's descriptors through
links), in words for a message."""

import os

import pytest


def test_stream_kind_says_which_stream_a_path_is(tmp_path):
    from arniqa.utils.streams import stream_kind

    os.mkfifo(tmp_path / "pipe")
    with open(tmp_path / "f", "w") as f:
        kinds = {
            "/dev/null": "a device",
            tmp_path / "pipe": "a named pipe",
            "/dev/stdout": "standard output",
            "/dev/fd/2": "standard error",
            f"/dev/fd/{f.fileno()}": f"descriptor {f.fileno()} of this process",
        }
        assert {path: stream_kind(path) for path in kinds} == kinds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
def test_descriptor_is_the_number_a_path_names_through_links_and_none_for_another_path(tmp_path):
    from arniqa.utils.streams import descriptor

    (tmp_path / "file").write_text("")
    links = {"err": "/dev/stderr", "two": "err", "file link": "file", "parent's": f"/proc/{os.getppid()}/fd/1"}
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    named = {
        "/dev/stdout": 1,
        "/dev/stderr": 2,
        "/dev/fd/0": 0,
        "/proc/self/fd/7": 7,  # open or not: the name says which
        f"/proc/{os.getpid()}/fd/2": 2,
        tmp_path / "err": 2,
        tmp_path / "two": 2,
        tmp_path / "file": None,
        tmp_path / "file link": None,
        tmp_path / "parent's": None,  # another process's
        "/dev/null": None,
        "/proc/self/fd": None,
    }
    assert {path: descriptor(path) for path in named} == named
