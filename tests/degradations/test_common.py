"""Contract tests for every distortion and level: shape, dtype, range, seeds, batching, bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from imaging import textured

from arniqa.degradations import GROUPS, LEVELS, NAMES, NUM_LEVELS, distort
from arniqa.degradations.registry import get
from arniqa.degradations.sampler import Step, apply_chain, apply_chains

CASES = [(name, level) for name in NAMES for level in range(1, NUM_LEVELS + 1)]


@pytest.fixture
def batch(image: torch.Tensor) -> torch.Tensor:
    """Three different (3, 64, 80) images: the shared fixture, its mirror, and a darker shifted copy."""
    return torch.stack([image, image.flip(-1), 0.6 * image.roll(7, dims=-2)])


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_is_complete():
    assert len(NAMES) == 24 and len(set(NAMES)) == 24
    assert sorted(len(v) for v in GROUPS.values()) == [2, 3, 3, 3, 4, 4, 5]
    assert all(len(LEVELS[name]) == NUM_LEVELS for name in NAMES)


@pytest.mark.parametrize("name,level", CASES)
def test_shape_dtype_range(image, batch, name, level):
    for x in (image, batch):
        y = distort(x, name, level, seeded())
        assert y.shape == x.shape
        assert y.dtype == torch.float32
        assert torch.isfinite(y).all()
        assert y.min() >= 0 and y.max() <= 1
    assert torch.equal(image, batch[0]), "the input must not be modified"


@pytest.mark.parametrize("name,level", CASES)
def test_seed_reproduces_output(batch, name, level):
    assert torch.equal(distort(batch, name, level, seeded(3)), distort(batch, name, level, seeded(3)))


@pytest.mark.parametrize("name,level", CASES)
def test_batch_equals_samples_one_by_one(batch, name, level):
    together = distort(batch, name, level, seeded(5))
    generator = seeded(5)
    alone = torch.stack([distort(x, name, level, generator) for x in batch])
    assert torch.equal(together, alone)


def crops(seed: int = 1, name: str = "") -> torch.Tensor:
    """Five different square crops for the per-sample-level tests (64 px for jpeg2000, whose five
    levels all give the same output at 32 px)."""
    size = 64 if name == "jpeg2000" else 32
    return textured(b=5, h=size, w=size, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_levels_per_sample_equal_the_single_level_calls(name):
    # The gallery's call: one level per sample, 1..5 in order; both sides draw from one seeded
    # generator sample after sample, so random distortions must match bit for bit too.
    x = crops(1, name)
    together = distort(x, name, [1, 2, 3, 4, 5], seeded(11))
    generator = seeded(11)
    alone = torch.cat([distort(x[i : i + 1], name, i + 1, generator) for i in range(5)])
    assert torch.equal(together, alone)
    at_one = distort(x, name, 1, seeded(11))
    assert all(not torch.equal(together[i], at_one[i]) for i in range(1, 5)), "the levels must matter"


@pytest.mark.parametrize("name", [n for n in NAMES if get(n).sample is None])
def test_levels_per_sample_in_any_order(name):
    # Without random internals the order and repetition of the levels cannot matter.
    x = crops(2, name)
    levels = [4, 1, 4, 5, 2]
    together = distort(x, name, levels)
    alone = torch.cat([distort(x[i : i + 1], name, v) for i, v in enumerate(levels)])
    assert torch.equal(together, alone)
    assert torch.equal(distort(x, name, torch.tensor(levels)), together)  # a tensor of levels too


def test_levels_in_a_numpy_array():
    """A numpy array of levels (rng.integers(1, 6, size=B)) was refused: 'level must be an integer from 1 to 5,
    got array([4, 1, 4, 5, 2])'."""
    x = crops(3, "whitenoise")
    levels = [4, 1, 4, 5, 2]
    together = distort(x, "whitenoise", levels, seeded(5))
    assert torch.equal(distort(x, "whitenoise", np.array(levels), seeded(5)), together)
    assert torch.equal(distort(x, "whitenoise", np.array(3), seeded(5)), distort(x, "whitenoise", 3, seeded(5)))


@pytest.mark.parametrize(
    "levels, got", [([1, 2], "2 levels"), ([1, 2, 3, 4, 5, 1], "6 levels"), ([], "0 levels"), ([3], "1 level")]
)
def test_level_count_must_match_the_batch(levels, got):
    with pytest.raises(ValueError, match=f"^got {got} for a batch of 5$"):
        distort(crops(), "jpeg", levels)


