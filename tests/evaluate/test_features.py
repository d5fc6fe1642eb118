"""Feature extraction: protocol (crops, half scale, pre-resize), on-disk cache, resume, bad files."""

import errno
import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arniqa.evaluate.cache_files import allocate
from arniqa.evaluate.features import FeatureError, FeatureProtocol, extract_features, resize_short_side

_spec = importlib.util.spec_from_file_location("_eval_conftest", Path(__file__).with_name("conftest.py"))
_conf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conf)
Counting, StandIn = _conf.Counting, _conf.StandIn

S = 16  # crop size for the tests


def _manual_crops(arr: np.ndarray, s: int) -> np.ndarray:
    """Centre, top-left, bottom-left, top-right, bottom-right crops with zero fill, by plain slicing."""
    h, w = arr.shape[:2]
    pad = np.zeros((h + 2 * s, w + 2 * s, 3), dtype=arr.dtype)
    pad[s : s + h, s : s + w] = arr
    tops = [(h // 2 - s // 2, w // 2 - s // 2), (0, 0), (h - s, 0), (0, w - s), (h - s, w - s)]
    return np.stack([pad[t + s : t + 2 * s, x + s : x + 2 * s] for t, x in tops])


def _expected(model, path, s, short=None):
    img = Image.open(path).convert("RGB")
    if short:
        w, h = img.size
        k = short / min(w, h)
        img = img.resize((int(w * k), int(h * k)), Image.BICUBIC)
    half = img.resize((img.size[0] // 2, img.size[1] // 2), Image.BICUBIC)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    full_c, half_c = to_t(_manual_crops(np.asarray(img), s)), to_t(_manual_crops(np.asarray(half), s))
    with torch.no_grad():
        return model.quality_features(full_c, half_c).numpy()


def test_protocol_matches_plain_computation(stand_in, image_files):
    feats = extract_features(stand_in, image_files, FeatureProtocol(crop_size=S), batch_size=3, progress=False)
    assert feats.shape == (7, 5, 12) and feats.dtype == np.float32
    for i, p in enumerate(image_files):
        np.testing.assert_allclose(feats[i], _expected(stand_in, p, S), rtol=1e-5, atol=1e-6)


def test_short_side_resize(stand_in, image_files):
    assert resize_short_side(Image.new("RGB", (90, 61)), 32).size == (47, 32)  # 90*32/61 = 47.2 -> 47
    assert resize_short_side(Image.new("RGB", (61, 90)), 32).size == (32, 47)
    proto = FeatureProtocol(crop_size=S, short_side=30)
    feats = extract_features(stand_in, image_files[:2], proto, progress=False)
    for i, p in enumerate(image_files[:2]):
        np.testing.assert_allclose(feats[i], _expected(stand_in, p, S, short=30), rtol=1e-5, atol=1e-6)


def test_cache_reuse_and_key(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    first = Counting(stand_in)
    a = np.array(extract_features(first, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False))
    assert first.calls == 4
    again = Counting(stand_in)
    b = extract_features(again, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False)
    assert again.calls == 0
    np.testing.assert_array_equal(a, b)
    # other weights, another protocol, or another image list: a different cache entry
    other = Counting(StandIn(gain=2.0))
    c = extract_features(other, image_files, proto, cache_dir=tmp_path / "c", batch_size=2, progress=False)
    assert other.calls == 4
    np.testing.assert_allclose(c, 2 * a, rtol=1e-6)
    proto2 = Counting(stand_in)
    extract_features(proto2, image_files, FeatureProtocol(crop_size=8), cache_dir=tmp_path / "c", progress=False)
    assert proto2.calls > 0
    assert len(list((tmp_path / "c").iterdir())) == 3


def test_resume_after_interruption(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(stand_in, image_files, proto, batch_size=2, progress=False)
    broken = Counting(stand_in, stop_at=3)  # dies in the 3rd batch: images 0-3 are done
    with pytest.raises(KeyboardInterrupt):
        extract_features(broken, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    resumed = Counting(stand_in)
    out = extract_features(resumed, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    assert resumed.calls == 2  # images 4-5 and 6 only
    np.testing.assert_allclose(out, reference, rtol=1e-6)


def test_more_than_five_bad_images_say_how_many_more_and_where_all_are(stand_in, image_files, tmp_path):
    """Seven unreadable images were 'could not be read: ' five of them, the other two unsaid (the count said 7)."""
    for path in image_files:
        path.write_bytes(b"")
    with pytest.raises(FeatureError) as info:
        extract_features(stand_in, image_files, FeatureProtocol(crop_size=S), cache_dir=tmp_path / "c", progress=False)
    [errors] = (tmp_path / "c").glob("*/errors.json")
    assert sorted(json.loads(errors.read_text())) == [str(i) for i in range(7)]
    assert f"im4.png: empty file (0 bytes); copy or download it again; and 2 more (all in {errors}) (the " in str(
        info.value
    )
    assert "im5.png" not in str(info.value)


def test_bad_image_is_reported_and_retried(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    good = image_files[3].read_bytes()
    image_files[3].write_bytes(good[:40])  # truncated PNG
    with pytest.raises(FeatureError, match="im3.png"):
        extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    image_files[3].write_bytes(good)
    retry = Counting(stand_in)
    out = extract_features(retry, image_files, proto, cache_dir=tmp_path, batch_size=2, progress=False)
    assert retry.calls == 1
    np.testing.assert_allclose(out[3], _expected(stand_in, image_files[3], S), rtol=1e-5, atol=1e-6)


def test_arniqa_resnet50_small_crops(image_files):
    from arniqa.models import ARNIQA

    torch.manual_seed(0)
    model = ARNIQA("resnet50")
    feats = extract_features(model, image_files[:2], FeatureProtocol(crop_size=32), batch_size=2, progress=False)
    assert feats.shape == (2, 5, 4096)
    np.testing.assert_allclose(np.linalg.norm(feats[..., :2048], axis=-1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(feats[..., 2048:], axis=-1), 1.0, rtol=1e-4)


class _Hostile:
    """Unpickling it creates the file ``marker`` (pickle calls ``open(marker, "w")``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _cut_in_half(entry, marker):  # 3 of 7 images stay whole
    data = (entry / "features.npy").read_bytes()
    (entry / "features.npy").write_bytes(data[: len(data) // 2])


def _not_finite(entry, marker):
    feats = np.load(entry / "features.npy")
    feats[3, 2, 5], feats[5, 0, 0] = np.nan, -np.inf
    np.save(entry / "features.npy", feats)


def _other_shape(entry, marker):
    np.save(entry / "features.npy", np.zeros((7, 3, 12), dtype=np.float32))


def _float64(entry, marker):  # the right values in a type this code never writes: foreign, computed again
    np.save(entry / "features.npy", np.load(entry / "features.npy").astype(np.float64))


def _garbage(name):
    def damage(entry, marker):
        (entry / name).write_bytes(np.random.default_rng(1).bytes(3000))

    return damage


def _pickled(name):
    def damage(entry, marker):
        hostile = np.empty(7, dtype=object)
        hostile[:] = [_Hostile(marker)] * 7
        np.save(entry / name, hostile, allow_pickle=True)
        np.load(entry / name, allow_pickle=True)  # read unsafely, the file runs its code
        marker.unlink()

    return damage


@pytest.mark.parametrize(
    "damage, kept",
    [
        (_cut_in_half, [0, 1, 2]),
        (_not_finite, [0, 1, 2, 4, 6]),
        (_other_shape, []),
        (_float64, []),
        (_garbage("features.npy"), []),
        (_garbage("status.npy"), []),
        (_pickled("features.npy"), []),
        (_pickled("status.npy"), []),
        (_garbage("stamps.npy"), []),
        (_pickled("stamps.npy"), []),
    ],
    ids=[
        "cut-off",
        "nan-inf",
        "shape",
        "float64",
        "garbage-features",
        "garbage-status",
        "pickle-f",
        "pickle-s",
        "garbage-stamps",
        "pickle-stamps",
    ],  # fmt: skip
)
def test_a_damaged_cache_is_computed_again_keeping_intact_images(damage, kept, stand_in, image_files, tmp_path, capsys):
    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(stand_in, image_files, proto, progress=False)
    extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    damage(entry, tmp_path / "marker")
    capsys.readouterr()
    again = Counting(stand_in)
    out = extract_features(again, image_files, proto, cache_dir=tmp_path / "c", batch_size=1, progress=False)
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    assert again.calls == 7 - len(kept)  # one image a batch: the intact ones are not computed again
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {entry}: damaged feature cache (")
    assert lines[0].endswith(f"; computing {7 - len(kept)} images again")  # 2 to 7
    assert not (tmp_path / "marker").exists()  # nothing was unpickled
    clean = Counting(stand_in)  # the entry is whole again
    np.testing.assert_array_equal(extract_features(clean, image_files, proto, cache_dir=tmp_path / "c"), out)
    assert clean.calls == 0 and capsys.readouterr().err.count("warning") == 0


def test_a_cache_folder_named_with_control_characters_is_warned_of_on_one_line(stand_in, image_files, tmp_path, capsys):
    """A newline or a terminal escape in the cache folder's name split the warning or cleared the terminal."""
    proto = FeatureProtocol(crop_size=S)
    cache = tmp_path / "c\n\x1b[2J"
    extract_features(stand_in, image_files, proto, cache_dir=cache, progress=False)
    (entry,) = cache.iterdir()
    (entry / "status.npy").write_bytes(b"garbage")
    capsys.readouterr()
    extract_features(stand_in, image_files, proto, cache_dir=cache, progress=False)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert err.startswith(f"warning: {tmp_path}/c\\x0a\\x1b[2J/{entry.name}: damaged feature cache (")


@pytest.mark.parametrize("name", ["features.npy", "status.npy", "stamps.npy", "errors.json", "meta.json"])
def test_a_folder_in_place_of_a_cache_file_is_a_one_line_error(name, stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    extract_features(stand_in, image_files, proto, cache_dir=tmp_path, progress=False)
    (entry,) = (p for p in tmp_path.iterdir() if p.is_dir() and p.name != "imgs")
    (entry / name).unlink()
    (entry / name / "kept").mkdir(parents=True)
    message = f"{entry}: damaged feature cache ({name} is not a file); delete that folder and rerun"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        extract_features(stand_in, image_files, proto, cache_dir=tmp_path, progress=False)
    assert (entry / name / "kept").is_dir()  # nothing of the user's removed


@pytest.mark.parametrize("there", [False, True], ids=["dangling", "to-a-file"])
@pytest.mark.parametrize("name", ["features.npy", "status.npy", "stamps.npy", "errors.json", "meta.json"])
def test_a_link_in_place_of_a_cache_file_is_a_one_line_error_writing_nothing_through_it(
    name, there, stand_in, image_files, tmp_path
):
    """A link planted in a shared cache had the run write features into the file it names, or create it."""
    proto = FeatureProtocol(crop_size=S)
    extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    target = tmp_path / "someone's file"
    if there:
        target.write_bytes((entry / name).read_bytes())
    (entry / name).unlink()
    (entry / name).symlink_to(target)
    if name != "status.npy":  # one image to compute: its features would be written
        np.save(entry / "status.npy", np.array([1, 1, 1, 0, 1, 1, 1], np.uint8))
    before = target.read_bytes() if there else None
    message = f"{entry}: damaged feature cache ({name} is a symbolic link); delete that folder and rerun"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    assert (target.read_bytes() == before) if there else not target.exists()


def test_a_features_header_declaring_a_huge_width_is_computed_again_without_growing_the_file(
    stand_in, image_files, tmp_path, capsys
):
    """A cut-off file was grown to the size its header declares: (7, 5, 10**11) is 14 TB, and posix_fallocate filled
    the disk (34 GB) before it failed. Here 10**6 (140 MB): safe to run on the code before."""
    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(stand_in, image_files, proto, progress=False)
    extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    with open(entry / "features.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (7, 5, 10**6)})
    capsys.readouterr()
    out = extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    assert (entry / "features.npy").stat().st_size < 4096  # 7 x 5 x 12 float32 and a header
    assert "(features.npy is cut off (7 images missing)); computing 7 images again" in capsys.readouterr().err


def test_features_of_another_width_are_refused_when_this_model_writes(stand_in, image_files, tmp_path):
    proto = FeatureProtocol(crop_size=S)
    extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    np.save(entry / "features.npy", np.ones((7, 5, 10), dtype=np.float32))  # finite, whole, not this model's
    np.save(entry / "status.npy", np.array([1, 1, 1, 1, 1, 1, 0], dtype=np.uint8))
    message = (
        f"{entry}: damaged feature cache (features of shape (5, 10), this model gives (5, 12)); delete that folder"
    )
    message += " and rerun"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)


def test_an_image_changed_since_its_features_were_cached_is_computed_again(stand_in, image_files, tmp_path, capsys):
    """A dataset re-downloaded or edited under the same names kept the old images' features: the results were those
    of images no longer on disk, silently (the cache key holds the paths, not the files)."""
    proto = FeatureProtocol(crop_size=S)
    extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    Image.open(image_files[0]).transpose(Image.Transpose.ROTATE_180).save(image_files[2])  # other pixels, same name
    capsys.readouterr()
    again = Counting(stand_in)
    out = extract_features(again, image_files, proto, cache_dir=tmp_path / "c", batch_size=1, progress=False)
    np.testing.assert_allclose(out, extract_features(stand_in, image_files, proto, progress=False), rtol=1e-6)
    assert again.calls == 1  # only the changed image
    assert capsys.readouterr().err == (
        f"warning: {entry}: image files changed (size or modification time) since their features were cached; "
        "computing 1 image again\n"
    )
    (entry / "stamps.npy").unlink()  # an entry written before stamps were kept: its features are used as they are
    kept = Counting(stand_in)
    np.testing.assert_array_equal(
        extract_features(kept, image_files, proto, cache_dir=tmp_path / "c", progress=False), out
    )
    assert kept.calls == 0 and capsys.readouterr().err == "" and (entry / "stamps.npy").is_file()


def test_the_cache_file_gets_its_disk_blocks_before_any_feature_is_written(tmp_path):
    """The features are written through a memory map: a page without a block, on a full disk, is a SIGBUS that
    kills the process (tests/reliability/test_disk_full.py). Before, the file was sparse: blocks for its first and
    last page only."""
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no preallocation on this system")
    features = allocate(tmp_path, 1000, (5, 12))
    size = os.path.getsize(tmp_path / "features.npy")
    assert size == features.offset + 1000 * 5 * 12 * 4 and os.stat(tmp_path / "features.npy").st_blocks * 512 >= size


def test_the_progress_bar_writes_nothing_off_a_terminal(stand_in, image_files, tmp_path, capsys, monkeypatch):
    """`arniqa evaluate 2> log`: the features' bar drew its last frame into the log (progress=True is evaluate's);
    off a terminal a bar now writes nothing (utils/console.progress_bar, every verb's rule)."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    proto = FeatureProtocol(crop_size=S)
    for cache in (None, tmp_path / "c"):  # the two paths that draw the bar
        extract_features(stand_in, image_files, proto, cache_dir=cache, batch_size=2, progress=True)
        assert capsys.readouterr() == ("", "")


# A job computing the features of its images (argv: cache, seconds per batch, images) into one shared cache:
# StandIn, slowed down so that another job reaches the cache meanwhile; "batch" on stdout as each batch starts.
COMPUTING = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import StandIn
from arniqa.evaluate.features import FeatureProtocol, extract_features

class Slow(StandIn):
    def quality_features(self, full, half):
        print("batch", flush=True)
        time.sleep(float(sys.argv[2]))
        return super().quality_features(full, half)

extract_features(Slow(), sys.argv[3:], FeatureProtocol(crop_size={S}), cache_dir=sys.argv[1], batch_size=2,
                 progress=False, fingerprint="f" * 64)
"""


def _computing(cache: Path, delay: float, paths: list[Path], batches: int):
    """A job computing the features of ``paths`` into ``cache``, returned once it has started ``batches`` batches
    (it holds the entry's lock, the batches before the last stored)."""
    import subprocess
    import sys

    code = COMPUTING.format(tests=str(Path(__file__).parent), S=S)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(os.path.abspath, sys.path)), "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        [sys.executable, "-c", code, str(cache), str(delay), *map(str, paths)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    for _ in range(batches):
        assert job.stdout.readline() == "batch\n"
    return job


def test_jobs_on_one_cache_compute_the_features_once(stand_in, image_files, tmp_path, capsys):
    """A sweep's second `arniqa evaluate` of the same model and dataset on one shared cache stopped at once ('... is
    in use by another arniqa process ...'). It now says once that it waits, then reads the first job's features."""
    job = _computing(tmp_path / "c", 0.3, image_files, 1)
    second = Counting(stand_in)
    out = extract_features(
        second,
        image_files,
        FeatureProtocol(crop_size=S),
        cache_dir=tmp_path / "c",
        progress=False,
        fingerprint="f" * 64,
    )
    assert job.wait(timeout=60) == 0
    (entry,) = (tmp_path / "c").iterdir()
    assert second.calls == 0  # nothing computed again
    np.testing.assert_allclose(out, extract_features(stand_in, image_files, FeatureProtocol(crop_size=S)), rtol=1e-6)
    assert (
        capsys.readouterr().err
        == f"waiting for another arniqa process (pid {job.pid}) computing the features in {entry}\n"
    )


def test_a_job_waiting_for_one_killed_mid_extraction_goes_on_from_where_it_stopped(stand_in, image_files, tmp_path):
    """The job waited for is killed (SIGKILL: a scheduler's time limit): the waiting one takes the cache over, its
    lock file included, and computes only the images the killed one had not stored."""
    import threading

    job = _computing(tmp_path / "c", 1.0, image_files, 2)  # images 0 and 1 stored, 2 and 3 under way
    threading.Timer(0.3, job.kill).start()
    second = Counting(stand_in)
    out = extract_features(
        second,
        image_files,
        FeatureProtocol(crop_size=S),
        cache_dir=tmp_path / "c",
        batch_size=2,
        progress=False,
        fingerprint="f" * 64,
    )
    assert job.wait(timeout=60) == -9
    assert second.calls <= 3  # images 0 and 1 at least taken from the cache (all 7: 4 batches of 2)
    np.testing.assert_allclose(out, extract_features(stand_in, image_files, FeatureProtocol(crop_size=S)), rtol=1e-6)
    (entry,) = (tmp_path / "c").iterdir()
    assert not (entry / ".arniqa.lock").exists()


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES])
def test_a_complete_entry_of_a_cache_this_user_cannot_write_is_read(err, stand_in, image_files, tmp_path, monkeypatch):
    """A lab's shared feature cache mounted read-only (or another user's) holding every feature of the dataset:
    `arniqa evaluate` stopped at once, unable to make the entry's lock file. It now reads the features, writing
    nothing; an entry it would have to complete (an image changed since) is still the error it was."""
    import arniqa.utils.locks as locks

    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path / "c", progress=False)
    (entry,) = (tmp_path / "c").iterdir()
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in entry.iterdir()}

    def read_only(name):
        raise OSError(err, os.strerror(err), str(name))

    monkeypatch.setattr(locks, "_open_lock", read_only)
    again = Counting(stand_in)
    np.testing.assert_array_equal(extract_features(again, image_files, proto, cache_dir=tmp_path / "c"), reference)
    assert again.calls == 0
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in entry.iterdir()} == before
    Image.open(image_files[0]).transpose(Image.Transpose.ROTATE_180).save(image_files[2])
    with pytest.raises(OSError) as info:
        extract_features(again, image_files, proto, cache_dir=tmp_path / "c")
    assert info.value.errno == err and again.calls == 0


def test_a_cache_on_a_file_system_without_locks_is_read_never_written(
    stand_in, image_files, tmp_path, monkeypatch, capsys
):
    """A cache on an NFS mount without its lock service (flock: ENOLCK): two jobs writing one entry unlocked could
    leave one's features zeroed by the other's new file yet marked done. The features are computed in memory there,
    with one warning line; an entry complete already is read."""
    import fcntl

    proto = FeatureProtocol(crop_size=S)
    reference = extract_features(stand_in, image_files, proto)

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = extract_features(stand_in, image_files, proto, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    assert list((tmp_path / "c").glob("*/*")) == []  # no features written (nor the lock file no one took)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: {tmp_path / 'c'}/") and line.endswith(
        ": the file system has no locks; computing the features without caching them (a cache folder on a local "
        "disk keeps them)"
    )
    monkeypatch.undo()
    extract_features(Counting(stand_in), image_files, proto, cache_dir=tmp_path / "c", progress=False)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    again = Counting(stand_in)
    np.testing.assert_allclose(extract_features(again, image_files, proto, cache_dir=tmp_path / "c"), reference)
    assert again.calls == 0 and capsys.readouterr().err == ""
