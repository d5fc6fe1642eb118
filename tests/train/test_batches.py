"""data.degrade_on: chains in the DataLoader workers give the same training, whatever the worker count;
the choice is logged; a broken image and a dead worker are named."""

import os
import signal

import pytest
import torch
import yaml
from tiny_arniqa import TinyARNIQA

from arniqa.data.pristine import PristinePairs
from arniqa.degradations.registry import get
from arniqa.train import batches, load_config
from arniqa.train.loop import Trainer
from arniqa.train.state import STATE_FILE, TrainingError

# Chains of 1..7 distortions, never pristine: every batch holds random-internal distortions and JPEG 2000.
SETTINGS = ["data.crop_size=32", "data.max_distortions=7", "data.pristine_prob=0", "model.init=random",
            "train.batch_size=2", "train.epochs=1", "train.device=cpu", "train.precision=fp32",
            "log.every=1", "log.progress=false", "log.tensorboard=false"]  # fmt: skip


def run(tmp_path, folder, name, *overrides, monkeypatch, resume=None):
    """Train the stand-in model for one epoch (from the state ``resume``); returns (losses, final weights, trainer)."""
    import arniqa.train.loop as loop
    import arniqa.train.step as step
    from arniqa.train.loss import nt_xent as real

    losses = []

    def recording(*args, **kwargs):
        loss = real(*args, **kwargs)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(loop, "build_model", lambda config: TinyARNIQA())
    monkeypatch.setattr(step, "nt_xent", recording)
    config = load_config(None, [f"data.root={folder}", f"output={tmp_path / name}", *SETTINGS, *overrides])
    trainer = Trainer(config)
    trainer.fit(resume=resume)
    weights = torch.load(tmp_path / name / STATE_FILE, map_location="cpu", weights_only=False)["model"]
    return losses, weights, trainer


def test_worker_count_changes_nothing(tmp_path, image_folder, monkeypatch):
    chains = [
        PristinePairs(sorted(image_folder.rglob("img*")), seed=27, max_distortions=7, pristine_prob=0).chain(0, i)
        for i in range(6)
    ]
    names = {step.name for chain in chains for step in chain}
    assert "jpeg2000" in names and any(get(n).sample for n in names)  # the draws that matter are exercised

    results = {
        (mode, workers): run(
            tmp_path,
            image_folder,
            f"{mode}{workers}",
            f"data.degrade_on={mode}",
            f"data.num_workers={workers}",
            monkeypatch=monkeypatch,
        )
        for mode, workers in (("workers", 0), ("workers", 1), ("workers", 2), ("device", 2))
    }
    losses, weights, _ = results[("workers", 0)]
    assert len(losses) == 3 and len(set(losses)) == 3
    for key, (other_losses, other_weights, trainer) in results.items():
        assert trainer.degrade_on == key[0]
        assert other_losses == losses, key  # bit-identical floats
        for name in weights:
            assert torch.equal(other_weights[name], weights[name]), (key, name)
    # On the CPU the device path draws from the same generator on the same crops: the same run.


def test_a_worker_builds_its_batch_in_shared_memory(image_folder, monkeypatch):
    dataset = PristinePairs(
        sorted(image_folder.rglob("img*")), crop_size=32, seed=27, max_distortions=7, pristine_prob=0
    )
    item = (0, 1, ((0, 2), (0, 3)))
    in_main = batches.DegradedBatches(dataset, seed=5, rank=0)[item]
    monkeypatch.setattr(batches, "get_worker_info", lambda: object())  # as inside a DataLoader worker
    in_worker = batches.DegradedBatches(dataset, seed=5, rank=0)[item]
    assert in_worker["x"].is_shared() and not in_main["x"].is_shared()  # the hand-over does not copy it again
    assert torch.equal(in_worker["x"], in_main["x"])


def test_choice_is_logged_and_config_yaml_reloads(tmp_path, image_folder, monkeypatch):
    _, _, trainer = run(
        tmp_path, image_folder, "auto", "data.num_workers=0", "train.max_steps=1", monkeypatch=monkeypatch
    )
    saved = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())
    assert saved["data"]["degrade_on"] == "device"  # auto on a CPU
    assert load_config(tmp_path / "auto" / "config.yaml").data.degrade_on == "device"
    log = (tmp_path / "auto" / "run.log").read_text()
    assert "data.degrade_on=auto -> device: degradation chains run on the training device (cpu)" in log
    with pytest.raises(ValueError, match="data.degrade_on must be workers, device or auto"):
        load_config(None, ["data.degrade_on=gpu"])


def test_auto_needs_a_gpu_and_four_cores_per_gpu_process(monkeypatch):
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    monkeypatch.setattr(batches, "host_cores", lambda: 16)
    assert batches.resolve_degrade_on("auto", cuda, local_processes=4) == "workers"
    assert batches.resolve_degrade_on("auto", cuda, local_processes=5) == "device"  # 3.2 cores each
    assert batches.resolve_degrade_on("auto", cpu) == "device"
    assert batches.resolve_degrade_on("workers", cpu) == "workers"
    monkeypatch.setattr(batches, "host_cores", lambda: 3)
    assert batches.resolve_degrade_on("auto", cuda) == "device"


