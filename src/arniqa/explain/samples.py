"""The labelled images an explanation head learns from: the synthetic KADID-style set of a pristine folder
(each reference x the 23 types shared with KADID-10k x 5 levels, made as :mod:`arniqa.data.synthetic` makes
them), the reference itself, and chains drawn as in training (:func:`~arniqa.degradations.sampler.sample_chain`).

A sample's target spreads over the groups of its distortions in proportion to their levels (one group for a
single distortion, ``none`` for the pristine image and the empty chain); its severity is its highest level (0
when pristine). Images are rounded to 8 bits, as the benchmark's PNG files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..constants import SYNTHETIC_SIZE
from ..data.synthetic import KADID_OPTIONS, KADID_TYPES, prepare
from ..degradations import distort
from ..degradations.registry import GROUP_OF, NUM_LEVELS
from ..degradations.sampler import Chain, apply_chain, sample_chain
from ..models.explain import LABELS, NONE


@dataclass
class Sample:
    image: torch.Tensor  # (3, H, W) in [0, 1]
    kind: str  # "single", "chain" or "pristine"
    chain: Chain

    @property
    def target(self) -> torch.Tensor:
        """Soft group target over :data:`~arniqa.models.explain.LABELS`."""
        t = torch.zeros(len(LABELS))
        if not self.chain:
            t[LABELS.index(NONE)] = 1.0
        for step in self.chain:
            t[LABELS.index(GROUP_OF[step.name])] += step.level
        return t / t.sum()

    @property
    def severity(self) -> int:
        return max((step.level for step in self.chain), default=0)

    @property
    def groups(self) -> set[str]:
        return {GROUP_OF[step.name] for step in self.chain} or {NONE}


SINGLES = len(KADID_TYPES) * NUM_LEVELS  # single distortions per reference (115)


def per_reference(chains: int) -> int:
    """How many samples :func:`reference_samples` makes of one reference."""
    return 1 + SINGLES + chains


def rounded_to_8_bits(x: torch.Tensor) -> torch.Tensor:
    """``x`` clamped to [0, 1] and rounded to 8 bits: what a PNG file of it holds
    (:func:`~arniqa.data.pixels.tensor_to_pil`)."""
    return (x.clamp(0, 1) * 255).round() / 255


def reference_samples(
    path: Path, index: int, size: tuple[int, int] = SYNTHETIC_SIZE, chains: int = 40, seed: int = 0
) -> Iterator[Sample]:
    """The samples of one reference image (``index`` seeds its randomness): the pristine image, its 115
    single distortions and ``chains`` chains."""
    ref = prepare(path, size)
    yield Sample(ref, "pristine", Chain())
    for name, t in KADID_TYPES.items():
        for level in range(1, NUM_LEVELS + 1):
            g = torch.Generator().manual_seed(((seed * 100_000 + index) * 100 + t) * 10 + level)
            image = distort(ref, name, level, generator=g, **KADID_OPTIONS.get(name, {}))
            yield Sample(rounded_to_8_bits(image), "single", Chain([(name, level)]))
    g = torch.Generator().manual_seed(seed * 100_000 + index + 7_919)
    for _ in range(chains):
        chain = sample_chain(g)
        yield Sample(rounded_to_8_bits(apply_chain(ref, chain, g)), "pristine" if not chain else "chain", chain)
