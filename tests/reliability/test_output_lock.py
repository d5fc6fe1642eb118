"""output_lock: a second process is refused at once, naming the holder's pid; the lock goes with the
holder however it ends (even SIGKILL); no lock file is left behind."""

import os
import signal

import pytest
from faults import hold

from arniqa.utils.files import OutputBusy, output_lock


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
