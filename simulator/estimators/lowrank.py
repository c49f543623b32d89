r"""Shared low-rank personalisation: the linear analogue of P-ShareLoRA (arXiv 2503.19201).

Each unit ``i`` (a group, or a user) has ``theta_i = theta0 + B W_i`` with ``B`` (d×r) shared and
``W_i`` (r) personal, so ``Delta = [theta_1 - theta0, ...] = B W`` has rank ``<= r`` (our note
sharelora_theory.md, sec. 1.2, linear special case ``d2 = 1``). We fit the convex surrogate
**[reconstructed; the paper's estimator is the factorized MLE, sec. 1.3]**

.. math::

    \min_{\theta_0,\ \Delta}\ -\sum_i \log\sigma\big(s_i\langle \theta_0 + \Delta_{u_i}, x_i\rangle\big)
        + \lambda \lVert\Delta\rVert_* + \frac{\lambda_0}{2}\lVert\theta_0\rVert^2
    \quad\text{s.t.}\ \lVert\Delta_i\rVert \le R \ (\text{optional}),

two ways:

* ``solver="cvxpy"``: the convex problem as written (exponential cones; CLARABEL). The exact
  reference for small problems (one cone block per unit: tens of units, not hundreds). It
  solves the nuclear-norm **relaxation**: ``k`` is not a constraint there (the nuclear norm
  makes the solution low-rank); ``rank_`` reports the numerical rank found, and when it exceeds
  ``k`` a :class:`UserWarning` says so: ``theta_`` and ``delta_`` are then the untruncated
  relaxation, while ``B_`` / ``W_`` hold its best rank-``r`` approximation.
* ``solver="factorized"``: Burer–Monteiro: ``Delta = B W`` with
  ``lambda/2 (||B||_F^2 + ||W||_F^2)`` in place of ``lambda ||Delta||_*`` (equal at the optimum
  when ``r >= rank(Delta*)``, since ``||Delta||_* = min_{BW = Delta} (||B||^2 + ||W||^2)/2``),

  .. math::

      F(\theta_0, B, W) = \sum_i \log\big(1 + e^{-s_i x_i^\top(\theta_0 + B w_{u_i})}\big)
          + \frac{\lambda}{2}(\lVert B\rVert_F^2 + \lVert W\rVert_F^2)
          + \frac{\lambda_0}{2}\lVert\theta_0\rVert^2 ,

  minimised by **variable projection**: for fixed ``(theta0, B)`` the minimisation over ``W`` is
  block-diagonal, ``N`` independent ``r``-dimensional ridge BT problems on features
  ``z_i = B^T x_i`` with offsets ``x_i^T theta0``, solved exactly and all at once by a batched
  Newton method (:func:`fit_units_offset`: per-unit segment sums, ``r x r`` solves, per-unit
  Armijo backtracking). The profiled objective ``phi(theta0, B) = min_W F`` is smooth
  (each ``W``-problem is strongly convex) and by the envelope theorem its gradient is
  ``dF/d(theta0, B)`` at the exact ``W``; ``phi`` is minimised over the ``d + d r`` variables by
  L-BFGS (scipy). Stationary points of ``phi`` are exactly the stationary points of ``F``, so the
  fixed point is the one of exact alternating block minimisation, reached in far fewer passes.
  Memory is ``O(n d + n r + N r + d r)``: no design wider than ``X`` is ever formed (the earlier
  implementation built a dense ``n x (d + N r)`` design). Stopping rule: relative decrease of
  ``F`` per L-BFGS iteration ``<= tol`` (the ``ftol`` of L-BFGS-B, the same form as before).
  Per-unit norm bounds are only available with cvxpy.

Regularisation (``lam``): a number, ``"auto"`` or ``"cv"``; see :func:`auto_lam` and
:meth:`SharedLoRA.fit`. Few-shot personalisation: :meth:`SharedLoRA.fit_new_users` keeps
``theta0_`` and the fitted basis and solves the ``W``-step for new units.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..seeding import as_seed_sequence
from ..validation import Bool, Choice, Custom, Int, InvalidParameterError, Real, Seed
from .base import (
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    renamed_param,
)
from .bt_blocks import fit_bt_blocks
from .regularisation import NUCLEAR_C, check_lam, nuclear_lam

__all__ = ["SharedLoRA", "sharedlora_objective", "fit_units_offset", "profiled_objective",
           "auto_lam"]

SOLVERS = ("cvxpy", "factorized")
LAM_MODES = ("auto", "cv")
#: lam = "cv": the grid is ``auto_lam(data) * CV_GRID`` and this share of every unit's
#: comparisons (at least one unit keeps one training comparison) is held out.
CV_GRID = (1.0 / 16, 1.0 / 4, 1.0, 4.0, 16.0)
CV_HOLDOUT = 0.2
#: lam = "auto" constant (see :func:`auto_lam` for the regimes it was checked in).
AUTO_C = NUCLEAR_C
_W_TOL = 1e-10  # W-step: per-unit mean-gradient norm (the profiled gradient is exact to it)


def _sigmoid(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # overflow-free


class _Segments:
    """Per-unit sums of rows: ``np.add.reduceat`` when the unit ids are sorted (the factorized
    solver sorts its rows once), ``np.bincount`` otherwise."""

    def __init__(self, unit, N):
        self.unit, self.N = unit, N
        counts = np.bincount(unit, minlength=N)
        self.counts = counts
        self.sorted = bool(unit.size == 0 or np.all(unit[1:] >= unit[:-1]))
        if self.sorted:
            self.nonempty = counts > 0
            self.starts = (np.cumsum(counts) - counts)[self.nonempty]

    def sum(self, A):
        """``A`` (n,) or (n, m) -> (N,) or (N, m)."""
        if self.sorted:
            out = np.zeros((self.N,) + A.shape[1:])
            if self.starts.size:
                out[self.nonempty] = np.add.reduceat(A, self.starts, axis=0)
            return out
        if A.ndim == 1:
            return np.bincount(self.unit, weights=A, minlength=self.N)
        return np.stack([np.bincount(self.unit, weights=A[:, j], minlength=self.N)
                         for j in range(A.shape[1])], axis=1)


def _one_blas_thread():
    """Pin BLAS to one thread: the products here are thin (n x d by d x r) and memory-bound;
    a multi-threaded BLAS on a shared 2-core machine was measured 6x slower on them. The
    package's one re-entrant pin (:func:`simulator.kernels.bt_numba.one_blas_thread`)."""
    from ..kernels.bt_numba import one_blas_thread

    return one_blas_thread()


