"""The composition sampler: level probabilities, chain structure and frequencies, applying chains.

Frequency checks use a fixed seed and a chi-square or binomial bound at a false-alarm rate of
1e-3 (the rate at which a correct sampler with a random seed would fail them).
"""

from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from arniqa.degradations import GROUP_OF, GROUPS, distort
from arniqa.degradations.sampler import Chain, Step, apply_chain, apply_chains, level_probs, sample_chain

ALPHA = 1e-3
DRAWS = 20000


@pytest.fixture(scope="module")
def chains() -> list[Chain]:
    g = torch.Generator().manual_seed(2024)
    return [sample_chain(g) for _ in range(DRAWS)]


def chi_square_ok(counts, probs) -> bool:
    counts = np.asarray(counts, dtype=float)
    return stats.chisquare(counts, counts.sum() * np.asarray(probs)).pvalue > ALPHA


def test_level_probs_closed_form():
    pdf = stats.norm(0, 2.5).pdf(np.arange(5))
    np.testing.assert_allclose(level_probs(), pdf / pdf.sum(), rtol=1e-12)
    np.testing.assert_allclose(level_probs(), [0.2929, 0.2704, 0.2127, 0.1426, 0.0814], atol=5e-5)
    pdf3 = stats.norm(0, 2.5).pdf(np.arange(3))
    np.testing.assert_allclose(level_probs(3), pdf3 / pdf3.sum(), rtol=1e-12)


def test_chain_structure(chains):
    for chain in chains:
        assert isinstance(chain, Chain) and len(chain) <= 4
        groups = [GROUP_OF[step.name] for step in chain]
        assert len(set(groups)) == len(groups)
        assert all(isinstance(s, Step) and s.level in range(1, 6) for s in chain)


def test_pristine_fraction(chains):
    empty = sum(len(c) == 0 for c in chains)
    assert stats.binomtest(empty, DRAWS, 0.05).pvalue > ALPHA


def test_length_uniform_on_1_to_4(chains):
    lengths = Counter(len(c) for c in chains if c)
    assert sorted(lengths) == [1, 2, 3, 4]
    assert chi_square_ok([lengths[k] for k in range(1, 5)], [0.25] * 4)


def test_level_frequencies(chains):
    levels = Counter(step.level for chain in chains for step in chain)
    assert chi_square_ok([levels[k] for k in range(1, 6)], level_probs())


def test_group_order_is_uniform(chains):
    names = list(GROUPS)
    for position in range(2):
        first = Counter(GROUP_OF[c[position].name] for c in chains if len(c) > position)
        assert chi_square_ok([first[g] for g in names], [1 / 7] * 7)


def test_distortion_uniform_within_its_group(chains):
    steps = Counter(step.name for chain in chains for step in chain)
    for members in GROUPS.values():
        assert chi_square_ok([steps[name] for name in members], [1 / len(members)] * len(members))


def test_seed_reproduces_chains():
    a = [sample_chain(torch.Generator().manual_seed(5)) for _ in range(3)]
    b = [sample_chain(torch.Generator().manual_seed(5)) for _ in range(3)]
    assert a == b


def test_max_distortions_range():
    g = torch.Generator().manual_seed(0)
    assert all(sample_chain(g, max_distortions=0) == Chain() for _ in range(50))
    lengths = Counter(len(sample_chain(g, max_distortions=7, pristine_prob=0)) for _ in range(3500))
    assert sorted(lengths) == list(range(1, 8))
    assert chi_square_ok([lengths[k] for k in range(1, 8)], [1 / 7] * 7)
    assert all(sample_chain(g, pristine_prob=1.0) == Chain() for _ in range(20))


@pytest.mark.parametrize("bad", [8, -1, 2.5, True, "4"])
def test_bad_max_distortions_raise(bad):
    with pytest.raises(ValueError, match="max_distortions must be an integer from 0 to 7"):
        sample_chain(max_distortions=bad)


def test_bad_probabilities_raise():
    with pytest.raises(ValueError, match="pristine_prob"):
        sample_chain(pristine_prob=1.5)
    with pytest.raises(ValueError, match="num_levels"):
        sample_chain(num_levels=6)


@pytest.mark.parametrize("bad", ["0.5", None, 0.5j, True, False])
def test_a_pristine_prob_that_is_not_a_number_is_named(bad):
    """It was TypeError ("'<=' not supported between instances of 'int' and 'str'"), not naming the argument;
    True was taken as 1.0 (every chain pristine) and False as 0.0."""
    with pytest.raises(ValueError, match="pristine_prob must be in"):
        sample_chain(pristine_prob=bad)


@pytest.mark.parametrize("bad", [True, 2.5, 3.0, "3"])
def test_num_levels_must_be_an_integer(bad):
    """True silently gave only level 1 (level_probs(True) == (1.0,)); 2.5 and '3' were TypeErrors not naming it."""
    with pytest.raises(ValueError, match="num_levels must be an integer from 1 to 5"):
        level_probs(bad)
    with pytest.raises(ValueError, match="num_levels must be an integer from 1 to 5"):
        sample_chain(num_levels=bad)


