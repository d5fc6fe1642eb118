"""Correlation metrics (SRCC, PLCC, KRCC) and the VQEG 4-parameter logistic fit."""

from __future__ import annotations

import warnings

import numpy as np
import scipy  # its submodules on first use: scipy.stats takes about 1 s to import

from ..utils.names import count


def logistic4(x, b1, b2, b3, b4):
    """VQEG 4-parameter logistic: ``(b1 − b2) / (1 + exp(−(x − b3)/|b4|)) + b2``."""
    return (b1 - b2) * scipy.special.expit((x - b3) / np.abs(b4)) + b2


def fit_logistic(pred, target) -> np.ndarray:
    """Least-squares parameters of :func:`logistic4` mapping ``pred`` to ``target``.

    Starts from ``[max y, min y, mean x, std x / 4]``. Raises ``RuntimeError`` if it does not converge.
    """
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    scale = np.std(x) / 4 or 1.0
    p0 = [np.max(y), np.min(y), np.mean(x), scale]
    params, _ = scipy.optimize.curve_fit(logistic4, x, y, p0=p0, maxfev=20000)
    return params


def srcc(pred, target) -> float:
    return float(scipy.stats.spearmanr(pred, target)[0])


def plcc(pred, target) -> float:
    """Pearson's r, each input centred first: predictions that vary little around their mean (a large ridge
    alpha, features that barely vary) keep their precision, which scipy's own centring loses ("nearly constant")."""
    pred, target = (np.asarray(a, dtype=np.float64) for a in (pred, target))
    return float(scipy.stats.pearsonr(pred - pred.mean(), target - target.mean())[0])


def krcc(pred, target) -> float:
    return float(scipy.stats.kendalltau(pred, target)[0])


def plcc_logistic(pred, target) -> float:
    """PLCC after the 4-parameter logistic fit; NaN for fewer points than its 4 parameters, NaN (with a warning)
    if the fit fails."""
    if len(pred) < 4:  # scipy's curve_fit raises a TypeError there
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            fitted = logistic4(np.asarray(pred, dtype=np.float64), *fit_logistic(pred, target))
    except (RuntimeError, ValueError) as e:
        warnings.warn(f"logistic fit failed ({e}); plcc_logistic is NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    if np.ptp(fitted) == 0:
        return float("nan")
    return plcc(fitted, target)


def correlations(pred, target, logistic: bool = True) -> dict[str, float]:
    """SRCC, PLCC, KRCC on the raw predictions, and PLCC after the logistic fit (unless ``logistic`` is False)."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if len(pred) != len(target):
        raise ValueError(f"{count(len(pred), 'prediction')} for {count(len(target), 'score')}")
    if len(pred) < 3 or np.ptp(pred) == 0 or np.ptp(target) == 0:
        nan = float("nan")
        return {"srcc": nan, "plcc": nan, "krcc": nan} | ({"plcc_logistic": nan} if logistic else {})
    out = {"srcc": srcc(pred, target), "plcc": plcc(pred, target), "krcc": krcc(pred, target)}
    if logistic:
        out["plcc_logistic"] = plcc_logistic(pred, target)
    return out


def srcc_columns(pred: np.ndarray, target) -> np.ndarray:
    """SRCC of every column of ``pred`` (m, k) against ``target`` (m,), ties averaged as scipy does."""
    ranks = scipy.stats.rankdata(np.asarray(pred, dtype=np.float64), axis=0)
    ty = scipy.stats.rankdata(np.asarray(target, dtype=np.float64))
    ranks = ranks - ranks.mean(axis=0)
    ty = ty - ty.mean()
    denom = np.sqrt((ranks**2).sum(axis=0) * (ty**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, ty @ ranks / np.where(denom > 0, denom, 1), np.nan)


def summarise(values) -> dict[str, float]:
    """Median, mean and standard deviation (population, ddof=0) of per-split values."""
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "mean": float(np.mean(v)), "std": float(np.std(v))}
