"""Ridge regression over a whole alpha path from one decomposition.

Same estimator as ``sklearn.linear_model.Ridge(alpha)`` with ``fit_intercept=True``: the rows are
centred by the training means, ``w = (XcᵀXc + αI)⁻¹ Xcᵀyc`` and ``b = ȳ − x̄·w``. Instead of one
solve per alpha, one symmetric eigendecomposition gives every alpha at the cost of a matrix
product:

* more rows than columns (primal): ``XcᵀXc = V diag(λ) Vᵀ``, so ``w(α) = V diag(1/(λ+α)) Vᵀ Xcᵀyc``;
* otherwise (dual): ``XcXcᵀ = U diag(λ) Uᵀ``, so ``w(α) = Xcᵀ U diag(1/(λ+α)) Uᵀ yc``.

Everything is computed in float64; inputs may be float32 arrays or memmaps (read in row chunks).
"""

from __future__ import annotations

import numpy as np
import scipy  # scipy.linalg on first use

ALPHAS = np.geomspace(1e-3, 1e3, 100)  # the reference grid
CHUNK = 4096  # rows per float64 block


def _blocks(rows: np.ndarray, chunk: int = CHUNK):
    for start in range(0, len(rows), chunk):
        yield rows[start : start + chunk]


def gram(X: np.ndarray, rows: np.ndarray | None = None, chunk: int = CHUNK) -> np.ndarray:
    """``XᵀX`` (float64, d×d) of the selected rows, accumulated over row blocks."""
    rows = np.arange(len(X)) if rows is None else np.asarray(rows)
    out = np.zeros((X.shape[1], X.shape[1]))
    for block in _blocks(rows, chunk):
        xb = np.asarray(X[block], dtype=np.float64)
        out += xb.T @ xb
    return out


class RidgePath:
    """Ridge fits for any alphas on rows ``rows`` of ``X`` (n, d) with targets ``y`` (all rows).

    ``gram`` may pass a precomputed ``XᵀX`` of exactly those rows (uncentred), e.g. a full-data
    Gram minus the Gram of the held-out rows; it is used only in the primal case (n > d).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None, gram_matrix=None):
        rows = np.arange(len(X)) if rows is None else np.asarray(rows, dtype=np.int64)
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        n, d = len(rows), X.shape[1]
        if n < 2:
            raise ValueError(f"ridge needs at least 2 training rows, got {n}")
        self.y_mean = float(y[rows].mean())
        yc = y[rows] - self.y_mean
        sums = np.zeros(d)
        xty = np.zeros(d)
        for i, block in enumerate(_blocks(np.arange(n))):
            xb = np.asarray(X[rows[block]], dtype=np.float64)
            sums += xb.sum(axis=0)
            xty += xb.T @ yc[block]  # Σ x_i·yc_i equals Σ (x_i − x̄)·yc_i since Σ yc_i = 0
        self.x_mean = sums / n
        if n > d:
            g = gram(X, rows) if gram_matrix is None else np.asarray(gram_matrix, dtype=np.float64)
            cov = g - n * np.outer(self.x_mean, self.x_mean)
            lam, basis = scipy.linalg.eigh(cov, overwrite_a=True, check_finite=False)
            self._left = basis  # (d, d)
            self._proj = basis.T @ xty
        else:
            xc = np.asarray(X[rows], dtype=np.float64) - self.x_mean
            lam, basis = scipy.linalg.eigh(xc @ xc.T, overwrite_a=True, check_finite=False)
            self._left = xc.T @ basis  # (d, n)
            self._proj = basis.T @ yc
        self.eigenvalues = np.clip(lam, 0.0, None)  # round-off can leave tiny negatives

    def coefs(self, alphas) -> np.ndarray:
        """Coefficients (d, k) for the k alphas."""
        alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
        if not np.all((alphas > 0) & np.isfinite(alphas)):  # NaN: NaN predictions; inf: constant ones
            raise ValueError(f"ridge alphas must be positive and finite, got {alphas.tolist()}")
        return self._left @ (self._proj[:, None] / (self.eigenvalues[:, None] + alphas[None, :]))

    def intercepts(self, coefs: np.ndarray) -> np.ndarray:
        """Intercepts (k,) that go with ``coefs`` (d, k)."""
        return self.y_mean - self.x_mean @ coefs

    def predict(self, X: np.ndarray, alphas, rows: np.ndarray | None = None) -> np.ndarray:
        """Predictions (m, k) for the selected rows of ``X`` and each alpha."""
        coefs = self.coefs(alphas)
        bias = self.intercepts(coefs)
        rows = np.arange(len(X)) if rows is None else np.asarray(rows)
        out = np.empty((len(rows), coefs.shape[1]))
        for block in _blocks(np.arange(len(rows))):
            out[block] = np.asarray(X[rows[block]], dtype=np.float64) @ coefs + bias
        return out
