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

Constraints: ``constraints=(A, b)`` asks ``A theta_u = b`` of every group's ``theta_u = Beff c_u``,
which is the linear constraint ``(A Beff) c_u = b`` on the k (or k + 1) coefficients, fitted by
:func:`~simulator.estimators.bt.fit_bt` with that constraint. ``A Beff`` may lose rank where
``A theta = b`` restricts nothing inside span(Beff) (e.g. sum-to-zero when B's columns already
sum to zero): the redundant rows are dropped when ``b`` is consistent with them, and the fit is
refused when no ``theta`` in span(Beff) satisfies the constraint or only one does.

Few-shot: :meth:`OracleB.fit_new_users` solves the same per-group problems for users the
estimator has never seen (B is a hyperparameter, so no earlier ``fit`` is needed); it returns a
:class:`~.base.NewUsersFit` and leaves the estimator unchanged.
"""

from __future__ import annotations

import numpy as np

from ..validation import Custom, Int, InvalidParameterError, Real, Seed, check_array
from .base import (
    NewUsersFit,
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    require_every_group,
)
from .bt import check_constraints, check_sample_weight, fit_bt
from .regularisation import check_lam, resolve_bt_lam

__all__ = ["OracleB"]


def _bad_constraints(value, name):
    raise InvalidParameterError(f"{name} must be None or a pair (A, b) (A theta = b with A an "
                                f"(m, d) array and b an (m,) array); got {type(value).__name__}")


class OracleB(PreferenceEstimator):
    """Per-group k-dimensional BT fits on the true representation ``B``.

    Parameters
    ----------
    B : array (d, k)
        The true trait matrix (any basis of the true span; orthonormal columns make the ridge
        basis-independent).
    theta0 : array (d,), optional
        Shared base direction (P-ShareLoRA populations): its coefficient is fitted per group.
    lam : float or {"auto", "cv"}, default 1e-4
        Ridge on ``w`` (summed objective). ``"auto"``: per group ``1e-4 * s_u^2`` with ``s_u^2``
        the mean squared entry of that group's design ``X_u B`` (so fitting ``c X`` gives
        ``theta / c`` exactly). ``"cv"``: per group, chosen from
        :func:`~simulator.estimators.regularisation.default_lam_grid` on ``X B`` by
        ``n_folds``-fold held-out log-likelihood, folds stratified by group and drawn from
        ``seed``; :meth:`fit_new_users` resolves it the same way on the new users' data.

        Regime the default 1e-4 was checked in (figures 2 and 5): ``k`` = 1-3 (+1 with a
        base), orthonormal ``B``, features ``N(0, I)``, 40 to 50,000 comparisons per group,
        where it is negligible against the curvature ``n s^2 / 4``. With few comparisons per
        group relative to ``k`` or large feature scales use ``"cv"``; figure 7's per-user fits
        (20-ish comparisons per user) pass ``lam = 1`` explicitly.
    norm_bound : float, optional
        ``||w_u|| <= norm_bound``.
    tol : float, default 1e-9
        Gradient-norm tolerance on each group's mean objective (of
        :func:`~simulator.estimators.bt.fit_bt`).
    n_folds : int, default 5
        Folds of ``lam="cv"`` (>= 2; ignored otherwise).
    seed : int, SeedSequence or Generator, default 0
        Fold assignment of ``lam="cv"`` (ignored otherwise).
    unit : {"group", "user"}, default "group"
        The units personalised: one ``theta`` per ``data.group``, or per ``data.user`` (the
        fit runs on :meth:`~simulator.data.PreferenceData.as_units`, ``theta_`` has
        ``data.n_users`` rows and comparisons are scored by their user).
    constraints : (A, b), optional
        Linear equality constraints ``A theta_u = b`` (A (m, d) of full row rank, m < d) on
        every unit's reward, i.e. ``(A Beff) c_u = b`` on its coefficients (module docstring:
        rows that are redundant inside span(Beff) are dropped; refused when span(Beff) holds
        no feasible ``theta`` or a single one). Also used by :meth:`fit_new_users`.

    Attributes
    ----------
    W_ : array (k, U)
    coef_ : array (k or k + 1, U)
        ``W_`` plus, with a base, the coefficient of ``theta0 / ||theta0||``.
    theta_ : array (U, d)
    lam_ : array (U,)
        Each group's ridge.
    cv_scores_ : array (G, U)
        With ``lam="cv"``: mean held-out log-likelihood per held-out comparison per grid row
        and group; ``cv_result_`` (:class:`~simulator.estimators.regularisation.CVResult`) has
        the grid, folds and ``table()``.
    objective_ : array (U,)
        Each group's penalised BT objective at ``coef_[:, u]``.
    grad_norm_ : array (U,)
        Each group's final gradient norm, as :func:`~.bt.fit_bt` reports it;
        ``kkt_residual_`` is the same array.
    n_iter_ : array (U,)
    converged_groups_ : array (U,) of bool
    converged_ : bool
        Every group's fit converged.

    Notes
    -----
    ``fit`` accepts the fit parameter ``sample_weight`` (n,), non-negative weights of the
    comparisons.
    """

    _fit_params = ("sample_weight",)
    _parameter_constraints = {
        "B": Custom(lambda v, name: check_array(v, name, finite=False)),
        "lam": Custom(lambda v, name: check_lam(v, name=name)),
        "norm_bound": Real(0.0, low_open=True, none=True),
        "tol": Real(0.0, low_open=True),
        "n_folds": Int(2),
        "seed": Seed(),
        "unit": Custom(check_unit),
        "constraints": Custom(lambda v, name: v if v is None or (
            isinstance(v, (tuple, list)) and len(v) == 2) else _bad_constraints(v, name)),
    }

    def __init__(self, B, theta0=None, lam: float | str = 1e-4, norm_bound: float | None = None,
                 tol: float = 1e-9, n_folds: int = 5, seed=0, unit: str = "group",
                 constraints=None):
        self.B = B
        self.theta0 = theta0
        self.lam = lam
        self.norm_bound = norm_bound
        self.tol = tol
        self.n_folds = n_folds
        self.seed = seed
        self.unit = unit
        self.constraints = constraints

    def _design(self, data):
        """Validated representation ``Beff`` (B, plus the base direction when there is one)."""
        self._validate_params()
        B = check_array(self.B, "B", finite=False)
        if B.ndim != 2 or B.shape[0] != data.d:
            raise InvalidParameterError(f"B must have shape (d, k) with d = {data.d}; got "
                                        f"{B.shape}")
        if B.shape[1] > data.d:
            raise InvalidParameterError(f"B must have k <= d columns; got k = {B.shape[1]}")
        if B.shape[1] < 1:
            raise InvalidParameterError(f"B must have k >= 1 columns; got shape {B.shape}")
        if not np.all(np.isfinite(B)):
            raise InvalidParameterError("B must be finite")
        theta0 = np.zeros(data.d) if self.theta0 is None else check_array(
            self.theta0, "theta0", finite=False)
        if theta0.shape != (data.d,):
            raise InvalidParameterError(f"theta0 must have shape ({data.d},); got "
                                        f"{theta0.shape}")
        if not np.all(np.isfinite(theta0)):
            raise InvalidParameterError("theta0 must be finite")
        if np.any(theta0 != 0):
            return np.hstack([B, (theta0 / np.linalg.norm(theta0))[:, None]])
        return B

    def _coef_constraints(self, Beff):
        """``constraints`` on theta as a constraint on the coefficients: ``(A Beff) c = b``
        with the rows redundant inside span(Beff) dropped (None when nothing is left)."""
        lc = check_constraints(self.constraints, Beff.shape[0])
        if lc is None:
            return None
        M = lc.A @ Beff
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        k = Beff.shape[1]
        # singular values at the round-off of the product (relative to ||A|| ||Beff||, not to
        # the largest singular value of A Beff, which is itself round-off when A Beff = 0)
        r = int(np.count_nonzero(S > 1e-10 * np.linalg.norm(lc.A, 2) * np.linalg.norm(Beff, 2)))
        Ur = U[:, :r]
        resid = float(np.linalg.norm(lc.b - Ur @ (Ur.T @ lc.b)))
        if resid > 1e-10 * max(float(np.linalg.norm(lc.b)), 1.0):
            raise InvalidParameterError(
                f"constraints: no theta in the span of B (and theta0) satisfies A theta = b "
                f"(A @ Beff has rank {r}; least-squares residual {resid:.3g})")
        if r == 0:
            return None  # every theta in span(Beff) satisfies the constraints
        if r >= k:
            raise InvalidParameterError(
                f"constraints leave no free coefficient: A @ Beff has rank {r} >= k = {k} "
                f"(the span of B, and theta0, holds one feasible theta at most)")
        # the r independent rows of the reduced system: S_r V_r^T c = U_r^T b
        return check_constraints((S[:r, None] * Vt[:r], Ur.T @ lc.b), k,
                                 name="constraints (on the coefficients, A @ Beff)")

    def _cv_fit(self, Z, y, w, lam, theta_init, constraints=None):
        """One fit inside the lam="cv" search."""
        return fit_bt(Z, y, lam=lam, sample_weight=w, theta_init=theta_init,
                      norm_bound=self.norm_bound, tol=self.tol, constraints=constraints).theta

    def _solve(self, data, sample_weight, who):
        """One BT fit per group on ``X_u Beff``.

        Returns (Beff, coef, objective, grad, n_iter, conv, lam, cv), ``lam`` the (U,) ridges and
        ``cv`` the :class:`~.regularisation.CVResult` (None unless ``lam="cv"``).
        """
        data = check_data(data)
        Beff = self._design(data)
        require_every_group(data, "OracleB", who)
        sw = check_sample_weight(sample_weight, data.n)
        U = data.n_groups
        Z = data.X @ Beff
        lc = self._coef_constraints(Beff)

        def cv_fit(Zr, yr, wr, lam, theta_init):
            return self._cv_fit(Zr, yr, wr, lam, theta_init, lc)

        lam, cv = resolve_bt_lam(self.lam, data, cv_fit, per_unit=True, X=Z,
                                 sample_weight=sw, n_folds=self.n_folds, seed=self.seed)
        coef = np.zeros((Beff.shape[1], U))
        objective = np.zeros(U)
        grad = np.zeros(U)
        n_iter = np.zeros(U, dtype=np.int64)
        conv = np.zeros(U, dtype=bool)
        for u, rows in enumerate(data.group_rows()):
            res = fit_bt(Z[rows], data.y[rows], lam=float(lam[u]),
                         sample_weight=None if sw is None else sw[rows],
                         norm_bound=self.norm_bound, tol=self.tol, constraints=lc)
            coef[:, u] = res.theta
            objective[u] = res.objective
            grad[u] = res.grad_norm
            n_iter[u] = res.n_iter
            conv[u] = res.converged
        return Beff, coef, objective, grad, n_iter, conv, np.asarray(lam, dtype=np.float64), cv

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit every group's weights on the true ``B``; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
            Every group needs at least one comparison.
        **fit_params
            ``sample_weight`` (n,), optional.
        """
        fp = self._check_fit_params(fit_params)
        data = check_data(data).as_units(check_unit(self.unit))
        Beff, coef, objective, grad, n_iter, conv, lam, cv = self._solve(
            data, fp["sample_weight"], self.unit)
        k = np.asarray(self.B).shape[1]
        for name in ("cv_scores_", "cv_result_"):
            self.__dict__.pop(name, None)
        if cv is not None:
            self._set_fitted(cv_scores_=cv.scores, cv_result_=cv)
        return self._set_fitted(W_=coef[:k].copy(), coef_=coef, theta_=(Beff @ coef).T,
                                lam_=lam, objective_=objective, grad_norm_=grad,
                                n_iter_=n_iter, converged_groups_=conv,
                                converged_=bool(conv.all()))

    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None, sample_weight=None) -> NewUsersFit:
        """Fit the weights of new users with ``B`` fixed (few-shot personalisation).

        Solves exactly the per-group problems of :meth:`fit`, so
        ``fit_new_users(data).theta == OracleB(B, ...).fit(data).theta_``; the estimator itself is
        not changed and need not be fitted (``B`` is a hyperparameter).

        Parameters
        ----------
        data : PreferenceData
            Comparisons of the new users; group ``j`` is new user ``j`` and every one needs at
            least one comparison.
        weights : {None, "free"}
            The weights' constraint. ``None`` is OracleB's own (free). ``"simplex"`` is refused:
            OracleB's problem is an unconstrained (or norm-bounded) BT fit and the package has no
            public simplex-constrained BT solver yet.
        sample_weight : array (n,), optional

        Returns
        -------
        NewUsersFit
            ``W`` holds the coefficients on ``B``; with a base ``theta0`` its coefficient is part
            of ``theta`` but not of ``W`` (as ``W_`` after ``fit``).
        """
        if weights is None:
            weights = "free"
        if not isinstance(weights, str):
            raise InvalidParameterError(f"weights must be None, 'free' or 'simplex'; got "
                                        f"{weights!r}")
        if weights == "simplex":
            raise ValueError("weights='simplex' is not supported by OracleB.fit_new_users: "
                             "OracleB fits free (optionally norm-bounded) weights and there is "
                             "no public simplex-constrained BT solver; use weights='free' or "
                             "None, or SharedRep.fit_new_users for simplex weights")
        if weights != "free":
            raise InvalidParameterError(f"weights must be None, 'free' or 'simplex'; got "
                                        f"{weights!r}")
        Beff, coef, objective, grad, n_iter, conv, _lam, _cv = self._solve(
            data, sample_weight, "new user")
        k = np.asarray(self.B).shape[1]
        return NewUsersFit(theta=(Beff @ coef).T, W=coef[:k].copy(), objective=objective,
                           grad_norm=grad, n_iter=n_iter, converged=bool(conv.all()),
                           converged_units=conv, weights="free")
