"""Self-supervised training samples from pristine images: A and B, two scales, one shared chain.

A sample is image A (file ``i``) and a uniformly random other image B. Each gets a random crop
at full scale and an independent random crop of its bicubic half-scale version, so four crops;
a distortion chain is drawn for the sample. The chain is **not** applied here: the training step
applies it to the whole batch at once (:func:`arniqa.degradations.sampler.apply_chains`, possibly
on the GPU), to A-full, A-half, B-full and B-half alike, redrawing the internal randomness per crop.

Every random choice of a sample comes from a generator seeded with ``(seed, epoch, index)``, so a
sample does not depend on worker count, process count or what was drawn before: that is what
makes resume and multi-process runs exact.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..constants import CROP_SIZE
from ..degradations.sampler import Chain, sample_chain
from .images import read_image
from .pixels import uint8_view
from .views import half_scale_crop

CROPS = ("A_full", "A_half", "B_full", "B_half")


def image_set_id(files: Sequence[Path]) -> str:
    """What identifies the training images ``files`` (sorted) wherever their folder lies: the SHA-256 of each
    file's path below the deepest folder holding them all, and its size, in order. A moved or copied folder
    keeps it; another file, a renamed one or a rewritten one of another size changes it."""
    top = os.path.commonpath([f.parent for f in files])
    h = hashlib.sha256()
    for f in files:
        h.update(os.fsencode(os.path.relpath(f, top)) + b"\0" + str(f.stat().st_size).encode() + b"\n")
    return h.hexdigest()


def crop_position(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly random top-left corner (top, left) of a ``size`` x ``size`` crop of a ``height`` x
    ``width`` image: 0 along a side shorter than ``size``, else any valid position (the reference's
    ``randrange(0, max(1, h - size))`` never picks the last one, which only biases it)."""
    top = int(rng.integers(0, max(height - size, 0) + 1))
    left = int(rng.integers(0, max(width - size, 0) + 1))
    return top, left


def random_crop(image: Image.Image, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A ``size``x``size`` crop of an RGB PIL image at a uniformly random position (:func:`crop_position`)
    as uint8 (3, size, size); where the image is smaller than the crop the rest is zero (black), as
    the reference's PIL crop does. Only the crop is copied out of PIL."""
    top, left = crop_position(image.height, image.width, size, rng)
    return uint8_view(image.crop((left, top, left + size, top + size)))


def random_half_crop(image: Image.Image, size: int, rng: np.random.Generator) -> torch.Tensor:
    """:func:`random_crop` of the bicubic half-scale image (PIL's ``resize((W // 2, H // 2))``), the same
    draws and pixels, resampling only the crop where it can (:func:`~arniqa.data.views.half_scale_crop`)."""
    top, left = crop_position(image.height // 2, image.width // 2, size, rng)
    return uint8_view(half_scale_crop(image, top, left, size, "bicubic"))


class PristinePairs(Dataset):
    """Training samples from a list of image files.

    Indexed by ``(epoch, i)`` (or plain ``i`` for epoch 0); returns a dict with the four crops
    ``A_full``, ``A_half``, ``B_full``, ``B_half`` (uint8 (3, crop_size, crop_size); the half-scale
    image is PIL's bicubic ``resize((W // 2, H // 2))``, bit-exact with the reference), ``chain``
    (a :class:`Chain`, empty for pristine samples), ``index`` (i) and ``other`` (B's index).
    Decoding errors are raised with the file name (a training set should be clean).
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        crop_size: int = CROP_SIZE,
        max_distortions: int = 4,
        pristine_prob: float = 0.05,
        seed: int = 0,
    ) -> None:
        if len(files) == 0:
            raise ValueError("PristinePairs needs at least one image file")
        self.files = [Path(f) for f in files]
        self.crop_size = int(crop_size)
        self.max_distortions = max_distortions
        self.pristine_prob = pristine_prob
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if not 0 <= index < len(self.files):
            raise IndexError(f"sample {index} out of range for {len(self.files)} images")
        other = self.other(epoch, index)
        rng = np.random.default_rng(self._seeds(epoch, index)[1])
        sample = {}
        for tag, i in (("A", index), ("B", other)):
            image = read_image(self.files[i])  # PIL RGB; ImageError names the file
            sample[f"{tag}_full"] = random_crop(image, self.crop_size, rng)
            sample[f"{tag}_half"] = random_half_crop(image, self.crop_size, rng)
        sample["chain"] = self.chain(epoch, index)
        sample["index"] = index
        sample["other"] = other
        return sample

    def _seeds(self, epoch: int, index: int) -> list[np.random.SeedSequence]:
        """Independent seeds of sample (epoch, index) for B, the crops and the chain."""
        return np.random.SeedSequence([self.seed, epoch, index]).spawn(3)

    def other(self, epoch: int, index: int) -> int:
        """B's index: uniform over the other images (A itself only when there is one image)."""
        n = len(self.files)
        if n == 1:
            return index
        return (index + 1 + int(np.random.default_rng(self._seeds(epoch, index)[0]).integers(0, n - 1))) % n

    def chain(self, epoch: int, index: int) -> Chain:
        """The distortion chain of sample (epoch, index), without decoding any image."""
        seed = int(self._seeds(epoch, index)[2].generate_state(2, np.uint64)[0]) >> 1
        return sample_chain(torch.Generator().manual_seed(seed), self.max_distortions, self.pristine_prob)


def collate(samples: list[dict]) -> dict:
    """Stack the crops of a list of samples; chains stay a list (one per sample)."""
    batch = {name: torch.stack([s[name] for s in samples]) for name in CROPS}
    batch["chain"] = [s["chain"] for s in samples]
    batch["index"] = torch.tensor([s["index"] for s in samples])
    batch["other"] = torch.tensor([s["other"] for s in samples])
    return batch


def stack_crops(batch: dict, device: torch.device | str = "cpu") -> tuple[torch.Tensor, list[Chain]]:
    """The 4B crops as one float [0, 1] tensor on ``device`` in the order A_full, A_half, B_full, B_half,
    and the chain of every crop (the sample's chain, repeated for its four crops)."""
    x = torch.cat([batch[name] for name in CROPS]).to(device, non_blocking=True)
    return x.float().div_(255), list(batch["chain"]) * len(CROPS)


class EpochSampler(Sampler):
    """The keys ``(epoch, i)`` one process reads in one epoch, from ``start_step`` on.

    The epoch's order is a permutation seeded with ``(seed, epoch)``; it is cut into global batches
    of ``global_batch`` samples (the incomplete last one dropped), and process ``rank`` of
    ``world_size`` takes the ``rank``-th slice of each. Skipping ``start_step`` batches resumes an
    epoch exactly where a checkpoint left it.
    """

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        epoch: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {world_size} processes")
        if num_samples < global_batch:
            raise ValueError(f"{num_samples} images are fewer than one batch of {global_batch}")
        self.num_samples, self.global_batch, self.epoch, self.seed = num_samples, global_batch, epoch, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * (self.global_batch // self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        )
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        local = self.global_batch // self.world_size
        for step in range(self.start_step, self.steps_per_epoch):
            first = step * self.global_batch + self.rank * local
            for i in order[first : first + local]:
                yield (self.epoch, i)