@pytest.mark.parametrize("name,level", CASES)
def test_apply_chains_equals_apply_chain_per_sample(batch, name, level):
    # A deterministic step interleaved with the tested one keeps the draw order per sample.
    other = Step("nonlincontrchange", 2) if name != "nonlincontrchange" else Step("gaublur", 3)
    step = Step(name, level)
    chains = [[step], [step, other], [other, step]]
    before = batch.clone()
    together = apply_chains(batch, chains, seeded(9))
    assert torch.equal(batch, before), "the input must not be modified"
    generator = seeded(9)
    alone = torch.stack([apply_chain(x, chain, generator) for x, chain in zip(batch, chains)])
    assert torch.equal(together, alone)


BAD_IMAGES = [
    (torch.rand(64, 80), "shape"),
    (torch.rand(1, 64, 80), "shape"),
    (torch.rand(2, 4, 16, 16), "shape"),
    (torch.rand(1, 1, 3, 16, 16), "shape"),
    ((torch.rand(3, 16, 16) * 255).to(torch.uint8), "dtype"),
    (torch.ones(3, 16, 16, dtype=torch.int64), "dtype"),
    (torch.full((3, 16, 16), 1.5), r"\[0, 1\]"),
    (torch.full((3, 16, 16), -0.01), r"\[0, 1\]"),
    (torch.full((3, 16, 16), float("nan")), r"\[0, 1\]"),
    # torch's own errors before (NotImplementedError from aminmax, RuntimeError from .item() on meta)
    (torch.rand(3, 16, 16).to(torch.float8_e4m3fn), "dtype torch.float8_e4m3fn"),
    (torch.rand(3, 16, 16).to(torch.float8_e5m2), "dtype torch.float8_e5m2"),
    (torch.rand(3, 16, 16).to_sparse(), "dense tensor.*sparse_coo"),
    (torch.rand(3, 16, 16, device="meta"), "dense tensor.*meta"),
    (torch.nested.nested_tensor([torch.rand(3, 16, 16)] * 2), "dense tensor.*nested"),
]


@pytest.mark.parametrize("x,message", BAD_IMAGES)
def test_bad_images_raise(x, message):
    with pytest.raises(ValueError, match=message):
        distort(x, "gaublur", 2)
    with pytest.raises(ValueError, match=message):
        apply_chain(x, [("gaublur", 2)])


def test_a_nan_among_valid_values_is_counted():
    """One NaN pixel said 'got min nan and max nan', as if the whole image were NaN."""
    x = torch.rand(2, 3, 8, 8)
    x[1, 2, 3, 4] = float("nan")
    for call in (lambda: distort(x, "jpeg", 2), lambda: apply_chains(x, [[("jpeg", 2)], []])):
        with pytest.raises(ValueError, match=r"^expected values in \[0, 1\], got NaN in 1 of 384 values$"):
            call()


