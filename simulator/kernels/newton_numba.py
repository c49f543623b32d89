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
def _damped_step(H, g):
    """Levenberg step ``-(H + delta I)^{-1} g`` with the smallest ``delta = 10^j * 1e-12 *
    max|H_ii|`` (j = 0, 1, ...) that makes the matrix positive definite: a descent direction when
    the exact float64 Hessian is singular (``lam = 0`` with a direction of no curvature, e.g. an
    all-zero feature column) or numerically indefinite (``lam`` tiny against ``|X|^2``)."""
    d = g.size
    scale = 0.0
    for i in range(d):
        scale = max(scale, abs(H[i, i]))
    if not np.isfinite(scale):
        return np.zeros(d), False
    if scale == 0.0:
        scale = 1.0
    delta = 1e-12 * scale
    Hd = H.copy()
    for _ in range(40):
        for i in range(d):
            Hd[i, i] = H[i, i] + delta
        step, ok = _cholesky_step(Hd, g)
        if ok:
            return step, True
        delta *= 10.0
    return np.zeros(d), False


# Why a fit stopped (BTFit.status): the certificate was met, the iteration budget ran out, the
# line search found no decrease even with the exact float64 Hessian (round-off floor), the
# unpenalised iterates diverge (lam = 0; separability is then decided from the data), or the
# objective / Newton matrix stopped being finite.
# ROUNDOFF: the exact float64 Newton step is below the resolution of theta (1e-13 relative):
# no float64 iterate is closer to the optimum, so the gradient test (which cannot be met when
# |X| is huge: the gradient's round-off grows with |X|) is replaced by this one; certified.
CONVERGED, MAX_ITER, STALLED, DIVERGING, NONFINITE, ROUNDOFF = 0, 1, 2, 3, 4, 5
ROUNDOFF_STEP = 1e-13


@njit(cache=True)
def _objective(theta, X, y, w, has_w, nblocks, lam, want_h, threaded, h32, o=None):
    """(f, g, H) of the penalised objective (H empty unless want_h); the Newton matrix in float32
    chunk products when ``h32`` (the solver checks every float32 matrix and redoes it in
    float64 when its factorisation fails or its step does not decrease f). ``o``: optional (n,)
    offsets of the margins (:mod:`.bt_numba`)."""
    if threaded:
        f, g, H = _pass_parallel(theta, X, y, w, has_w, nblocks, want_h, h32, o)
    else:
        f, g, H = _pass_serial(theta, X, y, w, has_w, nblocks, want_h, h32, o)
    if want_h:
        for i in range(theta.size):
            H[i, i] += lam
    return f + 0.5 * lam * np.dot(theta, theta), g + lam * theta, H


