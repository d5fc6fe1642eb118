"""The composition sampler: random chains of distortions, and applying them to crops.

A :class:`Chain` is a plain value (a tuple of :class:`Step`) that can be replayed: the four crops
of a training sample share one chain, and each application redraws the distortions' internal
randomness (motion-blur angle, noise fields, ...). The empty chain leaves an image pristine.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import NamedTuple

import torch

from ..utils.names import count
from . import rng
from .apply import check_images, chunks, run, start
from .registry import GROUPS, MAX_DISTORTIONS, NUM_LEVELS, check_level, get
from .rng import check_generator

LEVEL_SIGMA = 2.5


def level_probs(num_levels: int = NUM_LEVELS, sigma: float = LEVEL_SIGMA) -> tuple[float, ...]:
    """Probabilities of levels 1..num_levels: the N(0, sigma) pdf at indices 0..num_levels-1, normalised (0.2929,
    0.2704, 0.2127, 0.1426, 0.0814 for the 5 levels)."""
    if not _whole_in(num_levels, 1, NUM_LEVELS):
        raise ValueError(f"num_levels must be an integer from 1 to {NUM_LEVELS}, got {num_levels!r}")
    pdf = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(num_levels)]
    total = sum(pdf)
    return tuple(p / total for p in pdf)


def _whole_in(value, low: int, high: int) -> bool:
    """Whether ``value`` is an integer (not a bool) from ``low`` to ``high``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


class Step(NamedTuple):
    """One distortion of a chain: the reference key and the level (1..5)."""

    name: str
    level: int


class Chain(tuple):
    """A sequence of :class:`Step`, applied in order; ``Chain()`` is the pristine (empty) chain.

    Built from any iterable of steps or ``(name, level)`` pairs, e.g. ``Chain([("jpeg", 2)])``.
    """

    def __new__(cls, steps: Iterable[Step | tuple[str, int]] = ()) -> Chain:
        if not isinstance(steps, Iterable) or isinstance(steps, (str, bytes)):
            raise ValueError(f"a chain is an iterable of (name, level) steps, got {steps!r}")
        return super().__new__(cls, map(_step, steps))

    def __repr__(self) -> str:
        return f"Chain({list(map(tuple, self))!r})"

    def __str__(self) -> str:
        return " -> ".join(f"{s.name}@{s.level}" for s in self) or "pristine"


def _step(step) -> Step:
    try:
        if isinstance(step, (str, bytes)):  # "ab" would unpack as the pair ("a", "b")
            raise TypeError
        name, level = step
    except (TypeError, ValueError):
        raise ValueError(f"a chain step is a (name, level) pair, got {step!r}") from None
    return Step(name, level)


def _uniform(generator: torch.Generator | None) -> float:
    return rng.rand((), generator, torch.device("cpu")).item()


def _randint(high: int, generator: torch.Generator | None) -> int:
    return int(rng.randint(0, high, (), generator, torch.device("cpu")).item())


def sample_chain(
    generator: torch.Generator | None = None,
    max_distortions: int = 4,
    pristine_prob: float = 0.05,
    num_levels: int = NUM_LEVELS,
) -> Chain:
    """Draw one chain as the reference's training sampler does.

    With probability ``pristine_prob`` the empty chain. Otherwise k ~ U{1..max_distortions}
    (allowed 0..7; 0 always gives the empty chain), k distinct groups in random order (the order
    of application), one distortion per group uniformly, and each level with :func:`level_probs`
    over the first ``num_levels`` levels. All draws come from ``generator`` (torch's global RNG
    when None).
    """
    if not _whole_in(max_distortions, 0, MAX_DISTORTIONS):
        raise ValueError(f"max_distortions must be an integer from 0 to {MAX_DISTORTIONS}, got {max_distortions!r}")
    check_generator(generator)
    if not (
        isinstance(pristine_prob, numbers.Real) and not isinstance(pristine_prob, bool) and 0 <= pristine_prob <= 1
    ):
        raise ValueError(f"pristine_prob must be in [0, 1], got {pristine_prob!r}")
    cumulative = list(accumulate(level_probs(num_levels)))
    if _uniform(generator) < pristine_prob or max_distortions == 0:
        return Chain()
    k = 1 + _randint(max_distortions, generator)
    names = list(GROUPS)
    order = rng.rand((len(names),), generator, torch.device("cpu")).argsort()[:k].tolist()
    steps = []
    for g in order:
        members = GROUPS[names[g]]
        name = members[_randint(len(members), generator)]
        level = 1 + min(bisect.bisect_right(cumulative, _uniform(generator)), num_levels - 1)
        steps.append(Step(name, level))
    return Chain(steps)