def fit_units_offset(Z, s, offset, unit, N, lam, W0=None, *, tol=1e-10, max_iter=100,
                     segments=None):
    r"""Many small ridge BT problems with offsets: :func:`~simulator.estimators.bt_blocks.fit_bt_blocks`
    (the project's per-unit block solver) in this module's calling convention.

    For every unit ``u`` independently,

    .. math::

        f_u(w) = \sum_{i:\,u_i = u} \log\big(1 + e^{-s_i (o_i + z_i^\top w)}\big)
                 + \frac{\lambda}{2}\lVert w\rVert^2 ,

    which is the BT objective of :mod:`simulator.estimators.bt` on unit ``u``'s rows with a fixed
    offset ``o_i`` added to each linear predictor. Each iteration forms every unit's ``r x r``
    Hessian by segment sums, takes the Newton step, and backtracks (Armijo, per unit) until the
    unit's objective decreases.

    Parameters
    ----------
    Z : array (n, r)
        Features of each comparison.
    s : array (n,)
        Signs ``2 y - 1``.
    offset : array (n,)
        Fixed part of each linear predictor.
    unit : array (n,) of int
        Unit of each comparison, in ``[0, N)``.
    N : int
        Number of units; a unit without comparisons gets ``w = 0``.
    lam : float
        Ridge ``> 0`` (makes every ``f_u`` strongly convex).
    W0 : array (N, r), optional
        Warm start (zeros by default).
    tol : float
        Unit ``u`` has converged when ``||grad f_u|| <= tol * max(1, n_u)`` (the gradient of
        its mean objective).
    max_iter : int
        Newton iterations at most.
    segments : _Segments, optional
        Precomputed per-unit summation for ``unit`` (internal; saves the setup per call).

    Returns
    -------
    W : array (N, r)
    f : array (N,)
        ``f_u`` at the returned ``W``.
    grad_norm : array (N,)
    n_iter : array (N,) of int
        Newton steps taken per unit.
    converged : array (N,) of bool
    """
    del segments  # the block solver sums per unit itself
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be a finite number > 0; got {lam}")
    y = (np.asarray(s) > 0).astype(np.int8)
    res = fit_bt_blocks(Z, y, unit, N, lam=lam, offset=offset, W0=W0, tol=tol,
                        max_iter=max_iter)
    return res.W, res.objective, res.kkt_residual * np.maximum(
        np.bincount(np.asarray(unit), minlength=N), 1), res.n_iter, res.converged


