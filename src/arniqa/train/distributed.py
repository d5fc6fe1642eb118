"""One process or many (torchrun): set-up, device choice, gathering embeddings with gradient, and what a
process does when another one fails.

Under ``torchrun`` the environment gives RANK, WORLD_SIZE and LOCAL_RANK; :func:`setup` then
starts the process group (NCCL on CUDA, gloo on CPU) and picks the local GPU. Without them it is
a single process and nothing is initialised. The processes compare their set-up (:func:`together`)
before the first collective, so a set-up error on one is a line naming it on all of them; a process
that stops later ends the others' wait at the next collective (:func:`lost_peer`).
"""

from __future__ import annotations

import atexit
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from ..utils.runtime import resolve_device
from .state import TrainingError

# How long a process waits for the others: to start and to finish setting up (START), then at a step's
# collectives, where they also wait while rank 0 validates and writes checkpoints (WAIT).
START_TIMEOUT = timedelta(minutes=10)
WAIT_TIMEOUT = timedelta(hours=2)
# Changes a started group's timeout: public in recent torch (2.14 has it), private before (2.6 to 2.11 have that).
SET_TIMEOUT = getattr(dist, "set_timeout", None) or dist.distributed_c10d._set_pg_timeout


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

    @property
    def syncs_batchnorm(self) -> bool:
        """Whether ``train.sync_batchnorm`` takes effect here (:meth:`ddp`): several processes on CUDA."""
        return self.distributed and self.device.type == "cuda"

    @contextmanager
    def together(self, stage: str) -> Iterator[None]:
        """Run the block on every process, then compare: when it raised on one, every other process raises a
        TrainingError naming that rank and its error, so none waits at the next collective for a process that
        has stopped; the one that failed raises its own error. ``stage``: what the block does (``start``)."""
        try:
            try:
                yield
            except Exception as err:
                _compare(self, next(iter(str(err).strip().splitlines()), type(err).__name__), stage)
                raise
            _compare(self, None, stage)
        except BaseException:  # the run ends here: its process group goes now, not at exit (a C++ abort there)
            teardown()
            raise

    def from_main(self, value: object, stage: str) -> object:
        """Rank 0's ``value`` on every process (the others' is ignored): what rank 0, which alone writes the run
        folder, found there, so no process decides on its own view of files (another node's disk)."""
        if not self.distributed:
            return value
        box = [value]
        with _peers(stage):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def ddp(self, net: nn.Module, sync_batchnorm: bool) -> nn.Module:
        """``net`` under DistributedDataParallel (SyncBatchNorm on CUDA if asked) with several processes."""
        if not self.distributed:
            return net
        if sync_batchnorm and self.syncs_batchnorm:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return DistributedDataParallel(net, device_ids=[self.device] if self.device.type == "cuda" else None)

    def allow_long_waits(self) -> None:
        """From here on a collective waits :data:`WAIT_TIMEOUT` for the others (rank 0 validating)."""
        if self.distributed:
            SET_TIMEOUT(WAIT_TIMEOUT)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local rank's GPU if CUDA is available, else CPU (training's ``auto`` skips MPS);
    ``cuda`` -> the local rank's GPU; anything else as :func:`~arniqa.utils.runtime.resolve_device`."""
    try:
        device = resolve_device(name, mps=False)
    except ValueError as e:
        raise ValueError(f"train.device: {e}") from None
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
        try:
            dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=START_TIMEOUT)
        except RuntimeError as err:  # torch's DistError is one
            raise TrainingError(f"the other processes did not all start ({reason(err)})") from err
    return Context(rank, world_size, local_rank, chosen)


def _compare(ctx: Context, error: str | None, stage: str) -> None:
    if not ctx.distributed:
        return
    errors: list[str | None] = [None] * ctx.world_size
    with _peers(stage):
        dist.all_gather_object(errors, error)
    failed = [(rank, line) for rank, line in enumerate(errors) if line is not None]
    if error is None and failed:
        rank, line = failed[0]
        raise TrainingError(f"rank {rank} could not {stage}: {line}")


@contextmanager
def _peers(stage: str) -> Iterator[None]:
    """Around a collective at ``stage``: another process that stopped is a TrainingError saying so."""
    try:
        yield
    except RuntimeError as err:
        peer = lost_peer(err, f"at {stage}")
        if peer is None:
            raise
        raise peer from err


def lost_peer(err: Exception, where: str, then: str | None = None) -> TrainingError | None:
    """The TrainingError for a collective that failed because another process stopped or stopped answering
    (a gloo or NCCL error), None for any other error. ``where``: when it happened; ``then``: how the run goes on
    (:attr:`TrainingError.then`), or None."""
    if not isinstance(err, getattr(dist, "DistError", ())) and "gloo" not in str(err):
        return None
    return TrainingError(
        f"lost contact with another process of this run {where} ({reason(err)}); its own error line says why, or, "
        "for one killed by a signal (kill -9, out of memory), torchrun's summary of the failed processes",
        then,
    )


def reason(err: Exception) -> str:
    """A backend error's message in short: its first line without the source location and advice."""
    line = next((s for s in str(err).splitlines() if s.strip()), type(err).__name__)
    return re.sub(r"^\[[^\]]*\]\s*|\. This is typically.*$", "", line.strip())


def teardown() -> None:
    """Destroy the process group; its backends (gloo's worker threads) are kept until the next teardown or the exit.

    Freeing a gloo group joins its worker threads, and a worker freeing a collective's tensor that Python has let go
    of waits for the GIL: whoever frees the group holding the GIL hangs, now and then, right after a collective
    (destroy_process_group on torch 2.6, DDP's reducer on 2.6 and 2.11). A backend's own Python object lets the GIL
    go as it is freed, so while ours lives, neither frees the backend."""
    if dist.is_initialized():
        if dist.get_backend() == "gloo":  # tested there; NCCL's destroy shuts its communicators down first
            group = dist.distributed_c10d._get_default_group()
            _torn_down[:] = [group._get_backend(torch.device(kind)) for kind in group._device_types]
        dist.destroy_process_group()


# The backends of the group teardown() destroyed last: freed before the interpreter shuts down (then, a C++ abort).
_torn_down: list = []
atexit.register(_torn_down.clear)


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