def test_images_with_no_pixels_are_refused_for_every_distortion_without_a_crash():
    """torchvision's JPEG encoder killed the process (SIGSEGV) on a 0-pixel image; every distortion must refuse it."""
    code = (
        "import torch\n"
        "from arniqa.degradations import NAMES, distort\n"
        "for shape in [(3, 0, 8), (2, 3, 8, 0)]:\n"
        "    for name in NAMES:\n"
        "        try:\n"
        "            distort(torch.rand(shape), name, 5)\n"
        "        except ValueError as e:\n"
        "            assert 'at least 1x1 pixels' in str(e), (name, e)\n"
        "        else:\n"
        "            raise AssertionError(name)\n"
        "print('refused', len(NAMES))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["refused", "24"], (done.returncode, done.stderr[-2000:])


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_gives_an_empty_batch(name):
    empty = torch.rand(0, 3, 16, 16)
    for levels in (5, []):
        out = distort(empty, name, levels)
        assert out.shape == empty.shape and out.dtype == empty.dtype
    assert apply_chain(empty, [(name, 5)]).shape == empty.shape


def test_not_a_tensor_raises():
    with pytest.raises(ValueError, match="torch.Tensor"):
        distort([[0.5]], "gaublur", 2)


def test_images_in_another_form_are_refused_saying_how_to_make_them_fit(image):
    """A PIL image, an array, a uint8, channels-last, gray or 0-255 tensor were refused without saying what fits."""
    import numpy as np
    from PIL import Image

    pixels = (image * 255).round().byte()
    # A black-white edge enlarged bicubically overshoots [0, 1] by a few percent.
    edge = torch.nn.functional.interpolate(
        (torch.arange(8) >= 4).float().expand(1, 3, 8, 8), scale_factor=2, mode="bicubic"
    )
    wrong = [
        (Image.new("RGB", (8, 6)), r"got Image; make a PIL image one with torchvision.transforms.functional.to_tensor"),
        (np.zeros((6, 8, 3), np.uint8), r"got ndarray; make this HxWxC uint8 array one with torch.from_numpy"),
        (pixels, "got dtype torch.uint8; divide a uint8 tensor by 255"),
        (pixels.float(), r"got min \d+ and max \d+; divide by 255"),
        (image.permute(1, 2, 0), r"channels-last \(H,W,C\): pass x.permute\(2, 0, 1\)"),
        (image[:1], r"make a gray image RGB with torch.cat\(\[x\] \* 3, dim=-3\)"),
        (edge, r"got min -0\.\d+ and max 1\.\d+; clamp it with x\.clamp\(0, 1\)"),
    ]
    for x, message in wrong:
        with pytest.raises(ValueError, match=message):
            distort(x, "jpeg", 3)


@pytest.mark.parametrize(
    "array, scale",
    [
        (np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3), 255),  # OpenCV, imageio, PIL's np.asarray
        (np.arange(6 * 8 * 3, dtype=np.uint16).reshape(6, 8, 3) * 300, 65535),  # a 16-bit PNG or TIFF
        (np.linspace(0, 1, 6 * 8 * 3, dtype=np.float32).reshape(6, 8, 3), 1),  # skimage.img_as_float
        (np.linspace(0, 1, 3 * 6 * 8).reshape(3, 6, 8), 1),  # already channels-first
    ],
)
def test_a_numpy_image_gets_a_hint_that_makes_it_fit(array, scale):
    """Every array was told to divide by 255: a float image in [0, 1] that followed the hint came out black."""
    with pytest.raises(ValueError, match="got ndarray") as refused:
        distort(array, "jpeg", 3)
    x = eval(str(refused.value).split(" one with ")[1], {"torch": torch, "a": array})
    expected = array.transpose(2, 0, 1) if array.shape[-1] == 3 else array
    assert torch.allclose(x.double(), torch.from_numpy(expected / scale).double())
    assert distort(x, "jpeg", 3).shape == (3, 6, 8)


@pytest.mark.parametrize("name", ["blur", "GAUBLUR", "", "jpeg3"])
def test_unknown_name_raises(image, name):
    with pytest.raises(ValueError, match="unknown distortion"):
        distort(image, name, 1)
    with pytest.raises(ValueError, match="unknown distortion"):
        apply_chains(image[None], [[(name, 1)]])


@pytest.mark.parametrize("level", [0, 6, -1, 2.5, True, "2"])
def test_bad_level_raises(image, level):
    with pytest.raises(ValueError, match="level must be an integer from 1 to 5"):
        distort(image, "jpeg", level)
    with pytest.raises(ValueError, match="level must be an integer from 1 to 5"):
        apply_chain(image, [("jpeg", level)])


@pytest.mark.parametrize("name", ["gaublur", "whitenoise"])  # no draws, draws
def test_a_generator_that_is_not_a_torch_generator_raises(image, name):
    """A seed passed as the generator was AttributeError ('int' object has no attribute 'device') from deep in
    the draws, or ignored by a distortion without draws."""
    for generator in (0, "seed"):
        with pytest.raises(ValueError, match="generator must be a torch.Generator or None"):
            distort(image, name, 2, generator)


@pytest.mark.parametrize("name", ["gaublur", "brighten", "highsharpen", "jpeg"])
def test_the_result_carries_no_gradient(batch, name):
    """On an input that requires grad, brighten and highsharpen raised RuntimeError (an out= op in colorspace)
    and the others kept an autograd graph of every step alive with the result."""
    x = batch.clone().requires_grad_(True)
    y = distort(x, name, 3, seeded())
    assert not y.requires_grad and y.grad_fn is None
    assert torch.equal(y, distort(batch, name, 3, seeded()))
