"""Training under faults: a signal mid-run (SIGTERM, SIGHUP, Ctrl-C), a failing write of a run file, a resume
whose images changed."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from faults import full_disk_for_text
from train.test_state import STAND_IN, write_config

from arniqa.train import load_config
from arniqa.train.loop import Trainer
from arniqa.train.state import STATE_FILE, TrainingError

# 6 images, batch 2: 3 steps per epoch, 2 epochs; the chains in 2 DataLoader workers, which get the signal too.
WORKERS = ["data.degrade_on=workers", "data.num_workers=2"]


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def steps_logged(run: Path) -> list[int]:
    rows = (run / "log.csv").read_text().splitlines()[1:] if (run / "log.csv").exists() else []
    return [int(r.split(",")[0]) for r in rows]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_run_saves_the_state_and_resume_is_exact(tmp_path, image_folder, tiny_model, signum):
    """SIGTERM (a scheduler's time limit) and SIGHUP (a closed terminal) ended the run at once, without a line;
    the steps after the last checkpoint were lost. Now the step in progress ends, state.pt is written, one line,
    exit 128 + the signal; the resumed run ends where an uninterrupted one does."""
    Trainer(load_config(write_config(tmp_path, image_folder, tmp_path / "reference", WORKERS))).fit()
    reference = weights(tmp_path / "reference" / STATE_FILE)

    run = tmp_path / "stopped"
    config = write_config(tmp_path, image_folder, run, WORKERS)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the reference's sums
    # Checkpoints at the epoch ends only: the state after the stop is the one the signal made.
    command = [sys.executable, "-c", STAND_IN, str(config), "--set", "train.checkpoint_every=100"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while steps_logged(run) != [1] and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signum)  # the whole group, as a terminal or a scheduler: the workers get it too
    _, err = proc.communicate(timeout=60)
    lines = err.decode().splitlines()
    assert proc.returncode == 128 + signum, err.decode()[-2000:]
    stopped = weights(run / STATE_FILE)
    state = torch.load(run / STATE_FILE, map_location="cpu", weights_only=False)
    assert 1 <= state["global_step"] < 6 and state["global_step"] == steps_logged(run)[-1]  # no step lost
    assert lines == [
        f"error: stopped by {signal.Signals(signum).name} at epoch {state['epoch']}, step {state['step']}; "
        f"state.pt holds global step {state['global_step']}: resume with --resume {run / STATE_FILE}"
    ]
    assert not (run / "model.safetensors").exists()

    Trainer(load_config(config)).fit(resume=run / STATE_FILE)
    final = weights(run / STATE_FILE)
    assert any(not torch.equal(final[key], stopped[key]) for key in final), "the resumed run did train on"
    for key in reference:
        assert torch.equal(final[key], reference[key]), key
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_a_second_ctrl_c_stops_at_once_and_the_line_names_the_state_to_resume(tmp_path, tiny_model):
    """A second Ctrl-C while the first was handled ends the run at once, its state.pt the last checkpoint's; `arniqa
    train` then said 'nothing was trained: run the same command again', a command refused in a folder holding a
    state.pt. It names that state.pt, and resuming from it ends with an uninterrupted run's weights."""
    from faults import cli_child, train_config

    run = tmp_path / "run"
    config = train_config(tmp_path, run, train={"epochs": 2})  # 6 steps, a state.pt after each
    setup = """
        real = loop.Trainer.train_step
        def step(self, batch, epoch, at):
            if self.global_step == 2:  # state.pt holds global step 2
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the run would stop after this step
                os.kill(os.getpid(), signal.SIGINT)  # and again, while it finishes the step
            return real(self, batch, epoch, at)
        loop.Trainer.train_step = step
    """
    stopped = cli_child("train", config, setup=setup)
    state = run / STATE_FILE
    assert (stopped.returncode, stopped.stderr) == (130, f"error: interrupted; resume with --resume {state}\n")
    assert torch.load(state, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "log.csv", "run.log", STATE_FILE]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child's sums
    try:
        Trainer(load_config(train_config(tmp_path, tmp_path / "reference", train={"epochs": 2}))).fit()
        Trainer(load_config(config)).fit(resume=state)
    finally:
        torch.set_num_threads(threads)
    final, reference = weights(state), weights(tmp_path / "reference" / STATE_FILE)
    assert all(torch.equal(final[key], reference[key]) for key in reference)
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_a_signal_the_process_ignores_stays_ignored(tmp_path, short_run, tiny_model, monkeypatch):
    """nohup starts a run with SIGHUP ignored: a closed terminal must not stop it."""
    import arniqa.train.loop as loop

    real = loop.Trainer.train_step

    def hang_up_once(self, batch, epoch, step):
        if self.global_step == 0:
            os.kill(os.getpid(), signal.SIGHUP)
        return real(self, batch, epoch, step)

    monkeypatch.setattr(loop.Trainer, "train_step", hang_up_once)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        Trainer(short_run("train.max_steps=2")).fit()
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert torch.load(tmp_path / "run" / STATE_FILE, weights_only=False)["global_step"] == 2


@pytest.mark.skipif(not hasattr(signal, "SIGCHLD"), reason="POSIX signals")
def test_a_stop_while_waiting_for_a_batch_leaves_no_worker_to_collect(tmp_path, image_folder, tiny_model, monkeypatch):
    """A terminal's or a scheduler's signal reaches the DataLoader workers too. Landing while the run waited for a
    batch, the loader's error ("exited unexpectedly") kept its iterator alive past the stop, through the error's
    traceback, with its workers still registered with PyTorch's SIGCHLD handler, which was back by then: under load
    the next SIGCHLD raised in the iterator's collection ("Exception ignored in
    _MultiProcessingDataLoaderIter.__del__" and a traceback after the stop's one line, seen in CI). Now the
    workers are stopped before the stop ends."""
    import multiprocessing
    import threading
    import time

    import arniqa.train.batches as batches

    real = batches.DegradedBatches.__getitem__

    waited_on = tmp_path / "waited-on"  # the pid of the worker making batch 1

    def slow_after_the_first(self, item):  # in the workers: the run waits for batch 1
        epoch, at, _ = item
        if (epoch, at) == (0, 1):
            waited_on.write_text(str(os.getpid()))
        if (epoch, at) != (0, 0):
            time.sleep(3)
        return real(self, item)

    monkeypatch.setattr(batches.DegradedBatches, "__getitem__", slow_after_the_first)
    step = Trainer.train_step
    others = {p.pid for p in multiprocessing.active_children()}  # children of earlier tests, not this run's
    workers = []

    def signal_while_it_waits(self, batch, epoch, at):
        done = step(self, batch, epoch, at)
        if self.global_step == 0:  # a second after step 0: the run waits for batch 1
            workers.extend(p.pid for p in multiprocessing.active_children() if p.pid not in others)

            def group_signal():  # as to a process group: the worker of batch 1 dies of it at once, the other late
                for pid in [os.getpid(), int(waited_on.read_text())]:
                    os.kill(pid, signal.SIGTERM)

            threading.Timer(1, group_signal).start()
        return done

    monkeypatch.setattr(Trainer, "train_step", signal_while_it_waits)
    trainer = Trainer(load_config(write_config(tmp_path, image_folder, tmp_path / "run", WORKERS)))
    with pytest.raises(KeyboardInterrupt) as stopped:  # Stopped, after the loader found a worker gone
        trainer.fit()
    assert "stopped by SIGTERM" in str(stopped.value)
    assert len(workers) == 2
    late = [p for p in multiprocessing.active_children() if p.pid in workers]  # would die under PyTorch's handler
    for worker in late:
        worker.terminate()
    assert late == []


class Full:
    """A file on a full disk: every write fails."""

    def __init__(self, file):
        self.file = file

    def write(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = write

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.mark.parametrize("fails", ["log.csv", "validation.csv", "run.log", "config.yaml"])
def test_a_failing_write_of_a_run_file_is_one_line_and_keeps_the_state(
    tmp_path, image_folder, tiny_model, monkeypatch, capsys, fails
):
    """A full disk while writing log.csv, validation.csv, run.log or config.yaml was an OSError's traceback."""
    import arniqa.train.logger as logger
    import arniqa.train.loop as loop
    from arniqa.train.__main__ import main

    monkeypatch.setattr(loop, "make_validator", lambda config, device: lambda model: {"srcc": 0.5})
    run = tmp_path / "run"
    config = str(write_config(tmp_path, image_folder, run))
    assert main([config, "--set", "train.max_steps=4"]) == 0
    before = (run / "config.yaml").read_bytes()
    capsys.readouterr()

    def full_open(file, mode="r", *args, **kwargs):
        handle = open(file, mode, *args, **kwargs)
        return Full(handle) if Path(file).name == fails and mode != "r" else handle

    with monkeypatch.context() as disk_full:
        disk_full.setattr(logger, "open", full_open, raising=False)
        if fails == "config.yaml":  # its temporary file
            full_disk_for_text(disk_full, lambda path: path.name.startswith((".config.", "config.yaml")))
        assert main([config, "--resume", str(run / STATE_FILE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / fails}: cannot write it (No space left on device); ") and err.count("\n") == 1
    assert "resume" in err
    if fails == "config.yaml":  # the resumed run's could not replace it: the one before is whole
        assert (run / "config.yaml").read_bytes() == before
    # The disk has room again: the run resumes from what was kept and reads as one run.
    assert main([config, "--resume", str(run / STATE_FILE)]) == 0
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_resume_after_images_were_removed_is_one_line_not_a_hang(tmp_path, image_folder, short_run, tiny_model):
    """A state saved mid-epoch resumed with fewer images than its step (2 of 3 steps done, 2 images left: one
    step per epoch) looped forever over an empty epoch."""
    from arniqa.train.state import StateError

    Trainer(short_run("train.max_steps=2")).fit()
    for path in sorted(p for p in image_folder.rglob("*") if p.is_file())[2:]:
        path.unlink()
    state = tmp_path / "run" / STATE_FILE
    with pytest.raises(TrainingError, match=r"data.root holds other images than in the interrupted run \(2 now in"):
        Trainer(short_run()).fit(resume=state)
    older = torch.load(state, weights_only=True)
    del older["images"]  # as states were written before the images were recorded
    torch.save(older, state)
    with pytest.raises(StateError, match=r"stopped at step 2 of an epoch, which now has 1 steps .*same images"):
        Trainer(short_run()).fit(resume=state)


def test_a_truncated_state_is_damaged_not_a_wrong_path(tmp_path, short_run, tiny_model):
    """A state.pt cut short (a copy that did not finish) was 'cannot read ... (Invalid argument); check the path'."""
    from arniqa.train.state import StateError

    Trainer(short_run("train.max_steps=1")).fit()
    state = tmp_path / "run" / STATE_FILE
    cut = tmp_path / "cut.pt"
    cut.write_bytes(state.read_bytes()[:5000])
    with pytest.raises(StateError, match=r"cut.pt: not a readable training state .*damaged"):
        Trainer(short_run()).fit(resume=cut)
    with pytest.raises(StateError, match=r"missing.pt: cannot read the training state .*check the path"):
        Trainer(short_run()).fit(resume=tmp_path / "missing.pt")


@pytest.mark.parametrize("key, value", [("epoch", "a"), ("global_step", -5), ("step", 1.5)])
def test_a_state_whose_counters_are_no_counts_is_not_a_training_state(tmp_path, short_run, tiny_model, key, value):
    """An edited state.pt whose epoch was a string was a TypeError traceback (exit 1); a negative global step
    said the run 'already finished at global step -5'."""
    from arniqa.train.state import StateError

    Trainer(short_run("train.max_steps=1")).fit()
    state = tmp_path / "run" / STATE_FILE
    edited = torch.load(state, weights_only=True)
    edited[key] = value
    torch.save(edited, tmp_path / "edited.pt")
    with pytest.raises(StateError, match=rf"edited.pt: not a training state written by arniqa \(its {key} is "):
        Trainer(short_run()).fit(resume=tmp_path / "edited.pt")


def test_resuming_from_the_model_or_the_config_does_not_advise_deleting_them(tmp_path, short_run, tiny_model):
    """`--resume run/model.safetensors` (or run/config.yaml) said "delete it and resume from another state.pt": the
    trained model, or the config, deleted on the program's advice. A damaged .pt file is still to be deleted."""
    from arniqa.train.state import StateError

    Trainer(short_run("train.max_steps=1")).fit()
    for name in ("model.safetensors", "config.yaml"):
        wrong = tmp_path / "run" / name
        with pytest.raises(StateError) as err:
            Trainer(short_run()).fit(resume=wrong)
        message = str(err.value)
        assert message.startswith(f"{wrong}: not a") and "delete" not in message
        assert message.endswith(" resume from the state.pt in the folder of the interrupted run")
        assert wrong.is_file()


def test_a_bad_config_path_with_a_newline_is_one_error_line(tmp_path, capsys):
    """``python -m arniqa.train`` printed ``error: <path>: ...`` with the path as it was: a config name holding a
    newline gave two lines (``arniqa train`` gave one). Now the same line as every arniqa command, exit 2."""
    from arniqa.train.__main__ import main

    config = tmp_path / "no\nsuch.yaml"
    assert main([str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path}/no\\x0asuch.yaml: ")


def test_a_python_warning_is_one_warning_line(tmp_path, capsys, monkeypatch):
    """``python -m arniqa.train`` printed a Python warning in Python's two lines naming the module (``arniqa``'s
    commands had one ``warning:`` line); now the same line."""
    import warnings

    import arniqa.train.__main__ as entry
    import arniqa.train.loop as loop

    class WarnAndFinish(loop.Trainer):
        def __init__(self, config):
            self.finished_before = False

        def fit(self, resume=None):
            warnings.warn("the ImageNet file's hash is not the published one", UserWarning, stacklevel=2)
            return tmp_path / "model.safetensors"

    monkeypatch.setattr(entry, "load_config", lambda path, overrides: None)
    monkeypatch.setattr(loop, "Trainer", WarnAndFinish)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # put back after the test
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert entry.main(["config.yaml"]) == 0
    assert capsys.readouterr().err == "warning: the ImageNet file's hash is not the published one\n"


# python -m arniqa.train as run, its import of the training loop (torch, timm: seconds) held until a signal comes.
AT_IMPORT = """
import runpy, sys, time
from pathlib import Path
class Held:
    def find_spec(self, name, path=None, target=None):
        if name == "arniqa.train.loop":
            Path({ready!r}).touch()
            time.sleep(60)
sys.meta_path.insert(0, Held())
runpy.run_module("arniqa.train", run_name="__main__")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_a_signal_while_the_run_imports_torch_is_one_line_saying_to_start_again(tmp_path, short_run):
    """``python -m arniqa.train`` took SIGTERM and SIGHUP only once torch and the model code were imported (seconds;
    torchrun stops every rank with SIGTERM when one fails): a signal before ended it with no line. Now one line says
    what happened and that the run starts again; exit 128 + the signal."""
    from arniqa.train.state import go_on

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(short_run().to_dict()))
    ready = tmp_path / "importing"
    script = AT_IMPORT.format(ready=str(ready))
    proc = subprocess.Popen([sys.executable, "-c", script, str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (
        128 + signal.SIGTERM,
        "error: stopped by SIGTERM; nothing was trained: run the same command again\n",
    )
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / STATE_FILE).touch()  # a run stopped as it ended, after its last state was written
    assert go_on(None, short_run()) == f"resume with --resume {tmp_path / 'run' / STATE_FILE}"


def test_a_run_resumed_from_another_folder_goes_on_from_the_newer_state(tmp_path, short_run):
    """After a second Ctrl-C in a run resumed from another folder's state.pt (`--resume old/state.pt` into run/),
    the line named old/state.pt, not the newer state.pt the run had written in its own folder meanwhile."""
    from arniqa.train.state import go_on

    old, own = tmp_path / "old" / STATE_FILE, tmp_path / "run" / STATE_FILE
    old.parent.mkdir()
    old.touch()
    assert go_on(old, short_run()) == f"resume with --resume {old}"  # none written in run/ yet
    own.parent.mkdir()
    own.touch()
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(own, (2_000_000, 2_000_000))  # written by the resumed run
    assert go_on(old, short_run()) == f"resume with --resume {own}"
    os.utime(old, (3_000_000, 3_000_000))  # run/ holds an older state than the one resumed from
    assert go_on(old, short_run()) == f"resume with --resume {old}"


def test_running_out_of_memory_in_a_step_is_one_line_saying_what_to_lower(tmp_path, short_run, monkeypatch):
    """PyTorch's CPU allocator failing in a step (a plain RuntimeError) ended `arniqa train` with a traceback of
    337 lines, exit 1; it is now a TrainingError naming the step, what to lower and what can be resumed."""
    from tiny_arniqa import TinyARNIQA

    import arniqa.train.loop as loop

    class Greedy(TinyARNIQA):
        calls = 0

        def forward(self, x):
            Greedy.calls += 1
            if Greedy.calls > 2:  # the second step's (two passes a step)
                torch.empty(1 << 62, dtype=torch.uint8)  # more than any machine has
            return super().forward(x)

    monkeypatch.setattr(loop, "build_model", lambda config: Greedy())
    trainer = Trainer(short_run("train.checkpoint_every=1"))
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    assert str(caught.value) == (
        f"out of memory at epoch 0, step 1 (RuntimeError); free memory; then resume with --resume "
        f"{tmp_path / 'run' / STATE_FILE}, or start a new run with a lower train.batch_size or data.crop_size in "
        "another output folder"
    )
    assert "DefaultCPUAllocator" in str(caught.value.__cause__)


def test_a_signal_in_the_last_step_still_stops_the_command(short_run, tiny_model, monkeypatch):
    """Ctrl-C in a run's last step (or while its model was written) was taken and dropped: the run ended as if
    none came, exit 0, so `arniqa ablate` (and a shell loop over runs) went on to the next run. The run still
    ends whole, its model written, and then stops the command: Stopped, 130, saying the run finished."""
    step = Trainer.train_step

    def interrupted_last(self, batch, epoch, at):
        if self.global_step == 2:  # 3 steps in all
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, batch, epoch, at)

    monkeypatch.setattr(Trainer, "train_step", interrupted_last)
    trainer = Trainer(short_run("train.max_steps=3"))
    with pytest.raises(KeyboardInterrupt) as stopped:
        trainer.fit()
    run = trainer.output
    assert stopped.value.code == 128 + signal.SIGINT
    assert str(stopped.value) == (
        f"stopped by SIGINT after the run's last step (global step 3); it finished: model written to "
        f"{run / 'model.safetensors'}"
    )
    assert (run / "model.safetensors").exists()
    assert torch.load(run / STATE_FILE, weights_only=False)["global_step"] == 3


def test_resuming_a_run_before_its_first_checkpoint_says_what_is_going_on(tmp_path, monkeypatch):
    """`arniqa train --resume RUN/state.pt` on a run that had written no state.pt yet said 'cannot read the training
    state (No such file or directory); check the path'. It says whether the run there is still training (another
    process holds the folder) or stopped before its first checkpoint, and what to do; doing that trains the run."""
    from faults import cli, hold, one_line_error, train_config
    from tiny_arniqa import TinyARNIQA

    import arniqa.train.loop as loop

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    run = tmp_path / "run"
    config = train_config(tmp_path, run)
    state = run / STATE_FILE
    step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda *args: (_ for _ in ()).throw(MemoryError()))
    failed = cli("train", config)  # its first step: out of memory
    assert failed.exit_code == 2 and not state.exists(), failed.output
    assert f"; then run the same command again (no {STATE_FILE} yet), " in one_line_error(failed.stderr)
    monkeypatch.setattr(Trainer, "train_step", step)

    training = hold(run)  # another process training in it, as a run does
    try:
        busy = cli("train", config, "--resume", state)
    finally:
        training.kill()
        training.wait()
    assert busy.exit_code == 2
    assert one_line_error(busy.stderr) == (
        f"error: {state}: no such file yet: the run training in {run} (pid {training.pid}) has not written its first "
        f"checkpoint; let it train on, or stop it (Ctrl-C: it writes {STATE_FILE} as it stops) and resume then"
    )
    stopped = cli("train", config, "--resume", state)
    assert stopped.exit_code == 2
    assert one_line_error(stopped.stderr) == (
        f"error: {state}: no such file: the run in {run} stopped before its first checkpoint (killed, or failed); "
        "start it again: the same command without --resume"
    )
    again = cli("train", config)  # as the line says
    assert again.exit_code == 0, again.output
    assert state.is_file() and (run / "model.safetensors").is_file()
    elsewhere = cli("train", config, "--resume", tmp_path / STATE_FILE)  # no run there: a path to check
    assert one_line_error(elsewhere.stderr).endswith(
        ": cannot read the training state (No such file or directory); check the path"
    )
