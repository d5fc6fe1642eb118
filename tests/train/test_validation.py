import csv
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open
from tiny_arniqa import TinyARNIQA

from arniqa.evaluate.splits import random_splits
from arniqa.train.loop import Trainer
from arniqa.train.validation import build_validator

TWO_IMAGES = "data.max_images=2"  # one step an epoch


def step_of(path):
    with safe_open(str(path), framework="pt") as f:
        import json

        return json.loads(f.metadata()["arniqa"])["global_step"]


def test_keeps_the_best_epoch(tmp_path, short_run, tiny_model):
    scores = iter([0.3, 0.7, 0.5])
    seen = []

    def validate(model):
        seen.append(model.training)
        return {"srcc": next(scores)}

    final = Trainer(short_run(TWO_IMAGES), validate=validate).fit()
    run = tmp_path / "run"
    assert seen == [False, False, False]  # eval mode during validation
    assert step_of(run / "best.safetensors") == 2  # epoch 2 of 3 (one step each) scored best
    assert final.read_bytes() == (run / "best.safetensors").read_bytes()
    rows = list(csv.DictReader(open(run / "validation.csv")))
    assert [float(r["srcc"]) for r in rows] == [0.3, 0.7, 0.5] and [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert torch.load(run / "state.pt", weights_only=False)["best"] == 0.7


def test_a_nan_validation_is_never_the_best(tmp_path, short_run, tiny_model):
    """A NaN SRCC (constant predictions) compared False with every later score, so the first epoch's
    NaN stayed "best" and became the final model."""
    scores = iter([float("nan"), 0.4, 0.6])
    final = Trainer(short_run(TWO_IMAGES), validate=lambda model: {"srcc": next(scores)}).fit()
    run = tmp_path / "run"
    assert step_of(run / "best.safetensors") == 3 and final.read_bytes() == (run / "best.safetensors").read_bytes()
    assert torch.load(run / "state.pt", weights_only=False)["best"] == 0.6


def test_the_training_speed_logged_after_a_validation_leaves_the_validation_out(
    tmp_path, short_run, tiny_model, monkeypatch
):
    """The first samples/s after a validation counted the validation's time (0.017 samples/s logged in a probe).
    Each validation moves the loop's clock on by `pause` seconds, more than any step takes on a busy machine (a
    real 1.5 s sleep was less than a step there)."""
    import arniqa.train.loop as loop

    pause, skipped = 1000.0, []
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: time.perf_counter() + sum(skipped)))

    def validate(model):
        skipped.append(pause)
        return {"srcc": 0.5}

    config = short_run(TWO_IMAGES)
    Trainer(config, validate=validate).fit()
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 3  # one step an epoch, a validation after each
    seconds = [config.train.batch_size / float(r["samples_per_s"]) for r in rows]
    assert all(s < pause for s in seconds), seconds  # steps 2 and 3 came after a validation of `pause` seconds


def test_without_validation_the_last_model_is_kept(tmp_path, short_run, tiny_model):
    final = Trainer(short_run(TWO_IMAGES, "train.epochs=1")).fit()
    assert step_of(final) == 1 and not (tmp_path / "run" / "best.safetensors").exists()


N = 50  # images; random 70/10/20 splits give 5 of them to val
SCORES = 5 - 0.04 * np.arange(N) + np.random.default_rng(1).normal(0, 0.8, N)


def write_labelled(folder, official: bool):
    """N images of one texture blurred by increasing radius, with MOS that blur explains only in
    part (so the splits matter), in a csv dataset folder; with ``official``, split files as the
    reference ships them: 2 splits whose parts differ in size, rows right-padded with -1."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    texture = np.kron(rng.random((12, 12, 3)), np.ones((4, 4, 1))) * 200 + rng.random((48, 48, 3)) * 55
    base = Image.fromarray(texture.astype(np.uint8))
    rows = []
    for i in range(N):
        base.filter(ImageFilter.GaussianBlur(i * 0.08)).save(folder / f"blur{i}.png")
        rows.append({"path": f"blur{i}.png", "score": SCORES[i]})
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "score"])
        writer.writeheader()
        writer.writerows(rows)
    if official:
        parts = {"train": [], "val": [], "test": []}
        for seed, (n_train, n_val) in ((10, (35, 8)), (11, (34, 9))):
            perm = np.random.default_rng(seed).permutation(N)
            for name, rows in zip(parts, (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])):
                parts[name].append(rows)
        (folder / "splits").mkdir()
        for name, rows in parts.items():
            width = max(len(r) for r in rows)
            padded = np.array([np.pad(r, (0, width - len(r)), constant_values=-1) for r in rows], dtype=np.int64)
            np.save(folder / "splits" / f"{name}.npy", padded)
    return folder


def expected_srcc(features, scores, splits, alpha=0.1):
    """The reference's validation, written out with scikit-learn: ridge on crop rows of train,
    mean over each image's crops on val, SRCC, median over splits."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import Ridge

    _, crops, dim = features.shape
    values = []
    for train, val in splits:
        x = features[train].reshape(-1, dim).astype(np.float64)
        ridge = Ridge(alpha=alpha).fit(x, np.repeat(scores[train], crops))
        pred = ridge.predict(features[val].reshape(-1, dim).astype(np.float64)).reshape(len(val), crops).mean(1)
        values.append(spearmanr(pred, scores[val]).statistic)
    return float(np.median(values))


