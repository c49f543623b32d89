"""numba kernels for the Bradley–Terry negative log-likelihood (no ridge term).

Reference: :func:`simulator.estimators.bt.bt_objective`. With ``t_i = (2 y_i - 1) <x_i, theta>``,

    f = sum_i w_i softplus(-t_i),
    g = -sum_i w_i (2 y_i - 1) sigma(-t_i) x_i,
    H = sum_i w_i sigma(t_i) sigma(-t_i) x_i x_i^T.

One fused pass over the rows computes all three: rows are split into one block per thread
(``prange``); each block walks its rows in chunks of ``CHUNK``, accumulates ``g`` with scalar
loops and ``H`` with one BLAS rank-``CHUNK`` update per chunk, so the Hessian runs at matrix-product
speed while X is read from memory once.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

CHUNK = 256


@njit(cache=True, inline="always")
def _softplus_neg(t):
    # log(1 + exp(-t)) without overflow
    if t > 0:
        return math.log1p(math.exp(-t))
    return -t + math.log1p(math.exp(t))


@njit(cache=True, inline="always")
def _softplus_neg_and_sigmoid(t):
    # softplus(-t) and sigma(t) from one exp(-|t|): the per-row cost of a pass is these calls.
    e = math.exp(-abs(t))
    sp = math.log1p(e) + (-t if t < 0 else 0.0)
    p = 1.0 / (1.0 + e) if t >= 0 else e / (1.0 + e)
    return sp, p


@njit(parallel=True, cache=True)
def _loss_grad_hess(theta, X, y, w, has_w, nblocks):
    n, d = X.shape
    f_parts = np.zeros(nblocks)
    g_parts = np.zeros((nblocks, d))
    H_parts = np.zeros((nblocks, d, d))
    for b in prange(nblocks):
        start = (b * n) // nblocks
        end = ((b + 1) * n) // nblocks
        buf = np.empty((CHUNK, d))
        gc = np.empty(CHUNK)
        fb = 0.0
        gb = np.zeros(d)
        Hb = np.zeros((d, d))
        for c0 in range(start, end, CHUNK):
            c1 = min(c0 + CHUNK, end)
            m = c1 - c0
            Xc = X[c0:c1]
            z = Xc @ theta
            for i in range(m):
                s = 2.0 * y[c0 + i] - 1.0
                t = s * z[i]
                wi = w[c0 + i] if has_w else 1.0
                sp, p = _softplus_neg_and_sigmoid(t)
                fb += wi * sp
                gc[i] = -wi * s * (1.0 - p)
                hw = math.sqrt(wi * p * (1.0 - p))
                for j in range(d):
                    buf[i, j] = hw * Xc[i, j]
            gb += gc[:m] @ Xc
            Bm = buf[:m]
            Hb += Bm.T @ Bm
        f_parts[b] = fb
        g_parts[b] = gb
        H_parts[b] = Hb
    return f_parts.sum(), g_parts.sum(axis=0), H_parts.sum(axis=0)


@njit(cache=True)
def _loss_grad_hess_serial(theta, X, y, w, has_w):
    # Small problems: one thread, no BLAS calls, upper triangle then mirrored. Launching a
    # parallel region and pinning BLAS costs more than the work below ~10^4 rows.
    n, d = X.shape
    f = 0.0
    g = np.zeros(d)
    H = np.zeros((d, d))
    for r in range(n):
        z = 0.0
        for j in range(d):
            z += X[r, j] * theta[j]
        s = 2.0 * y[r] - 1.0
        t = s * z
        wi = w[r] if has_w else 1.0
        sp, p = _softplus_neg_and_sigmoid(t)
        f += wi * sp
        gc = -wi * s * (1.0 - p)
        hw = wi * p * (1.0 - p)
        for a in range(d):
            xa = X[r, a]
            g[a] += gc * xa
            ha = hw * xa
            for b in range(a, d):
                H[a, b] += ha * X[r, b]
    for a in range(d):
        for b in range(a):
            H[a, b] = H[b, a]
    return f, g, H


@njit(parallel=True, cache=True)
def _loss_grad(theta, X, y, w, has_w, nblocks):
    # Chunked like _loss_grad_hess: z and g through BLAS matrix-vector products on a chunk that
    # is still in cache, so X is streamed from memory once.
    n, d = X.shape
    f_parts = np.zeros(nblocks)
    g_parts = np.zeros((nblocks, d))
    for b in prange(nblocks):
        start = (b * n) // nblocks
        end = ((b + 1) * n) // nblocks
        gc = np.empty(CHUNK)
        fb = 0.0
        gb = np.zeros(d)
        for c0 in range(start, end, CHUNK):
            c1 = min(c0 + CHUNK, end)
            m = c1 - c0
            Xc = X[c0:c1]
            z = Xc @ theta
            for i in range(m):
                s = 2.0 * y[c0 + i] - 1.0
                t = s * z[i]
                wi = w[c0 + i] if has_w else 1.0
                sp, p = _softplus_neg_and_sigmoid(t)
                fb += wi * sp
                gc[i] = -wi * s * (1.0 - p)
            gb += gc[:m] @ Xc
        f_parts[b] = fb
        g_parts[b] = gb
    return f_parts.sum(), g_parts.sum(axis=0)


@njit(parallel=True, cache=True)
def _loss(theta, X, y, w, has_w, nblocks):
    n, d = X.shape
    f_parts = np.zeros(nblocks)
    for b in prange(nblocks):
        start = (b * n) // nblocks
        end = ((b + 1) * n) // nblocks
        fb = 0.0
        for r in range(start, end):
            z = 0.0
            for j in range(d):
                z += X[r, j] * theta[j]
            t = (2.0 * y[r] - 1.0) * z
            wi = w[r] if has_w else 1.0
            fb += wi * _softplus_neg(t)
        f_parts[b] = fb
    return f_parts.sum()


_EMPTY = np.zeros(1)
_CONTROLLER = None


def _one_blas_thread():
    """Context that pins BLAS to one thread while the kernel's own threads run.

    The chunk products inside ``prange`` call BLAS; a multi-threaded BLAS under numba's threads
    oversubscribes the cores (seen: 0.1 s -> 3.4 s on 2 cores).
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _blocks(n):
    # A few blocks per thread keeps the load balanced; fixed per (n, threads) for determinism.
    return max(1, min(4 * numba.get_num_threads(), (n + CHUNK - 1) // CHUNK))


SERIAL_BELOW = 8192  # rows; below this the single-threaded kernel is faster


def loss_grad_hess(theta, X, y, w=None):
    """(f, g, H) of the unpenalised BT objective; see the module docstring."""
    has_w = w is not None
    if X.shape[0] < SERIAL_BELOW:
        return _loss_grad_hess_serial(theta, X, y, w if has_w else _EMPTY, has_w)
    with _one_blas_thread():
        return _loss_grad_hess(theta, X, y, w if has_w else _EMPTY, has_w, _blocks(X.shape[0]))


def loss_grad(theta, X, y, w=None):
    """(f, g) of the unpenalised BT objective, one memory-bound pass without the Hessian."""
    has_w = w is not None
    if X.shape[0] < SERIAL_BELOW:
        f, g, _ = _loss_grad_hess_serial(theta, X, y, w if has_w else _EMPTY, has_w)
        return f, g
    with _one_blas_thread():
        return _loss_grad(theta, X, y, w if has_w else _EMPTY, has_w, _blocks(X.shape[0]))


def loss(theta, X, y, w=None):
    """f of the unpenalised BT objective."""
    has_w = w is not None
    return _loss(theta, X, y, w if has_w else _EMPTY, has_w, _blocks(X.shape[0]))
