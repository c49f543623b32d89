r"""Shared low-rank personalisation: the linear analogue of P-ShareLoRA (arXiv 2503.19201).

Each unit ``i`` (a group, or a user) has ``theta_i = theta0 + B W_i`` with ``B`` (d×r) shared and
``W_i`` (r) personal, so ``Delta = [theta_1 - theta0, ...] = B W`` has rank ``<= r`` (our note
sharelora_theory.md, sec. 1.2, linear special case ``d2 = 1``). We fit the convex surrogate
**[reconstructed; the paper's estimator is the factorised MLE, sec. 1.3]**

.. math::

    \min_{\theta_0,\ \Delta}\ -\sum_i \log\sigma\big(s_i\langle \theta_0 + \Delta_{u_i}, x_i\rangle\big)
        + \lambda \lVert\Delta\rVert_* + \frac{\lambda_0}{2}\lVert\theta_0\rVert^2
    \quad\text{s.t.}\ \lVert\Delta_i\rVert \le R \ (\text{optional}),

two ways:

* ``solver="cvxpy"``: the convex problem as written (exponential cones; CLARABEL). The exact
  reference for small problems. ``rank`` is not imposed there: the nuclear norm makes the
  solution low-rank; ``rank_`` reports the numerical rank found.
* ``solver="factorized"``: Burer–Monteiro: ``Delta = B W`` with
  ``lambda/2 (||B||_F^2 + ||W||_F^2)`` in place of ``lambda ||Delta||_*`` (equal at the optimum
  when ``r >= rank(Delta*)``, since ``||Delta||_* = min_{BW = Delta} (||B||^2 + ||W||^2)/2``),
  minimised by alternating exact block minimisation, each block a BT problem solved by
  :func:`~simulator.estimators.bt.fit_bt`: ``(theta0, W)`` given B on features
  ``[x_i, e_{u_i} kron B^T x_i]`` and ``(theta0, vec B)`` given W on ``[x_i, w_{u_i} kron x_i]``.
  The different ridges (``lambda_0`` on ``theta0``) are obtained by scaling the ``theta0`` columns
  by ``sqrt(lambda / lambda_0)``. The objective never increases. Per-unit norm bounds are only
  available with cvxpy (a decoupled per-unit step would need an offset option in ``fit_bt``).
  Design width ``d + N r`` (dense), so this is for up to a few hundred units.
"""

from __future__ import annotations

import numpy as np

from ..seeding import as_seed_sequence
from .base import PreferenceEstimator, check_data
from .bt import fit_bt
from .sharedrep import _group_index, _orthonormalise

__all__ = ["SharedLoRA", "sharedlora_objective"]

SOLVERS = ("cvxpy", "factorized")
UNITS = ("group", "user")


def sharedlora_objective(X, y, unit, theta0, Delta, lam, lam0) -> float:
    """Reference value of the convex objective (module docstring), ``Delta`` of shape (d, N)."""
    t = (2.0 * y - 1.0) * np.einsum("ij,ij->i", X, theta0[None, :] + Delta.T[unit])
    nuc = np.linalg.svd(Delta, compute_uv=False).sum() if Delta.size else 0.0
    return float(np.logaddexp(0.0, -t).sum() + lam * nuc + 0.5 * lam0 * theta0 @ theta0)


