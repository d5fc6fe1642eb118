"""jitter, noneccpatch, pixelate, quantization, colorblock against literal re-statements of the
reference algorithms (written here, loop by loop) and closed-form properties."""

import math

import numpy as np
import pytest
import torch
from imaging import falls, psnr, textured
from kornia.geometry.transform import resize

from arniqa.degradations import LEVELS, distort
from arniqa.degradations.kernels import gather_rows_cols
from arniqa.degradations.spatial import (
    colorblock,
    jitter,
    noneccpatch,
    pixelate,
    pixelate_size,
    quantization,
)

# ---------------------------------------------------------------------------------------- jitter


def literal_scatter_pass(img, sy, sx):
    """The reference's imscatter pass in numpy: replicate-pad the image and both fields (rows by
    ceil|max sx|, columns by ceil|max sy|), sample at (row - sx, col - sy) with its bilinear rule
    (clamped corner indices, weights divided by x1 - x0 + eps), crop rows by m_sy, columns by m_sx."""
    h, w = img.shape[1:]
    m_sx = int(np.ceil(abs(sx.max())))
    m_sy = int(np.ceil(abs(sy.max())))

    def pad(a):
        return np.pad(a, [(m_sx, m_sx), (m_sy, m_sy)], mode="edge")

    y = np.stack([pad(c) for c in img])
    sxp, syp = pad(sx), pad(sy)
    hp, wp = y.shape[1:]
    rows, cols = np.mgrid[0:hp, 0:wp]
    by = (rows - sxp).astype(np.float32)  # sample row
    bx = (cols - syp).astype(np.float32)  # sample column
    x0 = np.floor(bx).astype(np.int64)
    y0 = np.floor(by).astype(np.int64)
    x1, y1 = x0 + 1, y0 + 1
    x0, x1 = np.clip(x0, 0, wp - 1), np.clip(x1, 0, wp - 1)
    y0, y1 = np.clip(y0, 0, hp - 1), np.clip(y1, 0, hp - 1)
    eps = np.float32(1e-8)
    dx = (x1 - x0).astype(np.float32) + eps
    dy = (y1 - y0).astype(np.float32) + eps
    out = np.zeros_like(y)
    for c in range(3):
        ia, ib, ic, id_ = y[c][y0, x0], y[c][y1, x0], y[c][y0, x1], y[c][y1, x1]
        r1 = ia * (x1 - bx) / dx + ic * (bx - x0) / dx
        r2 = ib * (x1 - bx) / dx + id_ * (bx - x0) / dx
        out[c] = r1 * (y1 - by) / dy + r2 * (by - y0) / dy
    return out[:, m_sy : m_sy + h, m_sx : m_sx + w]


def literal_jitter(img, amount, fields):
    y = img.numpy()
    for p in range(fields.shape[0]):
        y = literal_scatter_pass(y, (fields[p, 0] * amount).numpy(), (fields[p, 1] * amount).numpy())
    return torch.from_numpy(y)


@pytest.mark.parametrize("amount", [0.05, 0.5, 1.0])
def test_jitter_matches_literal_reference(amount):
    x = textured(2, 20, 26)
    fields = torch.randn(2, 5, 2, 20, 26, generator=torch.Generator().manual_seed(3))
    out = jitter(x, amount, fields)
    for i in range(2):
        assert torch.allclose(out[i], literal_jitter(x[i], amount, fields[i]), atol=2e-5)


def test_jitter_border_quirks_match_literal_reference():
    """Unequal row and column pads (the crosswise crop shifts the image) and a sample point outside
    the padded image (a black pixel), both as in the reference."""
    x = textured(1, 18, 22)
    fields = 0.2 * torch.randn(1, 5, 2, 18, 22, generator=torch.Generator().manual_seed(5))
    fields[0, 1:] *= 0.01  # later passes barely move, so the black pixel survives them
    fields[0, 0, 1, 0, 4] = 1.6  # row shift max -> 2 padded rows; the column pad stays 1
    fields[0, 0, 1, 17, 9] = -8.0  # far below the padded image: a black pixel
    fields[0, 2, 0, 6, 0] = 1.6  # unequal again in pass 3, the other way round
    out = jitter(x, 1.0, fields)
    ref = literal_jitter(x[0], 1.0, fields[0])
    assert torch.allclose(out[0], ref, atol=2e-5)
    assert ref.amax(dim=0).min() < 0.05  # the black pixel is really there


