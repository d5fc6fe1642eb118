import numpy as np
import pytest
import torch
from imaging import write_phone_photos
from PIL import Image

from arniqa.data.folders import training_images
from arniqa.data.pristine import CROPS, EpochSampler, PristinePairs, collate, random_crop, stack_crops


def test_phone_photos_are_training_images(tmp_path):
    """HEIC and AVIF files are listed and read: with crops larger than the photos, A and B are each whole
    photo at the top left (zeros elsewhere), as pillow-heif and Pillow decode them."""
    phones = write_phone_photos(tmp_path / "photos", 40, 24)
    files = training_images(tmp_path / "photos")
    assert files == sorted(phones)
    sample = PristinePairs(files, crop_size=48)[0]
    for tag, index in (("A", 0), ("B", 1)):
        crop = sample[f"{tag}_full"]
        assert np.array_equal(crop[:, :24, :40].permute(1, 2, 0).numpy(), phones[files[index]])
        assert crop[:, 24:].eq(0).all() and crop[:, :, 40:].eq(0).all()


def test_random_crop_zero_fills_and_covers_every_position():
    x = np.arange(1, 3 * 5 * 7 + 1, dtype=np.uint8).reshape(5, 7, 3)
    image = Image.fromarray(x)
    chw = torch.from_numpy(x).permute(2, 0, 1)
    rng = np.random.default_rng(0)
    small = random_crop(image, 8, rng)  # larger than the image on both sides: image at the top left, zeros elsewhere
    assert small.shape == (3, 8, 8) and small.dtype == torch.uint8
    assert torch.equal(small[:, :5, :7], chw) and small[:, 5:].eq(0).all() and small[:, :, 7:].eq(0).all()
    tops = {tuple(random_crop(image, 4, rng)[0, 0, :1].tolist()) for _ in range(300)}
    # Every (top, left) in {0, 1} x {0, 1, 2, 3} shows up, including the last position.
    assert tops == {(int(chw[0, t, x]),) for t in range(2) for x in range(4)}


