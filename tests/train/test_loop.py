"""The learning-rate schedule of a built Trainer against the closed form of cosine warm restarts."""

import csv
import math

import pytest
import torch

import arniqa.train.loop as loop
from arniqa.train.loop import Trainer

# The reference recipe: SGD lr 1e-3, CosineAnnealingWarmRestarts(T_0=1 epoch, T_mult=2,
# eta_min=1e-6) stepped after every iteration at the epoch fraction epoch + step / steps_per_epoch.
LR0, ETA_MIN, T0, T_MULT = 1e-3, 1e-6, 1.0, 2.0


def warm_restarts(t: float) -> float:
    """SGDR's learning rate at epoch fraction ``t``: cosine from LR0 to ETA_MIN over cycles of
    T0, T0 * T_MULT, T0 * T_MULT**2, ... epochs, restarting at LR0 at the start of each."""
    start, length = 0.0, T0
    while t >= start + length:
        start, length = start + length, length * T_MULT
    return ETA_MIN + (LR0 - ETA_MIN) * (1 + math.cos(math.pi * (t - start) / length)) / 2


def test_lr_follows_cosine_warm_restarts_every_step(tmp_path, short_run, tiny_model):
    config = short_run("log.every=1")  # optim.* stay at their defaults: they must be the reference recipe
    trainer = Trainer(config)
    assert trainer.steps_per_epoch == 3  # six images, batch 2
    used = []  # the learning rate each optimiser step actually applies
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
    trainer.fit()

    steps = 3 * trainer.steps_per_epoch
    fractions = [k // 3 + (k % 3) / 3 for k in range(steps)]  # epoch + step / steps_per_epoch
    assert len(used) == steps
    # step k applies what the scheduler set after step k - 1 (the first one the initial lr)
    expected = [LR0] + [warm_restarts(t) for t in fractions[:-1]]
    assert used == pytest.approx(expected, rel=1e-9, abs=0)
    assert used[4] == pytest.approx(LR0)  # the restart at epoch 1 (after step (1, 0))
    assert min(used) < 0.3 * LR0  # both cycles anneal well below the start

    # log.csv: one row per step, with the lr that step applied
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["global_step"]) for r in rows] == list(range(1, steps + 1))
    logged = [float(r["lr"]) for r in rows]
    assert logged == pytest.approx(expected, rel=1e-6, abs=0)


def test_an_unset_data_root_is_refused(short_run, image_folder, monkeypatch):
    """data.root="" was the working directory to pathlib: the run trained on whatever images it held."""
    monkeypatch.chdir(image_folder)
    with pytest.raises(ValueError, match="data.root is not set"):
        Trainer(short_run("data.root="))


def test_too_many_workers_are_refused(short_run, tiny_model, monkeypatch):
    """Each DataLoader worker is a process: data.num_workers=100000 forked until memory ran out."""
    import arniqa.utils.runtime as runtime

    monkeypatch.setattr(runtime, "host_cores", lambda: 1)
    with pytest.raises(ValueError, match=r"data.num_workers=5 is more than 4 \(4 per CPU core here\)"):
        Trainer(short_run("data.num_workers=5")).fit()


def test_deterministic_algorithms_hold_for_the_run_alone(tmp_path, short_run, tiny_model, monkeypatch):
    """train.deterministic set torch's process-wide flag and never put it back, so an ablation's later variants
    (and a caller's code) ran deterministic whatever their config said. Each run now trains as its own config says,
    and the flag (with its warn-only part) is as before once the run ends."""
    seen = []
    run = Trainer._run

    def spy(self, *args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return run(self, *args, **kwargs)

    monkeypatch.setattr(loop.Trainer, "_run", spy)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # a deterministic run sets it when unset
    try:
        torch.use_deterministic_algorithms(False)
        Trainer(short_run("train.max_steps=1", "train.deterministic=true", f"output={tmp_path / 'a'}")).fit()
        assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)  # the caller's own setting
        Trainer(short_run("train.max_steps=1", f"output={tmp_path / 'b'}")).fit()
        assert seen == [True, False]
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize(
    "overrides, images",
    [(["train.batch_size=8"], "6 training images"), (["data.max_images=1"], "1 training image (data.max_images=1)")],
)
def test_too_few_images_for_a_batch_say_what_to_change(short_run, image_folder, overrides, images):
    """`data.max_images=1` was refused as '1 images under FOLDER are fewer than one batch of 2', of a folder holding
    6, and no line said what to change."""
    with pytest.raises(ValueError) as err:
        Trainer(short_run(*overrides))
    batch = 8 if overrides == ["train.batch_size=8"] else 2
    assert str(err.value) == (
        f"{image_folder}: {images}, fewer than one batch of {batch}; lower train.batch_size or add images"
    )