@pytest.mark.parametrize("workers", [0, 1])
def test_broken_image_is_named(tmp_path, image_folder, monkeypatch, workers):
    (image_folder / "img00.jpg").unlink()
    (image_folder / "img99.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # still six images: read in epoch 0
    # From a worker PyTorch raises a RuntimeError holding the worker's whole traceback: one line all the same.
    with pytest.raises(TrainingError) as caught:
        run(
            tmp_path,
            image_folder,
            f"bad{workers}",
            "data.degrade_on=workers",
            f"data.num_workers={workers}",
            monkeypatch=monkeypatch,
        )
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{image_folder / 'img99.png'}: truncated or corrupt image data")
    # the image's own advice, then the run's: not two lists of what to do; no state.pt yet, so nothing to resume
    assert message.endswith(
        "; copy or download it again; then run the same command again (no state.pt yet), or remove it first"
    )


@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_broken_after_a_checkpoint_resumes_as_the_line_says(tmp_path, image_folder, monkeypatch, workers):
    """The line said to 'copy or download it again, or remove it, and rerun (--resume from a state.pt)': removed,
    the run's images are others and the resume is refused. It says to resume once the file is as it was."""
    settings = ("data.degrade_on=workers", f"data.num_workers={workers}")
    whole, _, _ = run(tmp_path, image_folder, "whole", *settings, monkeypatch=monkeypatch)
    run(tmp_path, image_folder, "run", *settings, "train.max_steps=1", monkeypatch=monkeypatch)
    files = sorted(p for p in image_folder.rglob("*") if p.is_file())
    kept = {path: path.read_bytes() for path in files}
    for path, data in kept.items():  # their ends zeroed by a disk fault: the same sizes, so the resume starts
        path.write_bytes(data[:200] + bytes(len(data) - 200))
    state = tmp_path / "run" / STATE_FILE
    with pytest.raises(TrainingError) as caught:
        run(tmp_path, image_folder, "run", *settings, monkeypatch=monkeypatch, resume=state)
    message = str(caught.value)
    assert "\n" not in message and "truncated or corrupt image data" in message
    assert f"; copy or download it again; then resume with --resume {state}, the file as it was " in message
    assert "start a new run in another output folder" in message
    for path, data in kept.items():  # as the line says
        path.write_bytes(data)
    resumed, _, _ = run(tmp_path, image_folder, "run", *settings, monkeypatch=monkeypatch, resume=state)
    assert resumed == whole[1:]
    files[0].unlink()  # what the line says does not resume
    with pytest.raises(TrainingError, match="data.root holds other images than in the interrupted run"):
        run(tmp_path, image_folder, "run", *settings, monkeypatch=monkeypatch, resume=state)


@pytest.mark.parametrize("workers", [0, 1])
def test_broken_image_with_a_newline_in_its_name_is_named_whole_on_one_line(
    tmp_path, image_folder, monkeypatch, workers
):
    """From a worker only the traceback's last line was kept: a file name holding a newline lost its first part
    (the error named a file that does not exist); without workers the line was two."""
    (image_folder / "img00.jpg").unlink()
    bad = image_folder / "img99\narniqa.data.images.ImageError: x.png"  # the name also holds the type's line
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(TrainingError) as caught:
        run(tmp_path, image_folder, f"bad{workers}", f"data.num_workers={workers}", monkeypatch=monkeypatch)
    shown = str(bad).replace("\n", "\\x0a")
    assert str(caught.value).startswith(f"{shown}: truncated or corrupt image data (")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSEGV"])
def test_dead_worker_is_named(tmp_path, image_folder, monkeypatch, how):
    """The main process waiting for the first batch is told only "DataLoader worker (pid(s) N) exited unexpectedly"
    (raised from the report of the signal): a worker killed by SIGKILL (the out-of-memory killer's signal) was
    not said to be, nor what to lower."""
    real = PristinePairs.__getitem__

    def die_in_a_worker(self, key):
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), getattr(signal, how))
        return real(self, key)

    monkeypatch.setattr(PristinePairs, "__getitem__", die_in_a_worker)
    with pytest.raises(
        TrainingError, match=r"DataLoader worker died .* epoch 0, step 0 \(images of that batch: .*img0"
    ) as died:
        run(tmp_path, image_folder, "dead", "data.degrade_on=workers", "data.num_workers=1", monkeypatch=monkeypatch)
    killed = "exited unexpectedly (SIGKILL: most likely out of memory); free memory; then "
    assert (killed in str(died.value)) == (how == "SIGKILL"), died.value
    assert how == "SIGKILL" or "exited unexpectedly; if memory ran out, free memory; then " in str(died.value)
    assert str(died.value).endswith(
        "; then run the same command again (no state.pt yet), with a lower data.num_workers if need be"
    )