def _reference_sample(files, crop, seed, epoch, index):
    """A sample built the plain way: PIL decode, the whole bicubic half-scale image, crops copied
    from zero-padded arrays, with the draws PristinePairs documents (A then B; full then half; top then left)."""
    seeds = np.random.SeedSequence([seed, epoch, index]).spawn(3)
    n = len(files)
    other = (index + 1 + int(np.random.default_rng(seeds[0]).integers(0, n - 1))) % n
    rng = np.random.default_rng(seeds[1])

    def cut(pixels):
        h, w, _ = pixels.shape
        top, left = int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))
        padded = np.zeros((max(h, top + crop), max(w, left + crop), 3), np.uint8)
        padded[:h, :w] = pixels
        return torch.from_numpy(padded[top : top + crop, left : left + crop].copy()).permute(2, 0, 1)

    out = {}
    for tag, i in (("A", index), ("B", other)):
        img = Image.open(files[i]).convert("RGB")
        out[f"{tag}_full"] = cut(np.asarray(img))
        out[f"{tag}_half"] = cut(np.asarray(img.resize((img.width // 2, img.height // 2), Image.BICUBIC)))
    return out


def test_samples_match_a_plain_pil_reference(tmp_path):
    rng = np.random.default_rng(7)
    files = []
    # even and odd sides, larger and smaller than the crop (at half scale too), PNG and JPEG
    for k, (w, h) in enumerate([(96, 72), (97, 72), (96, 73), (40, 30), (130, 66), (64, 64)]):
        coarse = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        pixels = np.kron(coarse, np.ones((8, 8, 1), np.uint8))[:h, :w] // 2 + rng.integers(
            0, 128, (h, w, 3), dtype=np.uint8
        )
        files.append(tmp_path / f"i{k}.{'jpg' if k == 5 else 'png'}")
        Image.fromarray(pixels).save(files[-1])
    data = PristinePairs(files, crop_size=48, seed=11)
    for epoch in range(3):
        for index in range(len(files)):
            sample, ref = data[(epoch, index)], _reference_sample(files, 48, 11, epoch, index)
            for name in CROPS:
                assert torch.equal(sample[name], ref[name]), (epoch, index, name)


def test_samples_are_reproducible_and_depend_on_epoch_and_index(image_folder):
    files = training_images(image_folder)
    data = PristinePairs(files, crop_size=32, seed=3)
    s = data[(1, 2)]
    again = PristinePairs(files, crop_size=32, seed=3)[(1, 2)]
    for name in CROPS:
        assert s[name].dtype == torch.uint8 and s[name].shape == (3, 32, 32)
        assert torch.equal(s[name], again[name])
    assert s["chain"] == again["chain"] and s["index"] == 2 and s["other"] != 2
    other_epoch = data[(2, 2)]
    assert any(not torch.equal(s[n], other_epoch[n]) for n in CROPS)


def test_crops_come_from_the_right_images_and_scales(image_folder):
    files = training_images(image_folder)
    data = PristinePairs(files, crop_size=16, seed=0)
    s = data[(0, 1)]
    full = torch.from_numpy(np.array(Image.open(files[1]).convert("RGB"))).permute(2, 0, 1)
    img = Image.open(files[1]).convert("RGB")
    half = torch.from_numpy(np.array(img.resize((img.width // 2, img.height // 2), Image.BICUBIC))).permute(2, 0, 1)

    def found(crop, image):
        _, h, w = image.shape
        return any(torch.equal(image[:, t : t + 16, x : x + 16], crop) for t in range(h - 15) for x in range(w - 15))

    assert found(s["A_full"], full) and found(s["A_half"], half)


def test_b_is_uniform_over_the_other_images(image_folder):
    data = PristinePairs(training_images(image_folder), crop_size=16)
    counts = np.bincount([data.other(epoch, 2) for epoch in range(600)], minlength=6)
    assert counts[2] == 0 and (counts[[0, 1, 3, 4, 5]] > 80).all()  # 120 expected each
    assert PristinePairs(data.files[:1], crop_size=16).other(0, 0) == 0


def test_chains_follow_the_sampler_with_five_percent_pristine(image_folder):
    data = PristinePairs(training_images(image_folder), crop_size=16, pristine_prob=0.05, max_distortions=4)
    assert data[(3, 1)]["chain"] == data.chain(3, 1)
    chains = [data.chain(epoch, i) for epoch in range(100) for i in range(6)]
    empty = sum(len(c) == 0 for c in chains)
    assert 12 <= empty <= 50  # 30 expected of 600
    assert {len(c) for c in chains} == {0, 1, 2, 3, 4}
    assert not any(len(c) for c in (PristinePairs(data.files, pristine_prob=1.0).chain(e, 0) for e in range(20)))


def test_sampler_shards_global_batches_and_resumes():
    one = list(EpochSampler(10, 4, epoch=2, seed=1))
    assert len(one) == 8 and len({i for _, i in one}) == 8 and all(e == 2 for e, _ in one)
    ranks = [list(EpochSampler(10, 4, epoch=2, seed=1, rank=r, world_size=2)) for r in range(2)]
    for step in range(2):  # the two processes' slices make up the single process's global batch, in order
        assert ranks[0][2 * step : 2 * step + 2] + ranks[1][2 * step : 2 * step + 2] == one[4 * step : 4 * step + 4]
    assert list(EpochSampler(10, 4, epoch=2, seed=1, start_step=1)) == one[4:]
    assert list(EpochSampler(10, 4, epoch=3, seed=1)) != one
    with pytest.raises(ValueError, match="divisible"):
        EpochSampler(10, 3, 0, 0, world_size=2)


def test_collate_and_stack(image_folder):
    data = PristinePairs(training_images(image_folder), crop_size=16)
    batch = collate([data[(0, 0)], data[(0, 3)]])
    x, chains = stack_crops(batch)
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x[1], batch["A_full"][1].float() / 255) and torch.equal(x[7], batch["B_half"][1].float() / 255)
    assert chains == batch["chain"] * 4


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        PristinePairs([bad, bad], crop_size=16)[0]


def test_an_image_over_pils_bomb_limit_says_what_to_do(tmp_path, monkeypatch):
    """Training has no --max-pixels, yet the error said to raise it."""
    from arniqa.data.images import ImageError

    big = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # PIL refuses above twice its limit: 1200 > 1000
    with pytest.raises(ImageError) as caught:
        PristinePairs([big, big], crop_size=16)[0]
    assert str(caught.value).startswith(f"{big}: image too large (Image size (1200 pixels) exceeds limit of 1000 ")
    assert str(caught.value).endswith("; downscale it") and "--max-pixels" not in str(caught.value)
