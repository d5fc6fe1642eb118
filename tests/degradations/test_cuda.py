"""The degradations on a CUDA device: the CPU's results, seeds and batching (skipped without a GPU)."""

import pytest
import torch

from arniqa.degradations import NAMES, NUM_LEVELS, distort
from arniqa.degradations.sampler import apply_chains, sample_chain

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CASES = [(name, level) for name in NAMES for level in range(1, NUM_LEVELS + 1)]
LSB = 1 / 255


@pytest.fixture
def batch(image: torch.Tensor) -> torch.Tensor:
    return torch.stack([image, image.flip(-1), 0.6 * image.roll(7, dims=-2)])


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name,level", CASES)
def test_cuda_matches_cpu(batch, name, level):
    # A CPU generator drives both, so the random internals are the same; only float rounding
    # differs, which can move a value across an 8-bit truncation step (one LSB) now and then.
    cpu = distort(batch, name, level, seeded(1))
    gpu = distort(batch.cuda(), name, level, seeded(1))
    assert gpu.is_cuda and gpu.shape == batch.shape and gpu.dtype == torch.float32
    diff = (gpu.cpu() - cpu).abs()
    assert diff.mean() < 1e-3, f"mean |cuda - cpu| = {diff.mean():.2e}"
    assert (diff > 1.5 * LSB).float().mean() < 2e-3, f"max |cuda - cpu| = {diff.max():.3g}"


@pytest.mark.parametrize("name,level", CASES)
def test_cuda_seed_and_batch(batch, name, level):
    x = batch.cuda()
    together = distort(x, name, level, seeded(5))
    assert torch.equal(together, distort(x, name, level, seeded(5)))
    generator = seeded(5)
    alone = torch.stack([distort(sample, name, level, generator) for sample in x])
    assert torch.equal(together, alone)


def test_cuda_apply_chains_matches_cpu(batch):
    chains = [sample_chain(seeded(seed), max_distortions=7) for seed in (11, 12, 13)]
    cpu = apply_chains(batch, chains, seeded(2))
    gpu = apply_chains(batch.cuda(), chains, seeded(2))
    diff = (gpu.cpu() - cpu).abs()
    assert diff.mean() < 2e-3, f"mean |cuda - cpu| = {diff.mean():.2e}"
