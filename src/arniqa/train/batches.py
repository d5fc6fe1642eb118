"""Where a step's degradations run, and the DataLoader that feeds the step.

``data.degrade_on``:

* ``device``: DataLoader workers decode and crop (uint8 crops, one sample per item); the training
  step applies the chains to the 4B crops on the training device.
* ``workers``: each item is a whole batch. The worker that builds it decodes and crops its samples
  and applies the chains on the CPU with the batched kernels (``apply_chains`` on all 4B crops at
  once, JPEG 2000 in the worker itself); it hands back float crops, which travel through pinned
  memory with a non-blocking copy.
* ``auto``: ``workers`` when training on a GPU with at least :data:`CORES_PER_GPU_PROCESS` CPU
  cores per GPU process on this host, else ``device``.

Either way a batch is fixed by :class:`~arniqa.data.pristine.EpochSampler` (step -> sample keys)
and its degradations' internals are drawn from one generator seeded by (seed, epoch, step, rank)
(:func:`degradation_generator`), so which worker builds a batch, how many workers there are and
what they built before change nothing: 0, 1 or 2 workers give bit-identical batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ..data.images import ImageError
from ..data.pristine import EpochSampler, PristinePairs, collate, stack_crops
from ..degradations.sampler import apply_chains
from ..utils.messages import one_line
from ..utils.runtime import host_cores, worker_killed
from .state import TrainingError, go_on_from

CORES_PER_GPU_PROCESS = 4


def degradation_generator(seed: int, epoch: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator for one step's degradation internals, seeded by (seed, epoch, step, rank)."""
    value = int(np.random.SeedSequence([seed, epoch, step, rank, 1]).generate_state(2, np.uint64)[0]) >> 1
    return torch.Generator(device=device).manual_seed(value)


def resolve_degrade_on(value: str, device: torch.device, local_processes: int = 1) -> str:
    """``workers`` or ``device`` for ``data.degrade_on=value`` when training on ``device`` with
    ``local_processes`` training processes on this host (``auto``: see the module docstring)."""
    if value != "auto":
        return value
    enough = host_cores() >= CORES_PER_GPU_PROCESS * max(local_processes, 1)
    return "workers" if device.type == "cuda" and enough else "device"


class StepSampler(Sampler):
    """One item per step: ``(epoch, step, keys)``, the keys this process reads for that step."""

    def __init__(self, samples: EpochSampler) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples.steps_per_epoch - self.samples.start_step

    def __iter__(self) -> Iterator[tuple[int, int, tuple]]:
        keys = list(self.samples)
        local = self.samples.global_batch // self.samples.world_size
        for k, step in enumerate(range(self.samples.start_step, self.samples.steps_per_epoch)):
            yield self.samples.epoch, step, tuple(keys[k * local : (k + 1) * local])


class DegradedBatches(Dataset):
    """Whole degraded batches of ``dataset``, indexed by ``(epoch, step, keys)``.

    Returns ``{"x": (4B, 3, S, S) float32 in [0, 1], cat(A_full, A_half, B_full, B_half) degraded on
    the CPU, "chain", "index", "other"}``.
    """

    def __init__(self, dataset: PristinePairs, seed: int, rank: int) -> None:
        self.dataset, self.seed, self.rank = dataset, seed, rank

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, tuple]) -> dict:
        epoch, step, keys = item
        batch = collate([self.dataset[key] for key in keys])
        x, chains = stack_crops(batch)
        # In a worker, the result goes straight into shared memory, which the batch travels in
        # (else the hand-over copies it there: a third of a 224 px batch's hand-over time).
        out = shared_like(x) if get_worker_info() is not None else None
        if any(chains) or out is not None:
            x = apply_chains(x, chains, degradation_generator(self.seed, epoch, step, self.rank, x.device), out)
        batch = {name: batch[name] for name in ("chain", "index", "other")}
        batch["x"] = x
        return batch


