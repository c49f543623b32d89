"""Bradley–Terry maximum likelihood with one reward for everybody or one per group.

* :class:`PooledMLE` — one ``theta`` for all comparisons: uniform (single-reward) RLHF.
* :class:`SeparateMLE` — one ``theta_u`` per group from that group's data only: the reward step of
  MaxMin-RLHF with known groups (arXiv 2402.08925, sec. 4; SharedRep-RLHF's MaxMin baseline).

Both minimise the objective of :mod:`simulator.estimators.bt` (sum of negative log-likelihoods
plus ``lam / 2 ||theta||^2``) by Newton's method.
"""

from __future__ import annotations

import numpy as np

from .base import PreferenceEstimator, check_data
from .bt import BACKENDS, fit_bt

__all__ = ["PooledMLE", "SeparateMLE"]


class _BTMLE(PreferenceEstimator):
    def __init__(self, lam: float = 1e-4, norm_bound: float | None = None, tol: float = 1e-9,
                 max_iter: int = 100, backend: str = "numba", device: str = "cpu"):
        self.lam = lam
        self.norm_bound = norm_bound
        self.tol = tol
        self.max_iter = max_iter
        self.backend = backend
        self.device = device

    def _validate_params(self):
        if not (np.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0; got {self.lam}")
        if self.norm_bound is not None and not self.norm_bound > 0:
            raise ValueError(f"norm_bound must be > 0 or None; got {self.norm_bound}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}")
        if self.device != "cpu" and self.backend != "torch":
            raise ValueError(f"device {self.device!r} needs backend='torch'")

    def _fit_one(self, X, y, w, theta_init=None):
        return fit_bt(X, y, lam=self.lam, sample_weight=w, theta_init=theta_init,
                      norm_bound=self.norm_bound, tol=self.tol, max_iter=self.max_iter,
                      backend=self.backend, device=self.device)


class PooledMLE(_BTMLE):
    """One BT reward for all groups (uniform RLHF).

    Parameters
    ----------
    lam : float, default 1e-4
        Ridge on the summed objective (``1 / C`` of scikit-learn). Positive by default so that
        separable data give a finite estimate; ``lam = 0`` is the MLE and warns
        (:class:`~simulator.estimators.bt.MLENotExistWarning`) when it does not exist.
    norm_bound : float, optional
        Constraint ``||theta|| <= norm_bound``.
    tol : float, default 1e-9
        Gradient-norm tolerance on the mean objective.
    max_iter : int, default 100
    backend : {"numba", "numpy", "torch"}
    device : str, default "cpu"
        Torch device ("cpu", "cuda") for ``backend="torch"``.

    Attributes
    ----------
    theta_ : array (U, d)
        The pooled estimate, repeated for each group.
    coef_ : array (d,)
    objective_, grad_norm_, n_iter_, converged_
    """

    def fit(self, data, sample_weight=None):
        data = check_data(data)
        self._validate_params()
        res = self._fit_one(data.X, data.y, sample_weight)
        self.coef_ = res.theta
        self.theta_ = np.tile(res.theta, (data.n_groups, 1))
        self.objective_ = res.objective
        self.grad_norm_ = res.grad_norm
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        return self


class SeparateMLE(_BTMLE):
    """One BT reward per group, each from that group's comparisons only.

    Parameters are those of :class:`PooledMLE`. Every group must have at least one comparison.

    Attributes
    ----------
    theta_ : array (U, d)
    objective_ : array (U,)
    n_iter_ : array (U,) of int
    converged_ : bool
        True when every group's fit converged; per group in ``converged_groups_``.
    """

    def fit(self, data, sample_weight=None):
        data = check_data(data)
        self._validate_params()
        counts = data.group_counts()
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(f"SeparateMLE needs data for every group; group(s) "
                             f"{empty.tolist()} have no comparisons (n_groups = {data.n_groups})")
        w_all = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w_all is not None and w_all.shape != (data.n,):
            raise ValueError(f"sample_weight must have shape ({data.n},)")
        U, d = data.n_groups, data.d
        self.theta_ = np.zeros((U, d))
        self.objective_ = np.zeros(U)
        self.grad_norm_ = np.zeros(U)
        self.n_iter_ = np.zeros(U, dtype=np.int64)
        self.converged_groups_ = np.zeros(U, dtype=bool)
        order = np.argsort(data.group, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        if self.backend == "torch" and self.norm_bound is None:
            return self._fit_batched(data, w_all, order, bounds)
        for u in range(U):
            idx = order[bounds[u]:bounds[u + 1]]
            res = self._fit_one(data.X[idx], data.y[idx], None if w_all is None else w_all[idx])
            self.theta_[u] = res.theta
            self.objective_[u] = res.objective
            self.grad_norm_[u] = res.grad_norm
            self.n_iter_[u] = res.n_iter
            self.converged_groups_[u] = res.converged
        self.converged_ = bool(self.converged_groups_.all())
        return self

    def _fit_batched(self, data, w_all, order, bounds):
        """All groups in one batched torch solve (padding carries weight 0)."""
        from ..kernels.torch_bt import fit_bt_batched, pad_problems

        probs = []
        for u in range(data.n_groups):
            idx = order[bounds[u]:bounds[u + 1]]
            probs.append((data.X[idx], data.y[idx], None if w_all is None else w_all[idx]))
        X, y, w = pad_problems(probs, data.d)
        res = fit_bt_batched(X, y, lam=self.lam, sample_weight=w, tol=self.tol,
                             max_iter=self.max_iter, device=self.device)
        self.theta_ = res.theta
        self.objective_ = res.objective
        self.grad_norm_ = res.grad_norm
        self.n_iter_ = res.n_iter
        self.converged_groups_ = res.converged
        self.converged_ = bool(res.converged.all())
        return self
