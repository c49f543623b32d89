"""numba kernels for the Bradley–Terry negative log-likelihood (no ridge term).

Reference: :func:`simulator.estimators.bt.bt_objective`. With ``t_i = (2 y_i - 1) (<x_i, theta> +
o_i)`` (the offset ``o_i`` is optional, 0 without it),

    f = sum_i w_i softplus(-t_i),
    g = -sum_i w_i (2 y_i - 1) sigma(-t_i) x_i,
    H = sum_i w_i sigma(t_i) sigma(-t_i) x_i x_i^T.

One pass over the rows computes f, g and (optionally) H. Rows are split into blocks of whole
chunks (``prange``; the number of blocks depends on n only); each block walks its rows in chunks
of :data:`CHUNK` that stay in cache:

- ``z = X_c theta`` and ``g += c^T X_c`` are plain loops that LLVM vectorises;
- the per-row transcendental work (``exp(-|t|)``, ``log1p``) runs in vectorisable loops of plain
  arithmetic (:func:`_exp_neg_abs`, :func:`_log1p_unit`, both accurate to a few ulp) instead of one
  libm call per row, which had cost as much as reading the row from memory; ``error_model=
  "numpy"`` keeps Python's division-by-zero check, which blocks vectorisation, out of the loops;
- ``H += B^T B`` with ``B = diag(sqrt(h)) X_c`` is one BLAS ``syrk`` per chunk (half the flops of
  a general product), in float64, or in float32 when the caller only needs a Newton matrix.

So X is read from memory once per pass, and the Hessian adds compute but no memory traffic.

The offset (``o``, one number per row: ``x_i^T theta_p`` of a fit under linear equality
constraints, :func:`simulator.estimators.bt.fit_bt`) is an optional trailing argument that
defaults to ``None``; numba prunes the ``o is None`` branches at compile time, so the kernels
without an offset are the same machine code as before it existed (bit-identical results).
"""

from __future__ import annotations

import contextlib
import math
import threading

import llvmlite.binding as llb
import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import get_cython_function_address

CHUNK = 256

# BLAS syrk from scipy's cython_blas (the library numba's own matrix products call), bound by
# symbol name so that functions calling it can still be cached on disk.
for _name in ("ssyrk", "dsyrk"):
    llb.add_symbol("pluralrlhf_" + _name,
                   get_cython_function_address("scipy.linalg.cython_blas", _name))
_SYRK_SIG = types.void(*([types.voidptr] * 10))
_ssyrk = types.ExternalFunction("pluralrlhf_ssyrk", _SYRK_SIG)
_dsyrk = types.ExternalFunction("pluralrlhf_dsyrk", _SYRK_SIG)

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + _SHIFT keeps round(x) in the low mantissa bits


@njit(cache=True, fastmath={"contract"})
def _exp_neg_abs(z, e, bits, m):
    """``e[i] = exp(-|z[i]|)`` (``i < m``), max relative error 2.3e-16.

    Cody–Waite reduction ``-|z| = k ln2 + r`` with ``|r| <= ln2 / 2``, Taylor series of
    ``exp(r)`` to degree 13 (truncation below 1e-17), and ``2^k`` built from its exponent bits.
    Plain loops so that LLVM vectorises them (no "reassoc" here: it would fold the rounding
    shift away). Below ``-708`` the result is ``exp(-708)``, which is 0 for every use here.
    """
    for i in range(m):
        x = max(-abs(z[i]), -708.0)
        shifted = x * _INV_LN2 + _SHIFT
        k = shifted - _SHIFT
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        e[i] = p
        bits[i] = shifted
    ib = bits.view(np.int64)
    for i in range(m):
        ib[i] = (ib[i] + 1023) << 52  # the low bits of `shifted` hold k; this is 2^k
    for i in range(m):
        e[i] *= bits[i]


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def _log1p_unit(e):
    """``log(1 + e)`` for ``0 <= e <= 1`` as ``2 atanh(s)``, ``s = e / (2 + e) <= 1/3``.

    The odd series of atanh to ``s^33`` (truncation below 1e-17 relative); vectorisable.
    """
    s = e / (2.0 + e)
    s2 = s * s
    p = 1.0 / 33.0
    p = p * s2 + 1.0 / 31.0
    p = p * s2 + 1.0 / 29.0
    p = p * s2 + 1.0 / 27.0
    p = p * s2 + 1.0 / 25.0
    p = p * s2 + 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0
    return 2.0 * s * p


