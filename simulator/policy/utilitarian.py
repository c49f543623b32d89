r"""The utilitarian policy: argmax_pi sum_u eta_u F_u(pi), a Gibbs policy of the mixed reward."""

from __future__ import annotations

import numpy as np

from simulator.arms import FiniteArmEnv

from .gibbs import gibbs_and_log_partition
from .validation import check_beta, check_distribution, check_env, check_thetas

__all__ = ["utilitarian_policy"]


def utilitarian_policy(env: FiniteArmEnv, thetas, beta, proportions=None) -> np.ndarray:
    r"""Utilitarian policy: argmax_pi sum_u eta_u F_u(pi) = Gibbs policy of r_eta = sum_u eta_u r_u,
    i.e. single-reward RLHF with the proportion-weighted reward (MM §2.1 population, eta(u)).

    proportions eta: (U,) on the simplex (default uniform).  Independent of the normalisation
    (the weights sum to 1, so per-context shifts cancel in the Gibbs form).  Note: the pooled
    Bradley–Terry MLE on mixed data is NOT exactly sum_u eta_u theta_u (BT is non-linear; MM
    Lemma 1); for "single-reward RLHF as trained" use ``gibbs_policy(env, pooled.theta_, beta)``.
    """
    check_env(env)
    b = check_beta(beta)
    th = check_thetas(env, thetas)
    n_groups = th.shape[0]
    eta = (np.full(n_groups, 1.0 / n_groups) if proportions is None
           else check_distribution(proportions, n_groups, "proportions"))
    return gibbs_and_log_partition(env, env.rewards(eta @ th), b)[0]