def test_gather_rows_cols_matches_loops():
    g = torch.Generator().manual_seed(0)
    planes = torch.rand(3, 7, 9, generator=g)
    rows, cols = torch.randint(0, 7, (3, 5), generator=g), torch.randint(0, 9, (3, 4), generator=g)
    out = gather_rows_cols(planes, rows, cols)
    expected = torch.tensor([[[planes[i, r, c].item() for c in cols[i]] for r in rows[i]] for i in range(3)])
    assert torch.equal(out, expected)
    assert gather_rows_cols(planes[:0], rows[:0], cols[:0]).shape == (0, 5, 4)


def test_jitter_severity_grows_with_level():
    x = textured(2, 64, 72)
    g = torch.Generator().manual_seed(0)
    scores = [psnr(distort(x, "jitter", level, generator=g), x) for level in range(1, 6)]
    assert falls(scores)


def test_jitter_sample_shapes_and_batch_draws():
    from arniqa.degradations.spatial import sample_jitter

    x = textured(3, 16, 20)
    fields = sample_jitter(x, 0.5, torch.Generator().manual_seed(1))["fields"]
    assert fields.shape == (3, 5, 2, 16, 20)
    g = torch.Generator().manual_seed(1)
    one_by_one = torch.cat([sample_jitter(x[i : i + 1], 0.5, g)["fields"] for i in range(3)])
    assert torch.equal(fields, one_by_one)


# ----------------------------------------------------------------------------------- noneccpatch


def literal_noneccpatch(img, uniforms):
    """Reference positions (Python round) and its in-place paste, which PyTorch's CPU copy performs
    row by row from the top, so a paste overlapping its own source below it sees its earlier rows."""
    y = img.clone()
    _, h, w = y.shape
    for u_w, u_h, u_dw, u_dh in uniforms.double().tolist():
        ws = round(u_w * (w - 32 - 16)) + 16
        hs = round(u_h * (h - 32 - 16)) + 16
        dw = round((u_dw - 0.5) * 16 + ws)
        dh = round((u_dh - 0.5) * 16 + hs)
        for i in range(16):
            y[:, dh + i, dw : dw + 16] = y[:, hs + i, ws : ws + 16].clone()
    return y


def test_noneccpatch_matches_literal_reference():
    x = textured(3, 60, 70)
    uniforms = torch.rand(3, 100, 4, generator=torch.Generator().manual_seed(2))
    out = noneccpatch(x, 100, uniforms)
    for i in range(3):
        assert torch.equal(out[i], literal_noneccpatch(x[i], uniforms[i]))


def test_noneccpatch_overlapping_paste_repeats_rows():
    """A paste 3 rows below and 2 columns right of its source: rows 3.. repeat rows 0.. of the
    pasted patch (where they overlap), as the reference's row-by-row in-place copy does."""
    x = textured(1, 64, 64)
    # source (16 + round(u*16)) = (24, 24); offsets round((u - 0.5) * 16) = +3 rows, +2 columns
    uniforms = torch.tensor([[[0.5, 0.5, 0.5 + 2 / 16, 0.5 + 3 / 16]]], dtype=torch.float64)
    out = noneccpatch(x, 1, uniforms)
    patch = out[0, :, 27:43, 26:42]
    assert torch.equal(patch[:, :3], x[0, :, 24:27, 24:40])
    assert torch.equal(patch[:, 3:6, 2:], patch[:, 0:3, :-2])
    assert not torch.equal(patch, x[0, :, 24:40, 24:40])  # not a clean copy


