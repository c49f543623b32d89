"""The estimator contract shared by every reward estimator (scikit-learn style).

* Hyperparameters are set in ``__init__`` only and stored under the same names.
* ``fit(data)`` validates its input, learns, and returns ``self``.
* Learned attributes end in ``_``; every estimator sets ``theta_`` of shape (U, d), ``n_iter_``
  and ``converged_``.
* ``reward(X, group)`` and ``log_likelihood(data)`` work for any fitted estimator.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..data import PreferenceData

__all__ = ["PreferenceEstimator", "NotFittedError", "check_data"]


class NotFittedError(RuntimeError):
    """An estimator was used before ``fit``."""


def check_data(data) -> PreferenceData:
    """Accept a :class:`PreferenceData` (already validated on construction)."""
    if not isinstance(data, PreferenceData):
        raise TypeError(f"data must be a PreferenceData; got {type(data).__name__}")
    return data


def _log_sigmoid(t):
    return -np.logaddexp(0.0, -t)


class PreferenceEstimator:
    """Base class: parameter handling, reward and likelihood evaluation."""

    # -------------------------------------------------------------- params
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict:
        """Hyperparameters as a dict (the ``__init__`` arguments)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set hyperparameters; unknown names raise ValueError."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"unknown parameter {key!r} for {type(self).__name__}; "
                                 f"valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ fitted use
    def _check_fitted(self):
        if not hasattr(self, "theta_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(data) first")

    def reward(self, X, group) -> np.ndarray:
        """Estimated reward ``<theta_group, X>`` (X of shape (n, d) or (d,); group int or (n,))."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        group = np.asarray(group)
        U, d = self.theta_.shape
        if X.shape[-1] != d:
            raise ValueError(f"X must have {d} columns; got shape {X.shape}")
        if np.any(group < 0) or np.any(group >= U):
            raise ValueError(f"group ids must lie in [0, {U})")
        return np.einsum("...j,...j->...", X, self.theta_[group])

    def predict_proba(self, data) -> np.ndarray:
        """P(y = 1) for each comparison under the fitted group parameters."""
        data = check_data(data)
        z = self.reward(data.X, data.group)
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def log_likelihood(self, data) -> float:
        """Sum of BT log-likelihoods of ``data`` under ``theta_[group]``."""
        data = check_data(data)
        z = self.reward(data.X, data.group)
        return float(np.sum(_log_sigmoid((2.0 * data.y - 1.0) * z)))