@njit(cache=True, fastmath={"contract", "reassoc"}, error_model="numpy")
def _row_terms(Xc, theta, yc, wc, m, z, e, bits, gc, hw, g_out, oc=None):
    """One chunk's rows: returns ``sum_i w_i softplus(-t_i)``, fills ``hw = sqrt(w p (1 - p))``
    and adds the chunk's gradient into ``g_out``. Branch-free loops, so they vectorise.
    ``oc``: the chunk's offsets, added to the margins in a loop of its own (so that the
    dot-product loop is the one compiled without them)."""
    d = Xc.shape[1]
    for i in range(m):
        acc = 0.0
        for j in range(d):
            acc += Xc[i, j] * theta[j]
        z[i] = acc
    if oc is not None:
        for i in range(m):
            z[i] += oc[i]
    _exp_neg_abs(z, e, bits, m)
    f = 0.0
    for i in range(m):
        s = 2.0 * yc[i] - 1.0
        t = s * z[i]
        ei = e[i]
        q = 1.0 / (1.0 + ei)
        one_minus_p = q if t < 0.0 else ei * q  # sigma(-t)
        wi = wc[i]
        f += wi * (_log1p_unit(ei) + max(-t, 0.0))
        gc[i] = -wi * s * one_minus_p
        hw[i] = math.sqrt(wi * ei) * q  # p (1 - p) = e / (1 + e)^2 for either sign of t
    for i in range(m):
        c = gc[i]
        for j in range(d):
            g_out[j] += c * Xc[i, j]
    return f


@njit(cache=True)
def _add_gram(hw, Xc, m, buf, C, scal, ch, ints, single, H_out):
    """``H_out`` (lower triangle) += ``B^T B`` with ``B = diag(hw) X_c``, by one BLAS syrk in
    the precision of ``buf``/``C`` (``single`` says which: float32 or float64)."""
    d = Xc.shape[1]
    for i in range(m):
        for j in range(d):
            buf[i, j] = hw[i] * Xc[i, j]
    ints[1] = m
    args = (ch[0:1].ctypes, ch[1:2].ctypes, ints[0:1].ctypes, ints[1:2].ctypes, scal[0:1].ctypes,
            buf.ctypes, ints[0:1].ctypes, scal[1:2].ctypes, C.ctypes, ints[0:1].ctypes)
    if single:
        _ssyrk(*args)
    else:
        _dsyrk(*args)
    for i in range(d):
        for j in range(i + 1):
            H_out[i, j] += C[i, j]


