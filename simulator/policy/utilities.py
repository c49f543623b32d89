r"""Group utilities, the reward normalisation and the KL to the reference policy.

    F_u(pi) = E_{x~rho}[ E_{a~pi(.|x)} r_u(x, a) - beta KL(pi(.|x) || pi_ref(.|x)) ]   (MM §1, §4.1)

The normalisation convention (MM §4.4 [D]) is described in the package docstring
(:mod:`simulator.policy`): ``"ref_center"`` (default) or ``None``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from simulator.arms import FiniteArmEnv
from simulator.validation import InvalidParameterError, check_array

from .validation import (
    check_beta,
    check_env,
    check_normalize,
    check_rewards,
    check_thetas,
)

__all__ = [
    "group_utilities",
    "kl_rows",
    "normalize_rewards",
    "utilities_unchecked",
    "utilities_from_rewards",
]


def normalize_rewards(env: FiniteArmEnv, rewards, normalize="ref_center") -> np.ndarray:
    """Apply the reward convention (MM §4.4 [D]) to rewards of shape (..., M, A).

    ``"ref_center"``: r(x, a) - E_{a'~pi_ref(.|x)} r(x, a'), per group and per context.
    ``None``: unchanged (a float64 copy).
    """
    check_env(env)
    check_normalize(normalize)
    r = check_array(rewards, "rewards", finite=False, copy=True)
    if r.ndim < 2 or r.shape[-2:] != (env.n_contexts, env.n_actions):
        raise InvalidParameterError(
            f"rewards must have shape (..., M, A) with M={env.n_contexts}, A={env.n_actions}; "
            f"got {r.shape}"
        )
    if normalize == "ref_center":
        r -= np.sum(r * env.pi_ref, axis=-1, keepdims=True)
    return r


def kl_rows(env: FiniteArmEnv, pi: np.ndarray) -> np.ndarray:
    """KL(pi(.|x) || pi_ref(.|x)) per context (inf where pi puts mass outside supp pi_ref).

    No validation of ``pi``.
    """
    return np.sum(rel_entr(pi, env.pi_ref), axis=-1)


def utilities_unchecked(env: FiniteArmEnv, pi: np.ndarray, r: np.ndarray, beta: float):
    """F_u(pi) for rewards r of shape (..., M, A) as given (no validation, no normalisation)."""
    expected = np.einsum("...ma,ma->...m", r, pi) @ env.rho
    return expected - beta * float(env.rho @ kl_rows(env, pi))


def utilities_from_rewards(env: FiniteArmEnv, pi, rewards, beta, normalize="ref_center"):
    r"""F_u(pi) = E_{x~rho}[ E_{a~pi} r_u(x, a) - beta KL(pi(.|x) || pi_ref(.|x)) ]   (MM §1).

    rewards: (U, M, A) -> (U,) array;  (M, A) -> float.  ``normalize`` as in the module doc.
    """
    check_env(env)
    b = check_beta(beta)
    check_normalize(normalize)
    p = env.check_policy(pi, "pi")
    r = check_array(rewards, "rewards", ndim=(2, 3), finite=False)
    r = check_rewards(env, r, r.ndim)
    r = normalize_rewards(env, r, normalize)
    out = utilities_unchecked(env, p, r, b)
    return float(out) if r.ndim == 2 else out


def group_utilities(env: FiniteArmEnv, pi, thetas, beta, normalize="ref_center") -> np.ndarray:
    r"""Per-group utilities F_u(pi), u = 1..U, for linear rewards r_u = <theta_u, phi>  (MM §1).

    thetas: (U, d) (any estimator's ``theta_``).  Returns (U,).  With the default
    ``normalize="ref_center"``, F_u(pi_ref) = 0 and F_u(pi) = E_x[E_pi r_u - E_{pi_ref} r_u]
    - beta E_x KL(pi || pi_ref).
    """
    check_env(env)
    th = check_thetas(env, thetas)
    return utilities_from_rewards(env, pi, env.rewards(th), beta, normalize)
