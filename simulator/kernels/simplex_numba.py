"""The simplex-constrained Newton model of :mod:`simulator.estimators.bt_blocks` compiled for
the numba back-end: FISTA on each unit's quadratic model over the probability simplex.

:func:`simulator.estimators.bt_blocks.fista_simplex_numpy` is the plain-numpy reference (the
same iteration for all units at once, vectorised). The vectorised form pays a numpy call per
iteration for every live unit together, and with ``k`` of 2-8 each call is mostly overhead: at
200 users with 5 comparisons each, PAL-B spent 90% of its fit there (hundreds of alternating
sweeps, each a few projected-Newton steps of up to 200 FISTA iterations). Here one compiled loop
runs unit by unit; the iterates are the reference's up to round-off, which tests check.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _project_row(x, out, u):
    """Euclidean projection of ``x`` (k,) onto the simplex into ``out`` (sort-based, as
    :func:`simulator.estimators.bt_blocks.project_simplex_rows`); ``u`` (k,) is scratch. An
    insertion sort: k is a handful, and ``np.sort`` would allocate on every call."""
    k = x.size
    for j in range(k):  # u = x sorted in decreasing order
        a = x[j]
        i = j
        while i > 0 and u[i - 1] < a:
            u[i] = u[i - 1]
            i -= 1
        u[i] = a
    c = 0.0
    rho = 0
    c_rho = u[0] - 1.0
    for j in range(k):
        c += u[j]
        if u[j] - (c - 1.0) / (j + 1) > 0.0:  # the largest such j is the support's size - 1
            rho = j
            c_rho = c - 1.0
    tau = c_rho / (rho + 1)
    for j in range(k):
        out[j] = max(x[j] - tau, 0.0)


@njit(cache=True)
def fista_simplex(W, g, H, L, max_iter, tol):
    """Per unit ``u``, FISTA (step ``1 / L_u``) on ``g_u^T (v - w_u) + 1/2 (v - w_u)^T H_u
    (v - w_u)`` over the simplex from ``v = w_u``; a unit stops when no coordinate of its
    iterate moved by more than ``tol``. Returns ``V`` (m, k)."""
    m, k = W.shape
    V = np.empty((m, k))
    v = np.empty(k)
    v_new = np.empty(k)
    z = np.empty(k)
    step = np.empty(k)
    scratch = np.empty(k)
    for u in range(m):
        for j in range(k):
            v[j] = W[u, j]
            z[j] = W[u, j]
        t = 1.0
        for _ in range(max_iter):
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += H[u, i, j] * (z[j] - W[u, j])
                step[i] = z[i] - (g[u, i] + acc) / L[u]
            _project_row(step, v_new, scratch)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            momentum = (t - 1.0) / t_new
            change = 0.0
            for j in range(k):
                z[j] = v_new[j] + momentum * (v_new[j] - v[j])
                change = max(change, abs(v_new[j] - v[j]))
                v[j] = v_new[j]
            t = t_new
            if change <= tol:
                break
        for j in range(k):
            V[u, j] = v[j]
    return V
