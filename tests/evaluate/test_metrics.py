"""Correlation metrics against scipy and an independent formula; the 4-parameter logistic fit."""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from arniqa.evaluate.metrics import correlations, fit_logistic, logistic4, srcc_columns, summarise


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = np.round(2 * x + rng.normal(size=200), 1)  # ties in y
    c = correlations(x, y)
    assert c["srcc"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert c["plcc"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert c["krcc"] == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)


def test_srcc_columns_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    pred = np.round(rng.normal(size=(50, 4)), 1)
    y = np.round(rng.normal(size=50), 1)
    expected = [stats.spearmanr(pred[:, k], y)[0] for k in range(4)]
    np.testing.assert_allclose(srcc_columns(pred, y), expected, atol=1e-12)
    const = np.ones((50, 1))
    assert np.isnan(srcc_columns(const, y)[0])


def test_logistic_fit_recovers_parameters():
    rng = np.random.default_rng(2)
    x = np.linspace(-3, 5, 400)
    true = (4.5, 1.2, 1.0, 0.8)
    y = (true[0] - true[1]) / (1 + np.exp(-(x - true[2]) / true[3])) + true[1]  # written out independently
    params = fit_logistic(x, y + rng.normal(scale=0.01, size=x.size))
    params[3] = abs(params[3])
    np.testing.assert_allclose(params, true, rtol=0.03, atol=0.03)
    np.testing.assert_allclose(logistic4(x, *true), y, atol=1e-12)
    # a monotone non-linearity: logistic PLCC beats raw PLCC and is close to 1
    c = correlations(x, y)
    assert c["plcc_logistic"] > c["plcc"] and c["plcc_logistic"] > 0.999
    assert c["srcc"] == pytest.approx(1.0)


def test_degenerate_inputs_and_summary():
    assert np.isnan(correlations([1, 1, 1, 1], [1, 2, 3, 4])["srcc"])
    with pytest.raises(ValueError, match="3 predictions for 2 scores"):
        correlations([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="^1 prediction for 2 scores$"):
        correlations([1], [1, 2])
    s = summarise([0.1, 0.5, 0.3, 0.9])
    assert s == {
        "median": pytest.approx(0.4),
        "mean": pytest.approx(0.45),
        "std": pytest.approx(np.std([0.1, 0.5, 0.3, 0.9])),
    }


def test_three_points_give_the_rank_correlations_and_no_logistic_fit():
    """A test part of 3 images (a small set's 20 %) stopped `arniqa evaluate` with scipy's TypeError: the
    logistic has 4 parameters. Its PLCC is undefined (NaN, n/a in the tables); the others are computed."""
    pred, target = [0.1, 0.5, 0.3], [1.0, 3.0, 2.5]
    c = correlations(pred, target)
    assert c["srcc"] == pytest.approx(1.0) and c["krcc"] == pytest.approx(1.0)  # same order
    assert c["plcc"] == pytest.approx(np.corrcoef(pred, target)[0, 1], abs=1e-12)
    assert np.isnan(c["plcc_logistic"])
    assert not np.isnan(correlations([0.1, 0.5, 0.3, 0.7], [1.0, 3.0, 2.5, 4.0])["plcc_logistic"])


def _exact_pearson(x, y) -> float:
    """Pearson's r of the float values as given, in exact rational arithmetic up to the final square root."""
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((a - mx) * (b - my) for a, b in zip(xs, ys))
    return float(sxy) / math.sqrt(float(sum((a - mx) ** 2 for a in xs)) * float(sum((b - my) ** 2 for b in ys)))


def test_predictions_that_barely_vary_get_their_exact_plcc_and_no_warning():
    # before: scipy's "An input array is nearly constant; the computed correlation coefficient may be inaccurate"
    # as a warning line of arniqa evaluate (a large --alpha), and a PLCC off in the fifth digit
    rng = np.random.default_rng(0)
    target = rng.normal(size=20) + 3
    pred = 3.1 + 1e-14 * (target + rng.normal(size=20))  # 16 distinct values within 1e-13 of 3.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = correlations(pred, target)
    assert got["plcc"] == pytest.approx(_exact_pearson(pred, target), rel=1e-12)
