"""The step schedule (linear warm-up, then cosine cycles counted in steps) against a hand-written
table, in isolation and as a Trainer applies it; the defaults stay the reference's scheduler."""

import math

import pytest
import torch

from arniqa.train import load_config
from arniqa.train.config import OptimConfig
from arniqa.train.loop import Trainer
from arniqa.train.schedule import lr_at, make_scheduler

LR, ETA = 0.1, 0.001


def hand_table(total: int) -> list[float]:
    """Warm-up of 3 steps (lr/3, 2lr/3, lr), then cycles of 4 and 8 steps (t_mult 2), cosine from LR
    to ETA, written out cycle by cycle rather than derived."""
    warm = [LR / 3, 2 * LR / 3, LR]
    first = [ETA + (LR - ETA) * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
    second = [ETA + (LR - ETA) * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)]
    return (warm + first + second)[:total]


OPT = OptimConfig(lr=LR, eta_min=ETA, warmup_steps=3, t0_steps=4, t_mult=2)


def test_lr_at_matches_the_hand_table():
    assert [lr_at(k, OPT, steps_per_epoch=99) for k in range(15)] == pytest.approx(hand_table(15), rel=1e-12)
    # the first step after the warm-up starts a cycle at lr; the step after 4 more restarts
    assert lr_at(3, OPT, 99) == pytest.approx(LR) and lr_at(7, OPT, 99) == pytest.approx(LR)
    # without t0_steps the period is t0_epochs epochs of steps_per_epoch
    by_epochs = OptimConfig(lr=LR, eta_min=ETA, warmup_steps=3, t0_epochs=2, t_mult=2)
    assert [lr_at(k, by_epochs, steps_per_epoch=2) for k in range(15)] == pytest.approx(hand_table(15), rel=1e-12)


def test_scheduler_applies_the_table_and_defaults_keep_the_reference():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=LR)
    scheduler = make_scheduler(optimizer, OPT, steps_per_epoch=5)
    used = []
    for _ in range(15):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert used == pytest.approx(hand_table(15), rel=1e-12)
    reference = make_scheduler(torch.optim.SGD([param], lr=LR), OptimConfig(), steps_per_epoch=5)
    assert type(reference) is torch.optim.lr_scheduler.CosineAnnealingWarmRestarts


def test_trainer_applies_warmup_and_step_restarts(short_run, tiny_model):
    overrides = [f"optim.lr={LR}", f"optim.eta_min={ETA}", "optim.warmup_steps=3", "optim.t0_steps=4", "log.every=1"]
    config = short_run("train.epochs=5", *overrides)
    trainer = Trainer(config)
    assert trainer.steps_per_epoch == 3  # the cycles cross epoch ends: they count steps
    used = []
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
    trainer.fit()
    assert used == pytest.approx(hand_table(15), rel=1e-9)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.t0_steps=0", "t0_steps"),
        ("optim.warmup_steps=-1", "warmup_steps"),
        ("optim.name=sgdw", "optim.name"),
        ("train.snapshot_steps=[0]", "snapshot_steps"),
    ],
)
def test_bad_schedule_values_are_named(override, message):
    from arniqa.train.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, ["model.init=random", override])
