"""Compression group: agreement with straightforward Pillow round trips, 8-bit truncation, severity."""

import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arniqa.degradations import LEVELS, distort
from arniqa.degradations.compression import _codec_pool, jpeg2000_resolutions
from arniqa.degradations.sampler import apply_chains


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour blobs with sharp block edges and fine noise, (3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), (h, w), mode="bicubic")[0]
    blocks = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), (h, w), mode="nearest")[0]
    return (0.5 * smooth + 0.4 * blocks + 0.1 * torch.rand(3, h, w, generator=g)).clamp(0, 1)


def pil_round_trip(pixels: np.ndarray, **options) -> torch.Tensor:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return torch.from_numpy(np.array(decoded.convert("RGB"))).permute(2, 0, 1).float() / 255


def truncate(x: torch.Tensor) -> np.ndarray:
    return np.floor(x.double().numpy() * 255).astype(np.uint8).transpose(1, 2, 0)


def psnr(a, b):
    return 10 * math.log10(1 / (a - b).pow(2).mean().item())


@pytest.mark.parametrize("level", range(1, 6))
def test_jpeg_equals_pillow_round_trip_of_the_truncated_image(level):
    # torchvision's encode_jpeg and Pillow both call libjpeg with its defaults (4:2:0, the IJG
    # tables scaled by quality), so the bytes and the decoded pixels are identical.
    x = textured(48, 72, seed=level)
    expected = pil_round_trip(truncate(x), format="JPEG", quality=int(LEVELS["jpeg"][level - 1]))
    assert torch.equal(distort(x, "jpeg", level), expected)


def test_jpeg_truncates_instead_of_rounding():
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, 255, (3, 40, 56), generator=g)
    x = (k + 0.6) / 255  # rounds to k + 1, truncates to k
    out = distort(x, "jpeg", 1)
    pixels = k.numpy().astype(np.uint8).transpose(1, 2, 0)
    assert torch.equal(out, pil_round_trip(pixels, format="JPEG", quality=43))
    assert not torch.equal(out, pil_round_trip(pixels + 1, format="JPEG", quality=43))


