"""Finite-arm contextual environment: contexts x with probabilities rho, A actions per context,
features phi(x, a) in R^d and a reference policy pi_ref(a | x).

This is the environment of the theory-validation simulator (MaxMin-RLHF, arXiv 2402.08925,
Section 2 setup with a linear reward r_u(x, a) = <theta_u, phi(x, a)>; notes maxmin.md 7.1 and
sharedrep.md 7.1).  The class is pure data + validation; it imports only :mod:`simulator.seeding`,
so `simulator.population` can build one (`Population.arm_env`) and `simulator.policy`
can solve on one.

Conventions
-----------
- ``features``: (M, A, d) float64, finite.  ``phi(x, a) = features[x, a]``.
- ``rho``: (M,) context distribution (default uniform).
- ``pi_ref``: (M, A) rows on the simplex (default uniform).  Zero entries are allowed (an action
  the reference never plays); every KL-regularised policy then also puts zero mass there.
- Rewards of group u: ``r_u(x, a) = features[x, a] @ theta_u``; ``rewards(thetas)`` returns
  them for all groups at once, shape (U, M, A).
"""

from __future__ import annotations

import numbers

import numpy as np

from .seeding import as_generator
from .validation import InvalidParameterError, check_array, check_int

__all__ = ["FiniteArmEnv"]

_SIMPLEX_ATOL = 1e-8