def test_noneccpatch_severity_grows_with_count():
    x = textured(8, 64, 72)
    seeds = [torch.Generator().manual_seed(4) for _ in range(5)]
    assert falls([psnr(distort(x, "noneccpatch", level, g), x) for level, g in zip(range(1, 6), seeds)])


# -------------------------------------------------------------------------------------- pixelate


def test_pixelate_sizes_for_224():
    assert [pixelate_size(224, s) for s in LEVELS["pixelate"]] == [198, 175, 156, 127, 65]


@pytest.mark.parametrize("strength", LEVELS["pixelate"])
def test_pixelate_matches_kornia_nearest_round_trip(strength):
    x = textured(2, 50, 66)
    small = resize(x, (int(50 * (0.95 - strength**0.6)), int(66 * (0.95 - strength**0.6))), "nearest")
    assert torch.equal(pixelate(x, strength), resize(small, (50, 66), "nearest"))


def test_pixelate_severity_grows_with_level():
    x = textured(2, 64, 72)
    assert falls([psnr(distort(x, "pixelate", level), x) for level in range(1, 6)])


# ---------------------------------------------------------------------------------- quantization


def literal_quantization(img, levels):
    thresholds = [255 * k // levels for k in range(1, levels)]  # int(255 k / L)
    bins = np.array([0, *thresholds, 256], dtype=np.float32)
    index = np.searchsorted(bins, (img * 255).numpy(), side="left").astype(np.float32)
    low, high = index.min(), index.max()
    return torch.from_numpy((index - low) / (high - low) if low < high else index)


@pytest.mark.parametrize("levels", LEVELS["quantization"])
def test_quantization_matches_literal_reference(levels):
    x = textured(2, 64, 72)
    x[1, :, :4, :4] = 0.0  # exact zeros get their own index 0
    out = quantization(x, levels)
    for i in range(2):
        assert torch.allclose(out[i], literal_quantization(x[i], levels), atol=1e-7)


@pytest.mark.parametrize("levels", LEVELS["quantization"])
def test_quantization_values_and_span(levels):
    x = textured(1, 64, 72)  # no exact zeros: indices 1..L only
    out = quantization(x, levels)
    assert out.min() == 0 and out.max() == 1
    for c in range(3):
        assert out[0, c].unique().numel() <= levels


def test_quantization_severity_grows_with_level():
    """On images spanning [0, 1] (the min-max stretch of the index map is then mild)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 72), indexing="ij")
    noise = 0.05 * torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(0))
    x = (torch.stack([xx, yy, (xx + yy) / 2]) + noise).clamp(0.002, 1)
    assert falls([psnr(distort(x, "quantization", level), x) for level in range(1, 6)])


# ------------------------------------------------------------------------------------ colorblock


def test_colorblock_matches_literal_reference():
    x = textured(2, 64, 72)
    uniforms = torch.rand(2, 10, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out = colorblock(x, 10, uniforms)
    for i in range(2):
        ref = x[i].clone()
        for r, g, b, u_top, u_left in uniforms[i].tolist():
            top, left = math.floor(u_top * (64 - 32)), math.floor(u_left * (72 - 32))
            ref[:, top : top + 32, left : left + 32] = torch.tensor([r, g, b])[:, None, None]
        assert torch.equal(out[i], ref)


@pytest.mark.parametrize("level", range(1, 6))
def test_colorblock_changes_at_most_n_blocks(level):
    x = textured(2, 64, 72)
    out = distort(x, "colorblock", level, torch.Generator().manual_seed(level))
    changed = (out != x).any(dim=1).sum(dim=(1, 2))
    assert (changed <= LEVELS["colorblock"][level - 1] * 32 * 32).all()
    assert (changed >= 32 * 32).all()


# ---------------------------------------------------------------------------------- small images


@pytest.mark.parametrize("name", ["noneccpatch", "colorblock", "pixelate", "jitter", "quantization"])
def test_small_images_do_not_fail(name):
    x = textured(2, 20, 14)
    out = distort(x, name, 5, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
