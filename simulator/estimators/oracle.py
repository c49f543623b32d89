r"""The oracle-representation baseline: per-group weights fitted with the TRUE trait matrix.

Objective (the SharedRep objective of :mod:`.sharedrep` with ``B`` fixed to the truth; the
"oracle-B" floor of our SharedRep note, sec. 7.1):

.. math::

    \hat w_u = \arg\min_{w \in \mathbb{R}^k}
        -\sum_{i \in D_u} \log\sigma\big(s_i \langle \theta_0 + B w, x_i\rangle\big)
        + \frac{\lambda}{2}\lVert w\rVert^2,
    \qquad \hat\theta_u = \theta_0 + B \hat w_u .

Each ``w_u`` is a k-dimensional BT problem on features ``X_u B`` solved by
:func:`~simulator.estimators.bt.fit_bt`. With a known base ``theta0`` the offset is absorbed as one
extra trait ``theta0 / ||theta0||`` whose coefficient is learned too (the oracle knows
span([B, theta0]); one extra dimension), so ``theta_u = B w_u + a_u theta0``. Since
``||B Q w|| = ||w||`` for orthogonal ``Q``, ``theta_`` is invariant to ``B -> B Q``.
"""

from __future__ import annotations

import numpy as np

from .base import PreferenceEstimator, check_data
from .bt import fit_bt
from .sharedrep import _group_index

__all__ = ["OracleB"]


class OracleB(PreferenceEstimator):
    """Per-group k-dimensional BT fits on the true representation ``B``.

    Parameters
    ----------
    B : array (d, k)
        The true trait matrix (any basis of the true span; orthonormal columns make the ridge
        basis-independent).
    theta0 : array (d,), optional
        Shared base direction (P-ShareLoRA populations): its coefficient is fitted per group.
    lam : float, default 1e-4
        Ridge on ``w``.
    norm_bound : float, optional
        ``||w_u|| <= norm_bound``.

    Attributes
    ----------
    W_ : array (k, U)
    coef_ : array (k or k + 1, U)
        ``W_`` plus, with a base, the coefficient of ``theta0 / ||theta0||``.
    theta_ : array (U, d)
    n_iter_ : array (U,)
    converged_ : bool
    """

    def __init__(self, B, theta0=None, lam: float = 1e-4, norm_bound: float | None = None):
        self.B = B
        self.theta0 = theta0
        self.lam = lam
        self.norm_bound = norm_bound

    def fit(self, data):
        data = check_data(data)
        B = np.asarray(self.B, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != data.d:
            raise ValueError(f"B must have shape (d, k) with d = {data.d}; got {B.shape}")
        if B.shape[1] > data.d:
            raise ValueError(f"B must have k <= d columns; got k = {B.shape[1]}")
        if not np.all(np.isfinite(B)):
            raise ValueError("B must be finite")
        if not (np.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0; got {self.lam}")
        theta0 = np.zeros(data.d) if self.theta0 is None else np.asarray(self.theta0, float)
        if theta0.shape != (data.d,):
            raise ValueError(f"theta0 must have shape ({data.d},)")
        counts = data.group_counts()
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(f"OracleB needs data for every group; group(s) {empty.tolist()} "
                             "have no comparisons")
        U, k = data.n_groups, B.shape[1]
        Beff = B
        if np.any(theta0 != 0):
            Beff = np.hstack([B, (theta0 / np.linalg.norm(theta0))[:, None]])
        Z = data.X @ Beff
        self.W_ = np.zeros((k, U))
        self.coef_ = np.zeros((Beff.shape[1], U))
        self.n_iter_ = np.zeros(U, dtype=np.int64)
        conv = np.zeros(U, dtype=bool)
        for u, rows in enumerate(_group_index(data.group, U)):
            Zu, yu = Z[rows], data.y[rows]
            res = fit_bt(Zu, yu, lam=self.lam, norm_bound=self.norm_bound)
            self.W_[:, u] = res.theta[:k]
            self.coef_[:, u] = res.theta
            self.n_iter_[u] = res.n_iter
            conv[u] = res.converged
        self.theta_ = (Beff @ self.coef_).T
        self.converged_ = bool(conv.all())
        return self
