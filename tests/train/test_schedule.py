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


def test_the_reference_schedule_restarts_at_epochs_1_3_7_and_is_cut_at_6_9e_4():
    """The defaults' warm restarts (T_0 1 epoch, T_mult 2, eta_min 1e-6 from lr 1e-3), stepped at the epoch
    fraction: restarts at epochs 1, 3 and 7, and at epoch 10, where 10 epochs end, lr ≈ 6.9e-4
    (arniqa-reference.md section 2: 1e-6 + (1e-3 - 1e-6) (1 + cos(3π/8)) / 2 = 6.917e-4)."""
    from arniqa.train.schedule import advance

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=OptimConfig().lr)
    scheduler = make_scheduler(optimizer, OptimConfig(), steps_per_epoch=4)
    lr = {}
    for epoch in range(11):
        for step in range(4):
            optimizer.step()
            advance(scheduler, epoch, step, 4)
            lr[epoch + step / 4] = optimizer.param_groups[0]["lr"]
    assert [lr[t] for t in (0.0, 1.0, 3.0, 7.0)] == pytest.approx([1e-3] * 4, rel=1e-12)
    assert lr[2.75] < lr[2.5] < 2e-4  # late in the cycle 1..3
    closed_form = 1e-6 + (1e-3 - 1e-6) * (1 + math.cos(3 * math.pi / 8)) / 2  # 3 epochs into the 8-epoch cycle
    assert lr[10.0] == pytest.approx(closed_form, rel=1e-9) and lr[10.0] == pytest.approx(6.9e-4, abs=2e-6)
