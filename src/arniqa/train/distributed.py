"""One process or many (torchrun): set-up, device choice, and gathering embeddings with gradient.

Under ``torchrun`` the environment gives RANK, WORLD_SIZE and LOCAL_RANK; :func:`setup` then
starts the process group (NCCL on CUDA, gloo on CPU) and picks the local GPU. Without them it is
a single process and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..utils.runtime import resolve_device


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank among world_size processes, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local rank's GPU if CUDA is available, else CPU (training's ``auto`` skips MPS);
    ``cuda`` -> the local rank's GPU; anything else as :func:`~arniqa.utils.runtime.resolve_device`."""
    try:
        device = resolve_device(name, mps=False)
    except ValueError as e:
        raise ValueError(f"train.device={name}: {e}") from None
    return torch.device("cuda", local_rank) if device.type == "cuda" and device.index is None else device


def setup(device: str = "auto") -> Context:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); return the context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        # A long timeout: the other processes wait at the next collective while rank 0 validates.
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    return Context(rank, world_size, local_rank, chosen)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0 whose backward sums the gradient over processes and returns this
    process's slice (a reduce-scatter written as all_reduce: works on every backend, and the
    embeddings are small)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rows, ctx.rank = x.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All processes' ``x`` (same shape everywhere) concatenated along dim 0, and this process's
    row offset in it. The gradient that reaches the result from every process's loss flows back
    to the process that owns each row. One process: ``(x, 0)``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    return _GatherRows.apply(x), dist.get_rank() * x.shape[0]


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over processes (for logging); the value itself with one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()