def profiled_objective(X, s, unit, N, theta0, B, lam, lam0, *, W0=None, segments=None):
    r"""The factorized objective with ``W`` minimised out, and its gradient.

    ``phi(theta0, B) = min_W F(theta0, B, W)`` (module docstring), ``W`` by
    :func:`fit_units_offset`. By the envelope theorem the gradient is the partial gradient of
    ``F`` at the minimising ``W``:
    ``d phi / d theta0 = X^T q + lam0 theta0`` and ``d phi / d B = X^T (q w_{u_i}^T) + lam B``,
    ``q_i = -s_i sigma(-t_i)``. Cost ``O(n d r)`` a call; nothing wider than ``X`` is formed.

    Parameters
    ----------
    X : array (n, d)
    s : array (n,)
        Signs ``2 y - 1``.
    unit : array (n,) of int
    N : int
    theta0 : array (d,)
    B : array (d, r)
    lam, lam0 : float
    W0 : array (N, r), optional
        Warm start of the inner solve.
    segments : optional
        Precomputed per-unit summation (internal).

    Returns
    -------
    f : float
    g_theta0 : array (d,)
    g_B : array (d, r)
    W : array (N, r)
        The minimising weights (unit ``u`` in row ``u``).
    """
    Z = X @ B
    off = X @ theta0
    W = fit_units_offset(Z, s, off, unit, N, lam, W0, tol=_W_TOL, segments=segments)[0]
    Wu = W[unit]
    t = s * (off + np.einsum("ij,ij->i", Z, Wu))
    f = (np.logaddexp(0.0, -t).sum() + 0.5 * lam * (np.sum(B * B) + np.sum(W * W))
         + 0.5 * lam0 * theta0 @ theta0)
    q = -s * _sigmoid(-t)
    return float(f), X.T @ q + lam0 * theta0, X.T @ (q[:, None] * Wu) + lam * B, W


