"""numba kernels for the E-step of a mixture of Bradley–Terry models over users.

Reference: :func:`simulator.estimators.em.user_loglik_reference` and
:func:`simulator.estimators.em.e_step_reference`. With margins ``Z = X theta^T`` (n, K),

    L[h, c] = sum_{i : user_i = h} log sigma((2 y_i - 1) Z[i, c])       (user log-likelihoods)
    R[h, c] = exp(L[h, c] + log pi_c - logsumexp_c'(L[h, c'] + log pi_c'))  (responsibilities)

everything in log space (no exp of a reward; the official MaxMin code exponentiates rewards and
can overflow).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _log_sigmoid(t):
    if t > 0:
        return -math.log1p(math.exp(-t))
    return t - math.log1p(math.exp(t))


@njit(cache=True)
def user_loglik(Z, y, user, n_users):
    """L (n_users, K): summed log-likelihood of each user's comparisons under each cluster."""
    n, K = Z.shape
    L = np.zeros((n_users, K))
    for i in range(n):
        s = 2.0 * y[i] - 1.0
        h = user[i]
        for c in range(K):
            L[h, c] += _log_sigmoid(s * Z[i, c])
    return L


@njit(cache=True)
def e_step(L, log_pi):
    """Responsibilities R (n_users, K) and per-user log marginal likelihoods (n_users,)."""
    H, K = L.shape
    R = np.empty((H, K))
    ll = np.empty(H)
    for h in range(H):
        m = -np.inf
        for c in range(K):
            a = L[h, c] + log_pi[c]
            m = max(m, a)
        if m == -np.inf:  # every cluster has zero weight (cannot happen with pi > 0)
            for c in range(K):
                R[h, c] = 1.0 / K
            ll[h] = -np.inf
            continue
        s = 0.0
        for c in range(K):
            s += math.exp(L[h, c] + log_pi[c] - m)
        lse = m + math.log(s)
        for c in range(K):
            R[h, c] = math.exp(L[h, c] + log_pi[c] - lse)
        ll[h] = lse
    return R, ll
