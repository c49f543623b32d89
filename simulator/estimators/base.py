"""The estimator contract shared by every reward estimator (scikit-learn style).

Parameters
    Hyperparameters are set in ``__init__`` only and stored under the same names.
    :meth:`PreferenceEstimator.get_params` / :meth:`~PreferenceEstimator.set_params` follow
    scikit-learn, nested estimators included (``name__param`` when ``deep=True``), so
    ``sklearn.base.clone(est)`` returns an unfitted copy with equal parameters.
Fit
    One signature, ``fit(self, data, **fit_params) -> self``. ``data`` is a
    :class:`~simulator.data.PreferenceData`; each class lists the fit parameters it accepts in
    the class attribute ``_fit_params`` (e.g. ``("sample_weight",)``; ``EMMixture`` takes the
    diagnostic ``true_groups``), and an unknown key raises ``TypeError`` naming the key and the
    accepted ones (:meth:`PreferenceEstimator._check_fit_params`).
Units
    Every estimator that personalises (``SeparateMLE``, ``SharedRep``, ``OracleB``,
    ``SharedLoRA``) takes ``unit="group"`` (default: one parameter vector per ``data.group``) or
    ``unit="user"`` (one per ``data.user``; the fit runs on
    :meth:`~simulator.data.PreferenceData.as_units`), and scores comparisons by the same ids.
    ``PooledMLE`` fits one vector for all; ``EMMixture`` clusters users by construction.
Fitted attributes
    Learned attributes end in ``_``. ``theta_`` has one row per *unit* the estimator
    personalises: shape (U, d) with ``U = data.n_groups``, or (N, d) with ``N = data.n_users``
    for ``unit="user"``.
Certificate
    Every fit records ``objective_`` (the value of the objective the estimator states in its
    module docstring at the returned point; a scalar, or one entry per separately solved unit),
    ``kkt_residual_`` (the norm of the gradient, or for a constrained problem of the projected
    gradient / KKT residual, at the returned point; an alias of ``grad_norm_`` where an
    estimator records that), ``n_iter_`` and ``converged_`` (True when the solver's own stopping
    test was met).
Few-shot
    Estimators with a fitted shared representation offer
    ``fit_new_users(data, *, weights=None) -> NewUsersFit``: the representation stays fixed and
    only the new users' weights are fitted; ``data.group`` indexes the new users.
Evaluation
    ``reward(X, group)``, ``predict_proba(data)`` and ``log_likelihood(data)`` work for any
    fitted estimator.
Validation
    Each class declares its hyperparameters' constraints in ``_parameter_constraints`` (a
    table ``{name: constraint}`` of :mod:`simulator.validation`: strict types, ranges, the
    parameter's name in every message); :meth:`PreferenceEstimator._validate_params` applies it
    at the start of ``fit`` (as scikit-learn does), before the checks that need the data
    (``k <= d``, enough users per cluster, ...). Every error is an
    :class:`~simulator.validation.InvalidParameterError` (a ``ValueError`` and a ``TypeError``).
Writing fitted state from outside ``fit``
    Batched drivers (:func:`simulator.estimators.batched.fit_many`) hand results back through
    :meth:`PreferenceEstimator._set_fitted` rather than by assigning attributes one by one, so
    the contract (names end in ``_``, the ``kkt_residual_`` alias) is kept in one place.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from dataclasses import dataclass

import numpy as np

from ..data import PreferenceData
from ..validation import InvalidParameterError, check_array, check_ids, validate_params

__all__ = ["PreferenceEstimator", "NotFittedError", "NewUsersFit", "UNITS", "check_data",
           "check_unit", "require_every_group", "one_blas_thread_fit", "renamed_param"]


class NotFittedError(RuntimeError):
    """An estimator was used before ``fit``."""


def check_data(data) -> PreferenceData:
    """Accept a :class:`PreferenceData` (already validated on construction)."""
    if not isinstance(data, PreferenceData):
        raise InvalidParameterError(f"data must be a PreferenceData; got {type(data).__name__}")
    return data


def renamed_param(est, new: str, old: str, *, stacklevel: int = 5):
    """The value of hyperparameter ``new`` of ``est``, whose deprecated alias is ``old``.

    Called in ``fit`` (validation happens there, scikit-learn's rule): ``old`` alone gives its
    value with a :class:`FutureWarning` naming ``new``; both given is an error naming both;
    neither is an error naming ``new``. The value is unchanged, so a fit is bit-identical.
    ``stacklevel`` 5 points the warning at the user's ``fit`` call when this runs in a
    ``_validate`` called by a ``fit`` decorated with :func:`one_blas_thread_fit`.
    """
    v_new, v_old = getattr(est, new), getattr(est, old)
    if v_old is None:
        if v_new is None:
            raise InvalidParameterError(f"{new} is required (an integer >= 1); got None")
        return v_new
    if v_new is not None:
        raise InvalidParameterError(f"{old} is a deprecated alias of {new}: give {new} only; "
                                    f"got {new} = {v_new!r} and {old} = {v_old!r}")
    warnings.warn(f"{type(est).__name__}({old}=...) is deprecated; use {new}=... (same "
                  f"meaning)", FutureWarning, stacklevel=stacklevel)
    return v_old


def one_blas_thread_fit(method):
    """Run an estimator's ``fit`` (or ``fit_new_users``) with BLAS pinned to one thread.

    Determinism: a threaded BLAS (OpenBLAS here) splits some products over its threads along
    the summed dimension and adds the partial sums in an order that depends on the thread count;
    e.g. the Gram matrix ``X^T D X`` of a 2,500 x 32 design differs in the last bit between one
    and two threads. Pinned (:func:`simulator.kernels.bt_numba.one_blas_thread`, re-entrant, so
    the solvers' own pins inside nest at no cost), a fit is bit-identical whatever the
    process's BLAS thread count; tested in ``tests/test_determinism.py``. One BLAS thread per
    fit is also the rule of the house for parallel workers (no oversubscription).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from ..kernels.bt_numba import one_blas_thread

        with one_blas_thread():
            return method(self, *args, **kwargs)

    return wrapper


def require_every_group(data, owner: str, unit: str = "group") -> None:
    """Raise a ValueError naming the empty groups when some group of ``data`` has no
    comparisons (estimators that fit per group need every one; ``unit`` names what a group
    stands for, e.g. "user" for new users)."""
    empty = np.flatnonzero(data.group_counts() == 0)
    if empty.size:
        raise ValueError(f"{owner} needs data for every {unit}; {unit}(s) {empty.tolist()} "
                         f"have no comparisons (n_groups = {data.n_groups})")


def _log_sigmoid(t):
    return -np.logaddexp(0.0, -t)


def _check_unit_ids(X, unit, theta, what):
    X = check_array(X, "X", ndim=(1, 2))
    N, d = theta.shape
    if X.shape[-1] != d:
        raise InvalidParameterError(f"X must have {d} columns; got shape {X.shape}")
    if np.ndim(unit) == 0:
        if not isinstance(unit, (int, np.integer)) or isinstance(unit, (bool, np.bool_)) \
                or not 0 <= unit < N:
            raise InvalidParameterError(f"{what} ids must lie in [0, {N}) (integers); got "
                                        f"{unit!r}")
        unit = int(unit)
    else:
        try:
            unit = check_ids(unit, what)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{what} ids must lie in [0, {N}) (integers); {exc}") \
                from None
        if unit.size and unit.max() >= N:
            raise InvalidParameterError(f"{what} ids must lie in [0, {N}); found id "
                                        f"{int(unit.max())}")
        if X.ndim == 2 and unit.size not in (1, X.shape[0]):
            raise InvalidParameterError(f"{what} must have one id per row of X ({X.shape[0]}); "
                                        f"got shape {unit.shape}")
    return X, unit


UNITS = ("group", "user")

# Where the ``kkt_residual_`` property keeps its value. Not "_kkt_residual": EMMixture has a
# method of that name, which the instance attribute shadowed, so a second fit of the same EM
# object failed ("'float' object is not callable").
_KKT_KEY = "_kkt_residual_value"


def check_unit(unit, name: str = "unit") -> str:
    """``unit`` of a per-unit estimator: ``"group"`` or ``"user"`` (a named error otherwise)."""
    if not isinstance(unit, str) or unit not in UNITS:
        raise InvalidParameterError(f"{name} must be one of {UNITS}; got {unit!r}")
    return unit


class _ScoresComparisons:
    """``predict_proba`` and ``log_likelihood`` of comparisons from a ``reward(X, unit)``; each
    comparison of ``data`` is scored by the parameters of its unit: ``data.user`` for an
    estimator fitted with ``unit="user"``, ``data.group`` otherwise."""

    def _unit_ids(self, data):
        return data.user if getattr(self, "unit", "group") == "user" else data.group

    def predict_proba(self, data) -> np.ndarray:
        """P(y = 1) for each comparison of ``data``, scored by its unit's ``theta``."""
        data = check_data(data)
        z = self.reward(data.X, self._unit_ids(data))
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def log_likelihood(self, data) -> float:
        """Sum of BT log-likelihoods of ``data``, each comparison under its unit's ``theta``."""
        data = check_data(data)
        z = self.reward(data.X, self._unit_ids(data))
        return float(np.sum(_log_sigmoid((2.0 * data.y - 1.0) * z)))


# --------------------------------------------------------------------------- few-shot result
@dataclass(frozen=True, eq=False)
class NewUsersFit(_ScoresComparisons):
    """Weights of new users fitted on a fixed representation (the few-shot result).

    Returned by ``fit_new_users`` of the estimators with a shared representation. User ``j`` of
    the result is group ``j`` of the data it was fitted on; each user's weights solve their own
    small problem, so every per-user certificate field has one entry per user.

    Parameters
    ----------
    theta : array (N, d)
        Reward parameters of the new users (row ``j`` is user ``j``).
    W : array (k, N)
        Their weights in the estimator's representation (column ``j`` is user ``j``).
    objective : array (N,)
        Each user's objective at the returned weights.
    grad_norm : array (N,)
        Each user's gradient norm (free weights) or KKT residual (simplex weights).
    n_iter : array (N,) of int
        Solver iterations per user.
    converged : bool
        Every user's solve met its stopping test.
    converged_units : array (N,) of bool
        Per user.
    weights : {"free", "simplex"}
        The constraint the weights were fitted under.
    """

    theta: np.ndarray
    W: np.ndarray
    objective: np.ndarray
    grad_norm: np.ndarray
    n_iter: np.ndarray
    converged: bool
    converged_units: np.ndarray
    weights: str = "free"

    def __post_init__(self):
        theta = np.asarray(self.theta, dtype=np.float64)
        if theta.ndim != 2:
            raise ValueError(f"theta must have shape (N, d); got {theta.shape}")
        N = theta.shape[0]
        W = np.asarray(self.W, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != N:
            raise ValueError(f"W must have shape (k, N) with N = {N}; got {W.shape}")
        for name in ("objective", "grad_norm", "n_iter", "converged_units"):
            v = np.asarray(getattr(self, name))
            if v.shape != (N,):
                raise ValueError(f"{name} must have shape (N,) = ({N},); got {v.shape}")
        if self.weights not in ("free", "simplex"):
            raise ValueError(f"weights must be 'free' or 'simplex'; got {self.weights!r}")
        # frozen dataclass: normalise the stored arrays through object.__setattr__
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "objective", np.asarray(self.objective, dtype=np.float64))
        object.__setattr__(self, "grad_norm", np.asarray(self.grad_norm, dtype=np.float64))
        object.__setattr__(self, "n_iter", np.asarray(self.n_iter, dtype=np.int64))
        object.__setattr__(self, "converged_units", np.asarray(self.converged_units, dtype=bool))
        object.__setattr__(self, "converged", bool(self.converged))

    @property
    def n_users(self) -> int:
        """Number of new users N."""
        return self.theta.shape[0]

    @property
    def kkt_residual(self) -> np.ndarray:
        """Alias of ``grad_norm`` (the contract's certificate name)."""
        return self.grad_norm

    def reward(self, X, unit) -> np.ndarray:
        """Reward ``<theta_unit, X>`` of new user(s) ``unit`` (int or (n,)) on X ((n, d) or (d,))."""
        X, unit = _check_unit_ids(X, unit, self.theta, "unit")
        return np.einsum("...j,...j->...", X, self.theta[unit])


    def accuracy(self, data) -> float:
        """Fraction of comparisons of ``data`` whose label the fit ranks correctly (ties: y0)."""
        data = check_data(data)
        z = self.reward(data.X, data.group)
        return float(np.mean((z > 0) == (data.y == 1)))


# --------------------------------------------------------------------------- estimator base
class PreferenceEstimator(_ScoresComparisons):
    """Base class: parameters, fit parameters, certificate, reward and likelihood evaluation."""

    #: Keyword arguments ``fit`` accepts besides ``data`` (see :meth:`_check_fit_params`).
    _fit_params: tuple[str, ...] = ()
    #: ``{hyperparameter: constraint}`` (:mod:`simulator.validation`), checked by
    #: :meth:`_validate_params` at the start of ``fit``.
    _parameter_constraints: dict = {}

    def _validate_params(self):
        """Check every hyperparameter against ``_parameter_constraints`` (types, ranges and
        options that do not depend on the data); raises
        :class:`~simulator.validation.InvalidParameterError` naming the parameter."""
        validate_params(self.get_params(deep=False), self._parameter_constraints)

    # -------------------------------------------------------------- params
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        # signature order (not sorted as scikit-learn does) keeps reprs as they were
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        """Hyperparameters as a dict (the ``__init__`` arguments).

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of nested estimators (values with a ``get_params``
            method) as ``name__param``, as scikit-learn does.

        Returns
        -------
        dict
        """
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set hyperparameters, nested ones as ``name__param``; returns ``self``.

        Raises
        ------
        ValueError
            A name that is not a parameter (of this estimator, or of the nested estimator).
        """
        if not params:
            return self
        valid = set(self._param_names())
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r} for {type(self).__name__}; "
                                 f"valid: {sorted(valid)}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ValueError(f"parameter {name!r} of {type(self).__name__} is not an "
                                 f"estimator; cannot set {sorted(sub_params)} on it")
            inner.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ fit params
    def _check_fit_params(self, fit_params: dict) -> dict:
        """Every declared fit parameter (``None`` where not given); unknown keys raise.

        Raises
        ------
        TypeError
            A key not in the class's ``_fit_params``; the message names it and the accepted ones.
        """
        accepted = tuple(self._fit_params)
        for key in fit_params:
            if key not in accepted:
                raise TypeError(f"{type(self).__name__}.fit got an unexpected fit parameter "
                                f"{key!r}; accepted: {list(accepted) or 'none'}")
        return {key: fit_params.get(key) for key in accepted}

    # ------------------------------------------------------------ fitted state
    def _set_fitted(self, **attrs):
        """Record fitted attributes (all names must end in ``_``); returns ``self``.

        The one entry point for code outside an estimator's own ``fit`` (batched drivers) that
        hands it a result; estimators whose fitted state has derived parts (e.g. an
        orthonormalised basis) override it and compute them here.
        """
        for name in attrs:
            if not name.endswith("_") or name.startswith("_"):
                raise ValueError(f"fitted attribute names must end in '_' and not start "
                                 f"with '_'; got {name!r}")
        for name, value in attrs.items():
            setattr(self, name, value)
        if "grad_norm_" in attrs and "kkt_residual_" not in attrs:
            # a residual left by an earlier fit must not shadow the new grad_norm_ alias
            self.__dict__.pop(_KKT_KEY, None)
        return self

    @property
    def kkt_residual_(self):
        """The certificate's residual: gradient norm, or KKT residual for constrained fits.

        Set by ``fit``; where an estimator records ``grad_norm_`` and nothing else, this is
        that value.
        """
        if _KKT_KEY in self.__dict__:
            return self.__dict__[_KKT_KEY]
        if "grad_norm_" in self.__dict__:
            return self.__dict__["grad_norm_"]
        raise AttributeError(f"{type(self).__name__} has no kkt_residual_: it is not fitted, "
                             "or its fit records no gradient / KKT residual")

    @kkt_residual_.setter
    def kkt_residual_(self, value):
        self.__dict__[_KKT_KEY] = value

    # ------------------------------------------------------------ fitted use
    def _check_fitted(self):
        if not hasattr(self, "theta_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(data) first")

    def reward(self, X, group) -> np.ndarray:
        """Estimated reward ``<theta_group, X>`` (X of shape (n, d) or (d,); group int or (n,))."""
        self._check_fitted()
        X, group = _check_unit_ids(X, group, self.theta_, "group")
        return np.einsum("...j,...j->...", X, self.theta_[group])