def shared_like(x: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``x``'s shape and dtype in shared memory."""
    storage = torch.UntypedStorage._new_shared(x.numel() * x.element_size())
    return torch.empty(0, dtype=x.dtype).set_(storage).view(x.shape)


def make_loader(
    dataset: PristinePairs, degrade_on: str, samples: EpochSampler, num_workers: int, pin_memory: bool
) -> DataLoader:
    """The DataLoader of one epoch (from ``samples.start_step`` on) for ``degrade_on`` (resolved)."""
    if degrade_on == "workers":
        # A batch of float crops is large (39 MB at batch 16, 224 px): two in flight per worker.
        return DataLoader(
            DegradedBatches(dataset, samples.seed, samples.rank),
            batch_size=None,
            sampler=StepSampler(samples),
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=2 if num_workers else None,
        )
    return DataLoader(
        dataset,
        batch_size=samples.global_batch // samples.world_size,
        sampler=samples,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
    )


def end_workers(batches) -> None:
    """Stop the DataLoader workers of the iterator ``batches`` now, not when it is collected. A failed step's error
    keeps the iterator alive through its traceback: collected after the run's signal handling has ended, it joined
    its workers under PyTorch's SIGCHLD handler, which raised for a worker the run's signal had killed ("Exception
    ignored in _MultiProcessingDataLoaderIter.__del__" and a traceback after the stop's one line). PyTorch's
    iterator has no public close; a failing worker here is the error already on its way, or none."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # None: no workers (num_workers 0)
    if shutdown is not None:
        with suppress(RuntimeError):
            shutdown()


def batch_crops(batch: dict, device: torch.device, seed: int, epoch: int, step: int, rank: int) -> torch.Tensor:
    """The step's 4B degraded crops on ``device``, from a batch of either loader."""
    if "x" in batch:  # degraded in the worker
        return batch["x"].to(device, non_blocking=True)
    x, chains = stack_crops(batch, device)
    if any(chains):
        x = apply_chains(x, chains, degradation_generator(seed, epoch, step, rank, device))
    return x


def worker_death(
    err: BaseException, dataset: PristinePairs, samples: EpochSampler, state: Path
) -> TrainingError | None:
    """A TrainingError naming the epoch, the step (``samples.start_step``, the first not done) and its
    images when ``err`` is PyTorch's report of a dead DataLoader worker (killed, out of memory), which
    it raises wherever the training process is when it learns of it; else None. A worker killed by SIGKILL
    (:func:`~arniqa.utils.runtime.worker_killed`, also when the main process was waiting for a batch and was
    told only "exited unexpectedly") is said to be most likely out of memory. ``state``: the run's state.pt,
    there or not yet (a resume may lower data.num_workers; not train.batch_size)."""
    if not isinstance(err, RuntimeError) or "DataLoader worker (pid" not in str(err):
        return None  # errors raised in a worker name their file themselves
    step = samples.start_step
    where = (
        f"a DataLoader worker died at epoch {samples.epoch}, step {step} (images of that batch: "
        f"{', '.join(step_files(dataset, samples, step))}; the first step not done, the worker may have been "
        f"building one of the next batches): {str(err).strip().rstrip('.')}"
    )
    then = f"{go_on_from(state)}, with a lower data.num_workers if need be"
    if worker_killed(err):
        return TrainingError(f"{where} (SIGKILL: most likely out of memory); free memory", then)
    return TrainingError(f"{where}; if memory ran out, free memory", then)


def broken_image(err: BaseException, state: Path) -> TrainingError | None:
    """A one-line TrainingError when ``err`` is a training image that cannot be decoded: an ImageError raised
    here (no workers), or PyTorch's RuntimeError for one raised in a DataLoader worker, which holds the
    worker's traceback, ending with the ImageError's message (which may span lines: a file name may hold a
    newline); else None. ``state``: the run's state.pt, there or not yet. A run resumes only on the images it
    started with, so with a state the line says to resume once the file is back as it was."""
    if isinstance(err, ImageError):
        reason = str(err)
    elif isinstance(err, RuntimeError) and str(err).startswith("Caught ImageError"):
        # The exception's line is the only traceback line that starts with its type's full name.
        reason = str(err).split(f"\n{ImageError.__module__}.{ImageError.__qualname__}: ", 1)[-1].rstrip("\n")
    else:
        return None
    if not state.exists():
        return TrainingError(one_line(reason), f"{go_on_from(state)}, or remove it first")
    return TrainingError(
        one_line(reason),
        f"{go_on_from(state)}, the file as it was when the run started (a run resumes only on the images it started "
        "with: to leave it out or change it, start a new run in another output folder)",
    )


def step_files(dataset: PristinePairs, samples: EpochSampler, step: int) -> list[str]:
    """The files (A and B of every sample) this process reads at ``step`` of the epoch."""
    local = samples.global_batch // samples.world_size
    first = (step - samples.start_step) * local
    keys = list(samples)[first : first + local]
    indices = [i for epoch, index in keys for i in (index, dataset.other(epoch, index))]
    return [str(dataset.files[i]) for i in indices]
