"""Policy benchmark: the exact MaxMin solver (dual, certified gap) beside cvxpy on one instance.

Both solve max_pi min_u F_u(pi) on the same finite-arm environment; the table gives each time,
the certified duality gap G(q) - min_u F_u(pi) (evaluated the same way for both) and the max-min
values.
"""

from __future__ import annotations

import time

import numpy as np

from . import format_table, print_targets, register


@register("policy")
def run(quick: bool = False, seed: int = 0, out=print, M=None, A=None, d: int = 16, k: int = 4,
        U: int = 5, beta: float = 1.0):
    from ..policy import maxmin_cvxpy, maxmin_policy
    from ..population import Population

    M = M or (100 if quick else 500)
    A = A or (10 if quick else 20)
    pop = Population.shared(d, k, np.full(U, 1.0 / U), seed=seed)
    env = pop.arm_env(M, A, seed=seed + 1)
    t = time.perf_counter()
    maxmin_policy(pop.arm_env(2, 2, seed=seed + 2), pop.theta, beta)  # first call, untimed
    first_s = time.perf_counter() - t
    rows = []
    t = time.perf_counter()
    ex = maxmin_policy(env, pop.theta, beta)
    t_ex = time.perf_counter() - t
    t = time.perf_counter()
    cv = maxmin_cvxpy(env, pop.theta, beta)
    t_cv = time.perf_counter() - t
    for name, res, sec in (("exact (dual EG + Newton polish)", ex, t_ex), (res_name(cv), cv, t_cv)):
        rows.append(dict(method=name, seconds=sec, duality_gap=res.duality_gap, value=res.value,
                         n_iter=res.n_iter, converged=bool(res.converged), M=M, A=A, U=U, d=d,
                         beta=beta, first_call_s=first_s))
    for r in rows:
        r["ratio_to_exact"] = r["seconds"] / t_ex
        r["value_diff"] = r["value"] - ex.value
    out(f"MaxMin policy: M = {M} contexts, A = {A} actions, U = {U} groups, d = {d}, "
        f"beta = {beta}")
    out(format_table(rows, [("method", "method", "{}"), ("seconds", "seconds", "{:.3f}"),
                            ("ratio_to_exact", "x exact", "{:.1f}"),
                            ("duality_gap", "certified gap", "{:.1e}"),
                            ("value", "max-min value", "{:.8f}"),
                            ("value_diff", "value - exact", "{:.1e}")]))
    targets = print_targets([
        ("exact solver certified gap <= 1e-8", ex.duality_gap <= 1e-8),
        ("exact solver faster than cvxpy", t_ex < t_cv),
        ("exact value >= cvxpy value - its gap", ex.value >= cv.value - cv.duality_gap - 1e-12),
    ], out)
    for r in rows:
        r["targets"] = targets
    return rows


def res_name(res):
    return f"cvxpy ({res.method.split(':', 1)[-1]})"
