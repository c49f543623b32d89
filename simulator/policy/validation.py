"""Argument checks shared by the policy modules and by :mod:`simulator.fairness`.

Every check returns the validated value (as float64 arrays or Python scalars) or raises a
``ValueError`` whose message names the argument.  None of them copies more than it must.
"""

from __future__ import annotations

import numbers

import numpy as np

from simulator.arms import FiniteArmEnv

__all__ = [
    "NORMALIZATIONS",
    "check_beta",
    "check_env",
    "check_normalize",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_rewards",
    "check_simplex",
    "check_theta",
    "check_thetas",
    "log_ref",
]

NORMALIZATIONS = ("ref_center", None)


def check_env(env) -> FiniteArmEnv:
    """``env`` must be a :class:`~simulator.arms.FiniteArmEnv`."""
    if not isinstance(env, FiniteArmEnv):
        raise ValueError(f"env must be a FiniteArmEnv; got {type(env).__name__}")  # noqa: TRY004
    return env


def check_beta(beta) -> float:
    """The KL coefficient: a real number in (0, inf)."""
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise ValueError(f"beta must be a real number in (0, inf); got {beta!r}")  # noqa: TRY004
    b = float(beta)
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"beta must be in (0, inf); got {beta!r}")
    return b


def check_normalize(normalize):
    """The reward convention: one of :data:`NORMALIZATIONS`."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}")
    return normalize


def check_thetas(env: FiniteArmEnv, thetas) -> np.ndarray:
    """Group parameters of shape (U, d), U >= 1, finite."""
    th = np.asarray(thetas, dtype=np.float64)
    if th.ndim != 2 or th.shape[1] != env.d or th.shape[0] < 1:
        raise ValueError(
            f"thetas must have shape (U, d) with U >= 1 and d = {env.d}; got {th.shape}"
        )
    if not np.all(np.isfinite(th)):
        raise ValueError("thetas must be finite (no NaN/inf)")
    return th


def check_theta(env: FiniteArmEnv, theta) -> np.ndarray:
    """One parameter of shape (d,), finite."""
    th = np.asarray(theta, dtype=np.float64)
    if th.shape != (env.d,):
        raise ValueError(f"theta must have shape (d,) = ({env.d},); got {th.shape}")
    if not np.all(np.isfinite(th)):
        raise ValueError("theta must be finite (no NaN/inf)")
    return th


def check_rewards(env: FiniteArmEnv, rewards, ndim: int) -> np.ndarray:
    """Rewards of shape (M, A) (``ndim=2``) or (U, M, A) (``ndim=3``), finite."""
    r = np.asarray(rewards, dtype=np.float64)
    m, a = env.n_contexts, env.n_actions
    want = "(M, A)" if ndim == 2 else "(U, M, A)"
    if r.ndim != ndim or r.shape[-2:] != (m, a) or (ndim == 3 and r.shape[0] < 1):
        raise ValueError(f"rewards must have shape {want} with M={m}, A={a}; got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite (no NaN/inf)")
    return r


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """An int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def check_simplex(q, n: int, name: str) -> np.ndarray:
    """A probability vector of shape (n,) (atol 1e-8 on the sum), renormalised exactly."""
    qq = np.asarray(q, dtype=np.float64)
    if qq.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {qq.shape}")
    if not np.all(np.isfinite(qq)) or np.any(qq < 0) or abs(qq.sum() - 1.0) > 1e-8:
        raise ValueError(f"{name} must be a probability vector (non-negative, sums to 1)")
    return qq / qq.sum()


def check_nonnegative(value, name: str) -> float:
    """A real number (not a bool) in [0, inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        np.isfinite(value) and value >= 0
    ):
        raise ValueError(f"{name} must be a real number in [0, inf); got {value!r}")
    return float(value)


def check_positive(value, name: str) -> float:
    """A real number (not a bool) in (0, inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        np.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a real number in (0, inf); got {value!r}")
    return float(value)


def log_ref(env: FiniteArmEnv) -> np.ndarray:
    """log pi_ref with -inf (no warning) where pi_ref is 0."""
    ref = env.pi_ref
    out = np.full(ref.shape, -np.inf)
    np.log(ref, out=out, where=ref > 0)
    return out