@pytest.mark.parametrize("level", [1, 3, 5])
def test_jpeg2000_equals_pillow_round_trip_of_the_truncated_image(level):
    x = textured(128, 136, seed=level)
    ratio = int(LEVELS["jpeg2000"][level - 1])
    options = dict(quality_mode="rates", quality_layers=[ratio], num_resolutions=8, prog_order="LRCP")
    expected = pil_round_trip(truncate(x), format="JPEG2000", **options)
    assert torch.equal(distort(x, "jpeg2000", level), expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_jpeg2000_batch_gives_the_same_bytes_in_worker_processes(threads):
    # With more than one torch thread the codec runs in a pool of worker processes.
    batch = torch.stack([textured(64, 72, seed=seed) for seed in range(4)])
    options = dict(quality_mode="rates", quality_layers=[45], num_resolutions=7, prog_order="LRCP")
    expected = torch.stack([pil_round_trip(truncate(x), format="JPEG2000", **options) for x in batch])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert torch.equal(distort(batch, "jpeg2000", 3), expected)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_apply_chains_codec_groups_in_the_background_keep_draws_and_bytes(threads):
    # With 2 threads the JPEG 2000 groups start in the worker processes and are collected after
    # the position's other groups; the result must be the documented order, step by step.
    x = torch.stack([textured(64, 72, seed=seed) for seed in range(6)])
    chains = [
        [("jpeg2000", 1), ("whitenoise", 2)],
        [("whitenoise", 3), ("jpeg2000", 2)],
        [("jpeg2000", 5)],
        [("gaublur", 3), ("jpeg2000", 2)],
        [("impulsenoise", 2)],
        [("jpeg2000", 1)],
    ]
    g = torch.Generator().manual_seed(7)
    expected = x.clone()
    for rows, name, level in [
        ([1], "whitenoise", 3),
        ([4], "impulsenoise", 2),
        ([0, 5], "jpeg2000", 1),
        ([2], "jpeg2000", 5),
        ([3], "gaublur", 3),
        ([0], "whitenoise", 2),
        ([1, 3], "jpeg2000", 2),
    ]:
        expected[rows] = distort(expected[rows], name, level, g)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert torch.equal(apply_chains(x, chains, torch.Generator().manual_seed(7)), expected)
    finally:
        torch.set_num_threads(before)


def test_jpeg2000_workers_end_when_their_parent_is_killed():
    code = (
        "import os, signal, torch\n"
        "from arniqa.degradations import distort\n"
        "from arniqa.degradations.compression import _codec_pool\n"
        "torch.set_num_threads(2)\n"
        "distort(torch.rand(2, 3, 32, 32), 'jpeg2000', 1)\n"
        "print(*(p.pid for p in _codec_pool(os.getpid(), 2)._processes.values()), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    # Orphaned workers would keep the pipes open and this call would time out.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    workers = [int(pid) for pid in done.stdout.split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def test_jpeg2000_survives_a_killed_worker():
    batch = torch.stack([textured(64, 72, seed=seed) for seed in range(3)])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = distort(batch, "jpeg2000", 2)
        for process in list(_codec_pool(os.getpid(), 2)._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
            process.join(10)
        assert torch.equal(distort(batch, "jpeg2000", 2), expected)  # in place: the pool is broken
        assert torch.equal(distort(batch, "jpeg2000", 2), expected)  # a new pool
        assert all(p.is_alive() for p in _codec_pool(os.getpid(), 2)._processes.values())
    finally:
        torch.set_num_threads(before)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("size,resolutions", [(128, 8), (300, 8), (127, 7), (64, 7), (63, 6), (32, 6), (31, 5)])
def test_jpeg2000_resolutions_are_the_most_openjpeg_accepts(size, resolutions):
    assert jpeg2000_resolutions(size, size + 9) == resolutions
    pixels = truncate(textured(size, size + 9))
    options = dict(format="JPEG2000", quality_mode="rates", quality_layers=[16], prog_order="LRCP")
    pil_round_trip(pixels, num_resolutions=resolutions, **options)
    if resolutions < 8:
        with pytest.raises(OSError):
            pil_round_trip(pixels, num_resolutions=resolutions + 1, **options)


@pytest.mark.parametrize("name", ["jpeg", "jpeg2000"])
def test_outputs_are_8_bit(image, name):
    out = distort(image, name, 3)
    assert torch.equal(out * 255, (out * 255).round())


@pytest.mark.parametrize("name,size", [("jpeg", 64), ("jpeg2000", 128)])
def test_severity_grows_with_level(name, size):
    x = textured(size, size, seed=3)
    quality = [psnr(distort(x, name, level), x) for level in range(1, 6)]
    assert all(a > b for a, b in zip(quality, quality[1:])), quality


def test_jpeg_refuses_images_over_libjpeg_limit_without_a_crash():
    """torchvision's JPEG encoder killed the process (SIGSEGV) on a side over 65500 px (libjpeg's limit)."""
    code = (
        "import torch\n"
        "from arniqa.degradations import distort\n"
        "from arniqa.degradations.sampler import apply_chains\n"
        "assert distort(torch.rand(3, 1, 65500), 'jpeg', 1).shape == (3, 1, 65500)\n"
        "for call in (lambda: distort(torch.rand(3, 1, 65501), 'jpeg', 1),\n"
        "             lambda: apply_chains(torch.rand(1, 3, 65501, 1), [[('gaublur', 2), ('jpeg', 1)]])):\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as e:\n"
        "        assert 'at most 65500 px on a side' in str(e), e\n"
        "    else:\n"
        "        raise AssertionError('accepted')\n"
        "print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["refused"], (done.returncode, done.stderr[-2000:])