def test_numpy_integers_still_count():
    assert level_probs(np.int64(3)) == level_probs(3)
    g = torch.Generator().manual_seed(5)
    assert sample_chain(g, np.int64(2), 0.0, np.int64(3)) == sample_chain(torch.Generator().manual_seed(5), 2, 0.0, 3)


def test_sample_chain_refuses_a_generator_that_is_not_a_torch_generator():
    """A seed passed as the generator was AttributeError ('int' object has no attribute 'device') from rng.py."""
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None, got int"):
        sample_chain(0)


@pytest.mark.parametrize(
    "bad,message",
    [
        (5, "a chain is an iterable of \\(name, level\\) steps, got 5"),
        (None, "a chain is an iterable"),
        ([5], "a chain step is a \\(name, level\\) pair, got 5"),
        (("jpeg", 2), "a chain step is a \\(name, level\\) pair, got 'jpeg'"),  # a step, not a chain of one
        ([("jpeg", 2, 1)], "pair, got \\('jpeg', 2, 1\\)"),
        (["ab"], "a chain step is a \\(name, level\\) pair, got 'ab'"),  # was the step ('a', 'b')
        ([b"j2"], "a chain step is a \\(name, level\\) pair, got b'j2'"),
        ("jpeg", "a chain is an iterable of \\(name, level\\) steps, got 'jpeg'"),  # was: got 'j'
    ],
)
def test_a_malformed_chain_is_named(image, bad, message):
    """These were TypeErrors such as 'Step.__new__() takes 3 positional arguments but 5 were given'."""
    with pytest.raises(ValueError, match=message):
        Chain(bad)
    with pytest.raises(ValueError, match=message):
        apply_chain(image, bad)
    with pytest.raises(ValueError, match=message):
        apply_chains(image[None], [bad])


def test_chain_value():
    chain = Chain([("gaublur", 2), Step("jpeg", 5)])
    assert chain == (Step("gaublur", 2), Step("jpeg", 5))
    assert str(chain) == "gaublur@2 -> jpeg@5" and str(Chain()) == "pristine"
    assert eval(repr(chain)) == chain


def test_apply_chain_runs_steps_in_order(image):
    chain = [("jpeg", 4), ("gaublur", 4), ("nonlincontrchange", 3)]
    expected = image
    for name, level in chain:
        expected = distort(expected, name, level)
    assert torch.equal(apply_chain(image, chain), expected)
    reordered = apply_chain(image, chain[::-1])
    assert not torch.allclose(reordered, expected, atol=1e-3)  # the order matters


def test_empty_chain_is_pristine(image):
    out = apply_chain(image, Chain())
    assert torch.equal(out, image) and out is not image
    batch = torch.stack([image, image.flip(-1)])
    assert torch.equal(apply_chains(batch, [Chain(), [("gaublur", 5)]])[0], image)
    pristine = apply_chains(batch, [Chain(), Chain()])
    assert torch.equal(pristine, batch)
    pristine += 1  # a new tensor, not the input
    assert torch.equal(batch[0], image)
    assert apply_chains(batch[:0], []).shape == (0, *image.shape)


def test_apply_chains_keeps_the_input_dtype(image):
    batch = torch.stack([image, image.flip(-1)]).double()
    chains = [Chain(), [("nonlincontrchange", 3)]]
    out = apply_chains(batch, chains)
    assert out.dtype == torch.float64
    assert torch.equal(out, apply_chains(batch.float(), chains).double())


def test_apply_chains_equals_apply_chain_for_equal_chains(image):
    batch = torch.stack([image, image.flip(-1), image.flip(-2), image.roll(5, -1)])
    chain = [("motionblur", 4), ("whitenoise", 3), ("colorblock", 2)]
    together = apply_chains(batch, [chain] * 4, torch.Generator().manual_seed(1))
    assert torch.equal(together, apply_chain(batch, chain, torch.Generator().manual_seed(1)))


def test_training_layout_four_crops_share_a_chain(image):
    g = torch.Generator().manual_seed(3)
    sampled = [sample_chain(g) for _ in range(6)] + [Chain([("whitenoise", 5)]), Chain()]
    crops = image[None].expand(4 * len(sampled), -1, -1, -1)
    out = apply_chains(crops, [chain for chain in sampled for _ in range(4)], g)
    assert out.shape == crops.shape
    noisy, pristine = out[24:28], out[28:32]
    assert all(torch.equal(crop, image) for crop in pristine)
    assert not torch.equal(noisy[0], noisy[1])  # the noise field is redrawn for every crop


