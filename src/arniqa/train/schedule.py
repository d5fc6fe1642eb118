"""The learning-rate schedule: the reference's warm restarts by epoch fraction, or the same cosine
cycles counted in steps after a linear warm-up (``optim.warmup_steps``, ``optim.t0_steps``).

The reference (both options at their defaults) is torch's CosineAnnealingWarmRestarts stepped at
``epoch + step / steps_per_epoch`` after every iteration, kept as it is so that default runs stay
bit-identical. The step schedule is a LambdaLR of :func:`lr_at`; both keep their state in the
scheduler's ``state_dict`` (saved in ``state.pt``).
"""

from __future__ import annotations

import math

import torch

from .config import OptimConfig


def counts_steps(opt: OptimConfig) -> bool:
    """Whether ``opt`` asks for the step schedule rather than the reference's epoch-fraction one."""
    return opt.warmup_steps > 0 or opt.t0_steps is not None


def lr_at(step: int, opt: OptimConfig, steps_per_epoch: int) -> float:
    """The learning rate that global step ``step`` (0-based) applies under the step schedule:
    ``lr * (step + 1) / warmup_steps`` during the warm-up, then cosine from ``lr`` to ``eta_min``
    over cycles of ``T0, T0 * t_mult, ...`` steps, ``T0`` = ``t0_steps`` or ``t0_epochs`` epochs."""
    if step < opt.warmup_steps:
        return opt.lr * (step + 1) / opt.warmup_steps
    t, length = step - opt.warmup_steps, opt.t0_steps or opt.t0_epochs * steps_per_epoch
    while t >= length:
        t, length = t - length, length * opt.t_mult
    return opt.eta_min + (opt.lr - opt.eta_min) * (1 + math.cos(math.pi * t / length)) / 2


def make_scheduler(optimizer: torch.optim.Optimizer, opt: OptimConfig, steps_per_epoch: int):
    """The scheduler of ``opt``; step it with :func:`advance` after every optimiser step."""
    if not counts_steps(opt):
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=opt.t0_epochs, T_mult=opt.t_mult, eta_min=opt.eta_min
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, opt, steps_per_epoch) / opt.lr)


def advance(scheduler, epoch: int, step: int, steps_per_epoch: int) -> None:
    """Step ``scheduler`` after step ``step`` of ``epoch``: the reference's at the epoch fraction,
    the step schedule to the next global step."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts):
        scheduler.step(epoch + step / steps_per_epoch)
    else:
        scheduler.step()


def set_peak_lr(scheduler, lr: float) -> None:
    """Make ``lr`` the schedule's peak (``optim.lr``) from the scheduler's current position on: a resumed
    run's new ``optim.lr``, which the loaded optimiser and scheduler states would otherwise override."""
    groups = scheduler.optimizer.param_groups
    scheduler.base_lrs = [lr] * len(groups)
    for i, group in enumerate(groups):
        group["initial_lr"] = lr
        if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts):
            cosine = (1 + math.cos(math.pi * scheduler.T_cur / scheduler.T_i)) / 2
            group["lr"] = scheduler.eta_min + (lr - scheduler.eta_min) * cosine
        else:
            group["lr"] = lr * scheduler.lr_lambdas[i](scheduler.last_epoch)
