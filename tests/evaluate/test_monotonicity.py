import numpy as np
import pytest

from arniqa.evaluate.monotonicity import level_monotonicity


def _grid(pred_fn, refs=("I01", "I02"), kinds=("a", "b")):
    rows = [(r, k, lv) for r in refs for k in kinds for lv in range(1, 6)]
    refs_, kinds_, levels = zip(*rows)
    return refs_, kinds_, levels, [pred_fn(r, k, lv) for r, k, lv in rows]


def test_strictly_falling_predictions_score_one():
    out = level_monotonicity(*_grid(lambda r, k, lv: 5.0 - lv))
    assert out["share"] == 1.0 and out["groups"] == 4
    assert out["kendall"] == pytest.approx(1.0)


def test_rising_predictions_score_minus_one():
    out = level_monotonicity(*_grid(lambda r, k, lv: float(lv)))
    assert out["share"] == 0.0 and out["kendall"] == pytest.approx(-1.0)


def test_one_swap_in_one_group():
    # group (I01, a) has levels 2 and 3 swapped: one discordant pair of 10 -> tau = 0.8
    def pred(r, k, lv):
        if (r, k) == ("I01", "a") and lv in (2, 3):
            lv = 5 - lv
        return -float(lv)

    out = level_monotonicity(*_grid(pred))
    assert out["share"] == pytest.approx(3 / 4)
    assert out["kendall"] == pytest.approx((3 * 1.0 + 0.8) / 4)


def test_excluded_types_are_skipped_and_ties_do_not_count_as_falling():
    refs, kinds, levels, preds = _grid(lambda r, k, lv: 1.0 if k == "a" else -lv)
    out = level_monotonicity(refs, kinds, levels, preds, exclude={"b"})
    assert out["groups"] == 2 and out["share"] == 0.0
    out = level_monotonicity(refs, kinds, levels, preds, exclude={"a"})
    assert out["share"] == 1.0


def test_random_predictions_are_near_chance():
    rng = np.random.default_rng(0)
    refs = [f"I{i}" for i in range(200)]
    out = level_monotonicity(*_grid(lambda r, k, lv: rng.normal(), refs=refs))
    # P(strictly falling) for 5 exchangeable values is 1/5! = 1/120; mean tau is 0
    assert out["share"] < 0.03 and abs(out["kendall"]) < 0.05


def test_no_groups_is_an_error():
    with pytest.raises(ValueError, match="no \\(reference, type\\) group"):
        level_monotonicity(["I01"], ["a"], [1], [0.5])
