"""SharedRep benchmark: exact alternating minimisation beside the official way of training it.

The official code (marcellobullo/sharedrep-rlhf) trains the two-layer head ``Linear(d -> k,
bias) -> Linear(k -> U)`` jointly by AdamW with a linear learning-rate decay on mini-batches. Here
that baseline runs on the same data (init N(0, 0.02), lr, batch size and planned epochs as given)
until its training log-likelihood reaches the one of our altmin fit (mean NLL within ``ll_tol``
nats per comparison) or a time cap; its full-data evaluations after each epoch are not timed.

Issue #7 target: altmin (n = 1e5, d = 64, k = 4, U = 5) at least 10x faster than the baseline to
the same log-likelihood.
"""

from __future__ import annotations

import time

import numpy as np

from . import format_table, print_targets, register


def _adamw_to_target(X, y, g, U, k, target_nll, *, lr, batch_size, n_epochs, cap_s, seed):
    """Train the official head by AdamW; seconds (training only) until mean NLL <= target."""
    import torch

    n, d = X.shape
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X)
    st = torch.as_tensor(2.0 * y - 1.0)
    gt = torch.as_tensor(g, dtype=torch.long)
    lin1 = torch.nn.Linear(d, k, bias=True, dtype=torch.float64)
    lin2 = torch.nn.Linear(k, U, bias=False, dtype=torch.float64)
    with torch.no_grad():
        lin1.weight.normal_(0.0, 0.02, generator=gen)
        lin1.bias.zero_()
        lin2.weight.normal_(0.0, 0.02, generator=gen)
    opt = torch.optim.AdamW(list(lin1.parameters()) + list(lin2.parameters()), lr=lr,
                            weight_decay=0.0)
    total = n_epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))

    def margin(rows):
        # phi(x, y1) - phi(x, y0) = X: the bias cancels in r(x1) - r(x0)
        return (Xt[rows] @ lin1.weight.T @ lin2.weight.T).gather(1, gt[rows][:, None])[:, 0]

    train_s, nll, epochs = 0.0, np.inf, 0
    for epoch in range(n_epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for s0 in range(0, n, batch_size):
            rows = perm[s0:s0 + batch_size]
            loss = -torch.nn.functional.logsigmoid(st[rows] * margin(rows)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        train_s += time.perf_counter() - t0
        epochs = epoch + 1
        with torch.no_grad():
            nll = float(-torch.nn.functional.logsigmoid(st * margin(slice(None))).mean())
        if nll <= target_nll or train_s >= cap_s:
            break
    return train_s, nll, epochs, nll <= target_nll


@register("sharedrep")
def run(quick: bool = False, seed: int = 0, out=print, n=None, d: int = 64, k: int = 4,
        U: int = 5, lr: float = 5e-3, batch_size: int = 256, n_epochs: int = 30,
        cap_s=None, ll_tol: float = 1e-4, with_numba: bool = True):
    from ..estimators.sharedrep import SharedRep
    from ..population import Population

    n = n or (20_000 if quick else 100_000)
    cap_s = cap_s or (10.0 if quick else 120.0)
    pop = Population.shared(d, k, np.full(U, 1.0 / U), seed=seed, weights="gaussian")
    data = pop.sample(n, seed=seed + 1)

    def altmin(backend):
        return SharedRep(k, weights="free", n_restarts=1, backend=backend, seed=seed)

    # First calls (numba compile / cache load, torch start-up) outside the timings: one sweep on
    # 10^4 rows, large enough for the (n, d k) B-step to take bt_numba's parallel kernels (as the
    # timed fits do) while each group's W-step takes the serial one. A full fit on a tiny sample is
    # a poor warm-up: with n < ~4 d k the B-step is near separable and altmin runs all max_iter
    # sweeps (seconds of real work, not compilation) and never reaches the parallel kernels.
    warm = pop.sample(10_000, seed=seed + 2)

    def first_call(backend):
        t = time.perf_counter()
        SharedRep(k, weights="free", n_restarts=1, max_iter=1, backend=backend,
                  seed=seed).fit(warm)
        return time.perf_counter() - t

    compile_s = first_call("numba")
    torch_first_s = first_call("torch")

    import torch

    # One torch thread for the baseline too (altmin's kernel uses one below 2^24 data elements):
    # on a shared 2-core machine a thread pool per small op costs more than it gives.
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick, seed, out, data, n, d, k, U, lr, batch_size, n_epochs, cap_s, ll_tol,
                    with_numba, altmin, compile_s, torch_first_s)
    finally:
        torch.set_num_threads(old_threads)


def _run(quick, seed, out, data, n, d, k, U, lr, batch_size, n_epochs, cap_s, ll_tol, with_numba,
         altmin, compile_s, torch_first_s):
    rows = []
    t = time.perf_counter()
    est = altmin("torch").fit(data)
    t_alt = time.perf_counter() - t
    nll_alt = -est.log_likelihood(data) / n
    rows.append(dict(method="altmin, torch back-end", seconds=t_alt, mean_nll=nll_alt,
                     iters=est.n_iter_, reached=True))
    if with_numba:
        t = time.perf_counter()
        est_nb = altmin("numba").fit(data)
        t_nb = time.perf_counter() - t
        rows.append(dict(method="altmin, numba back-end (Kronecker design)", seconds=t_nb,
                         mean_nll=-est_nb.log_likelihood(data) / n, iters=est_nb.n_iter_,
                         reached=True,
                         maxdiff=float(np.abs(est_nb.theta_ - est.theta_).max())))
    t_adam, nll_adam, ep, reached = _adamw_to_target(
        data.X, data.y, data.group, U, k, nll_alt + ll_tol, lr=lr, batch_size=batch_size,
        n_epochs=n_epochs, cap_s=cap_s, seed=seed)
    rows.append(dict(method=f"AdamW head (official), lr {lr:g}, batch {batch_size}, "
                            f"{n_epochs} planned epochs", seconds=t_adam, mean_nll=nll_adam,
                     iters=ep, reached=bool(reached)))
    for r in rows:
        r.update(n=n, d=d, k=k, U=U, compile_s=compile_s, torch_first_s=torch_first_s,
                 ratio_to_altmin=r["seconds"] / t_alt)
    out(f"SharedRep: n = {n}, d = {d}, k = {k}, U = {U}; altmin 1 restart (spectral), free "
        f"weights; baseline stops at mean NLL <= altmin's + {ll_tol:g} or {cap_s:g} s of training. "
        f"numba first call {compile_s:.2f} s, torch first call {torch_first_s:.2f} s (untimed); "
        f"torch on 1 thread")
    out(format_table(rows, [("method", "method", "{}"), ("seconds", "seconds", "{:.2f}"),
                            ("ratio_to_altmin", "x altmin", "{:.1f}"),
                            ("mean_nll", "mean NLL", "{:.6f}"), ("iters", "sweeps/epochs", "{}"),
                            ("reached", "reached LL", "{}"), ("maxdiff", "max |d theta|", "{:.1e}")]))
    speed = t_adam / t_alt
    text = ">= 10x faster than AdamW to the same log-likelihood"
    if not reached:
        out(f"  AdamW did not reach the log-likelihood in {t_adam:.1f} s / {ep} epochs "
            f"(gap {nll_adam - nll_alt:.2e} nats): the ratio {speed:.1f} is a lower bound")
        text += " (baseline not reached; ratio is a lower bound)"
    targets = print_targets([(text, speed >= 10)], out)
    for r in rows:
        r["targets"] = targets
    return rows