@njit(cache=True)
def newton(X, y, w, has_w, nblocks, lam, theta, tol, max_iter, H_init, has_H_init,
           threaded_g, threaded_h, o=None):
    """Compiled :func:`simulator.estimators.bt._newton` (same steps, tests and returns):
    theta, f, ||g||, iterations, data passes, status, H, Hessian passes, fresh.

    ``threaded_g`` / ``threaded_h``: run the passes without / with the Hessian multi-threaded.
    ``o``: optional (n,) offsets of the margins (a fit under linear equality constraints);
    omitted, the solver compiles to the code it was before offsets existed.

    The Newton matrix is formed in float32 (half the cost of the compute-bound pass). It is only
    a step generator, and it is checked: when its Cholesky factorisation fails or its step finds
    no decrease, the exact float64 Hessian is formed at the same point and used for the rest of
    the fit; when even that is not positive definite, a Levenberg-damped step is taken
    (:func:`_damped_step`). A factorisation failure is never read as separability.
    """
    d = theta.size
    scale = float(X.shape[0]) if not has_w else max(np.sum(w), 1e-300)
    h32 = True
    if has_H_init:
        f, g, _e = _objective(theta, X, y, w, has_w, nblocks, lam, False, threaded_g, h32, o)
        H = H_init.copy()
        n_hess, fresh = 0, False
        ratio = 0.0  # a given matrix is trusted for the first step
    else:
        f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h, h32, o)
        n_hess, fresh = 1, True
        ratio = 1.0
    exact = False  # H is the float64 Hessian at theta
    n_evals = 1
    status = MAX_ITER
    it = 0
    exhausted = True
    force_fresh = False
    tiny = False
    for it in range(1, max_iter + 1):
        gnorm = math.sqrt(np.dot(g, g))
        if not (np.isfinite(f) and np.isfinite(gnorm)):
            status = NONFINITE
            exhausted = False
            break
        if gnorm <= tol * scale:
            status = CONVERGED
            it -= 1
            exhausted = False
            break
        step, ok = _cholesky_step(H, g)
        slope = np.dot(g, step)
        if tiny and not exact and ok:
            ok = False  # the last step did not move theta: check the point with the exact H
        if not ok or not np.isfinite(slope) or slope >= 0:
            if not exact:
                # float32, stale or BFGS-corrected matrix: redo it exactly, in float64 from now on
                h32 = False
                f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h, h32, o)
                n_evals += 1
                n_hess += 1
                fresh, exact, ratio = True, True, 1.0
                step, ok = _cholesky_step(H, g)
                slope = np.dot(g, step)
            if not ok or not np.isfinite(slope) or slope >= 0:
                step, ok = _damped_step(H, g)
                slope = np.dot(g, step)
                force_fresh = True
                if not ok or not np.isfinite(slope) or slope >= 0:
                    status = NONFINITE
                    exhausted = False
                    break
        if exact and math.sqrt(np.dot(step, step)) <= ROUNDOFF_STEP * math.sqrt(
                np.dot(theta, theta)):
            status = ROUNDOFF
            exhausted = False
            break
        want_fresh = force_fresh or refresh(ratio, gnorm, tol * scale, d)
        force_fresh = False
        t = 1.0
        H_new = H
        got_h = False
        while True:
            th_new = theta + t * step
            if t == 1.0:
                f_new, g_new, Hn = _objective(th_new, X, y, w, has_w, nblocks, lam, want_fresh,
                                              threaded_h if want_fresh else threaded_g, h32, o)
                if want_fresh:
                    H_new, got_h = Hn, True
                    n_hess += 1
            else:
                f_new = _objective(th_new, X, y, w, has_w, nblocks, lam, False, threaded_g,
                                   h32, o)[0]
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
            if not exact:  # the float32 matrix may have misled the step: redo it in float64
                h32 = False
                f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h, h32, o)
                n_evals += 1
                n_hess += 1
                fresh, exact, ratio = True, True, 1.0
                continue
            status = STALLED
            exhausted = False
            break
        if f_new > f + 1e-4 * t * slope + 1e-13 * abs(f):  # rejected chord step
            f, g, H = _objective(theta, X, y, w, has_w, nblocks, lam, True, threaded_h, h32, o)
            n_evals += 1
            n_hess += 1
            fresh, exact, ratio = True, not h32, 1.0
            continue
        if t != 1.0:
            f_new, g_new, H_new = _objective(th_new, X, y, w, has_w, nblocks, lam, True,
                                             threaded_h, h32, o)
            got_h = True
            n_evals += 1
            n_hess += 1
        ratio = math.sqrt(np.dot(g_new, g_new)) / gnorm
        s_k = th_new - theta
        y_k = g_new - g
        tiny = math.sqrt(np.dot(s_k, s_k)) <= ROUNDOFF_STEP * math.sqrt(np.dot(theta, theta))
        theta, f, g = th_new, f_new, g_new
        if got_h:
            H, fresh, exact = H_new, True, not h32
        else:
            H, fresh, exact = bfgs_update(H, s_k, y_k), False, False
        if lam == 0 and math.sqrt(np.dot(theta, theta)) > 1e8:
            status = DIVERGING
            exhausted = False
            break
    gnorm = math.sqrt(np.dot(g, g))
    if exhausted:
        status = CONVERGED if gnorm <= tol * scale else MAX_ITER
    return theta, f, gnorm, it, n_evals, status, H, n_hess, fresh
