"""Batched fits: S independent BT problems (n comparisons, d features each) per second.

Our batched torch Newton (one lock-step solve of all S problems) beside the numba Newton called
once per problem and scikit-learn's LogisticRegression called once per problem; same ridge, same
data. Issue #7's size is S = 1,000 problems of n = 1,000, d = 16.

Beside each time: the number of passes over the data per fit that the time implies at the
measured copy bandwidth (``time / S * bandwidth / bytes of one problem's X``), the same yardstick
as the MLE benchmark.
"""

from __future__ import annotations

import time

import numpy as np

from ..estimators.bt import fit_bt
from ..seeding import as_generator
from . import format_table, print_targets, register
from .mle import memory_bandwidth

LAM = 1.0


def _problems(S, n, d, rng):
    X = rng.standard_normal((S, n, d))
    theta = rng.standard_normal((S, d)) / np.sqrt(d) * 2.0
    p = 1.0 / (1.0 + np.exp(-np.einsum("snd,sd->sn", X, theta)))
    y = (rng.random((S, n)) < p).astype(np.int8)
    return X, y


@register("batched")
def run(quick: bool = False, seed: int = 0, out=print, S=None, n: int = 1000, d: int = 16,
        devices=None):
    import torch
    from sklearn.linear_model import LogisticRegression

    from ..kernels.torch_bt import fit_bt_batched

    S = S or (100 if quick else 1000)
    rng = as_generator(seed)
    X, y = _problems(S, n, d, rng)
    t = time.perf_counter()
    fit_bt(X[0], y[0], lam=LAM)  # compile / load the numba cache outside the timings
    compile_s = time.perf_counter() - t
    fit_bt_batched(X[:2], y[:2], lam=LAM)
    bw = memory_bandwidth()
    devices = devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows = []

    t = time.perf_counter()
    ref = np.stack([fit_bt(X[s], y[s], lam=LAM).theta for s in range(S)])
    t_loop = time.perf_counter() - t
    rows.append(dict(method="numba Newton, one problem at a time", seconds=t_loop,
                     fits_per_s=S / t_loop, maxdiff=0.0))
    n_sk = min(S, 200)  # sklearn is slow enough that a subset gives its rate
    t = time.perf_counter()
    sk = np.stack([LogisticRegression(C=1 / LAM, fit_intercept=False, tol=1e-10, max_iter=1000)
                   .fit(X[s], y[s]).coef_.ravel() for s in range(n_sk)])
    t_sk = (time.perf_counter() - t) * S / n_sk
    rows.append(dict(method=f"sklearn lbfgs, one at a time (rate from {n_sk})", seconds=t_sk,
                     fits_per_s=S / t_sk, maxdiff=float(np.abs(sk - ref[:n_sk]).max())))
    for dev in devices:
        for dtype in ("float64", "float32"):
            fit_bt_batched(X[:2], y[:2], lam=LAM, device=dev, dtype=dtype)  # warm-up
            t = time.perf_counter()
            res = fit_bt_batched(X, y, lam=LAM, device=dev, dtype=dtype)
            if dev == "cuda":
                torch.cuda.synchronize()
            el = time.perf_counter() - t
            rows.append(dict(method=f"torch batched Newton, {dev}, {dtype}", seconds=el,
                             fits_per_s=S / el, maxdiff=float(np.abs(res.theta - ref).max())))
    per_problem = n * d * 8
    for r in rows:
        r.update(S=S, n=n, d=d, speedup_vs_loop=t_loop / r["seconds"], compile_s=compile_s,
                 bandwidth_GBs=bw / 1e9,
                 implied_passes=r["seconds"] / S * bw / 2 / per_problem)
    out(f"Batched BT fits: S = {S} problems, n = {n}, d = {d}, lam = {LAM}; numba first call "
        f"{compile_s:.2f} s (untimed); copy bandwidth {bw / 1e9:.1f} GB/s")
    out(format_table(rows, [("method", "method", "{}"), ("seconds", "seconds", "{:.3f}"),
                            ("fits_per_s", "fits/s", "{:.0f}"),
                            ("speedup_vs_loop", "x numba loop", "{:.2f}"),
                            ("implied_passes", "passes/fit", "{:.1f}"),
                            ("maxdiff", "max |diff|", "{:.1e}")]))
    best = max(r["fits_per_s"] for r in rows if r["method"].startswith("torch"))
    targets = print_targets([
        ("torch batched float64 equals the numba loop within 1e-6",
         all(r["maxdiff"] <= 1e-6 for r in rows if "float64" in r["method"])),
        ("torch batched faster than the numba loop", best > rows[0]["fits_per_s"]),
    ], out)
    for r in rows:
        r["targets"] = targets
    return rows