def apply_chain(
    x: torch.Tensor,
    chain: Iterable[Step | tuple[str, int]],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``chain`` to ``x`` (3,H,W) or (B,3,H,W) float in [0, 1], every sample the same chain.

    Each step redraws its internals per sample (one sample after another), then the result is
    cast to float32 and clipped to [0, 1]. Returns a new tensor of ``x``'s shape and dtype, without gradient.
    """
    check_images(x)
    chain = Chain(map(_check_step, Chain(chain)))
    batch = x[None] if x.dim() == 3 else x
    out = apply_chains(batch, [chain] * batch.shape[0], generator)
    return out[0] if x.dim() == 3 else out


@torch.no_grad()
def apply_chains(
    x: torch.Tensor,
    chains: Sequence[Iterable[Step | tuple[str, int]]],
    generator: torch.Generator | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply ``chains[i]`` to sample ``x[i]`` of a batch (B,3,H,W) float in [0, 1]; the training fast path.

    At every step position, the samples whose chains have the same (name, level) there run as one
    batch; groups of a distortion that can start in the background (JPEG 2000 in the codec's
    worker processes) start first and are collected after the position's other groups. Draw order:
    positions in turn; within a position, the (name, level) groups in order of their first sample;
    within a group, one sample after another. When all chains are equal this equals
    :func:`apply_chain` on the batch. Repeat a chain for crops that share it.

    ``out``, a tensor of ``x``'s shape, dtype and device (e.g. in shared memory), receives the result,
    which is then returned; by default the result is a new tensor. The result carries no gradient.
    """
    check_images(x)
    check_generator(generator)
    if x.dim() != 4:
        raise ValueError(f"apply_chains expects a batch (B, 3, H, W), got {tuple(x.shape)}")
    if not isinstance(chains, Iterable):
        raise ValueError(f"chains must be a sequence of chains, one per sample, got {type(chains).__name__}")
    chains = [_check_chain(chain, i) for i, chain in enumerate(chains)]
    if len(chains) != x.shape[0]:
        raise ValueError(f"got {count(len(chains), 'chain')} for a batch of {x.shape[0]}")
    if out is not None:
        _check_out(out, x)
    if not chains:
        return x.clone() if out is None else out
    source = x.float()
    # Each sample's image so far, as (batch, row): a row of the input or of a group's result.
    # Groups read their rows as a view where they lie consecutively in one batch (a sample's
    # crops mostly do), so images are copied about once, not gathered and scattered every step.
    current = [(source, i) for i in range(len(chains))]
    for position in range(max(map(len, chains))):
        members: dict[Step, list[int]] = {}
        for i, chain in enumerate(chains):
            if position < len(chain):
                members.setdefault(chain[position], []).append(i)
        # Codec groups start first and finish after the others, which run meanwhile.
        background = [
            (indices, start(get(name), _rows([current[i] for i in indices]), level))
            for (name, level), indices in members.items()
            if get(name).start
        ]
        for (name, level), indices in members.items():
            if get(name).start:
                continue
            for part in chunks(len(indices), source.device):  # on the CPU, chunks small enough to stay in cache
                chunk = indices[part]
                _store(current, chunk, run(get(name), _rows([current[i] for i in chunk]), level, generator))
        for indices, finish in background:
            _store(current, indices, finish())
    if out is not None:
        return torch.stack([batch[row] for batch, row in current], out=out)
    result = _rows(current)
    return result.clone() if result.data_ptr() == x.data_ptr() else result.to(x.dtype)  # never ``x`` itself


def _check_out(out: torch.Tensor, x: torch.Tensor) -> None:
    want = (tuple(x.shape), x.dtype, x.device)
    got = (tuple(out.shape), out.dtype, out.device) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != want:
        raise ValueError(f"out must be a tensor of the input's shape, dtype and device {want}, got {got}")
    if out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
        raise ValueError("out must not share memory with the input")


def _store(current: list[tuple[torch.Tensor, int]], indices: list[int], result: torch.Tensor) -> None:
    for row, i in enumerate(indices):
        current[i] = (result, row)


def _rows(rows: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """The images ``batch[row]`` for (batch, row) in ``rows`` as one batch: a view when they are
    consecutive rows of one batch, else a new tensor."""
    batch, first = rows[0]
    if all(b is batch and r == first + k for k, (b, r) in enumerate(rows)):
        return batch[first : first + len(rows)]
    return torch.stack([b[r] for b, r in rows])


def _check_chain(chain, index: int) -> list[Step]:
    """``chain`` as a list of checked steps; a ValueError names it as ``chains[index]``."""
    try:
        return [_check_step(step) for step in Chain(chain)]
    except ValueError as e:
        pair = isinstance(chain, (tuple, list)) and len(chain) == 2 and isinstance(chain[0], str)
        hint = f"; chains holds one chain per sample, e.g. [[{tuple(chain)!r}]]" if pair else ""
        raise ValueError(f"chains[{index}]: {e}{hint}") from None


def _check_step(step: Step) -> Step:
    get(step.name)
    try:
        return Step(step.name, check_level(step.level))
    except ValueError as e:
        raise ValueError(f"{step.name}: {e}") from None