def test_apply_chains_checks_its_arguments(image):
    with pytest.raises(ValueError, match="batch"):
        apply_chains(image, [[("jpeg", 1)]])
    with pytest.raises(ValueError, match="got 1 chain for a batch of 2"):
        apply_chains(image[None].expand(2, -1, -1, -1), [[("jpeg", 1)]])
    for bad in (5, None):  # TypeError "object of type 'int' has no len()" before
        with pytest.raises(ValueError, match="chains must be a sequence of chains, one per sample"):
            apply_chains(image[None], bad)
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None, got int"):
        apply_chains(image[None], [[("whitenoise", 1)]], 0)


def test_a_bad_step_names_its_chain_and_distortion(image):
    """A bad level among 64 chains said 'level must be an integer from 1 to 5, got 9': no chain, no distortion;
    a chain given where chains go said the step was malformed."""
    batch = image[None].expand(3, -1, -1, -1)
    chains = [[("jpeg", 2)], [("gaublur", 1), ("jpeg", 9)], []]
    with pytest.raises(ValueError, match=r"^chains\[1\]: jpeg: level must be an integer from 1 to 5, got 9$"):
        apply_chains(batch, chains)
    with pytest.raises(ValueError, match=r"^jpeg: level must be an integer from 1 to 5, got 0$"):
        apply_chain(image, [("jpeg", 0)])
    with pytest.raises(
        ValueError, match=r"^chains\[0\]: .*; chains holds one chain per sample, e.g. \[\[\('jpeg', 2\)\]\]$"
    ):
        apply_chains(image[None], [("jpeg", 2)])


def test_apply_chains_writes_into_out(image):
    batch = torch.stack([image, image.flip(-1), image.flip(-2)])
    chains = [[("whitenoise", 2), ("jpeg", 3)], Chain(), [("gaublur", 2)]]
    out = torch.full_like(batch, -1.0)
    result = apply_chains(batch, chains, torch.Generator().manual_seed(2), out=out)
    assert result is out
    assert torch.equal(out, apply_chains(batch, chains, torch.Generator().manual_seed(2)))
    assert torch.equal(out[1], image.flip(-1))  # the pristine sample too, copied


def test_apply_chains_rejects_a_bad_out(image):
    batch = torch.stack([image, image])
    with pytest.raises(ValueError, match="shape"):
        apply_chains(batch, [Chain()] * 2, out=torch.empty(1, *image.shape))
    with pytest.raises(ValueError, match="dtype"):
        apply_chains(batch, [Chain()] * 2, out=batch.double())
    with pytest.raises(ValueError, match="share memory"):
        apply_chains(batch, [[("jpeg", 1)]] * 2, out=batch)
    # Another device was RuntimeError from torch.stack after all the work; not a tensor, AttributeError.
    with pytest.raises(ValueError, match="out must be a tensor of the input's shape, dtype and device.*meta"):
        apply_chains(batch, [[("jpeg", 1)]] * 2, out=torch.empty_like(batch, device="meta"))
    with pytest.raises(ValueError, match="out must be a tensor of the input's shape, dtype and device.*got list"):
        apply_chains(batch, [[("jpeg", 1)]] * 2, out=[])


def test_apply_chain_results_carry_no_gradient(image):
    """A chain with brighten on an input that requires grad raised RuntimeError ('mul(): functions with out=...
    arguments don't support automatic differentiation'); other chains kept an autograd graph alive."""
    batch = torch.stack([image, image.flip(-1)])
    chains = [[("gaublur", 3), ("brighten", 2)], [("whitenoise", 3)]]
    x = batch.clone().requires_grad_(True)
    for chain in chains:
        y = apply_chain(x, chain, torch.Generator().manual_seed(1))
        assert not y.requires_grad
        assert torch.equal(y, apply_chain(batch, chain, torch.Generator().manual_seed(1)))
    y = apply_chains(x, chains, torch.Generator().manual_seed(1))
    assert not y.requires_grad
    assert torch.equal(y, apply_chains(batch, chains, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("name", ["motionblur", "whitenoise", "impulsenoise", "jpeg", "colorblock"])
def test_batches_larger_than_a_cpu_chunk_equal_their_samples(name):
    # 20 samples span several CPU chunks; the draws must still come one sample after another.
    x = torch.rand(20, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(4)
    alone = torch.stack([apply_chain(sample, [(name, 4)], generator) for sample in x])
    assert torch.equal(apply_chains(x, [[(name, 4)]] * 20, torch.Generator().manual_seed(4)), alone)
    assert torch.equal(distort(x, name, 4, torch.Generator().manual_seed(4)), alone)


def test_mixed_deterministic_chains_on_a_large_batch(image):
    x = torch.stack([image.roll(i, -1) for i in range(20)])
    steps = [("gaublur", 3), ("jpeg", 2), ("nonlincontrchange", 4), ("lensblur", 2)]
    chains = [[steps[i % 4], steps[(i + 1 + i // 4) % 4]][: 1 + i % 2] for i in range(20)]
    expected = torch.stack([apply_chain(sample, chain) for sample, chain in zip(x, chains)])
    assert torch.equal(apply_chains(x, chains), expected)