@njit(cache=True)
def _block(theta, X, y, w, has_w, start, end, want_h, hess32, g_out, H_out, o=None):
    """f over rows [start, end); adds their gradient into g_out and Hessian (lower triangle of
    the row-major d x d matrix) into H_out. ``o``: optional (n,) offsets of the margins."""
    d = X.shape[1]
    z = np.empty(CHUNK)
    e = np.empty(CHUNK)
    bits = np.empty(CHUNK)
    gc = np.empty(CHUNK)
    hw = np.empty(CHUNK)
    ones = np.ones(CHUNK)
    # syrk arguments (Fortran convention: every argument by pointer). The chunk B (m x d,
    # row-major) is column-major d x m, so "U", "N" gives C = B^T B in C's column-major upper
    # triangle, which is the row-major lower triangle.
    ch = np.empty(2, np.uint8)
    ch[0] = ord("U")
    ch[1] = ord("N")
    ints = np.empty(2, np.int32)
    ints[0] = d
    b32 = np.empty((CHUNK if hess32 and want_h else 0, d), np.float32)
    c32 = np.empty((d, d), np.float32)
    s32 = np.array([1.0, 0.0], np.float32)
    b64 = np.empty((CHUNK if not hess32 and want_h else 0, d))
    c64 = np.empty((d, d))
    s64 = np.array([1.0, 0.0])
    f = 0.0
    for c0 in range(start, end, CHUNK):
        c1 = min(c0 + CHUNK, end)
        m = c1 - c0
        Xc = X[c0:c1]
        if o is None:
            f += _row_terms(Xc, theta, y[c0:c1], w[c0:c1] if has_w else ones, m, z, e, bits,
                            gc, hw, g_out)
        else:
            f += _row_terms(Xc, theta, y[c0:c1], w[c0:c1] if has_w else ones, m, z, e, bits,
                            gc, hw, g_out, o[c0:c1])
        if want_h:
            if hess32:
                _add_gram(hw, Xc, m, b32, c32, s32, ch, ints, True, H_out)
            else:
                _add_gram(hw, Xc, m, b64, c64, s64, ch, ints, False, H_out)
    return f


@njit(cache=True)
def _mirror(H):
    d = H.shape[0]
    for i in range(d):
        for j in range(i + 1, d):
            H[i, j] = H[j, i]
    return H


