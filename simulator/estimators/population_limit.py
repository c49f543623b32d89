"""The population limit of the pooled Bradley-Terry fit: the single reward that RLHF converges to
when it is trained on infinitely many comparisons from a mixture of groups.

MaxMin-RLHF (Chakraborty et al. 2024, arXiv 2402.08925), Lemma 1 (notes maxmin.md §2): with
queries ``(x, a0, a1)`` drawn from the environment's comparison law (weights ``w``,
``X = phi(x, a1) - phi(x, a0)``, :meth:`~simulator.arms.FiniteArmEnv.comparison_law`) and labels
from the mixture ``P_mix(X) = sum_u eta_u sigma(<theta_u, X>)``, the pooled maximum-likelihood
estimator converges to

    phi* = argmin_phi  E_{(x, a0, a1) ~ w} [ -P_mix log sigma(<phi, X>)
                                             - (1 - P_mix) log sigma(-<phi, X>) ],

the reward whose mismatch ``||phi* - theta_u||`` Lemma 1 bounds below. The expectation is a finite
sum, so ``phi*`` is a weighted BT fit (:func:`~simulator.estimators.bt.fit_bt`) with every query
entered twice: label 1 with weight ``w P_mix``, label 0 with weight ``w (1 - P_mix)``.
"""

from __future__ import annotations

import numpy as np

from ..arms import FiniteArmEnv
from ..validation import InvalidParameterError, check_array, check_probabilities
from .bt import BTFit, fit_bt

__all__ = ["population_bt_fit"]


def population_bt_fit(env, theta, proportions, *, policy=None, lam: float = 1e-10,
                      tol: float = 1e-12, max_iter: int = 200) -> BTFit:
    """``phi*``, the pooled BT fit to the exact comparison law of a mixture (module docstring).

    Parameters
    ----------
    env : FiniteArmEnv
        Contexts, actions, features and the policy the comparison pairs are drawn from.
    theta : array (U, d)
        True parameters of the groups.
    proportions : array (U,)
        Group proportions ``eta_u`` (positive, summing to 1).
    policy : array (M, A), optional
        The policy the pairs are drawn from (default ``env.pi_ref``).
    lam : float, default 1e-10
        Ridge on the summed objective (the weights are scaled to one unit per query), a guard that
        keeps the minimiser unique on a rank-deficient design without moving it measurably.
    tol, max_iter
        Newton's stopping rule (:func:`~simulator.estimators.bt.fit_bt`).

    Returns
    -------
    BTFit
        ``.theta`` is ``phi*``; ``.converged`` its certificate. The fit starts at the
        proportion-weighted parameter ``sum_u eta_u theta_u``.
    """
    if not isinstance(env, FiniteArmEnv):
        raise InvalidParameterError(f"env must be a FiniteArmEnv; got {type(env).__name__}")
    th = check_array(theta, "theta", ndim=2)
    if th.shape[1] != env.d:
        raise InvalidParameterError(f"theta must have shape (U, d) with d = {env.d}; got "
                                    f"{th.shape}")
    check_probabilities(proportions, "proportions", size=th.shape[0])
    eta = np.asarray(proportions, dtype=np.float64)  # as given: no renormalisation round-off
    w, X = env.comparison_law(policy)
    keep = w.reshape(-1) > 0
    Xf = X.reshape(-1, env.d)[keep]
    wf = w.reshape(-1)[keep]
    p_mix = eta @ (1.0 / (1.0 + np.exp(-(th @ Xf.T))))
    Xs = np.concatenate([Xf, Xf])
    ys = np.concatenate([np.ones(len(wf), np.int8), np.zeros(len(wf), np.int8)])
    ws = np.concatenate([wf * p_mix, wf * (1.0 - p_mix)]) * len(wf)  # mean scale ~ one query each
    return fit_bt(Xs, ys, lam=lam, sample_weight=ws, theta_init=eta @ th, tol=tol,
                  max_iter=max_iter)
