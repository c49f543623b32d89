"""The policy-specific argument checks, built on the one validation layer :mod:`simulator.validation`.

Everything general (a real number in a range, an integer, one of a set of options, a finite real
array of a given shape, a probability vector) is :mod:`simulator.validation`'s helpers, called
directly by the policy modules and :mod:`simulator.fairness`: strict types (no ``bool`` for a
number, no silent int / str / complex coercion), one exception type
(:class:`~simulator.validation.InvalidParameterError`, a ``ValueError`` and a ``TypeError``) and
messages naming the parameter and its allowed range. What is left here is what only the policy
layer knows: the environment, the compatibility of parameters and rewards with its shape
(d, M, A), the KL coefficient beta, the reward convention and log pi_ref.

Every check returns the validated value (float64 arrays or Python scalars); none copies more
than it must.
"""

from __future__ import annotations

import numpy as np

from simulator.arms import FiniteArmEnv
from simulator.validation import (
    InvalidParameterError,
    check_array,
    check_choice,
    check_probabilities,
    check_real,
)

__all__ = [
    "NORMALIZATIONS",
    "check_beta",
    "check_distribution",
    "check_env",
    "check_normalize",
    "check_rewards",
    "check_theta",
    "check_thetas",
    "log_ref",
]

NORMALIZATIONS = ("ref_center", None)


def check_env(env) -> FiniteArmEnv:
    """``env`` must be a :class:`~simulator.arms.FiniteArmEnv`."""
    if not isinstance(env, FiniteArmEnv):
        raise InvalidParameterError(f"env must be a FiniteArmEnv; got {type(env).__name__}")
    return env


def check_beta(beta) -> float:
    """The KL coefficient: a real number (not bool, str or complex) in (0, inf)."""
    return check_real(beta, "beta", low=0.0, low_open=True)


def check_normalize(normalize):
    """The reward convention: one of :data:`NORMALIZATIONS`."""
    return check_choice(normalize, "normalize", NORMALIZATIONS)


def check_thetas(env: FiniteArmEnv, thetas) -> np.ndarray:
    """Group parameters of shape (U, d), U >= 1, d the environment's, finite."""
    th = check_array(thetas, "thetas", ndim=2)
    if th.shape[1] != env.d or th.shape[0] < 1:
        raise InvalidParameterError(
            f"thetas must have shape (U, d) with U >= 1 and d = {env.d}; got {th.shape}")
    return th


def check_theta(env: FiniteArmEnv, theta, name: str = "theta") -> np.ndarray:
    """One parameter of shape (d,), d the environment's, finite."""
    return check_array(theta, name, shape=(env.d,))


def check_rewards(env: FiniteArmEnv, rewards, ndim, name: str = "rewards") -> np.ndarray:
    """Rewards of shape (M, A) (``ndim=2``), (U, M, A) (``ndim=3``, U >= 1) or (..., M, A)
    (``ndim=None``), with the environment's M and A, finite."""
    r = check_array(rewards, name, finite=False)
    m, a = env.n_contexts, env.n_actions
    want = {2: "(M, A)", 3: "(U, M, A)", None: "(M, A) (or (..., M, A))"}[ndim]
    if (r.ndim < 2 if ndim is None else r.ndim != ndim) or r.shape[-2:] != (m, a) or (
            ndim == 3 and r.shape[0] < 1):
        raise InvalidParameterError(f"{name} must have shape {want} with M={m}, A={a}; "
                                    f"got {r.shape}")
    return check_array(r, name)  # finiteness, named (no copy: r is float64 already)


def check_distribution(q, n: int, name: str) -> np.ndarray:
    """A probability vector of shape (n,) (entries >= 0, sum 1 within 1e-8), renormalised to
    sum to 1 exactly."""
    return check_probabilities(check_array(q, name, shape=(n,)), name, size=n, positive=False)


def log_ref(env: FiniteArmEnv) -> np.ndarray:
    """log pi_ref with -inf (no warning) where pi_ref is 0."""
    ref = env.pi_ref
    out = np.full(ref.shape, -np.inf)
    np.log(ref, out=out, where=ref > 0)
    return out