def split_files(folder):
    """(train, val) index arrays of every split in the .npy files, -1 padding dropped."""
    train, val = (np.load(folder / "splits" / f"{k}.npy") for k in ("train", "val"))
    return [(t[t >= 0], v[v >= 0]) for t, v in zip(train, val)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Both dataset folders, the model and its features (the project's extractor), shared by the tests."""
    from arniqa.evaluate.features import FeatureProtocol, extract_features

    tmp = tmp_path_factory.mktemp("labelled")
    official = write_labelled(tmp / "official", official=True)
    plain = write_labelled(tmp / "plain", official=False)
    torch.manual_seed(0)
    model = TinyARNIQA().eval()
    paths = [official / f"blur{i}.png" for i in range(N)]
    features = np.asarray(extract_features(model, paths, FeatureProtocol(crop_size=32), progress=False))
    return {"official": official, "plain": plain, "model": model, "features": features, "scores": SCORES}


def validation(root) -> list[str]:
    """The overrides of a validation on the csv dataset at ``root`` over 3 splits."""
    return [f"validation.datasets=[{{name: csv, root: {root}}}]", "validation.num_splits=3"]


def test_validator_uses_the_official_split_files(short_run, labelled):
    folder = labelled["official"]
    validate = build_validator(short_run(*validation(folder)).validation, torch.device("cpu"), crop_size=32)
    metrics = validate(labelled["model"])
    official = expected_srcc(labelled["features"], labelled["scores"], split_files(folder))
    random = expected_srcc(
        labelled["features"], labelled["scores"], [(s.train, s.val) for s in random_splits(N, n_splits=3, seed=0)]
    )
    assert abs(official - random) > 0.05  # the two choices are told apart
    assert set(metrics) == {"srcc", "csv"} and metrics["srcc"] == metrics["csv"]
    assert metrics["csv"] == pytest.approx(official, abs=1e-9)  # -1 read as the last image gives another value
    assert validate.splits == f"csv: official {folder / 'splits'} (2 splits)"


def test_validator_without_split_files_uses_seeded_random_splits(short_run, labelled):
    validate = build_validator(short_run(*validation(labelled["plain"])).validation, torch.device("cpu"), crop_size=32)
    splits = random_splits(N, n_splits=3, seed=0)
    assert all(len(s.val) == 5 for s in splits)
    expected = expected_srcc(labelled["features"], labelled["scores"], [(s.train, s.val) for s in splits])
    assert validate(labelled["model"])["csv"] == pytest.approx(expected, abs=1e-9)
    assert validate.splits == "csv: 3 random 70/10/20 splits, per image, seed 0"


@pytest.mark.parametrize("kind", ["official", "plain"])
def test_validation_csv_and_run_log_say_which_splits(tmp_path, short_run, labelled, tiny_model, kind):
    folder = labelled[kind]
    Trainer(short_run(TWO_IMAGES, "train.epochs=1", *validation(folder))).fit()
    said = (
        f"official {folder / 'splits'} (2 splits)"
        if kind == "official"
        else "3 random 70/10/20 splits, per image, seed 0"
    )
    rows = list(csv.DictReader(open(tmp_path / "run" / "validation.csv")))
    assert len(rows) == 1 and rows[0]["splits"] == f"csv: {said}"
    assert math.isfinite(float(rows[0]["csv"]))
    assert f"validation splits: csv: {said}" in (tmp_path / "run" / "run.log").read_text()
