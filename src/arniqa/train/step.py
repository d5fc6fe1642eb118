"""One training step's loss: the two encoder passes and NT-Xent over the global batch."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..models import ARNIQA
from ..utils.runtime import autocast
from .distributed import gather_with_grad, mean_over_processes
from .loss import nt_xent


class TwoPass(nn.Module):
    """Projections of inputs_A and inputs_B in two separate encoder passes (BatchNorm statistics
    per pass, as the reference); one module call so that DDP sees one forward per step."""

    def __init__(self, model: ARNIQA) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_a: torch.Tensor, inputs_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(inputs_a)[1], self.model(inputs_b)[1]


def contrastive_loss(
    net: nn.Module, x: torch.Tensor, temperature: float, autocast_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's loss for the 4B crops ``x`` = cat(A_full, A_half, B_full, B_half) of this process.

    ``net`` (a :class:`TwoPass`, DDP-wrapped or not) projects inputs_A = x[:2B] and inputs_B = x[2B:]
    in two passes; the projections of all processes are gathered with gradient and NT-Xent is taken
    over this process's rows against the global batch. Returns (loss to backpropagate, loss of the
    global batch for reporting); with one process both are the same value.
    """
    half = x.shape[0] // 2
    with autocast(x.device, autocast_dtype):
        a, b = net(x[:half], x[half:])
    all_a, offset = gather_with_grad(a)
    all_b, _ = gather_with_grad(b)
    loss = nt_xent(a, b, temperature, all_a=all_a, all_b=all_b, offset=offset)
    return loss, mean_over_processes(loss.detach())
