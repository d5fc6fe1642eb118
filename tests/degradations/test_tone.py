"""The tone-curve helper against its closed form and scipy's not-a-knot spline."""

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicSpline

from arniqa.degradations.tone import parabola, spline

MIDPOINTS = [0.55, 0.6, 0.7, 0.85, 1.05, 0.475, 0.45, 0.4, 0.3, 0.1]  # brighten and darken


@pytest.mark.parametrize("c", MIDPOINTS)
def test_parabola_closed_form_and_points(c):
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    expected = ((2 - 4 * c) * x**2 + (4 * c - 1) * x).clamp(0, 1)
    assert torch.allclose(parabola(x, c), expected, atol=1e-12)
    points = parabola(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), c)
    assert torch.allclose(points, torch.tensor([0.0, min(c, 1.0), 1.0], dtype=torch.float64))


def test_parabola_is_clamped():
    x = torch.linspace(0, 1, 101)
    assert parabola(x, 1.05).max() == 1 and parabola(x, 0.1).min() == 0


@pytest.mark.parametrize("a", [0.0, 0.15, -0.4, 0.3, -0.6])
def test_spline_matches_scipy_not_a_knot(a):
    c0, c1 = 0.25 - a / 4, 0.75 + a / 4
    knots = [0.0, 0.3, 0.5, 0.7, 1.0]
    reference = CubicSpline(knots, [0.0, c0, 0.5, c1, 1.0], bc_type="not-a-knot")
    x = np.linspace(0, 1, 2001)
    out = spline(torch.from_numpy(x).float(), c0, c1).double().numpy()
    assert np.allclose(out, np.clip(reference(x), 0, 1), atol=2e-6)
    at_knots = spline(torch.tensor(knots, dtype=torch.float64), c0, c1)
    assert torch.allclose(at_knots, torch.tensor([0.0, c0, 0.5, c1, 1.0], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("c0,c1", [(0.35, 0.6), (0.4, 0.7)])  # asymmetric, inside [0, 1] without clamping
def test_spline_is_the_not_a_knot_spline_by_its_properties(c0, c1):
    """What defines the not-a-knot spline, checked on ``spline`` without scipy: one cubic on [0, 0.5]
    and one on [0.5, 1] (no third-derivative jump at 0.3 or 0.7), through the five points, with equal
    first and second derivatives at 0.5; and not a single cubic on [0, 1]."""
    x = np.linspace(0, 1, 201)
    y = spline(torch.from_numpy(x), c0, c1).numpy()
    left, right = x <= 0.5, x >= 0.5
    p, q = np.polyfit(x[left], y[left], 3), np.polyfit(x[right], y[right], 3)
    assert np.abs(np.polyval(p, x[left]) - y[left]).max() < 1e-12
    assert np.abs(np.polyval(q, x[right]) - y[right]).max() < 1e-12
    np.testing.assert_allclose(np.polyval(p, [0, 0.3, 0.5]), [0, c0, 0.5], atol=1e-12)
    np.testing.assert_allclose(np.polyval(q, [0.5, 0.7, 1]), [0.5, c1, 1], atol=1e-12)
    for order in (1, 2):
        assert np.polyval(np.polyder(p, order), 0.5) == pytest.approx(np.polyval(np.polyder(q, order), 0.5), abs=1e-8)
    whole = np.polyfit(x, y, 3)
    assert np.abs(np.polyval(whole, x) - y).max() > 1e-3