def auto_lam(X, N) -> float:
    r"""Data-scaled nuclear-norm weight, ``lam="auto"``:
    ``AUTO_C * s * (sqrt(d) + sqrt(N))`` with ``s`` the root-mean-square entry of ``X``.

    ``s (sqrt(d) + sqrt(N))`` is the scale of the operator norm of a d x N matrix of
    ``s``-sized independent entries (the per-unit score matrix of the BT loss, one column per
    unit, is of that form, up to ``sqrt`` of the comparisons per unit); the nuclear-norm weight
    must grow with it, or the penalty vanishes against the loss as units are added (lam = 1
    at N = 1,000 users x 20 comparisons, d = 64, gave a mean squared per-user error 13x the
    planted ``||theta_i||^2``). ``AUTO_C = 0.75`` was chosen on the mean squared per-user error
    ``||theta_hat_i - theta_i||^2`` of planted ``Population.dirichlet`` data (``theta0 = 0``,
    ``signal = 2``, ``X ~ N(0, I)``, exactly n comparisons per unit, ``fit_base=False``), where the
    best lam was found not to depend on n (mean over 2 seeds for d = 8, 1 seed for d = 64;
    lam grids 0.4-53 and 1-400):

    =======================  ========  =============  ==================  ==================
    regime                   lam_auto  err, lam_auto  err, lam = 1 (old)  best on grid (lam)
    =======================  ========  =============  ==================  ==================
    d=8, k=2, N=32, n=20     6.4       0.63           2.22                0.63 (4.8)
    d=8, k=2, N=32, n=80     6.4       0.19           0.25                0.19 (6.4)
    d=8, k=2, N=32, n=160    6.4       0.134          0.148               0.134 (5.4-6.4)
    d=64, k=4, N=1000, n=20  29.7      0.81           21.1                0.76 (35)
    =======================  ========  =============  ==================  ==================

    (planted ``||theta_i||^2``: 2.8 for d = 8, 1.6 for d = 64.) Not checked: ``fit_base=True``,
    other feature covariances or scales beyond the linear ``s`` scaling, N above 10,000.
    Outside these regimes use ``lam="cv"``.

    Parameters
    ----------
    X : array (n, d)
    N : int
        Number of units.

    Returns
    -------
    float
    """
    return nuclear_lam(X, N)


def sharedlora_objective(X, y, unit, theta0, Delta, lam, lam0) -> float:
    """Reference value of the convex objective (module docstring), ``Delta`` of shape (d, N)."""
    t = (2.0 * y - 1.0) * np.einsum("ij,ij->i", X, theta0[None, :] + Delta.T[unit])
    nuc = np.linalg.svd(Delta, compute_uv=False).sum() if Delta.size else 0.0
    return float(np.logaddexp(0.0, -t).sum() + lam * nuc + 0.5 * lam0 * theta0 @ theta0)


def _unit_index(unit, N):
    """Row indices of each unit (a list of N arrays)."""
    order = np.argsort(unit, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=N))])
    return [order[bounds[u]:bounds[u + 1]] for u in range(N)]


def _top_svd(Delta, r):
    """Top-``r`` singular triplets of ``Delta`` (d, N), padded with zero singular values (and an
    orthonormal completion of ``U``) when ``min(d, N) < r``."""
    U, sv, Vt = np.linalg.svd(Delta, full_matrices=False)
    m = sv.size
    if m >= r:
        return U[:, :r], sv[:r], Vt[:r]
    d, N = Delta.shape
    U = np.linalg.qr(np.hstack([U, np.eye(d)]))[0][:, :r]
    return U, np.concatenate([sv, np.zeros(r - m)]), np.vstack([Vt, np.zeros((r - m, N))])


