r"""Single-reward KL-regularised policies (the Gibbs / closed-form RLHF policy).

    pi_r(a | x) = pi_ref(a | x) exp(r(x, a) / beta) / Z(x),   Z(x) = E_{a~pi_ref(.|x)} exp(r(x, a) / beta)

is the exact maximiser of E_x[E_pi r - beta KL(pi || pi_ref)] (MM §1, the standard closed form).
Every other policy of the package that has a closed form is a Gibbs policy of some reward.
"""

from __future__ import annotations

import numpy as np

from simulator.arms import FiniteArmEnv

from .validation import check_beta, check_env, check_rewards, check_theta, log_ref

__all__ = ["gibbs_and_log_partition", "gibbs_from_rewards", "gibbs_policy"]


def gibbs_and_log_partition(env: FiniteArmEnv, r: np.ndarray, beta: float):
    """pi ∝ pi_ref exp(r / beta) and log Z(x) = log E_{pi_ref} exp(r / beta); r (..., M, A).

    No validation (callers check ``env``, ``r`` and ``beta``); max-shifted log-sum-exp, so it is
    stable for huge rewards / small beta.  Returns ``(pi, logz)`` of shapes (..., M, A), (..., M).
    """
    lref = log_ref(env)
    with np.errstate(over="ignore"):
        z = r / beta
    if np.all(np.isfinite(z)):
        logits = lref + z
        mx = np.max(logits, axis=-1, keepdims=True)  # finite: pi_ref has a positive entry per row
        w = np.exp(logits - mx)
        s = np.sum(w, axis=-1, keepdims=True)
        return w / s, (mx + np.log(s))[..., 0]
    # r / beta overflows float64 (beta tiny against the rewards): shift each row by its largest
    # reward on the support of pi_ref before dividing, so every exponent is <= 0 and the best
    # supported action keeps exponent 0; the policy is then exact (it tends to the greedy one)
    rmax = np.max(np.where(np.isfinite(lref), r, -np.inf), axis=-1, keepdims=True)
    with np.errstate(over="ignore", under="ignore"):  # -> -inf: that action's mass is 0
        logits = lref + (r - rmax) / beta
    mx = np.max(logits, axis=-1, keepdims=True)
    w = np.exp(logits - mx)
    s = np.sum(w, axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        logz = (rmax / beta + mx + np.log(s))[..., 0]  # +-inf where it overflows, never NaN
    return w / s, logz


def gibbs_from_rewards(env: FiniteArmEnv, rewards, beta) -> np.ndarray:
    r"""Exact maximiser of E_x[E_pi r - beta KL(pi || pi_ref)] for one reward array (M, A):

        pi_r(a | x) = pi_ref(a | x) exp(r(x, a) / beta) / Z(x)          (MM §1, closed form)

    computed per context with a max-shifted log-sum-exp.  Also accepts a batch (..., M, A).
    """
    check_env(env)
    b = check_beta(beta)
    r = check_rewards(env, rewards, None)
    return gibbs_and_log_partition(env, r, b)[0]


def gibbs_policy(env: FiniteArmEnv, theta, beta) -> np.ndarray:
    r"""Single-reward KL-regularised RLHF policy for r(x, a) = <theta, phi(x, a)>:

        pi(a | x) ∝ pi_ref(a | x) exp(theta^T phi(x, a) / beta)        (MM §1, standard closed form)

    theta: (d,).  Returns (M, A).  Invariant to per-context additive reward shifts.
    """
    check_env(env)
    b = check_beta(beta)
    th = check_theta(env, theta)
    return gibbs_and_log_partition(env, env.rewards(th), b)[0]

