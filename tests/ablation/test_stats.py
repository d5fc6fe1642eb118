"""The ablation's statistics: t intervals and paired differences against scipy and hand-computed values,
and the headline numbers read back from result files (NaN stored as null)."""

import json

import numpy as np
import pytest
from scipy import stats

from arniqa.ablation.stats import metric, paired, t_interval
from arniqa.utils.jsonfile import write_json


def test_t_interval_against_scipy_and_a_hand_value():
    low, high = t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: 2 +- t(0.975, 2) / sqrt(3), t(0.975, 2) = 4.302653
    assert (low, high) == pytest.approx((2 - 4.302653 / 3**0.5, 2 + 4.302653 / 3**0.5), rel=1e-6)
    assert all(np.isnan(t_interval([1.0])))


def test_paired_statistics_against_hand_computed_values():
    d = [0.1, 0.2, 0.3, -0.05]
    mean = 0.1375
    sd = np.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    got = paired(d)
    assert got["n"] == 4 and got["positive"] == 3 and got["negative"] == 1
    assert got["mean"] == pytest.approx(mean) and got["std"] == pytest.approx(sd)
    assert got["t"] == pytest.approx(mean / (sd / 2))
    assert got["p_t"] == pytest.approx(2 * stats.t.sf(mean / (sd / 2), 3))
    assert got["p_sign"] == pytest.approx(2 * (1 + 4) / 16)  # two-sided binomial: P(X <= 1) + P(X >= 3), n = 4
    three = paired([0.01, 0.02, 0.03])
    assert three["p_sign"] == pytest.approx(0.25)  # the smallest two-sided sign-test p with n = 3
    one = paired([0.5])
    assert one["mean"] == 0.5 and np.isnan(one["std"]) and np.isnan(one["t"])


def test_result_files_store_nan_as_null_and_the_report_reads_it_back_as_nan(tmp_path):
    result = {
        "benchmarks": {
            "synthetic": {
                "srcc": {"median": float("nan")},
                "plcc": {"median": 0.5},
                "monotonicity": {"share": None, "kendall": 0.25},
            }
        }
    }
    back = json.loads(write_json(tmp_path / "result.json", result).read_text())
    assert back["benchmarks"]["synthetic"]["srcc"]["median"] is None
    assert np.isnan(metric(back, "synthetic", "srcc")) and metric(back, "synthetic", "plcc") == 0.5
    assert np.isnan(metric(back, "synthetic", "mono")) and metric(back, "synthetic", "mono_tau") == 0.25
    assert np.isnan(metric(back, "other", "srcc"))