def _stratified_holdout(unit, N, frac, seed):
    """Boolean test mask: ``round(frac * n_u)`` comparisons of each unit (at most ``n_u - 1``)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    test = np.zeros(unit.size, dtype=bool)
    for rows in _unit_index(unit, N):
        m = min(int(round(frac * rows.size)), rows.size - 1)
        if m > 0:
            test[rng.choice(rows, size=m, replace=False)] = True
    return test


class SharedLoRA(PreferenceEstimator):
    """``theta_i = theta0 + B W_i`` with a shared rank-``k`` basis (P-ShareLoRA, linear).

    Parameters
    ----------
    k : int
        The trait count ``k = r``, the factor width (``1 <= k <= d``; named ``k`` as in
        SharedRep). Imposed by ``solver="factorized"``; with ``solver="cvxpy"`` (the
        nuclear-norm relaxation) it only sets the width of ``B_`` / ``W_`` (module docstring).
    solver : {"factorized", "cvxpy"}
    unit : {"group", "user"}
        Personalise per group (``data.group``) or per user (``data.user``).
    lam : float or {"auto", "cv"}, default "auto"
        Nuclear-norm weight ``lambda`` (> 0). ``"auto"`` scales it to the data
        (:func:`auto_lam`; the default since issue 12, was 1.0); ``"cv"`` picks it from
        ``auto_lam(data) * CV_GRID`` by held-out log-likelihood on a per-unit stratified split
        (``CV_HOLDOUT`` of each unit's comparisons, drawn from ``seed``) and refits on all the
        data. ``lam_`` is the value used.
    lam0 : float, default 1e-4
        Ridge on ``theta0`` (> 0).
    fit_base : bool, default True
        Learn ``theta0``; False fixes it at zero.
    norm_bound : float, optional
        ``||theta_i - theta0|| <= R`` (cvxpy only).
    max_iter, tol : factorized L-BFGS iterations and relative-objective stopping tolerance.
    seed : int or SeedSequence
        Random initial ``B`` of the factorized solver, and the ``lam="cv"`` split.
    rank : int, optional
        Deprecated alias of ``k`` (issue 13; a :class:`FutureWarning`; giving both is an error).

    Attributes
    ----------
    theta_ : array (N, d)
        Rows are units (groups or users, per ``unit``).
    theta0_ : array (d,)
    B_ : array (d, k)
        Orthonormal: the left singular vectors of ``Delta``.
    W_ : array (k, N)
        ``diag(singular_values_) V^T``, so ``theta_ = theta0_ + (B_ W_)^T`` (for cvxpy, when
        ``rank_ > k``, up to the truncation).
    singular_values_ : array (k,)
        The top ``k`` singular values of ``Delta``.
    delta_ : array (d, N)
    rank_ : int
        Numerical rank of ``Delta`` (singular values above 1e-6 of the largest).
    lam_ : float
        The nuclear-norm weight used; ``cv_results_`` (dict of lists) with ``lam="cv"``.
    objective_ : float
        The convex objective of the module docstring at the solution.
    factor_objective_ : float (factorized)
        ``F(theta0, B, W)``; equals ``objective_`` when the factors are balanced.
    grad_norm_ : float (factorized)
        Norm of the gradient of ``F`` at the solution (the certificate; ``kkt_residual_``).
    history_ : list of dict (factorized): ``F`` after each L-BFGS iteration
    n_iter_, converged_
    """

    _parameter_constraints = {
        "k": Int(1, none=True),
        "solver": Choice(SOLVERS),
        "unit": Custom(check_unit),
        "lam": Custom(lambda v, name: check_lam(v, allow_zero=False, name=name)),
        "lam0": Real(0.0, low_open=True),
        "fit_base": Bool(),
        "norm_bound": Real(0.0, low_open=True, none=True),
        "max_iter": Int(1),
        "tol": Real(0.0, low_open=True),
        "seed": Seed(),
        "rank": Int(1, none=True),
    }

    def __init__(self, k: int | None = None, solver: str = "factorized", unit: str = "group",
                 lam: float | str = "auto", lam0: float = 1e-4, fit_base: bool = True,
                 norm_bound: float | None = None, max_iter: int = 500, tol: float = 1e-10,
                 seed=0, rank: int | None = None):
        self.k = k
        self.solver = solver
        self.unit = unit
        self.lam = lam
        self.lam0 = lam0
        self.fit_base = fit_base
        self.norm_bound = norm_bound
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.rank = rank

    def _k(self) -> int:
        """The trait count (``k``, or its deprecated alias ``rank``); checked in ``fit``."""
        return int(self.k if self.k is not None else self.rank)

    def _validate(self, d):
        self._validate_params()
        k = renamed_param(self, "k", "rank")
        if k > d:
            raise InvalidParameterError(f"k must be <= d = {d}; got k = {k}")
        if self.norm_bound is not None and self.solver != "cvxpy":
            raise InvalidParameterError("norm_bound requires solver='cvxpy'")

    def _units(self, data):
        return (data.group, data.n_groups) if self.unit == "group" else (data.user, data.n_users)

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit on ``data`` (every unit needs at least one comparison); returns ``self``.

        With ``lam="cv"`` each grid value is fitted on the training split, the one with the
        largest held-out log-likelihood is refitted on all of ``data``.
        """
        self._check_fit_params(fit_params)
        data = check_data(data)
        self._validate(data.d)
        unit, N = self._units(data)
        if self._k() > N:  # Delta is d x N: its rank is at most N (the factors' shapes too)
            raise InvalidParameterError(f"k must be <= the number of units ({self.unit}s) "
                                        f"N = {N}; got k = {self._k()}")
        counts = np.bincount(unit, minlength=N)
        if np.any(counts == 0):
            raise ValueError(f"SharedLoRA needs data for every {self.unit}; "
                             f"{int(np.sum(counts == 0))} of {N} have no comparisons")
        X, y = data.X, data.y
        self.__dict__.pop("cv_results_", None)
        if self.lam == "cv":
            lam = self._choose_lam_cv(X, y, unit, N)
        elif self.lam == "auto":
            lam = auto_lam(X, N)
        else:
            lam = float(self.lam)
        self._fit_arrays(X, y, unit, N, lam)
        return self

    def _fit_arrays(self, X, y, unit, N, lam):
        r = self._k()
        for stale in ("grad_norm_", "factor_objective_", "solver_message_"):
            self.__dict__.pop(stale, None)  # factorized-only certificate of an earlier fit
        if self.solver == "cvxpy":
            theta0, Delta = self._fit_cvxpy(X, y, unit, N, lam)
            self.history_ = []
            self.n_iter_ = 1
            self.converged_ = True
            B, sv, Vt = _top_svd(Delta, r)
        else:
            theta0, Bf, Wf = self._fit_factorized(X, y, unit, N, lam)
            Delta = Bf @ Wf
            Q, R = np.linalg.qr(Bf)
            Um, sv, Vt = np.linalg.svd(R @ Wf, full_matrices=False)
            B = Q @ Um
        sv_all = np.linalg.svd(Delta, compute_uv=False)
        self.rank_ = int(np.sum(sv_all > 1e-6 * max(sv_all.max(), 1e-300))) if sv_all.size else 0
        if self.solver == "cvxpy" and self.rank_ > r:
            warnings.warn(f"solver='cvxpy' solves the nuclear-norm relaxation without a rank "
                          f"constraint: the solution has numerical rank {self.rank_} > "
                          f"k = {r}; theta_ / delta_ are untruncated, B_ / W_ are its best "
                          f"rank-{r} approximation. Use solver='factorized' to impose the rank, "
                          f"or a larger lam", UserWarning, stacklevel=3)
        self.lam_ = float(lam)
        self.B_ = B
        self.singular_values_ = sv
        self.W_ = sv[:, None] * Vt
        self.theta0_ = theta0
        self.delta_ = Delta
        self.theta_ = theta0[None, :] + Delta.T
        self.objective_ = sharedlora_objective(X, y.astype(float), unit, theta0, Delta, lam,
                                               self.lam0)

    def _choose_lam_cv(self, X, y, unit, N):
        """``lam="cv"``: held-out log-likelihood over ``auto_lam * CV_GRID`` (class docstring)."""
        root = as_seed_sequence(self.seed)
        # a child stream derived without spawn(): spawning would mutate a SeedSequence passed
        # as seed, so a refit would draw a different split
        ss = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (0xC5,))
        test = _stratified_holdout(unit, N, CV_HOLDOUT, ss)
        tr = ~test
        if not test.any():
            raise ValueError("lam='cv' needs units with at least 2 comparisons to hold one out")
        base = auto_lam(X[tr], N)
        grid = [base * c for c in CV_GRID]
        st = 2.0 * y[test] - 1.0
        scores = []
        for lam in grid:
            self._fit_arrays(X[tr], y[tr], unit[tr], N, lam)
            z = np.einsum("ij,ij->i", X[test], self.theta_[unit[test]])
            scores.append(float(-np.logaddexp(0.0, -st * z).mean()))
        best = int(np.argmax(scores))
        self.cv_results_ = {"lam": [float(v) for v in grid], "heldout_loglik_mean": scores,
                            "n_train": int(tr.sum()), "n_test": int(test.sum())}
        return float(grid[best])

    # ------------------------------------------------------------------ cvxpy
    def _fit_cvxpy(self, X, y, unit, N, lam):
        import cvxpy as cp

        d = X.shape[1]
        S = X * (2.0 * y - 1.0)[:, None]
        th0 = cp.Variable(d) if self.fit_base else np.zeros(d)
        D = cp.Variable((d, N))
        z = cp.hstack([S[rows] @ (th0 + D[:, u]) for u, rows in enumerate(_unit_index(unit, N))])
        obj = cp.sum(cp.logistic(-z)) + lam * cp.normNuc(D)
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
    def _fit_factorized(self, X, y, unit, N, lam):
        """Variable projection + L-BFGS (module docstring); returns theta0, B, W (r, N)."""
        with _one_blas_thread():
            return self._fit_factorized_pinned(X, y, unit, N, lam)

    def _fit_factorized_pinned(self, X, y, unit, N, lam):
        from scipy.optimize import minimize

        # rows sorted by unit once (the objective is a sum over rows): per-unit sums by reduceat
        order = np.argsort(unit, kind="stable")
        X, y, unit = X[order], y[order], unit[order]
        seg = _Segments(unit, N)
        n, d = X.shape
        r = self._k()
        lam0 = float(self.lam0)
        s = 2.0 * y.astype(np.float64) - 1.0
        nb = d if self.fit_base else 0
        rng = np.random.Generator(np.random.PCG64(as_seed_sequence(self.seed)))
        B = np.linalg.qr(rng.standard_normal((d, r)))[0]
        theta0 = np.zeros(d)
        state = {"W": fit_units_offset(X @ B, s, np.zeros(n), unit, N, lam,
                                       tol=_W_TOL, segments=seg)[0]}
        # Rebalance the start (same fit, penalty reduced to ||B W||_*): Burer–Monteiro's
        # balanced factors B = U S^1/2, W = S^1/2 V^T; then W is re-solved for that B.
        Q, R = np.linalg.qr(B)
        U_, sv, Vt = np.linalg.svd(R @ state["W"].T, full_matrices=False)
        B = (Q @ U_) * np.sqrt(np.maximum(sv, 1e-12))
        state["W"] = fit_units_offset(X @ B, s, np.zeros(n), unit, N, lam, tol=_W_TOL,
                                      segments=seg)[0]

        def unpack(v):
            th0 = v[:nb] if nb else np.zeros(d)
            return th0, v[nb:].reshape(d, r)

        def fun(v):
            th0, Bv = unpack(v)
            f, g0, gB, W = profiled_objective(X, s, unit, N, th0, Bv, lam, lam0,
                                              W0=state["W"], segments=seg)
            state["W"] = W
            return f, np.concatenate(([g0] if nb else []) + [gB.ravel()])

        v0 = np.concatenate(([theta0] if nb else []) + [B.ravel()])
        f0, _ = fun(v0)
        hist = [{"iter": 0, "objective": f0}]

        def callback(intermediate_result):
            hist.append({"iter": len(hist), "objective": float(intermediate_result.fun)})

        res = minimize(fun, v0, jac=True, method="L-BFGS-B", callback=callback,
                       options={"maxiter": int(self.max_iter), "maxfun": 20 * int(self.max_iter),
                                "ftol": float(self.tol), "gtol": 1e-10 * max(1.0, n),
                                "maxcor": 20})
        f_end, g_end = fun(res.x)  # W exactly for the returned (theta0, B)
        theta0, B = unpack(res.x)
        W = state["W"]
        # gradient of F: the (theta0, B) part; the W part is the per-unit W-step residual
        gW = fit_units_offset(X @ B, s, X @ theta0, unit, N, lam, W, tol=_W_TOL, segments=seg,
                              max_iter=0)[2]
        self.history_ = hist
        self.n_iter_ = int(res.nit)
        self.converged_ = bool(res.success)
        self.grad_norm_ = float(np.sqrt(g_end @ g_end + gW @ gW))
        self.factor_objective_ = f_end
        self.solver_message_ = str(res.message)
        if not res.success:
            warnings.warn(f"SharedLoRA (factorized): L-BFGS stopped after {res.nit} "
                          f"iterations without meeting tol = {self.tol} ({res.message}); "
                          f"gradient norm {self.grad_norm_:.3g}. Raise max_iter "
                          f"(= {self.max_iter}) or loosen tol", RuntimeWarning, stacklevel=3)
        return theta0.copy(), B.copy(), W.T.copy()

    # ------------------------------------------------------------------ few-shot
    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None):
        r"""Fit new units' weights with ``theta0_`` and the basis fixed (few-shot).

        New unit ``j`` is group ``j`` of ``data`` (the contract of :mod:`.base`). Its weights
        solve the ``W``-step of the factorized objective with ``(theta0, B)`` fixed at the fitted
        balanced factor ``B_bal = B_ diag(singular_values_)^{1/2}``:

        .. math::

            \min_{v}\ \sum_{i \in j} \log\big(1 + e^{-s_i x_i^\top(\theta_0 + B_{bal} v)}\big)
                + \frac{\lambda}{2}\lVert v\rVert^2 ,\qquad
            W_j = \mathrm{diag}(\text{singular\_values\_})^{1/2} v ,

        i.e. the ridge the fit itself puts on each unit (equivalently the prior
        ``lam/2 w^T S^{-1} w`` on ``B_``'s coordinates; directions with a zero singular value
        stay at zero). Refitting the training units this way returns ``W_`` (the fit's fixed
        point). A unit with no comparisons gets ``W_j = 0``, ``theta_j = theta0_``.

        Parameters
        ----------
        data : PreferenceData
            ``data.group`` indexes the new units (``data.n_groups`` of them).
        weights : None or "free"
            The weight constraint; SharedLoRA's weights are free (no simplex model).

        Returns
        -------
        NewUsersFit
            ``objective`` and ``grad_norm`` are those of the per-unit problem above (in ``v``).
        """
        from .base import NewUsersFit

        self._check_fitted()
        data = check_data(data)
        if weights is not None and not (isinstance(weights, str) and weights == "free"):
            raise InvalidParameterError(f"weights must be None or 'free' for SharedLoRA (its "
                                        f"W_i are free); got {weights!r}")
        d = self.theta0_.shape[0]
        if data.d != d:
            raise ValueError(f"data must have d = {d} features (the fitted basis); got {data.d}")
        N = data.n_groups
        sq = np.sqrt(self.singular_values_)
        Bbal = self.B_ * sq
        s = 2.0 * data.y.astype(np.float64) - 1.0
        V, f, gn, it, conv = fit_units_offset(data.X @ Bbal, s, data.X @ self.theta0_,
                                              data.group, N, self.lam_)
        W = sq[:, None] * V.T
        theta = self.theta0_[None, :] + (self.B_ @ W).T
        return NewUsersFit(theta=theta, W=W, objective=f, grad_norm=gn, n_iter=it,
                           converged=bool(conv.all()), converged_units=conv, weights="free")
