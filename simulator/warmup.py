"""Compile every numba kernel into its on-disk cache ahead of the first fit.

numba compiles a kernel the first time it is called with a new type signature and keeps the
machine code in ``__pycache__`` (``cache=True``). Compiling the BT, Newton, simplex and EM
kernels takes 30–80 s on 2 cores; loading them from the cache takes well under a second. A fresh
clone would pay the compilation inside its first fit, so the install step (``make install``,
which both README commands run) calls :func:`compile_kernels` once, and every later process,
test run or sweep worker starts from the cache. ``python -m simulator warmup`` does the same by
hand (after editing a kernel, say; numba recompiles a kernel whose source file changed).

The calls below are small fits through the public estimators, so that exactly the signatures
the library uses are compiled: weighted and unweighted rows, warm starts, the multilevel start,
serial and threaded passes, float32 and float64 Newton matrices, simplex weights and EM.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["compile_kernels", "ensure_compiled"]

_COMPILED = False


def compile_kernels(verbose: bool = False) -> float:
    """Run one small fit through every numba code path; returns the seconds it took."""
    from .data import PreferenceData
    from .estimators import EMMixture, PooledMLE, SeparateMLE, SharedRep, fit_bt
    from .estimators.bt_blocks import fit_bt_blocks
    from .kernels import bt_numba

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for n, d in ((400, 4), (20_000, 8)):  # serial passes; threaded passes and the multilevel start
        X = rng.standard_normal((n, d))
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X[:, 0]))).astype(np.int8)
        w = rng.random(n)
        fit_bt(X, y)
        fit_bt(X, y, sample_weight=w)
        fit_bt(X, y, theta_init=np.full(d, 0.1))
        fit_bt(X, y, lam=1e-6, norm_bound=0.5)
        # A theta = b with b != 0: the kernels' offset variants (theta = theta_p + N z)
        fit_bt(X, y, constraints=(np.ones((1, d)), [1.0]))
        fit_bt(X, y, sample_weight=w, constraints=(np.ones((1, d)), [1.0]))
        for hess32 in (False, True):
            bt_numba.loss_grad_hess(np.zeros(d), X, y, hess32=hess32)
            bt_numba.loss_grad_hess(np.zeros(d), X, y, w, hess32=hess32)
        bt_numba.loss_grad(np.zeros(d), X, y)
        bt_numba.loss(np.zeros(d), X, y)
        bt_numba.loss_grad(np.zeros(d), X, y, w)
        bt_numba.loss(np.zeros(d), X, y, w)
    n, d, U = 1200, 6, 3
    X = rng.standard_normal((n, d))
    group = np.arange(n) % U
    user = np.arange(n) % (4 * U)
    y = (rng.random(n) < 0.5).astype(np.int8)
    data = PreferenceData(X=X, y=y, group=group, user=user, n_groups=U, n_users=4 * U,
                          user_group=np.arange(4 * U) % U)
    PooledMLE().fit(data)
    SeparateMLE().fit(data)
    SharedRep(k=2, n_restarts=1, max_iter=3).fit(data)
    SharedRep(k=2, weights="free", n_restarts=1, max_iter=3).fit(data)
    for variant in ("soft", "hard"):
        EMMixture(n_clusters=2, variant=variant, max_iter=3, n_restarts=1).fit(data)
    # the simplex weight step of LoRe, PAL and every few-shot fit (simplex_numba)
    fit_bt_blocks(X[:, :3], y, user, 4 * U, lam=0.0, constraint="simplex", max_iter=2)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"numba kernels compiled (or loaded from the cache) in {seconds:.1f} s")
    return seconds


def ensure_compiled() -> None:
    """:func:`compile_kernels` once per process. The figure runner calls it before a sweep's
    workers start: they then load the kernels from the on-disk cache, and no cell's timed fit
    includes a compilation (seen in a checkout without the cache: the first cell on each worker
    timed SharedRep at 72 s for a 1-s fit)."""
    global _COMPILED
    if not _COMPILED:
        compile_kernels()
        _COMPILED = True
