"""Ridge path and alpha search against scikit-learn's Ridge refitted per alpha."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Ridge

from arniqa.evaluate.probe import crop_rows, evaluate, fit, per_type_srcc, predict, validation_srcc
from arniqa.evaluate.ridge import ALPHAS, RidgePath, gram
from arniqa.evaluate.splits import random_splits


def _data(n_images, n_crops, dim, seed=0, noise=2.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=dim)
    feats = rng.normal(size=(n_images, n_crops, dim)).astype(np.float32)
    scores = feats.astype(np.float64).mean(axis=1) @ w + rng.normal(scale=noise, size=n_images)
    return feats, scores


@pytest.mark.parametrize("n,d", [(60, 8), (12, 40)])  # primal (n > d) and dual (n < d)
def test_path_matches_sklearn(n, d):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d)) + 3.0  # off-centre, so the intercept matters
    y = X @ rng.normal(size=d) + rng.normal(size=n) + 7.0
    alphas = [1e-3, 0.3, 50.0]
    path = RidgePath(X, y)
    coefs = path.coefs(alphas)
    for k, a in enumerate(alphas):
        ref = Ridge(alpha=a).fit(X, y)
        np.testing.assert_allclose(coefs[:, k], ref.coef_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(path.intercepts(coefs)[k], ref.intercept_, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(path.predict(X, alphas)[:, k], ref.predict(X), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_alphas_that_are_not_positive_and_finite_are_refused(alpha):
    """NaN gave NaN predictions and inf constant ones, without a word."""
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10.0)
    with pytest.raises(ValueError, match="ridge alphas must be positive and finite"):
        RidgePath(X, y).predict(X, [0.1, alpha])


def test_rows_and_precomputed_gram_agree():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 6)).astype(np.float32)
    y = rng.normal(size=50)
    rows = np.arange(0, 50, 2)
    rest = np.setdiff1d(np.arange(50), rows)
    direct = RidgePath(X, y, rows).coefs([0.5])
    via_total = RidgePath(X, y, rows, gram(X) - gram(X, rest)).coefs([0.5])
    ref = Ridge(alpha=0.5).fit(X[rows].astype(np.float64), y[rows]).coef_
    np.testing.assert_allclose(direct[:, 0], ref, rtol=1e-7)
    np.testing.assert_allclose(via_total[:, 0], ref, rtol=1e-7)


def _sklearn_search(feats, scores, splits, alphas):
    """The reference procedure: refit Ridge per alpha and split; median val SRCC; crop means."""
    n, c, d = feats.shape
    X = feats.reshape(-1, d).astype(np.float64)
    y = np.repeat(scores, c)
    med = []
    for a in alphas:
        vals = []
        for s in splits:
            model = Ridge(alpha=a).fit(X[crop_rows(s.train, c)], y[crop_rows(s.train, c)])
            pred = model.predict(X[crop_rows(s.val, c)]).reshape(-1, c).mean(axis=1)
            vals.append(stats.spearmanr(pred, scores[s.val])[0])
        med.append(np.median(vals))
    best = int(np.argmax(med))
    tests = []
    for s in splits:
        model = Ridge(alpha=alphas[best]).fit(X[crop_rows(s.train, c)], y[crop_rows(s.train, c)])
        tests.append(model.predict(X[crop_rows(s.test, c)]).reshape(-1, c).mean(axis=1))
    return best, np.array(med), tests


@pytest.mark.parametrize("n_images,dim", [(80, 12), (40, 300)])  # crop rows n > d and n < d
def test_alpha_search_matches_sklearn(n_images, dim):
    feats, scores = _data(n_images, 5, dim, seed=n_images)
    groups = np.repeat(np.arange(n_images // 4), 4)  # reference-disjoint splits, like a synthetic set
    splits = random_splits(n_images, n_splits=4, seed=3, groups=groups)
    alphas = np.geomspace(1e-3, 1e3, 25)
    result = evaluate(feats, scores, splits, alphas)
    best, med, tests = _sklearn_search(feats, scores, splits, alphas)
    assert result.alpha_index == best
    np.testing.assert_allclose(np.median(result.val_srcc, axis=0), med, atol=1e-10)
    for ours, ref in zip(result.test_predictions, tests):
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)
    for m, s, ref in zip(result.split_metrics, splits, tests):
        assert m["srcc"] == pytest.approx(stats.spearmanr(ref, scores[s.test])[0], abs=1e-9)


def test_validation_srcc_and_full_fit():
    feats, scores = _data(60, 3, 10, seed=5)
    splits = random_splits(60, n_splits=3, seed=0)
    X = feats.reshape(-1, 10).astype(np.float64)
    y = np.repeat(scores, 3)
    vals = []
    for s in splits:
        m = Ridge(alpha=0.1).fit(X[crop_rows(s.train, 3)], y[crop_rows(s.train, 3)])
        vals.append(stats.spearmanr(m.predict(X[crop_rows(s.val, 3)]).reshape(-1, 3).mean(1), scores[s.val])[0])
    assert validation_srcc(feats, scores, splits, alpha=0.1) == pytest.approx(np.median(vals), abs=1e-10)
    coef, intercept = fit(feats, scores, 2.0)
    ref = Ridge(alpha=2.0).fit(X, y)
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-7)
    np.testing.assert_allclose(predict(feats, coef, intercept), ref.predict(X).reshape(-1, 3).mean(1), rtol=1e-8)


def test_no_progress_prints_nothing(capsys):
    """Without progress the bar over the splits writes nothing (rich before 14.3 wrote an empty line)."""
    feats, scores = _data(40, 2, 5, seed=1)
    evaluate(feats, scores, random_splits(40, n_splits=2), alphas=[0.1], progress=False)
    assert capsys.readouterr() == ("", "")


def test_signal_is_found():
    # Strong linear signal: the chosen model must correlate well on held-out images.
    feats, scores = _data(200, 2, 5, seed=9, noise=0.3)
    result = evaluate(feats, scores, random_splits(200, n_splits=3), np.geomspace(1e-3, 1e3, 10))
    assert result.summary["srcc"]["median"] > 0.8


def test_validation_srcc_accepts_per_image_tensors():
    import torch

    feats, scores = _data(60, 1, 10, seed=6)
    splits = random_splits(60, n_splits=2, seed=1)
    expected = validation_srcc(feats, scores, splits, alpha=0.1)
    assert validation_srcc(torch.from_numpy(feats[:, 0]), scores, splits) == expected


def test_gram_over_many_blocks_equals_numpy():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 6)).astype(np.float32) + 2.0
    rows = rng.permutation(50)[:37]  # unsorted, 6 blocks of 7 and a part block
    xr = X[rows].astype(np.float64)
    np.testing.assert_allclose(gram(X, rows, chunk=7), xr.T @ xr, rtol=1e-12)
    np.testing.assert_allclose(gram(X, chunk=7), gram(X), rtol=1e-12)  # all rows, any block size


def test_path_and_predictions_over_several_4096_row_blocks():
    # 9,500 of 10,000 rows in shuffled order: the sums, the Gram and the predictions each run over
    # three 4096-row blocks (the last one partial).
    rng = np.random.default_rng(8)
    n, d = 10_000, 5
    X = (rng.normal(size=(n, d)) * [1, 2, 3, 4, 5] + 3.0).astype(np.float32)
    y = X.astype(np.float64) @ rng.normal(size=d) + rng.normal(size=n) + 7.0
    rows = rng.permutation(n)[:9_500]
    alphas = ALPHAS[::9]  # 12 alphas across the reference grid
    path = RidgePath(X, y, rows)
    via_gram = RidgePath(X, y, rows, gram(X, rows, chunk=7))
    coefs, others = path.coefs(alphas), via_gram.coefs(alphas)
    predicted = path.predict(X, alphas)  # all 10,000 rows
    held_out = np.setdiff1d(np.arange(n), rows)
    order = rng.permutation(n)[:5_000]  # a row selection larger than one block
    for k, a in enumerate(alphas):
        ref = Ridge(alpha=a).fit(X[rows].astype(np.float64), y[rows])
        np.testing.assert_allclose(coefs[:, k], ref.coef_, rtol=1e-8)
        np.testing.assert_allclose(others[:, k], ref.coef_, rtol=1e-8)
        np.testing.assert_allclose(path.intercepts(coefs)[k], ref.intercept_, rtol=1e-9)
        np.testing.assert_allclose(predicted[:, k], ref.predict(X.astype(np.float64)), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(
            path.predict(X, [a], order)[:, 0], ref.predict(X[order].astype(np.float64)), rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            path.predict(X, [a], held_out)[:, 0], ref.predict(X[held_out].astype(np.float64)), rtol=1e-9, atol=1e-9
        )


def test_protocol_fit_and_predict_over_several_blocks():
    # 2,000 images x 5 crops = 10,000 rows: predict() runs in blocks of 819 images.
    feats, scores = _data(2_000, 5, 4, seed=10, noise=0.5)
    X, y = feats.reshape(-1, 4).astype(np.float64), np.repeat(scores, 5)
    ref = Ridge(alpha=0.1).fit(X, y)
    coef, intercept = fit(feats, scores, 0.1)
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-8)
    assert intercept == pytest.approx(ref.intercept_, rel=1e-9)
    np.testing.assert_allclose(predict(feats, coef, intercept), ref.predict(X).reshape(-1, 5).mean(1), rtol=1e-9)


def test_the_default_alpha_grid_is_the_references():
    """100 log-spaced alphas from 1e-3 to 1e3 (np.geomspace(1e-3, 1e3, 100) in the reference's test.py), written
    as its closed form: 1e-3 * 10 ** (6 k / 99)."""
    grid = 1e-3 * 10.0 ** (6 * np.arange(100) / 99)
    np.testing.assert_allclose(ALPHAS, grid, rtol=1e-12)
    feats, scores = _data(40, 2, 4, seed=2)
    result = evaluate(feats, scores, random_splits(40, n_splits=2, seed=0))  # no alphas given: the grid
    np.testing.assert_allclose(result.alphas, grid, rtol=1e-12)
    assert result.val_srcc.shape == (2, 100)


def test_nan_scores_and_no_splits_are_refused():
    """A NaN score made every metric and the fitted regressor NaN without a word; no split at all gave NaN
    medians (and numpy's warnings) as results."""
    feats, scores = _data(30, 2, 4)
    splits = random_splits(30, n_splits=2)
    scores[7] = np.nan
    for run in (lambda: evaluate(feats, scores, splits), lambda: validation_srcc(feats, scores, splits)):
        with pytest.raises(ValueError, match=r"^score nan of image 7 is not finite$"):
            run()
    scores[7] = 1.0
    for run in (lambda: evaluate(feats, scores, []), lambda: validation_srcc(feats, scores, [])):
        with pytest.raises(ValueError, match="^no splits to evaluate on$"):
            run()
    with pytest.raises(ValueError, match="^30 feature rows but 1 score$"):
        evaluate(feats, scores[:1], splits)


def test_per_type_rows_leave_out_images_without_a_type():
    """A custom CSV's empty distortion cells made a row named 'None'. Those images are now in no row; each type's
    row is the median over splits of scipy's SRCC and PLCC on its test images."""
    feats, scores = _data(90, 2, 4, seed=3, noise=0.5)
    types = ["blur", "noise", None] * 30
    ev = evaluate(feats, scores, random_splits(90, n_splits=3, seed=1), alphas=[0.1])
    got = per_type_srcc(ev, scores, types)
    assert set(got) == {"blur", "noise"}
    for name in got:
        srcc, plcc = [], []
        for pred, split in zip(ev.test_predictions, ev.splits):
            test = [i for i in split.test if types[i] == name]
            mine = pred[[k for k, i in enumerate(split.test) if types[i] == name]]
            srcc.append(stats.spearmanr(mine, scores[test])[0])
            plcc.append(stats.pearsonr(mine, scores[test])[0])
        assert got[name]["srcc"] == pytest.approx(np.median(srcc)) and got[name]["plcc"] == pytest.approx(
            np.median(plcc)
        )
        assert got[name]["splits"] == 3


def test_per_type_rows_fit_no_logistic_curve_and_warn_of_none(monkeypatch):
    """Each type's rows were computed with the logistic fit too, whose PLCC is not reported per type: on a type's
    few test images the fit failed and `arniqa evaluate` warned 'logistic fit failed; plcc_logistic is NaN' though
    every reported number was there (and spent up to 20,000 calls of the curve per type and split)."""
    feats, scores = _data(60, 2, 4, seed=5, noise=0.5)
    types = ["blur", "noise", "jpeg"] * 20
    ev = evaluate(feats, scores, random_splits(60, n_splits=3, seed=2), alphas=[0.1])

    def no_fit(*args):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr("arniqa.evaluate.metrics.fit_logistic", no_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = per_type_srcc(ev, scores, types)
    assert set(got) == {"blur", "noise", "jpeg"} and all(set(row) == {"srcc", "plcc", "splits"} for row in got.values())