class SharedLoRA(PreferenceEstimator):
    """``theta_i = theta0 + B W_i`` with a shared rank-``r`` basis (P-ShareLoRA, linear).

    Parameters
    ----------
    rank : int
        ``r``, the factor width (``1 <= r <= d``).
    solver : {"cvxpy", "factorized"}
    unit : {"group", "user"}
        Personalise per group (``data.group``) or per user (``data.user``).
    lam : float, default 1.0
        Nuclear-norm weight ``lambda`` (> 0).
    lam0 : float, default 1e-4
        Ridge on ``theta0`` (> 0).
    fit_base : bool, default True
        Learn ``theta0``; False fixes it at zero.
    norm_bound : float, optional
        ``||theta_i - theta0|| <= R`` (cvxpy only).
    max_iter, tol : factorized sweeps and relative-objective stopping tolerance.
    seed : int or SeedSequence
        Random initial ``B`` for the factorized solver.

    Attributes
    ----------
    theta_ : array (N, d)
        Rows are units (groups or users, per ``unit``).
    theta0_ : array (d,)
    B_ : array (d, r), orthonormal; W_ : array (r, N); ``theta_ = theta0_ + (B_ W_)^T``
    rank_ : int
        Numerical rank of ``Delta`` (singular values above 1e-6 of the largest).
    objective_ : float
        The convex objective of the module docstring at the solution.
    history_ : list of dict (factorized)
    n_iter_, converged_
    """

    def __init__(self, rank: int, solver: str = "factorized", unit: str = "group",
                 lam: float = 1.0, lam0: float = 1e-4, fit_base: bool = True,
                 norm_bound: float | None = None, max_iter: int = 500, tol: float = 1e-10,
                 seed=0):
        self.rank = rank
        self.solver = solver
        self.unit = unit
        self.lam = lam
        self.lam0 = lam0
        self.fit_base = fit_base
        self.norm_bound = norm_bound
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _validate(self, d):
        r = self.rank
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1:
            raise ValueError(f"rank must be an integer >= 1; got {r!r}")
        if r > d:
            raise ValueError(f"rank must be <= d = {d}; got rank = {r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}; got {self.solver!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}; got {self.unit!r}")
        if not (np.isfinite(self.lam) and self.lam > 0):
            raise ValueError(f"lam must be a finite number > 0; got {self.lam}")
        if not (np.isfinite(self.lam0) and self.lam0 > 0):
            raise ValueError(f"lam0 must be a finite number > 0; got {self.lam0}")
        if self.norm_bound is not None:
            if not self.norm_bound > 0:
                raise ValueError(f"norm_bound must be > 0 or None; got {self.norm_bound}")
            if self.solver != "cvxpy":
                raise ValueError("norm_bound requires solver='cvxpy'")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1; got {self.max_iter}")
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0; got {self.tol}")

    def _units(self, data):
        return (data.group, data.n_groups) if self.unit == "group" else (data.user, data.n_users)

    def fit(self, data):
        data = check_data(data)
        self._validate(data.d)
        unit, N = self._units(data)
        counts = np.bincount(unit, minlength=N)
        if np.any(counts == 0):
            raise ValueError(f"SharedLoRA needs data for every {self.unit}; "
                             f"{int(np.sum(counts == 0))} of {N} have no comparisons")
        if self.solver == "cvxpy":
            theta0, Delta = self._fit_cvxpy(data.X, data.y, unit, N)
            self.history_ = []
            self.n_iter_ = 1
            self.converged_ = True
            U_, s, Vt = np.linalg.svd(Delta, full_matrices=False)
            r = int(self.rank)
            self.B_ = U_[:, :r]
            self.W_ = s[:r, None] * Vt[:r]
        else:
            theta0, B, W = self._fit_factorized(data.X, data.y, unit, N)
            self.B_, self.W_ = _orthonormalise(B, W)
            Delta = B @ W
        sv = np.linalg.svd(Delta, compute_uv=False)
        self.rank_ = int(np.sum(sv > 1e-6 * max(sv.max(), 1e-300))) if sv.size else 0
        self.theta0_ = theta0
        self.delta_ = Delta
        self.theta_ = theta0[None, :] + Delta.T
        self.objective_ = sharedlora_objective(data.X, data.y.astype(float), unit, theta0, Delta,
                                               self.lam, self.lam0)
        return self

    # ------------------------------------------------------------------ cvxpy
    def _fit_cvxpy(self, X, y, unit, N):
        import cvxpy as cp

        d = X.shape[1]
        S = X * (2.0 * y - 1.0)[:, None]
        th0 = cp.Variable(d) if self.fit_base else np.zeros(d)
        D = cp.Variable((d, N))
        z = cp.hstack([S[rows] @ (th0 + D[:, u]) for u, rows in enumerate(_group_index(unit, N))])
        obj = cp.sum(cp.logistic(-z)) + self.lam * cp.normNuc(D)
        if self.fit_base:
            obj = obj + 0.5 * self.lam0 * cp.sum_squares(th0)
        cons = []
        if self.norm_bound is not None:
            cons = [cp.norm(D[:, u]) <= self.norm_bound for u in range(N)]
        prob = cp.Problem(cp.Minimize(obj), cons)
        try:
            prob.solve(solver="CLARABEL")
        except cp.error.SolverError:
            prob.solve(solver="SCS", eps=1e-9, max_iters=100000)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise RuntimeError(f"cvxpy failed: status {prob.status}")
        theta0 = np.asarray(th0.value if self.fit_base else th0, dtype=np.float64)
        return theta0, np.asarray(D.value, dtype=np.float64)

    # ------------------------------------------------------------------ factorized
    def _objective_fact(self, X, y, unit, theta0, B, W):
        t = (2.0 * y - 1.0) * np.einsum("ij,ij->i", X, theta0[None, :] + (B @ W).T[unit])
        return float(np.logaddexp(0.0, -t).sum()
                     + 0.5 * self.lam * (np.sum(B * B) + np.sum(W * W))
                     + 0.5 * self.lam0 * theta0 @ theta0)

    def _fit_factorized(self, X, y, unit, N):
        n, d = X.shape
        r = int(self.rank)
        lam = self.lam
        c0 = np.sqrt(lam / self.lam0)  # theta0 = c0 v0  =>  lam/2 |v0|^2 = lam0/2 |theta0|^2
        yf = y.astype(np.float64)
        rng = np.random.Generator(np.random.PCG64(as_seed_sequence(self.seed)))
        B = np.linalg.qr(rng.standard_normal((d, r)))[0]
        W = np.zeros((r, N))
        theta0 = np.zeros(d)
        base = [c0 * X] if self.fit_base else []
        nb = d if self.fit_base else 0

        def step_w(B, theta0, W):
            Z = X @ B
            F = np.zeros((n, N * r))
            cols = unit[:, None] * r + np.arange(r)[None, :]
            np.put_along_axis(F, cols, Z, axis=1)
            F = np.hstack(base + [F])
            init = np.concatenate([theta0[:nb] / c0 if nb else theta0[:0], W.T.ravel()])
            res = fit_bt(F, y, lam=lam, theta_init=init, tol=1e-11, max_iter=200)
            th0 = c0 * res.theta[:nb] if nb else np.zeros(d)
            return th0, res.theta[nb:].reshape(N, r).T.copy()

        def step_b(W, theta0, B):
            Wg = W.T[unit]
            F = np.hstack(base + [(Wg[:, :, None] * X[:, None, :]).reshape(n, -1)])
            init = np.concatenate([theta0[:nb] / c0 if nb else theta0[:0], B.T.ravel()])
            res = fit_bt(F, y, lam=lam, theta_init=init, tol=1e-11, max_iter=200)
            th0 = c0 * res.theta[:nb] if nb else np.zeros(d)
            return th0, res.theta[nb:].reshape(r, d).T.copy()

        theta0, W = step_w(B, theta0, W)
        f = self._objective_fact(X, yf, unit, theta0, B, W)
        hist = [{"iter": 0, "objective": f}]
        converged = False
        for it in range(1, int(self.max_iter) + 1):
            theta0, B = step_b(W, theta0, B)
            theta0, W = step_w(B, theta0, W)
            f_new = self._objective_fact(X, yf, unit, theta0, B, W)
            hist.append({"iter": it, "objective": f_new})
            rel = abs(f - f_new) / max(1.0, abs(f_new))
            f = f_new
            if rel <= self.tol:
                converged = True
                break
        self.history_ = hist
        self.n_iter_ = len(hist) - 1
        self.converged_ = converged
        return theta0, B, W

    # ------------------------------------------------------------------ per-unit evaluation
    def reward_unit(self, X, unit) -> np.ndarray:
        """Reward ``<theta_unit, X>`` (units are groups or users, per ``unit``)."""
        return PreferenceEstimator.reward(self, X, unit)

    def log_likelihood(self, data) -> float:
        """BT log-likelihood of ``data`` with each comparison scored by its own unit."""
        data = check_data(data)
        self._check_fitted()
        unit, _ = self._units(data)
        t = (2.0 * data.y - 1.0) * self.reward_unit(data.X, unit)
        return float(-np.logaddexp(0.0, -t).sum())

    def predict_proba(self, data) -> np.ndarray:
        data = check_data(data)
        unit, _ = self._units(data)
        z = self.reward_unit(data.X, unit)
        return 0.5 * (1.0 + np.tanh(0.5 * z))
