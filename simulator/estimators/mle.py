"""Bradley–Terry maximum likelihood with one reward for everybody or one per group.

* :class:`PooledMLE` — one ``theta`` for all comparisons: uniform (single-reward) RLHF.
* :class:`SeparateMLE` — one ``theta_u`` per group from that group's data only: the reward step of
  MaxMin-RLHF with known groups (arXiv 2402.08925, sec. 4; SharedRep-RLHF's MaxMin baseline).

Both minimise the objective of :mod:`simulator.estimators.bt` (sum of negative log-likelihoods
plus ``lam / 2 ||theta||^2``) by Newton's method. ``lam`` is a number, ``"auto"`` (scaled to the
features) or ``"cv"`` (chosen by held-out likelihood, per group for :class:`SeparateMLE`); see
:mod:`simulator.estimators.regularisation`. ``constraints=(A, b)`` restricts every fitted
``theta`` to ``A theta = b`` (e.g. sum-to-zero), solved exactly by
:func:`~simulator.estimators.bt.fit_bt`.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..validation import Choice, Custom, Int, InvalidParameterError, Real, Seed, Str
from .base import (
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    require_every_group,
)
from .bt import BACKENDS, BTConvergenceWarning, check_constraints, check_sample_weight, fit_bt
from .regularisation import check_lam, resolve_bt_lam

__all__ = ["PooledMLE", "SeparateMLE"]


def _check_constraints_param(value, name, per_unit=False):
    """The data-independent part of the ``constraints`` check (its shapes need ``d`` and are
    checked in ``fit`` by :func:`~simulator.estimators.bt.check_constraints`): None, a pair
    ``(A, b)`` or, where ``per_unit``, a dict ``{unit: (A, b) or None}``."""
    if value is None:
        return value
    if per_unit and isinstance(value, dict):
        for key, item in value.items():
            if not (isinstance(key, (int, np.integer)) and not isinstance(key, bool)
                    and key >= 0):
                raise InvalidParameterError(f"{name} keys must be unit indices (int >= 0); "
                                            f"got {key!r}")
            if item is not None and not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise InvalidParameterError(f"{name}[{key}] must be None or a pair (A, b); got "
                                            f"{type(item).__name__}")
        return value
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        allowed = ("None, a pair (A, b) or a dict {unit: (A, b)}" if per_unit else
                   "None or a pair (A, b)")
        raise InvalidParameterError(f"{name} must be {allowed} (A theta = b with A an (m, d) "
                                    f"array and b an (m,) array); got {type(value).__name__}")
    return value


class _BTMLE(PreferenceEstimator):
    _parameter_constraints = {
        "lam": Custom(lambda v, name: check_lam(v, name=name)),
        "norm_bound": Real(0.0, low_open=True, none=True),
        "tol": Real(0.0, low_open=True),
        "max_iter": Int(1),
        "backend": Choice(BACKENDS),
        "device": Str(),
        "n_folds": Int(2),
        "seed": Seed(),
        "unit": Custom(check_unit),
        "constraints": Custom(_check_constraints_param),
    }

    def __init__(self, lam: float | str = 1e-4, norm_bound: float | None = None,
                 tol: float = 1e-9, max_iter: int = 100, backend: str = "numba",
                 device: str = "cpu", n_folds: int = 5, seed=0, constraints=None):
        self.lam = lam
        self.norm_bound = norm_bound
        self.tol = tol
        self.max_iter = max_iter
        self.backend = backend
        self.device = device
        self.n_folds = n_folds
        self.seed = seed
        self.constraints = constraints

    def _validate_params(self):
        super()._validate_params()  # the table above: types, ranges, options
        if self.device != "cpu" and self.backend != "torch":
            raise InvalidParameterError(f"device {self.device!r} needs backend='torch'")

    def _start_fit(self, data, fit_params):
        """The common start of ``fit``: the fit parameters, the data and the hyperparameters
        checked; returns (data, sample_weight)."""
        sample_weight = self._check_fit_params(fit_params)["sample_weight"]
        data = check_data(data)
        self._validate_params()
        return data, sample_weight

    def _fit_one(self, X, y, w, theta_init=None, label="", lam=None, constraints=None):
        res = fit_bt(X, y, lam=self.lam if lam is None else lam, sample_weight=w,
                     theta_init=theta_init, norm_bound=self.norm_bound, tol=self.tol,
                     max_iter=self.max_iter, backend=self.backend, device=self.device,
                     check_input=False, constraints=constraints)
        if not res.converged and res.status != "separable":  # separable data warned already
            warnings.warn(f"{type(self).__name__}{label}: {res.message}", BTConvergenceWarning,
                          stacklevel=3)
        return res

    def _cv_fit(self, X, y, w, lam, theta_init, constraints=None):
        """One fit inside the lam="cv" search (same solver settings and constraints as the
        final fit)."""
        return fit_bt(X, y, lam=lam, sample_weight=w, theta_init=theta_init,
                      norm_bound=self.norm_bound, tol=self.tol, max_iter=self.max_iter,
                      backend=self.backend, device=self.device, constraints=constraints).theta

    def _resolve_lam(self, data, w, per_unit, constraints=None):
        """``lam_`` from ``lam``; the CV fits (``lam="cv"``) use ``constraints``, one
        :class:`~simulator.estimators.bt.LinearConstraints` (or None) for every unit."""
        def cv_fit(X, y, w_rows, lam, theta_init):
            return self._cv_fit(X, y, w_rows, lam, theta_init, constraints)

        lam, cv = resolve_bt_lam(self.lam, data, cv_fit, per_unit=per_unit,
                                 sample_weight=w, n_folds=self.n_folds, seed=self.seed)
        for name in ("cv_scores_", "cv_result_"):
            self.__dict__.pop(name, None)
        if cv is not None:
            self.cv_scores_ = cv.scores
            self.cv_result_ = cv
        return lam


_LAM_DOC = """lam : float or {"auto", "cv"}, default 1e-4
        Ridge on the summed objective (``1 / C`` of scikit-learn). A number is used as given:
        positive by default so that separable data give a finite estimate; ``lam = 0`` is the
        MLE and warns (:class:`~simulator.estimators.bt.MLENotExistWarning`) when it does not
        exist. ``"auto"``: ``1e-4 * s^2`` with ``s^2`` the mean squared feature entry of the
        fitted rows (:func:`~simulator.estimators.regularisation.auto_lam`), so fitting ``c X``
        gives ``theta / c`` exactly; equal to the default at unit feature scale. ``"cv"``: chosen
        from :func:`~simulator.estimators.regularisation.default_lam_grid` by ``n_folds``-fold
        held-out BT log-likelihood, folds stratified by group and drawn from ``seed``
        (:func:`~simulator.estimators.regularisation.cv_lam`); the final fit is on all rows.

        Regime the default 1e-4 was checked in (figures 2, 4, 5): ``d`` = 4-32, features
        ``N(0, I)`` (``s = 1``), planted ``||theta|| ~ 2``, 40 to 50,000 comparisons per fitted
        problem (n >= 5 d), where it is a negligible ridge (< 1e-3 of the loss curvature
        ``n s^2 / 4``). Outside it, e.g. 20 comparisons per group at d = 16 or feature scale 10,
        the fixed default is near the separable MLE and badly overfits; use ``"cv"`` there
        (``"auto"`` only removes the dependence on the feature scale)."""

_UNIT_DOC = """unit : {"group", "user"}, default "group"
        The units personalised: one ``theta`` per ``data.group``, or per ``data.user`` (the
        fit runs on :meth:`~simulator.data.PreferenceData.as_units`, ``theta_`` has
        ``data.n_users`` rows and comparisons are scored by their user)."""

_COMMON_DOC = """norm_bound : float, optional
        Constraint ``||theta|| <= norm_bound``.
    tol : float, default 1e-9
        Gradient-norm tolerance on the mean objective.
    max_iter : int, default 100
    backend : {"numba", "numpy", "torch"}
    device : str, default "cpu"
        Torch device ("cpu", "cuda") for ``backend="torch"``.
    n_folds : int, default 5
        Folds of ``lam="cv"`` (>= 2; ignored otherwise).
    seed : int, SeedSequence or Generator, default 0
        Fold assignment of ``lam="cv"`` (the only randomness; ignored otherwise)."""

_CONSTRAINTS_DOC = """constraints : (A, b), optional
        Linear equality constraints ``A theta = b`` on the fitted reward: ``A`` an (m, d)
        array of full row rank with ``1 <= m < d``, ``b`` (m,); e.g. sum-to-zero
        ``(np.ones((1, d)), [0.0])``. Solved exactly (:func:`~simulator.estimators.bt.fit_bt`:
        ``theta = theta_p + N z``, an unconstrained fit in ``z``); ``kkt_residual_`` is then the
        projected gradient and ``multipliers_`` the Lagrange multipliers. The ridge is still
        ``lam / 2 ||theta||^2``; ``lam="cv"`` fits every candidate under the constraints."""

_SEP_CONSTRAINTS_DOC = """constraints : (A, b) or dict, optional
        Linear equality constraints ``A theta_u = b``: one pair ``(A, b)`` for every unit (as
        :class:`PooledMLE`'s), or a dict ``{unit index: (A, b) or None}`` giving each unit its
        own (units not in the dict, or mapped to None, are unconstrained; keys are group
        indices, or user ids for ``unit="user"``). ``lam="cv"`` with a dict is refused (the
        CV search fits every unit through one callback that does not know the unit); use a
        shared pair or a numeric ``lam`` there. With constraints ``backend="torch"`` fits the
        units one by one (each a batch of one)."""


class PooledMLE(_BTMLE):
    __doc__ = f"""One BT reward for all groups (uniform RLHF).

    Parameters
    ----------
    {_LAM_DOC}
    {_COMMON_DOC}
    {_CONSTRAINTS_DOC}

    Attributes
    ----------
    theta_ : array (U, d)
        The pooled estimate, repeated for each group.
    coef_ : array (d,)
    lam_ : float
        The ridge the final fit used.
    cv_scores_ : array (G,)
        With ``lam="cv"``: mean held-out log-likelihood per held-out comparison of each grid
        value; ``cv_result_`` (:class:`~simulator.estimators.regularisation.CVResult`) has the
        grid, the folds and ``table()``.
    objective_, grad_norm_, kkt_residual_, status_, n_iter_, converged_
        The certificate: ``converged_`` means ``kkt_residual_ <= tol * n`` (sum of weights);
        ``status_`` says why the solver stopped otherwise (and a warning gave the remedy).
    multipliers_ : array (m,) or None
        Lagrange multipliers of ``constraints`` (None without them).
    """

    _fit_params = ("sample_weight",)

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit the pooled reward; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
        **fit_params
            ``sample_weight`` (n,), optional non-negative weights of the comparisons.
        """
        data, sample_weight = self._start_fit(data, fit_params)
        w = check_sample_weight(sample_weight, data.n)
        lc = check_constraints(self.constraints, data.d)
        lam = float(self._resolve_lam(data, w, per_unit=False, constraints=lc))
        res = self._fit_one(data.X, data.y, w, lam=lam, constraints=lc)
        self.multipliers_ = res.multipliers
        self.lam_ = lam
        self.coef_ = res.theta
        self.theta_ = np.tile(res.theta, (data.n_groups, 1))
        self.objective_ = res.objective
        self.grad_norm_ = res.grad_norm
        self.kkt_residual_ = res.kkt_residual
        self.status_ = res.status
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        return self


class SeparateMLE(_BTMLE):
    __doc__ = f"""One BT reward per group, each from that group's comparisons only.

    Every group must have at least one comparison. ``lam="auto"`` and ``lam="cv"`` choose one
    ridge per group (groups differ in size and ``"cv"`` scores each group on its own held-out
    comparisons), so group ``u`` of ``SeparateMLE(lam="auto")`` equals
    ``PooledMLE(lam="auto")`` on that group's rows.

    Parameters
    ----------
    {_LAM_DOC}
    {_COMMON_DOC}
    {_UNIT_DOC}
    {_SEP_CONSTRAINTS_DOC}

    Attributes
    ----------
    theta_ : array (U, d)
        One row per unit (group, or user for ``unit="user"``); so are the per-group arrays.
    lam_ : array (U,)
        Each group's ridge.
    cv_scores_ : array (G, U)
        With ``lam="cv"``: mean held-out log-likelihood per held-out comparison, per grid row
        and group (NaN for a group with one comparison, which is never held out and gets the
        largest grid value); ``cv_result_`` has the per-group grid, folds and ``table()``.
    objective_ : array (U,)
    n_iter_ : array (U,) of int
    converged_ : bool
        True when every group's fit converged; per group in ``converged_groups_``.
    multipliers_ : list of (array (m_u,) or None), or None
        Per unit, the Lagrange multipliers of its constraints (None for an unconstrained
        unit); None without ``constraints``.
    """

    _fit_params = ("sample_weight",)
    _parameter_constraints = {
        **_BTMLE._parameter_constraints,
        "constraints": Custom(lambda v, name: _check_constraints_param(v, name, per_unit=True)),
    }

    def __init__(self, lam: float | str = 1e-4, norm_bound: float | None = None,
                 tol: float = 1e-9, max_iter: int = 100, backend: str = "numba",
                 device: str = "cpu", n_folds: int = 5, seed=0, unit: str = "group",
                 constraints=None):
        super().__init__(lam=lam, norm_bound=norm_bound, tol=tol, max_iter=max_iter,
                         backend=backend, device=device, n_folds=n_folds, seed=seed,
                         constraints=constraints)
        self.unit = unit

    def _unit_constraints(self, U, d):
        """Per unit, its :class:`~simulator.estimators.bt.LinearConstraints` or None, from the
        ``constraints`` hyperparameter (pair: shared; dict: per unit), checked against d."""
        c = self.constraints
        if c is None:
            return [None] * U
        if not isinstance(c, dict):
            lc = check_constraints(c, d)
            return [lc] * U
        bad = [k for k in c if k >= U]
        if bad:
            raise InvalidParameterError(f"constraints keys must be unit indices in [0, {U}) "
                                        f"({U} {self.unit}s); got {bad}")
        return [check_constraints(c.get(u), d, name=f"constraints[{u}]") for u in range(U)]

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit every group's reward on its own comparisons; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
        **fit_params
            ``sample_weight`` (n,), optional non-negative weights of the comparisons.
        """
        data, sample_weight = self._start_fit(data, fit_params)
        data = data.as_units(check_unit(self.unit))
        require_every_group(data, "SeparateMLE", self.unit)
        w_all = check_sample_weight(sample_weight, data.n)
        lcs = self._unit_constraints(data.n_groups, data.d)
        if isinstance(self.constraints, dict) and isinstance(self.lam, str) and self.lam == "cv":
            raise InvalidParameterError("constraints given per unit (a dict) cannot be combined "
                                        "with lam='cv' (the CV search fits every unit through "
                                        "one callback); use a shared pair (A, b) or a numeric "
                                        "lam")
        # shared (or None) for the CV fits: the dict case is refused above
        lam = np.asarray(self._resolve_lam(data, w_all, per_unit=True, constraints=lcs[0]),
                         dtype=np.float64)
        self.lam_ = lam
        U, d = data.n_groups, data.d
        self.theta_ = np.zeros((U, d))
        self.objective_ = np.zeros(U)
        self.grad_norm_ = np.zeros(U)
        self.status_ = np.empty(U, dtype=object)
        self.n_iter_ = np.zeros(U, dtype=np.int64)
        self.converged_groups_ = np.zeros(U, dtype=bool)
        rows = data.group_rows()
        self.multipliers_ = None if self.constraints is None else [None] * U
        if (self.backend == "torch" and self.norm_bound is None and self.constraints is None
                and np.all(lam == lam[0])):
            return self._fit_batched(data, w_all, rows, float(lam[0]))
        for u, idx in enumerate(rows):
            res = self._fit_one(data.X[idx], data.y[idx], None if w_all is None else w_all[idx],
                                label=f" (group {u})", lam=float(lam[u]), constraints=lcs[u])
            if self.multipliers_ is not None:
                self.multipliers_[u] = res.multipliers
            self.theta_[u] = res.theta
            self.objective_[u] = res.objective
            self.grad_norm_[u] = res.grad_norm
            self.status_[u] = res.status
            self.n_iter_[u] = res.n_iter
            self.converged_groups_[u] = res.converged
        self.kkt_residual_ = self.grad_norm_
        self.converged_ = bool(self.converged_groups_.all())
        return self

    def _fit_batched(self, data, w_all, rows, lam):
        """All groups in one batched torch solve (padding carries weight 0)."""
        from ..kernels.torch_bt import fit_bt_batched, pad_problems

        probs = [(data.X[idx], data.y[idx], None if w_all is None else w_all[idx])
                 for idx in rows]
        X, y, w = pad_problems(probs, data.d)
        res = fit_bt_batched(X, y, lam=lam, sample_weight=w, tol=self.tol,
                             max_iter=self.max_iter, device=self.device)
        self.theta_ = res.theta
        self.objective_ = res.objective
        self.grad_norm_ = res.grad_norm
        self.kkt_residual_ = res.grad_norm
        self.status_ = np.array(["converged" if c else "not converged" for c in res.converged],
                                dtype=object)
        self.n_iter_ = res.n_iter
        self.converged_groups_ = res.converged
        self.converged_ = bool(res.converged.all())
        return self
