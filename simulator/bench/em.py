"""EM benchmark: the E-step kernels (numba vs batched torch) and whole hard / soft EM fits.

E-step = margins ``X theta^T``, user log-likelihoods ``L`` and responsibilities (log space).
Timed on the same data and parameters, best of ``repeats``; whole fits with ``backend="numba"``
and ``backend="torch"`` (the M-step is the same numba Newton in both).
"""

from __future__ import annotations

import time

import numpy as np

from . import best_of, format_table, print_targets, register


@register("em")
def run(quick: bool = False, seed: int = 0, out=print, n=None, d: int = 16, k: int = 2,
        K: int = 3, users_per_group: int = 50, repeats: int = 5, devices=None):
    import torch

    from ..estimators.em import EMMixture
    from ..kernels import em_numba
    from ..kernels.torch_em import TorchEStep
    from ..population import Population

    n = n or (20_000 if quick else 100_000)
    pop = Population.shared(d, k, np.full(K, 1.0 / K), seed=seed, users_per_group=users_per_group)
    data = pop.sample(n, seed=seed + 1)
    H = data.n_users
    theta = pop.theta + 0.1 * np.random.default_rng(seed).standard_normal(pop.theta.shape)
    log_pi = np.log(np.full(K, 1.0 / K))
    yf = data.y.astype(np.float64)

    def numba_estep():
        Z = np.ascontiguousarray(data.X @ theta.T)
        L = em_numba.user_loglik(Z, yf, data.user, H)
        return L, em_numba.e_step(L, log_pi)

    small = pop.sample(200, seed=seed + 2)
    t = time.perf_counter()
    em_numba.e_step(em_numba.user_loglik(np.zeros((3, K)), np.zeros(3), np.zeros(3, np.int64), 1),
                    log_pi)
    EMMixture(K, variant="soft", n_restarts=1, max_iter=2).fit(small)
    compile_s = time.perf_counter() - t
    for variant in ("hard", "soft"):  # warm both back-ends' whole-fit paths, untimed
        for backend in ("numba", "torch"):
            EMMixture(K, variant=variant, n_restarts=1, max_iter=2, backend=backend).fit(small)

    rows = []
    t_nb, (L_ref, (R_ref, _)) = best_of(numba_estep, repeats)
    rows.append(dict(what="E-step", method="numba", seconds=t_nb, maxdiff_R=0.0, maxdiff_L=0.0))
    devices = devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    for dev in devices:
        for dtype in ("float64", "float32"):
            es = TorchEStep(data.X, data.y, data.user, H, device=dev, dtype=dtype)

            def torch_estep(es=es):
                L = es.loglik(theta)
                return L, es.e_step(L, log_pi)

            torch_estep()  # warm-up
            t_t, (L, (R, _)) = best_of(torch_estep, repeats)
            rows.append(dict(what="E-step", method=f"torch {dev} {dtype}", seconds=t_t,
                             maxdiff_R=float(np.abs(R - R_ref).max()),
                             maxdiff_L=float(np.abs(L - L_ref).max() / np.abs(L_ref).max())))
    for variant in ("hard", "soft"):
        fits = {}
        for backend in ("numba", "torch"):
            est = EMMixture(K, variant=variant, n_restarts=1, backend=backend, seed=seed)
            t = time.perf_counter()
            est.fit(data)
            fits[backend] = (time.perf_counter() - t, est)
        a, b = fits["numba"][1], fits["torch"][1]
        for backend, (sec, est) in fits.items():
            rows.append(dict(what=f"{variant} EM fit ({est.n_iter_} iters)", method=backend,
                             seconds=sec, maxdiff_R=float(np.abs(est.responsibilities_
                                                                 - a.responsibilities_).max()),
                             maxdiff_L=abs(b.objective_ - a.objective_) / abs(a.objective_)))
    for r in rows:
        r.update(n=n, d=d, K=K, n_users=H, compile_s=compile_s)
        base = next(x for x in rows if x["what"] == r["what"] and x["method"] == "numba")
        r["speedup_vs_numba"] = base["seconds"] / r["seconds"]
    out(f"EM: n = {n}, d = {d}, K = {K} clusters, {H} users; E-step best of {repeats}; numba "
        f"first call (compile or cache load) {compile_s:.2f} s, untimed")
    out(format_table(rows, [("what", "what", "{}"), ("method", "method", "{}"),
                            ("seconds", "seconds", "{:.4f}"),
                            ("speedup_vs_numba", "x numba", "{:.2f}"),
                            ("maxdiff_R", "max |dR|", "{:.1e}"),
                            ("maxdiff_L", "rel dL / dobj", "{:.1e}")]))
    f64 = [r for r in rows if "float64" in r["method"] or r["what"] != "E-step"]
    targets = print_targets([
        ("torch float64 E-step equals numba within 1e-6 relative",
         all(r["maxdiff_R"] <= 1e-6 and r["maxdiff_L"] <= 1e-6 for r in f64)),
    ], out)
    for r in rows:
        r["targets"] = targets
    return rows