def _check_distribution_rows(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be finite (no NaN/inf)")
    if np.any(arr < 0):
        raise InvalidParameterError(f"{name} must be non-negative (probabilities in [0, 1])")
    sums = arr.sum(axis=-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=_SIMPLEX_ATOL):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise InvalidParameterError(
            f"{name} must sum to 1 along its last axis (max deviation {worst:.3g} > {_SIMPLEX_ATOL})"
        )


class FiniteArmEnv:
    """Finite contexts x ~ rho, A actions each, features phi(x, a), reference policy pi_ref.

    Parameters
    ----------
    features : array (M, A, d)
        phi(x, a); must be finite, M >= 1, A >= 2, d >= 1.
    rho : array (M,), optional
        Context probabilities (default uniform 1/M).  Non-negative, sums to 1 (atol 1e-8; it is
        renormalised exactly after the check).
    pi_ref : array (M, A), optional
        Reference policy, rows on the simplex (default uniform 1/A).  Renormalised after the check.

    Arrays are copied and made read-only, so an environment is an immutable value.
    """

    def __init__(self, features, rho=None, pi_ref=None):
        feats = check_array(features, "features", finite=False, copy=True)
        if feats.ndim != 3:
            raise InvalidParameterError(
                f"features must have shape (M contexts, A actions, d); got ndim={feats.ndim}"
            )
        m, a, d = feats.shape
        if m < 1 or a < 2 or d < 1:
            raise InvalidParameterError(
                f"features shape (M, A, d) needs M >= 1, A >= 2, d >= 1; got {feats.shape}"
            )
        if not np.all(np.isfinite(feats)):
            raise InvalidParameterError("features must be finite (no NaN/inf)")

        if rho is None:
            rho_arr = np.full(m, 1.0 / m)
        else:
            rho_arr = check_array(rho, "rho", finite=False, copy=True)
            if rho_arr.shape != (m,):
                raise InvalidParameterError(f"rho must have shape (M,) = ({m},); got "
                                            f"{rho_arr.shape}")
            _check_distribution_rows(rho_arr, "rho")
            rho_arr = rho_arr / rho_arr.sum()

        if pi_ref is None:
            ref = np.full((m, a), 1.0 / a)
        else:
            ref = check_array(pi_ref, "pi_ref", finite=False, copy=True)
            if ref.shape != (m, a):
                raise InvalidParameterError(f"pi_ref must have shape (M, A) = ({m}, {a}); got "
                                            f"{ref.shape}")
            _check_distribution_rows(ref, "pi_ref")
            ref = ref / ref.sum(axis=1, keepdims=True)

        for arr in (feats, rho_arr, ref):
            arr.setflags(write=False)
        self._features = feats
        self._rho = rho_arr
        self._pi_ref = ref

    # ------------------------------------------------------------------ properties
    @property
    def features(self) -> np.ndarray:
        """phi, shape (M, A, d) (read-only)."""
        return self._features

    @property
    def rho(self) -> np.ndarray:
        """Context distribution, shape (M,) (read-only)."""
        return self._rho

    @property
    def pi_ref(self) -> np.ndarray:
        """Reference policy, shape (M, A) (read-only)."""
        return self._pi_ref

    @property
    def n_contexts(self) -> int:
        return self._features.shape[0]

    @property
    def n_actions(self) -> int:
        return self._features.shape[1]

    @property
    def d(self) -> int:
        return self._features.shape[2]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(M, A, d)."""
        return self._features.shape  # type: ignore[return-value]

    def __repr__(self) -> str:
        m, a, d = self.shape
        return f"FiniteArmEnv(n_contexts={m}, n_actions={a}, d={d})"

    # ------------------------------------------------------------------ rewards
    def rewards(self, thetas) -> np.ndarray:
        """Linear rewards r_u(x, a) = <theta_u, phi(x, a)>.

        thetas : (U, d) -> returns (U, M, A);  (d,) -> returns (M, A).
        """
        th = check_array(thetas, "thetas", finite=False)
        if th.ndim not in (1, 2) or th.shape[-1] != self.d:
            raise InvalidParameterError(
                f"thetas must have shape (U, d) or (d,) with d = {self.d}; got {th.shape}"
            )
        if not np.all(np.isfinite(th)):
            raise InvalidParameterError("thetas must be finite (no NaN/inf)")
        if th.ndim == 1:
            return self._features @ th
        return np.einsum("mad,ud->uma", self._features, th)

    # ------------------------------------------------------------------ sampling
    def check_policy(self, pi, name: str = "pi") -> np.ndarray:
        """Validate a policy array: shape (M, A), finite, rows on the simplex.  Returns float64."""
        if not isinstance(name, str):
            raise InvalidParameterError(f"name must be a string; got {name!r}")
        arr = check_array(pi, name, finite=False)
        if arr.shape != (self.n_contexts, self.n_actions):
            raise InvalidParameterError(
                f"{name} must have shape (M, A) = ({self.n_contexts}, {self.n_actions}); "
                f"got {arr.shape}"
            )
        _check_distribution_rows(arr, name)
        return arr

    def pair_probabilities(self, policy=None) -> np.ndarray:
        """Exact law of the ordered pair drawn by `sample_comparisons`, shape (M, A, A).

        P(a0 = a, a1 = b | x) = p(a) p(b) / (1 - p(a)) for b != a (two draws without replacement
        from p = policy(. | x), default pi_ref); zero on the diagonal.  Contexts whose policy row
        has fewer than two actions with positive mass get an all-zero slice.
        """
        p = self._pi_ref if policy is None else self.check_policy(policy, "policy")
        one_minus = 1.0 - p
        with np.errstate(divide="ignore", invalid="ignore"):
            first = np.where(one_minus > 0, p / np.where(one_minus > 0, one_minus, 1.0), 0.0)
        joint = first[:, :, None] * p[:, None, :]
        idx = np.arange(self.n_actions)
        joint[:, idx, idx] = 0.0
        return joint

    def comparison_law(self, policy=None) -> tuple[np.ndarray, np.ndarray]:
        """Exact law of one query of `sample_comparisons`: weights ``w`` (M, A, A) and ``X``
        (M, A, A, d).

        ``w[x, a0, a1] = rho'(x) P(a0, a1 | x)``, the probability that a query shows context x and
        the ordered pair (a0, a1) (:meth:`pair_probabilities`, ``rho'`` = ``rho`` restricted to
        the contexts that can be sampled and renormalised); ``X[x, a0, a1] = phi(x, a1) -
        phi(x, a0)``, the query's feature difference. ``w`` sums to 1.
        """
        w = self.pair_probabilities(policy) * self._rho[:, None, None]
        total = w.sum()
        if not total > 0:
            raise InvalidParameterError(
                "policy must put positive mass on at least two actions in some context with rho > 0"
            )
        w = w / total
        phi = self._features
        X = phi[:, None, :, :] - phi[:, :, None, :]  # [x, a0, a1] -> phi(a1) - phi(a0)
        return w, X

    def design_covariance(self, policy=None) -> np.ndarray:
        """``E[X X^T]`` (d, d) under :meth:`comparison_law`: the population design matrix of the
        comparisons (``Sigma`` of the BT curvature assumption, before the link's curvature)."""
        w, X = self.comparison_law(policy)
        Xf = X.reshape(-1, self.d)
        return (Xf * w.reshape(-1)[:, None]).T @ Xf

    def reward_variance(self, pi, dtheta) -> float:
        """``E_{x ~ rho} Var_{a ~ pi(.|x)} <dtheta, phi(x, a)>``: the spread, under ``pi``, of the
        reward difference ``dtheta`` (the input of the alignment gap's quadratic approximation,
        ``theory.alignment_gap_quadratic_approx``)."""
        p = self.check_policy(pi, "pi")
        r = self.rewards(dtheta)
        if r.ndim != 2:
            raise InvalidParameterError(f"dtheta must have shape (d,) with d = {self.d}; got "
                                        f"{np.shape(dtheta)}")
        m = np.sum(p * r, axis=1)
        return float(self._rho @ np.sum(p * (r - m[:, None]) ** 2, axis=1))

    def sample_comparisons(self, n: int, seed, policy=None):
        """Draw n comparison queries (no labels): contexts and ordered pairs of distinct actions.

        x_i ~ rho; (a0, a1) = two draws WITHOUT replacement from policy(. | x_i) (default pi_ref):
        a0 ~ p, then a1 ~ p restricted to actions != a0 and renormalised.

        Returns
        -------
        contexts : (n,) int64
        actions : (n, 2) int64, actions[:, 0] = a0 != actions[:, 1] = a1
        X : (n, d) float64, X_i = phi(x_i, a1) - phi(x_i, a0)

        ``seed``: int, SeedSequence or Generator (see :func:`simulator.seeding.as_generator`).  Contexts are drawn only
        from contexts whose sampling row has at least two actions with positive mass.
        """
        if not isinstance(n, numbers.Integral) or isinstance(n, (bool, np.bool_)) or n < 0:
            raise InvalidParameterError(f"n must be a non-negative int; got {n!r}")
        n = check_int(n, "n", low=0)
        rng = as_generator(seed)
        p = self._pi_ref if policy is None else self.check_policy(policy, "policy")
        ok = (p > 0).sum(axis=1) >= 2
        if not np.any(ok & (self._rho > 0)):
            raise InvalidParameterError(
                "policy must put positive mass on at least two actions in some context with rho > 0"
            )
        rho = np.where(ok, self._rho, 0.0)
        rho = rho / rho.sum()
        ctx = rng.choice(self.n_contexts, size=n, p=rho)
        rows = p[ctx]  # (n, A)
        a0 = _inverse_cdf(rows, rng.random(n))
        rows2 = rows.copy()
        rows2[np.arange(n), a0] = 0.0
        rows2 /= rows2.sum(axis=1, keepdims=True)
        a1 = _inverse_cdf(rows2, rng.random(n))
        actions = np.stack([a0, a1], axis=1).astype(np.int64)
        X = self._features[ctx, a1] - self._features[ctx, a0]
        return ctx.astype(np.int64), actions, X


def _inverse_cdf(rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: smallest a with cdf(a) > u * total; never a zero-mass action."""
    cdf = np.cumsum(rows, axis=1)
    target = u * cdf[:, -1]
    idx = (cdf <= target[:, None]).sum(axis=1)
    idx = np.minimum(idx, rows.shape[1] - 1)
    # guard against landing on a zero-probability action through round-off at the top end
    bad = rows[np.arange(rows.shape[0]), idx] <= 0
    if np.any(bad):
        last_pos = rows.shape[1] - 1 - np.argmax(rows[:, ::-1] > 0, axis=1)
        idx = np.where(bad, last_pos, idx)
    return idx