@njit(cache=True, inline="always")
def _edge(b, nblocks, n):
    # Block b starts at a whole number of chunks, so only the last chunk of X is partial.
    nchunks = (n + CHUNK - 1) // CHUNK
    return min(n, ((b * nchunks) // nblocks) * CHUNK)


# _pass_parallel and _pass_serial split the rows into the same blocks and sum the block results
# in the same order, so every result is bit-identical whichever runs and whatever the number of
# threads; the number of blocks depends on n only (_blocks). ``o``: optional (n,) offsets.
@njit(parallel=True, cache=True)
def _pass_parallel(theta, X, y, w, has_w, nblocks, want_h, hess32, o=None):
    n, d = X.shape
    f_parts = np.zeros(nblocks)
    g_parts = np.zeros((nblocks, d))
    H_parts = np.zeros((nblocks, d, d) if want_h else (nblocks, 0, 0))
    for b in prange(nblocks):
        f_parts[b] = _block(theta, X, y, w, has_w, _edge(b, nblocks, n),
                            _edge(b + 1, nblocks, n), want_h, hess32, g_parts[b], H_parts[b],
                            o)
    return f_parts.sum(), g_parts.sum(axis=0), _mirror(H_parts.sum(axis=0))


@njit(cache=True)
def _pass_serial(theta, X, y, w, has_w, nblocks, want_h, hess32, o=None):
    n, d = X.shape
    f_parts = np.zeros(nblocks)
    g_parts = np.zeros((nblocks, d))
    H_parts = np.zeros((nblocks, d, d) if want_h else (nblocks, 0, 0))
    for b in range(nblocks):
        f_parts[b] = _block(theta, X, y, w, has_w, _edge(b, nblocks, n),
                            _edge(b + 1, nblocks, n), want_h, hess32, g_parts[b], H_parts[b],
                            o)
    return f_parts.sum(), g_parts.sum(axis=0), _mirror(H_parts.sum(axis=0))


_EMPTY = np.zeros(1)
_CONTROLLER = None
_PIN_LOCK = threading.Lock()
_PIN_DEPTH = 0  # open one_blas_thread() contexts, in any thread of the process
_PIN_LIMITER = None


@contextlib.contextmanager
def one_blas_thread():
    """Context that pins BLAS to one thread while the kernels' own threads run; re-entrant.

    The chunk products inside ``prange`` call BLAS; a multi-threaded BLAS under numba's threads
    oversubscribes the cores (seen: 0.1 s -> 3.4 s on 2 cores). A solver enters it once per fit,
    so that the kernels it calls do not pin and unpin around every pass. BLAS thread limits are
    process-wide, so the depth is too: the first context to open pins, the last to close
    restores, whichever threads they run in (fits in a threaded executor overlap; a per-thread
    or unlocked counter let one thread unpin under another, or went negative and never pinned
    again).
    """
    global _CONTROLLER, _PIN_DEPTH, _PIN_LIMITER
    with _PIN_LOCK:
        if _PIN_DEPTH == 0:
            if _CONTROLLER is None:
                # numpy and scipy ship separate OpenBLAS builds and a controller only knows the
                # libraries loaded when it is made: load scipy's first (scipy.linalg factorises
                # the Newton matrices), or the pin misses it
                import scipy.linalg  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _CONTROLLER = ThreadpoolController()
            _PIN_LIMITER = _CONTROLLER.limit(limits=1, user_api="blas")
        _PIN_DEPTH += 1
    try:
        yield
    finally:
        with _PIN_LOCK:
            _PIN_DEPTH -= 1
            if _PIN_DEPTH == 0:
                _PIN_LIMITER.restore_original_limits()
                _PIN_LIMITER = None


MAX_BLOCKS = 32
CHUNKS_PER_BLOCK = 4


def _blocks(n):
    # Enough blocks to balance the load over the threads of a workstation, each a few chunks
    # long (a block's set-up and its last chunk cost a little); a function of n only, so that
    # the results do not depend on the number of threads.
    return max(1, min(MAX_BLOCKS, (n + CHUNKS_PER_BLOCK * CHUNK - 1) // (CHUNKS_PER_BLOCK * CHUNK)))


# Below this much work one thread is faster than starting the parallel region. The work of a
# pass is rows x d, times (1 + d / 32) when the Hessian is wanted (its chunk products cost about
# as much as the rest of the pass at d = 32). Measured on 2 cores at d = 32: threads pay off
# from about 4000 rows either way.
SERIAL_BELOW = 2**17


def _work(n, d, want_h):
    return n * d * (1.0 + d / 32.0 if want_h else 1.0)


def threaded(n, d, want_h):
    """Whether a pass over n rows of d features runs multi-threaded."""
    return _work(n, d, want_h) >= SERIAL_BELOW and numba.get_num_threads() > 1


def _pass(theta, X, y, w, want_h, hess32, offset=None):
    has_w = w is not None
    ww = w if has_w else _EMPTY
    n, d = X.shape
    nblocks = _blocks(n)
    # without an offset the kernels are called exactly as before offsets existed (o omitted)
    extra = () if offset is None else (np.ascontiguousarray(offset, dtype=np.float64),)
    if not threaded(n, d, want_h):
        return _pass_serial(theta, X, y, ww, has_w, nblocks, want_h, hess32, *extra)
    with one_blas_thread():
        return _pass_parallel(theta, X, y, ww, has_w, nblocks, want_h, hess32, *extra)


def loss_grad_hess(theta, X, y, w=None, hess32=False, offset=None):
    """(f, g, H) of the unpenalised BT objective; see the module docstring.

    ``hess32=True`` forms H in float32 chunk products (relative error about 1e-7, accumulated in
    float64): half the time, for callers that use H only as a Newton matrix. f and g are float64
    either way. ``offset`` (n,): margins ``<x_i, theta> + offset_i``.
    """
    return _pass(theta, X, y, w, True, hess32, offset)


def loss_grad(theta, X, y, w=None, offset=None):
    """(f, g) of the unpenalised BT objective, one memory-bound pass without the Hessian."""
    f, g, _ = _pass(theta, X, y, w, False, False, offset)
    return f, g


def loss(theta, X, y, w=None, offset=None):
    """f of the unpenalised BT objective."""
    return _pass(theta, X, y, w, False, False, offset)[0]
