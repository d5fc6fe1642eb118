"""Blur group, its MATLAB fspecial kernels and the reference's lens-blur kernels: closed forms, published values,
identities, severity."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from arniqa.degradations import LEVELS, distort, kernels
from arniqa.degradations.blur import lens_blur, motion_blur, sample_motion


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).mean().item()
    return 10 * math.log10(1 / mse) if mse else math.inf


def test_gaussian_kernel_sizes_of_the_levels():
    assert [kernels.gaussian_size(s) for s in LEVELS["gaublur"]] == [3, 3, 5, 9, 21]


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 5.0])
def test_gaussian_kernel_closed_form(sigma):
    size = kernels.gaussian_size(sigma)
    t = np.arange(size) - size // 2
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(kernels.gaussian(size, sigma).numpy(), g / g.sum(), rtol=1e-12, atol=1e-17)


def test_gaussian_of_level_one_is_a_delta():
    # exp(-1 / (2 * 0.01)) = 2e-22 is below eps * max, so fspecial zeroes it.
    delta = torch.zeros(3, 3, dtype=torch.float64)
    delta[1, 1] = 1
    assert torch.equal(kernels.gaussian(3, 0.1), delta)


def test_disk_radius_one_equals_matlab():
    d = kernels.disk(1).numpy()
    np.testing.assert_allclose(d[1, 1], 0.3183, atol=5e-5)
    np.testing.assert_allclose(d[[0, 1, 1, 2], [1, 0, 2, 1]], 0.1453, atol=5e-5)
    np.testing.assert_allclose(d[[0, 0, 2, 2], [0, 2, 0, 2]], 0.0251, atol=5e-5)


def test_disk_radius_two_equals_matlab():
    # MATLAB's fspecial('disk', 2), as printed to four decimals.
    matlab = np.array(
        [
            [0, 0.0170, 0.0381, 0.0170, 0],
            [0.0170, 0.0784, 0.0796, 0.0784, 0.0170],
            [0.0381, 0.0796, 0.0796, 0.0796, 0.0381],
            [0.0170, 0.0784, 0.0796, 0.0784, 0.0170],
            [0, 0.0170, 0.0381, 0.0170, 0],
        ]
    )
    np.testing.assert_allclose(kernels.disk(2).numpy(), matlab, atol=5e-5)


@pytest.mark.parametrize("radius", LEVELS["lensblur"])
def test_disk_weights_are_pixel_areas_inside_the_circle(radius):
    # Supersample every pixel square 100 x 100 and count the points inside the circle.
    size = kernels.disk(radius).shape[0]
    assert size == 2 * radius + 1
    n = 100
    offsets = (np.arange(n) + 0.5) / n - 0.5
    fine = (np.arange(size)[:, None] - size // 2 + offsets[None, :]).ravel()
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2
    area = inside.reshape(size, n, size, n).mean(axis=(1, 3))
    np.testing.assert_allclose(kernels.disk(radius).numpy() * area.sum(), area, atol=1.5e-3)


def test_kernels_sum_to_one():
    for sigma in LEVELS["gaublur"]:
        assert abs(kernels.gaussian(kernels.gaussian_size(sigma), sigma).sum().item() - 1) < 1e-12
    for radius in LEVELS["lensblur"]:
        assert abs(kernels.disk(radius).sum().item() - 1) < 1e-12
    for length in LEVELS["motionblur"]:
        for angle in range(181):
            # fspecial('motion') divides by sum + eps * length^2
            assert abs(kernels.motion(length, angle).sum().item() - 1) < 1e-12


@pytest.mark.parametrize("length", [2, 4, 6, 10])
def test_motion_kernel_along_an_axis_is_a_box_with_half_ends(length):
    row = np.ones(length + 1)  # even lengths: the line covers length+1 pixels, the ends half
    row[0] = row[-1] = 0.5
    row /= length
    np.testing.assert_allclose(kernels.motion(length, 0).numpy(), row[None, :], atol=1e-12)
    np.testing.assert_allclose(kernels.motion(length, 180).numpy(), row[None, :], atol=1e-12)
    np.testing.assert_allclose(kernels.motion(length, 90).numpy(), row[:, None], atol=1e-12)


@pytest.mark.parametrize("length", [2, 4, 6, 10])
def test_motion_kernel_symmetries(length):
    for angle in range(1, 180):
        k = kernels.motion(length, angle)
        assert torch.allclose(k, k.flip(0, 1), atol=1e-15)  # a line through the centre
        assert torch.allclose(kernels.motion(length, 180 - angle), k.flip(1), atol=1e-12)


def test_motion_kernel_angle_is_counter_clockwise():
    k = kernels.motion(10, 45).numpy()  # rows go down, so 45 degrees runs bottom-left to top-right
    assert np.trace(np.fliplr(k)) > 5 * np.trace(k)  # both diagonals share the centre pixel


def test_motion_of_length_one_is_the_identity_kernel():
    for angle in range(181):
        k = kernels.motion(1, angle)
        centre = k[k.shape[0] // 2, k.shape[1] // 2]
        assert abs(centre.item() - 1) < 1e-15 and (k.sum() - centre).abs() < 1e-15


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_one_identities(image, seed):
    g = torch.Generator().manual_seed(seed)
    assert torch.equal(distort(image, "gaublur", 1, g), image)
    assert torch.equal(distort(image, "motionblur", 1, g), image)


@pytest.mark.parametrize("name", ["gaublur", "lensblur", "motionblur"])
def test_constant_image_stays_constant(name):
    flat = torch.full((2, 3, 24, 30), 0.37)
    for level in range(1, 6):
        torch.testing.assert_close(distort(flat, name, level), flat, rtol=0, atol=1e-6)  # float32 weights


def test_motion_angles_uniform_on_0_to_180():
    draws = sample_motion(torch.zeros(181 * 40, 3, 1, 1), 10, torch.Generator().manual_seed(0))["angle"]
    assert draws.dtype == torch.int64 and draws.min() == 0 and draws.max() == 180
    counts = np.bincount(draws.numpy(), minlength=181)
    # Fixed seed; a uniform draw fails this with probability 1e-3.
    assert stats.chisquare(counts).pvalue > 1e-3


def test_motion_blur_follows_each_samples_angle():
    stripes = torch.rand(1, 3, 40, 1, generator=torch.Generator().manual_seed(0)).expand(2, 3, 40, 36)
    out = motion_blur(stripes, 10, torch.tensor([0, 90]))
    torch.testing.assert_close(out[0], stripes[0], rtol=0, atol=1e-6)  # along the stripes
    assert (out[1] - stripes[1]).abs().mean() > 0.05  # across them


def test_per_sample_kernels_equal_shared_kernels(image):
    batch = torch.stack([image, image.flip(-1), image.flip(-2)])
    angles = torch.tensor([0, 37, 135])
    together = motion_blur(batch, 6, angles)
    for x, angle, y in zip(batch, angles, together):
        alone = kernels.filter2d(x[None], kernels.motion(6, int(angle)).float())[0]
        torch.testing.assert_close(y, alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["gaublur", "lensblur", "motionblur"])
def test_severity_grows_with_level(image, name):
    batch = image[None].expand(6, -1, -1, -1)  # six angles for motion blur
    g = torch.Generator().manual_seed(0)
    quality = [psnr(distort(batch, name, level, g), batch) for level in range(1, 6)]
    assert all(a > b for a, b in zip(quality, quality[1:])), quality


@pytest.mark.parametrize(
    "kernel",
    [
        kernels.gaussian(9, 2.0),
        kernels.disk(3),
        kernels.motion(6, 30),
        kernels.pad_to([kernels.motion(6, a) for a in (0, 45, 100)]),
    ],
    ids=["separable", "disk", "motion", "per-sample"],
)
def test_gpu_convolution_path_equals_cpu_shift_and_add(kernel):
    # filter2d correlates by shifted sums on the CPU and by depthwise convolution elsewhere; both
    # run here, on replicate-padded planes, against a float64 double loop.
    x = torch.rand(3, 3, 20, 26, generator=torch.Generator().manual_seed(0))
    kh, kw = kernel.shape[-2:]
    padded = torch.nn.functional.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weights = kernel if kernel.dim() == 3 else kernel.expand(3, kh, kw)
    expected = torch.zeros(3, 3, 20, 26, dtype=torch.float64)
    for i in range(kh):
        for j in range(kw):
            expected += weights[:, i, j, None, None, None] * padded[:, :, i : i + 20, j : j + 26].double()
    for path in (kernels._shift_add, kernels._depthwise):
        out = path(padded, kernel, 20, 26)
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-6)
        per_sample = [kernel if kernel.dim() == 2 else kernel[i : i + 1] for i in range(3)]
        alone = torch.cat([path(padded[i : i + 1], k, 20, 26) for i, k in enumerate(per_sample)])
        assert torch.equal(out, alone)


def double_loop(padded, kernel, h, w):
    out = torch.zeros(*padded.shape[:2], h, w, dtype=torch.float64)
    for i, j in torch.nonzero(kernel).tolist():
        out += kernel[i, j].item() * padded[..., i : i + h, j : j + w].double()
    return out


RUN_KERNEL = torch.tensor(  # runs from the first column, a zero row, repeated and unequal rows
    [
        [0.1] * 5 + [0.0, 0.2, 0.0, 0.0],
        [0.0] * 9,
        [0.05, 0.3] + [0.07] * 6 + [0.05],
        [0.1] * 5 + [0.0, 0.2, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0],
    ],
    dtype=torch.float64,
)


@pytest.mark.parametrize(
    "kernel", [make(r) for make in (kernels.disk, kernels.reference_disk) for r in LEVELS["lensblur"]] + [RUN_KERNEL]
)
def test_row_by_row_correlation_equals_the_double_loop(kernel):
    # Prefix-sum runs: at 224 px, the photo-sized case, against float64 sums of every tap.
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    kh, kw = kernel.shape
    padded = torch.nn.functional.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    out = kernels._shift_add_rows(padded, kernel, 224, 224)
    torch.testing.assert_close(out.double(), double_loop(padded, kernel, 224, 224), rtol=0, atol=1e-6)
    assert torch.equal(out[1:], kernels._shift_add_rows(padded[1:], kernel, 224, 224))  # batch-independent
    flat = kernels._shift_add_rows(torch.full((1, 1, 40, 40), 0.7), kernel, 40 - kh + 1, 40 - kw + 1)
    torch.testing.assert_close(flat, torch.full_like(flat, 0.7 * kernel.sum().item()), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel", ["reference", "matlab"])
def test_lens_blur_uses_the_row_path_from_radius_four(monkeypatch, kernel):
    calls = []
    row_path = kernels._shift_add_rows
    monkeypatch.setattr(kernels, "_shift_add_rows", lambda x, k, h, w: calls.append(k.shape[0]) or row_path(x, k, h, w))
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    for radius in LEVELS["lensblur"]:
        lens_blur(x, radius, kernel=kernel)
    assert calls == [9, 13, 17]


# The reference implementation's kernel of radius 2 (shared/data/reference/lensblur_kernels.json): its
# port of fspecial('disk') gives the rim other weights than MATLAB's, some of them negative.
REFERENCE_DISK_2 = [
    [0.0, -0.0019126265587018532, 0.03838470908534226, -0.0019126265587018532, 0.0],
    [-0.0019126265587018532, 0.1152647476415404, 0.08014063711241684, 0.1152647476415404, -0.0019126265587018532],
    [0.03838470908534226, 0.08014063711241684, 0.08014063711241684, 0.08014063711241684, 0.03838470908534226],
    [-0.0019126265587018532, 0.1152647476415404, 0.08014063711241684, 0.1152647476415404, -0.0019126265587018532],
    [0.0, -0.0019126265587018532, 0.03838470908534226, -0.0019126265587018532, 0.0],
]
# (radius, negative taps, smallest tap, centre) of the reference's five kernels, from the same file.
REFERENCE_DISK_FACTS = [
    (1, 0, 0.025078581023832966, 0.31830988618379064),
    (2, 8, -0.0019126265587018532, 0.08014063711241684),
    (4, 8, -0.029413204396776017, 0.022413046679243712),
    (6, 16, -0.04756395169197535, 0.010513071429118896),
    (8, 16, -0.05007560131736931, 0.006018484945879824),
]


def test_reference_disk_of_radius_two_is_the_references():
    torch.testing.assert_close(
        kernels.reference_disk(2), torch.tensor(REFERENCE_DISK_2, dtype=torch.float64), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize("radius, negative, smallest, centre", REFERENCE_DISK_FACTS)
def test_reference_disks(radius, negative, smallest, centre):
    k = kernels.reference_disk(radius)
    assert k.dtype == torch.float64 and k.shape == (2 * radius + 1, 2 * radius + 1)
    assert int((k < 0).sum()) == negative
    assert k.min().item() == pytest.approx(smallest, abs=1e-15)
    assert k[radius, radius].item() == pytest.approx(centre, abs=1e-15)
    assert abs(k.sum().item() - 1) < 1e-15
    for symmetric in (k.flip(0), k.flip(1), k.T):  # the disk's eight symmetries
        assert torch.equal(symmetric, k)
    difference = (k - kernels.disk(radius)).abs().max().item()
    if radius == 1:
        assert difference < 1e-15  # the port agrees with MATLAB at radius 1
    else:
        assert difference > 0.03


def test_reference_disk_refuses_other_radii():
    with pytest.raises(ValueError, match=r"radius \[1.0, 2.0, 4.0, 6.0, 8.0\], got 3"):
        kernels.reference_disk(3)


@pytest.mark.parametrize("kernel, make", [("reference", kernels.reference_disk), ("matlab", kernels.disk)])
@pytest.mark.parametrize("level", range(1, 6))
def test_lens_blur_kernels_against_the_double_loop(kernel, make, level):
    x = torch.rand(2, 3, 30, 34, generator=torch.Generator().manual_seed(level))
    radius = LEVELS["lensblur"][level - 1]
    k = make(radius)
    padded = torch.nn.functional.pad(x, (radius,) * 4, mode="replicate")
    expected = double_loop(padded, k, 30, 34).clamp(0, 1)
    options = {} if kernel == "reference" else {"kernel": kernel}
    torch.testing.assert_close(distort(x, "lensblur", level, **options).double(), expected, rtol=0, atol=1e-6)


def test_lens_blur_defaults_to_the_references_kernel_and_differs_from_matlab_from_level_two():
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    assert torch.equal(lens_blur(x, 4), lens_blur(x, 4, kernel="reference"))
    for level, radius in enumerate(LEVELS["lensblur"], start=1):
        same = torch.equal(distort(x, "lensblur", level), distort(x, "lensblur", level, kernel="matlab"))
        assert same == (radius == 1)


def test_lens_blur_refuses_an_unknown_kernel():
    with pytest.raises(ValueError, match="'reference' or 'matlab', got 'gauss'"):
        lens_blur(torch.zeros(1, 3, 8, 8), 2, kernel="gauss")
    # An unhashable kernel was TypeError ("unhashable type: 'list'") from the kernel cache.
    with pytest.raises(ValueError, match=r"'reference' or 'matlab', got \['matlab'\]"):
        distort(torch.zeros(1, 3, 8, 8), "lensblur", 2, kernel=["matlab"])


def test_distort_names_the_options_a_distortion_takes():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="lensblur has no option 'size'; its options: kernel"):
        distort(x, "lensblur", 2, size=3)
    with pytest.raises(ValueError, match="gaublur has no option 'kernel'; its options: none"):
        distort(x, "gaublur", 2, kernel="matlab")
