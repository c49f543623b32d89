"""The Newton solver of :mod:`simulator.estimators.bt` compiled for the numba back-end: one call
per fit instead of a dozen numpy and LAPACK calls per iteration (about 40 us each, which is what
a fit of 10^4 rows spent beside its data passes).

:func:`simulator.estimators.bt._newton` is the plain-Python reference of the same algorithm
(used by the numpy back-end); the rule for refreshing the Newton matrix (:func:`refresh`) and
the BFGS update are shared by both, and tests compare the two solvers' optima.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .bt_numba import _pass_parallel, _pass_serial

# When to refresh the Newton matrix. Between refreshes the matrix is kept (a chord step, the
# matrix corrected by a BFGS update with the step's secant pair): a chord step costs one
# memory-bound pass (f and g), a fresh Hessian a compute-bound pass that costs about
# hessian_cost(d) chord passes (measured on 2 cores: 1.5x at d = 2, 2.7x at d = 32, 5.6x at
# d = 256). The matrix is refreshed when the chord passes still needed at the last step's
# contraction would cost more than a refresh and the one or two passes after it (Newton's
# quadratic phase), or when the contraction is slower than REFRESH_RATIO whatever the cost.
REFRESH_RATIO = 0.5


@njit(cache=True)
def hessian_cost(d):
    return 1.0 + 0.4 * math.sqrt(d)


@njit(cache=True)
def refresh(ratio, gnorm, target, d):
    """Whether the next step should form a fresh Hessian (see the comment above)."""
    if ratio <= 0.0:
        return False  # a given (subsample) matrix is trusted for the first step
    if ratio > REFRESH_RATIO:
        return True
    still_needed = math.log(max(gnorm * ratio / target, 1.0)) / -math.log(max(ratio, 1e-300))
    return still_needed > hessian_cost(d) + 1.0


@njit(cache=True, error_model="numpy")
def bfgs_update(H, s, y):
    """``H - (H s)(H s)^T / (s^T H s) + y y^T / (y^T s)``, or H itself when ``y^T s <= 0``
    or ``s^T H s <= 0`` (the update would not stay positive definite).
    Reference: :func:`simulator.estimators.bt.bfgs_update`."""
    d = s.size
    Hs = np.zeros(d)
    ys = 0.0
    for i in range(d):
        ys += y[i] * s[i]
        acc = 0.0
        for j in range(d):
            acc += H[i, j] * s[j]
        Hs[i] = acc
    sHs = 0.0
    for i in range(d):
        sHs += s[i] * Hs[i]
    if not (ys > 0.0 and sHs > 0.0):
        return H
    out = np.empty_like(H)
    for i in range(d):
        a = Hs[i] / sHs
        b = y[i] / ys
        for j in range(d):
            out[i, j] = H[i, j] - a * Hs[j] + b * y[j]
    return out


@njit(cache=True)
def _cholesky_step(H, g):
    """(-H^{-1} g, ok): ok is False when H is not finite or not positive definite."""
    d = g.size
    step = np.zeros(d)
    if not np.all(np.isfinite(H)):
        return step, False
    try:
        L = np.linalg.cholesky(H)
    except Exception:  # not positive definite
        return step, False
    u = np.empty(d)
    for i in range(d):
        acc = -g[i]
        for k in range(i):
            acc -= L[i, k] * u[k]
        u[i] = acc / L[i, i]
    for i in range(d - 1, -1, -1):
        acc = u[i]
        for k in range(i + 1, d):
            acc -= L[k, i] * step[k]
        step[i] = acc / L[i, i]
    return step, True


@njit(cache=True)
def _objective(theta, X, y, w, has_w, nblocks, lam, want_h, threaded):
    """(f, g, H) of the penalised objective (H empty unless want_h); the Newton matrix in float32
    chunk products, as in the reference solver."""
    if threaded:
        f, g, H = _pass_parallel(theta, X, y, w, has_w, nblocks, want_h, True)
    else:
        f, g, H = _pass_serial(theta, X, y, w, has_w, nblocks, want_h, True)
    if want_h:
        for i in range(theta.size):
            H[i, i] += lam
    return f + 0.5 * lam * np.dot(theta, theta), g + lam * theta, H


@njit(cache=True)
def newton(X, y, w, has_w, nblocks, lam, theta, tol, max_iter, H_init, has_H_init,
           threaded_g, threaded_h):
    """Compiled :func:`simulator.estimators.bt._newton` (same steps, tests and returns):
    theta, f, ||g||, iterations, data passes, converged, separable, H, Hessian passes, fresh.

    ``threaded_g`` / ``threaded_h``: run the passes without / with the Hessian multi-threaded.
    """
    d = theta.size
    scale = float(X.shape[0]) if not has_w else max(np.sum(w), 1e-300)
    if has_H_init:
        f, g, _e = _objective(theta, X, y, w, has_w, nblocks, lam, False, threaded_g)
        H = H_init.copy()
        n_hess, fresh = 0, False
        ratio = 0.0  # a given matrix is trusted for the first step
    else:
        f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h)
        n_hess, fresh = 1, True
        ratio = 1.0
    n_evals = 1
    converged = separable = False
    it = 0
    exhausted = True
    for it in range(1, max_iter + 1):
        gnorm = math.sqrt(np.dot(g, g))
        if gnorm <= tol * scale:
            converged = True
            it -= 1
            exhausted = False
            break
        step, ok = _cholesky_step(H, g)
        slope = np.dot(g, step)
        if not ok or not np.isfinite(slope) or slope >= 0:
            separable = True
            exhausted = False
            break
        want_fresh = refresh(ratio, gnorm, tol * scale, d)
        t = 1.0
        H_new = H
        got_h = False
        while True:
            th_new = theta + t * step
            if t == 1.0:
                f_new, g_new, Hn = _objective(th_new, X, y, w, has_w, nblocks, lam, want_fresh,
                                              threaded_h if want_fresh else threaded_g)
                if want_fresh:
                    H_new, got_h = Hn, True
                    n_hess += 1
            else:
                f_new = _objective(th_new, X, y, w, has_w, nblocks, lam, False, threaded_g)[0]
            n_evals += 1
            # Armijo; the relative slack absorbs round-off once the decrease is below machine
            # precision (then the step is accepted and the gradient test decides).
            if f_new <= f + 1e-4 * t * slope + 1e-13 * abs(f):
                break
            if not fresh:
                break  # a stale matrix gave a poor step: refresh it here rather than backtrack
            t *= 0.5
            if t < 1e-12:
                break
        if t < 1e-12:
            exhausted = False
            break
        if f_new > f + 1e-4 * t * slope + 1e-13 * abs(f):  # rejected chord step
            f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h)
            n_evals += 1
            n_hess += 1
            fresh, ratio = True, 1.0
            continue
        if t != 1.0:
            f_new, g_new, H_new = _objective(th_new, X, y, w, has_w, nblocks, lam, True,
                                             threaded_h)
            got_h = True
            n_evals += 1
            n_hess += 1
        ratio = math.sqrt(np.dot(g_new, g_new)) / gnorm
        s_k = th_new - theta
        y_k = g_new - g
        theta, f, g = th_new, f_new, g_new
        if got_h:
            H, fresh = H_new, True
        else:
            H, fresh = bfgs_update(H, s_k, y_k), False
        if lam == 0 and math.sqrt(np.dot(theta, theta)) > 1e8:
            separable = True
            exhausted = False
            break
    gnorm = math.sqrt(np.dot(g, g))
    if exhausted:
        converged = gnorm <= tol * scale
    return theta, f, gnorm, it, n_evals, converged, separable, H, n_hess, fresh
