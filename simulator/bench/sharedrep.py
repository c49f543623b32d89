"""SharedRep benchmark: exact alternating minimisation beside the official way of training it.

The official code (marcellobullo/sharedrep-rlhf) trains the two-layer head ``Linear(d -> k,
bias) -> Linear(k -> U)`` jointly by AdamW with a linear learning-rate decay on mini-batches. Here
that baseline runs on the same data (init N(0, 0.02), lr, batch size and planned epochs as given)
until its training log-likelihood reaches the one of our altmin fit (mean NLL within ``ll_tol``
nats per comparison) or a time cap; its full-data evaluations after each epoch are not timed.

Two tables (n = 1e5, d = 64, k = 4, U = 5 groups, the paper's simplex population):

* **The defaults** (issue 12): ``SharedRep(k)`` as a user gets it (simplex weights, 3 restarts,
  numba back-end) beside ``SharedRep(k, weights="free")`` (same restarts and back-end) and the
  official training (AdamW, lr 5e-4, batch 16; linear decay planned over 100 epochs: the
  official 3 epochs end short of the log-likelihood, 4e-3 nats per comparison above it).
  Targets: the default within 3x of the free-weight fit, and at least 10x faster than AdamW to
  the default fit's training log-likelihood. AdamW is stopped at 10.5x the default's time (the
  target is then met and the printed ratio is a lower bound), which keeps the benchmark short.
* **Free weights, one restart** (issue 7): altmin on the torch and numba back-ends beside AdamW
  (lr 5e-3, batch 256) to the same log-likelihood; target at least 10x.
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
        cap_s=None, ll_tol: float = 1e-4, with_numba: bool = True,
        official_lr: float = 5e-4, official_batch: int = 16, official_epochs: int = 100):
    from ..estimators.sharedrep import SharedRep
    from ..population import Population

    n = n or (20_000 if quick else 100_000)
    cap_s = cap_s or (10.0 if quick else 120.0)
    # the defaults table on the paper's simplex population; the free-weight table (issue 7) on
    # the gaussian-weight population it was set up with
    pop_s = Population.shared(d, k, np.full(U, 1.0 / U), seed=seed)
    data_s = pop_s.sample(n, seed=seed + 1)
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

    def first_call(backend, weights="free"):
        t = time.perf_counter()
        SharedRep(k, weights=weights, n_restarts=1, max_iter=1, backend=backend,
                  seed=seed).fit(warm)
        return time.perf_counter() - t

    compile_s = first_call("numba") + first_call("numba", "simplex")
    torch_first_s = first_call("torch")

    import torch

    # One torch thread for the baseline too (altmin's kernel uses one below 2^24 data elements):
    # on a shared 2-core machine a thread pool per small op costs more than it gives.
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _run_defaults(seed, out, data_s, n, d, k, U, official_lr, official_batch,
                             official_epochs, ll_tol, compile_s)
        return rows + _run(quick, seed, out, data, n, d, k, U, lr, batch_size, n_epochs, cap_s,
                           ll_tol, with_numba, altmin, compile_s, torch_first_s)
    finally:
        torch.set_num_threads(old_threads)


def _run_defaults(seed, out, data, n, d, k, U, lr, batch_size, n_epochs, ll_tol, compile_s):
    """The defaults table (module docstring): simplex default, free weights, official AdamW."""
    from ..estimators.sharedrep import SharedRep

    t = time.perf_counter()
    est = SharedRep(k, seed=seed).fit(data)
    t_def = time.perf_counter() - t
    nll_def = -est.log_likelihood(data) / n
    t = time.perf_counter()
    free = SharedRep(k, weights="free", seed=seed).fit(data)
    t_free = time.perf_counter() - t
    rows = [
        dict(method=f"SharedRep({k}) defaults: simplex, {est.n_restarts} restarts, numba",
             seconds=t_def, mean_nll=nll_def, iters=est.n_iter_, reached=True,
             restarts_run=int(np.sum(est.restart_duplicate_of_ < 0))),
        dict(method=f"SharedRep({k}, weights='free'), {free.n_restarts} restarts, numba",
             seconds=t_free, mean_nll=-free.log_likelihood(data) / n, iters=free.n_iter_,
             reached=True, restarts_run=free.n_restarts),
    ]
    cap = 10.5 * t_def
    row, (t_adam, nll_adam, ep, reached) = _adamw_row(data, U, k, nll_def + ll_tol, lr,
                                                      batch_size, n_epochs, cap, seed)
    rows.append(row)
    for r in rows:
        r.update(n=n, d=d, k=k, U=U, compile_s=compile_s, table="defaults",
                 ratio_to_default=r["seconds"] / t_def)
    out(f"SharedRep defaults: n = {n}, d = {d}, k = {k}, U = {U} (simplex population); AdamW "
        f"stops at mean NLL <= the default fit's + {ll_tol:g}, at its planned epochs, or at "
        f"10.5x the default's time ({cap:.1f} s of training)")
    out(format_table(rows, [("method", "method", "{}"), ("seconds", "seconds", "{:.2f}"),
                            ("ratio_to_default", "x default", "{:.1f}"),
                            ("mean_nll", "mean NLL", "{:.6f}"), ("iters", "sweeps/epochs", "{}"),
                            ("restarts_run", "restarts run", "{}"),
                            ("reached", "reached LL", "{}")]))
    speed = t_adam / t_def
    text = ">= 10x faster than the official AdamW training to the default fit's log-likelihood"
    if not reached:
        why = ("its planned epochs ended" if ep >= n_epochs else "stopped at the cap")
        out(f"  AdamW did not reach the log-likelihood ({why}, {t_adam:.1f} s / {ep} epochs, gap "
            f"{nll_adam - nll_def:.2e} nats): the ratio {speed:.1f} is a lower bound")
        text += " (baseline not reached; ratio is a lower bound)"
    targets = print_targets([
        (f"default (simplex) within 3x of the free-weight fit ({t_def / t_free:.2f}x)",
         t_def <= 3.0 * t_free),
        (text, speed >= 10 or (not reached and ep >= n_epochs))], out)
    for r in rows:
        r["targets"] = targets
    return rows


def _adamw_row(data, U, k, target_nll, lr, batch_size, n_epochs, cap_s, seed):
    """The official AdamW head trained to ``target_nll``: (table row, (seconds, mean NLL,
    epochs, reached))."""
    res = _adamw_to_target(data.X, data.y, data.group, U, k, target_nll, lr=lr,
                           batch_size=batch_size, n_epochs=n_epochs, cap_s=cap_s, seed=seed)
    t_adam, nll_adam, ep, reached = res
    row = dict(method=f"AdamW head (official), lr {lr:g}, batch {batch_size}, "
                      f"{n_epochs} planned epochs", seconds=t_adam, mean_nll=nll_adam, iters=ep,
               reached=bool(reached))
    return row, res


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
        rows.append(dict(method="altmin, numba back-end (structured B-step)", seconds=t_nb,
                         mean_nll=-est_nb.log_likelihood(data) / n, iters=est_nb.n_iter_,
                         reached=True,
                         maxdiff=float(np.abs(est_nb.theta_ - est.theta_).max())))
    row, (t_adam, nll_adam, ep, reached) = _adamw_row(data, U, k, nll_alt + ll_tol, lr,
                                                      batch_size, n_epochs, cap_s, seed)
    rows.append(row)
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
