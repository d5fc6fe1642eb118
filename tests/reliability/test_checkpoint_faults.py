"""Faults while a run trains or writes its checkpoint: a full disk, a DataLoader worker killed by a
signal during a step or during the checkpoint write. Each is one ``error:`` line with exit 2 and the
last checkpoint is whole; after a dead worker, resuming from it ends with the weights of an
uninterrupted run."""

import os
import re

import pytest
import torch
from faults import cli_child, one_line_error, train_config
from safetensors.torch import load_file

from arniqa.cli import EXIT_OK, EXIT_USAGE

# 12 images, batch 2: six steps; one worker builds whole degraded batches (two in flight).
WORKERS = {"num_workers": 1, "degrade_on": "workers"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final weights (in a child process, as the runs it is compared with)."""
    tmp = tmp_path_factory.mktemp("reference")
    assert cli_child("train", train_config(tmp, tmp / "run", images=12, data=WORKERS)).returncode == EXIT_OK
    return load_file(tmp / "run" / "model.safetensors")


def saved_step(state) -> tuple[int, int, int]:
    """(epoch, step, global_step) of a state.pt, read without arniqa's reader."""
    saved = torch.load(state, map_location="cpu", weights_only=True)
    return saved["epoch"], saved["step"], saved["global_step"]


def resumes_to(config, state, reference) -> None:
    result = cli_child("train", config, "--resume", state)
    assert result.returncode == EXIT_OK, result.stderr
    weights = load_file(state.parent / "model.safetensors")
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in reference)


def test_disk_full_while_writing_the_state_is_one_line_and_keeps_the_previous_one(tmp_path):
    # No worker: the limit below would also stop the shared memory that batches travel in.
    config = train_config(tmp_path, tmp_path / "run", images=12, data={**WORKERS, "num_workers": 0})
    # After the first state.pt, a file size limit of 4 KiB: writing past it fails with EFBIG ("File
    # too large") as on a full disk; the state (over 4 KiB) cannot be written again, the logs can.
    setup = """
        import resource
        real = loop.save_state
        def save_then_fill_the_disk(state, path):
            real(state, path)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        loop.save_state = save_then_fill_the_disk
    """
    result = cli_child("train", config, setup=setup)
    assert result.returncode == EXIT_USAGE
    state = tmp_path / "run" / "state.pt"
    assert one_line_error(result.stderr).startswith(f"error: {state}: cannot write it (File too large)")
    assert state.stat().st_size > 4096 and saved_step(state) == (0, 1, 1)
    assert not [p for p in os.listdir(state.parent) if ".tmp" in p]


def test_a_worker_killed_during_a_step_is_one_line_and_the_run_resumes(tmp_path, reference):
    config = train_config(tmp_path, tmp_path / "run", images=12, data=WORKERS)
    # The worker kills itself when asked for step 4's batch, while the (slowed) forward pass of an
    # earlier step runs: PyTorch's SIGCHLD handler raises there, not in the wait for a batch.
    setup = """
        from torch.utils.data import get_worker_info
        import arniqa.train.batches as batches
        real = batches.DegradedBatches.__getitem__
        def dying(self, item):
            if item[1] == 4 and get_worker_info() is not None:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, item)
        batches.DegradedBatches.__getitem__ = dying
        from tiny_arniqa import SlowTinyARNIQA
        loop.build_model = lambda config: SlowTinyARNIQA(0.3)
    """
    result = cli_child("train", config, setup=setup)
    assert result.returncode == EXIT_USAGE
    line = one_line_error(result.stderr)
    found = re.match(r"error: a DataLoader worker died at epoch 0, step (\d) \(.*killed by signal", line)
    assert found, line
    state = tmp_path / "run" / "state.pt"
    step = int(found[1])
    assert 1 <= step <= 4 and saved_step(state) == (0, step, step)  # the error names the first step not done
    resumes_to(config, state, reference)


def test_a_worker_killed_during_the_checkpoint_write_keeps_that_checkpoint(tmp_path, reference):
    config = train_config(tmp_path, tmp_path / "run", images=12, data=WORKERS)
    # At the second state.pt write the worker is killed and the write waits until its SIGCHLD came.
    setup = """
        import multiprocessing
        import arniqa.utils.files as files
        real, writes = files.atomic_write, []
        def killing(path, write, *args, **options):
            def slow_write(tmp):
                if os.path.basename(path) == "state.pt":
                    writes.append(path)
                    if len(writes) == 2:
                        for worker in multiprocessing.active_children():
                            os.kill(worker.pid, signal.SIGKILL)
                        time.sleep(0.5)
                write(tmp)
            return real(path, slow_write, *args, **options)
        files.atomic_write = killing
    """
    result = cli_child("train", config, setup=setup)
    assert result.returncode == EXIT_USAGE
    assert re.match(
        r"error: a DataLoader worker died at epoch 0, step 2 \(.*killed by signal", one_line_error(result.stderr)
    )
    state = tmp_path / "run" / "state.pt"
    assert saved_step(state) == (0, 2, 2)
    resumes_to(config, state, reference)
