"""Figure 7: shared low-rank personalisation (the linear case of P-ShareLoRA): per-user error
against comparisons per user for several numbers of users, the shared/oracle ratio against
``1 + d/N``, and the subspace error ``sin theta(B_hat, B*)`` against the total sample ``N n``.

Set-up
------
``Population.dirichlet(d, k, n_groups=N, users_per_group=1)``: every user is its own group, with
``theta_i = B* w_i`` (``B*`` orthonormal d x k, ``w_i = signal * Dirichlet(1)``; ``theta0 = 0``,
the notes' first pass, sharelora_theory.md §3 item 1, which reduces the model to Park et al. /
Tripuraneni et al.). Each user gives exactly ``n`` comparisons, ``X ~ N(0, I_d)``, BT labels.
Three estimators fit the same data:

* ``shared`` — :class:`SharedLoRA` (rank ``k``, Burer–Monteiro ``solver="factorized"``,
  nuclear-norm weight ``lam = 1``, no base since ``theta0 = 0``);
* ``oracle`` — :class:`OracleB` with the true ``B*`` (k-dim ridge fit per user): the floor;
* ``independent`` — :class:`SeparateMLE` (d-dim ridge fit per user, i.e. per-user MAP).

Both per-user ridges are ``LAM = 1`` on the summed objective (a N(0, I) prior on the coefficients,
of the order of ``||w_i||^2 / k``): an unregularised per-user MLE does not exist when a user's
comparisons are separable, which is common at ``n ~ d`` (notes §4).

Convention: the error is the theory's **squared** form, the mean over users of
``||theta_hat_i - theta_i*||_2^2`` (= the ``Sigma``-norm with ``Sigma = I``), so the predicted
slope in ``n`` is **-1** (``-1/2`` for its square root); the ratios are ratios of these averages.

Theory overlay (theory/lowrank.py; reconstructed by parameter counting, not verified): shared
``C (k/n + dk/(N n))/gamma_F``, oracle ``C k/(gamma_F n)``, independent ``C d/(gamma_F n)``,
with ``gamma_F`` the population's mean curvature ``E[sigma'(theta_i^T x)]`` and **one** constant
``C`` fitted by the rule: the oracle curve passes through the oracle's mean error at the largest
``n`` (pooled over ``N``). The shared and independent curves use that same ``C``, so their levels
are predictions, not fits. The subspace rate ``C' sqrt(kappa_bar d k/(nu N n))`` (Tripuraneni,
Jin & Jordan 2021, stated for a method-of-moments estimator) has its ``C'`` fitted at the largest
``N n``. Checks are on exponents and ratios.

Claims checked
--------------
* slope of the shared estimator's mean squared per-user error vs ``n`` is -1 (one row per ``N``);
  the same for the oracle and the independent fits (largest ``N``);
* the shared/oracle ratio: slope of ``ratio - 1`` vs ``N`` is -1 (at the largest ``n``) and its
  level ``(ratio - 1) N / d`` is 1 within +/-50% (the exact parameter count ``k(d + N - k)``
  gives ``(d - k)/d``);
* ``sin theta`` decreases with ``N n`` with slope -1/2 (all cells pooled), and has that slope
  both in ``n`` at fixed ``N`` and in ``N`` at fixed ``n`` (it depends on ``N n`` only).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import OracleB, SeparateMLE, SharedLoRA
from simulator.metrics import sin_theta

NAME = "fig7"
TITLE = "Shared low rank: per-user error, shared/oracle ratio, subspace recovery"
LAM = 1.0        # per-user ridge of the oracle and independent fits (summed objective)
LAM_SHARED = 1.0  # nuclear-norm weight of SharedLoRA (its default)
TOL = 1e-6       # SharedLoRA relative-objective tolerance (errors agree with 1e-10 to < 0.5%)
RATIO_RTOL = 0.5
ESTIMATORS = ("shared", "oracle", "independent")
LABELS = {"shared": "shared low rank (SharedLoRA)", "oracle": "oracle B*",
          "independent": "independent per-user MAP"}
COLOURS = {"shared": "C1", "oracle": "C2", "independent": "C0"}


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full" (paper-size)."""
    params = {"d": 8, "k": 2, "signal": 2.0}
    if size == "full":
        axes = {"N": [8, 16, 32, 64, 128], "n": [20, 40, 80, 160, 320]}
        reps = 30
    elif size == "quick":
        axes = {"N": [8, 16, 32], "n": [20, 40, 80, 160]}
        reps = 10
    else:
        params = {"d": 4, "k": 1, "signal": 2.0}
        axes = {"N": [4, 8], "n": [20, 40, 80]}
        reps = 3
    return {"name": NAME, "task": "figures.fig7_lowrank:cell", "seed": 7, "replicates": reps,
            "seed_ignore": ["n"], "params": params, "axes": axes}


def cell(params: dict, seed) -> dict:
    s_pop, s_data, s_fit = seed.spawn(3)
    d, k, N, n = (int(params[x]) for x in ("d", "k", "N", "n"))
    pop = Population.dirichlet(d, k, n_groups=N, users_per_group=1, seed=s_pop,
                               signal=float(params["signal"]))
    data = pop.sample(N * n, seed=s_data, group_sampling="fixed")  # exactly n per user
    ests = {
        "shared": SharedLoRA(rank=k, solver="factorized", unit="group", lam=LAM_SHARED,
                             fit_base=False, tol=TOL, seed=s_fit),
        "oracle": OracleB(pop.B, lam=LAM),
        "independent": SeparateMLE(lam=LAM),
    }
    out = {}
    for name, est in ests.items():
        est.fit(data)
        sq = np.sum((est.theta_ - pop.theta) ** 2, axis=1)
        out[f"{name}_err2"] = float(sq.mean())       # mean over users of the squared l2 error
        out[f"{name}_err2_max"] = float(sq.max())
    sh = ests["shared"]
    out["sin_theta"] = float(sin_theta(sh.B_, pop.B))
    out["shared_n_iter"] = int(sh.n_iter_)
    out["shared_converged"] = bool(sh.converged_)
    G = pop.W @ pop.W.T / N  # task diversity of Tripuraneni et al.
    ev = np.linalg.eigvalsh(G)
    out["nu"] = float(ev[0])
    out["kappa_bar"] = float(np.trace(G) / (k * ev[0]))
    out["gamma_mean"] = float(pop.curvature(seed=0, n_mc=5000).gamma_mean)
    return out


# ---------------------------------------------------------------------------------- analysis
def _matrix(sub, value, grid, axis):
    """Replicates x grid matrix of ``value`` (rows: replicate index)."""
    piv = sub.pivot_table(index="replicate", columns=axis, values=value, aggfunc="first")
    return piv.reindex(columns=grid).dropna().to_numpy(dtype=float)


def _ratio_stat(d, Ns):
    """Bootstrap statistic on (seeds, 2, len(Ns)) [shared, oracle] arrays at one n: the slope of
    log(ratio - 1) on log N and the mean over N of (ratio - 1) N / d, ratio = mean / mean."""
    lx = np.log(Ns)
    lxc = lx - lx.mean()

    def stat(v, axis=0):
        m = np.mean(v, axis=axis)                   # (..., 2, nN)
        r1 = m[..., 0, :] / m[..., 1, :] - 1.0
        ly = np.log(np.maximum(r1, 1e-6))           # a ratio below 1 is clipped (noted)
        slope = (ly - ly.mean(axis=-1, keepdims=True)) @ lxc / np.sum(lxc**2)
        level = np.mean(r1 * Ns / d, axis=-1)
        return np.stack([slope, level], axis=-1)

    return stat


def analyse(df, out_dir) -> list:
    import pandas as pd

    d, k = int(df["d"].iloc[0]), int(df["k"].iloc[0])
    Ns = np.array(sorted(df["N"].unique()), dtype=float)
    ns = np.array(sorted(df["n"].unique()), dtype=float)
    N1, n1 = Ns[-1], ns[-1]
    tol = theory.DEFAULT_EXPONENT_TOL
    conv = "mean over users of ||theta_hat_i - theta_i||_2^2 (squared; slope -1 <=> -1/2 in l2)"
    claims = []

    # ---- per-user error vs n ---------------------------------------------------------------
    slope_claim = theory.Claim.from_bound(
        theory.shared_lowrank_avg_error, figure=NAME, quantity="",
        prediction="-1 ((k/n + dk/(N n))/gamma)", kind="value", predicted=-1.0, atol=tol,
        note=f"{conv}; tolerance +/-{tol}")
    def local(Y, grid):
        m = Y.mean(axis=0)
        return (f"local slope between the two largest grid values "
                f"{np.log(m[-1] / m[-2]) / np.log(grid[-1] / grid[-2]):.2f} (diagnostic)")

    for N in Ns:
        Y = _matrix(df[df["N"] == N], "shared_err2", ns, "n")
        fit = theory.fit_loglog_slope(ns, Y, seed=0)
        claims.append(replace(slope_claim, quantity=f"slope of shared error vs n, N = {N:g}")
                      .evaluate_fit(fit, note=local(Y, ns)))
    for name, fn, pred in (("oracle", theory.oracle_subspace_avg_error, "-1 (k/(gamma n))"),
                           ("independent", theory.independent_avg_error, "-1 (d/(gamma n))")):
        Y = _matrix(df[df["N"] == N1], f"{name}_err2", ns, "n")
        fit = theory.fit_loglog_slope(ns, Y, seed=0)
        extra = ("asymptotic rate (n >> d); a ridge-regularised fit at n ~ d sits below it"
                 if name == "independent" else "")
        claims.append(theory.Claim.from_bound(
            fn, figure=NAME, quantity=f"slope of {name} error vs n, N = {N1:g}", prediction=pred,
            kind="value", predicted=-1.0, atol=tol,
            note="; ".join(s for s in (conv, f"tolerance +/-{tol}", extra) if s))
            .evaluate_fit(fit, note=local(Y, ns)))

    # ---- shared / oracle ratio vs 1 + d/N ----------------------------------------------------
    big = df[df["n"] == n1]
    S = np.stack([_matrix(big, "shared_err2", Ns, "N"), _matrix(big, "oracle_err2", Ns, "N")],
                 axis=1)
    est, lo, hi = theory.bootstrap_ci(S, statistic=_ratio_stat(d, Ns), seed=0)
    ratio_note = (f"n = {n1:g}; ratio of mean errors over {S.shape[0]} seeds; percentile "
                  f"bootstrap over seeds")
    claims.append(theory.Claim.from_bound(
        theory.shared_to_oracle_ratio, figure=NAME,
        quantity=f"slope of (shared/oracle - 1) vs N, n = {n1:g}", prediction="-1 (d/N)",
        kind="value", predicted=-1.0, atol=tol,
        note=f"tolerance +/-{tol}; ratio - 1 clipped at 1e-6 in a resample where shared < oracle")
        .evaluate(est[0], lo[0], hi[0], note=ratio_note))
    claims.append(theory.Claim.from_bound(
        theory.shared_to_oracle_ratio, figure=NAME,
        quantity=f"level (shared/oracle - 1) N / d, mean over N, n = {n1:g}",
        prediction=f"1 +/- {RATIO_RTOL:.0%} (ratio = 1 + d/N)", kind="value", predicted=1.0,
        rtol=RATIO_RTOL,
        note=f"exact count k(d + N - k) predicts (d - k)/d = {(d - k) / d:.2f}")
        .evaluate(est[1], lo[1], hi[1], note=ratio_note))

    # ---- sin theta vs N n ----------------------------------------------------------------
    sin_claim = theory.Claim.from_bound(
        theory.subspace_sin_theta_rate, figure=NAME, quantity="",
        prediction="-1/2 (sqrt(kappa d k / (nu N n)))", kind="value", predicted=-0.5, atol=tol,
        note=f"rate stated for a method-of-moments estimator; ours is the factorised MLE; "
             f"tolerance +/-{tol}")
    combos = sorted({(N, n) for N, n in zip(df["N"], df["n"])}, key=lambda t: (t[0] * t[1], t))
    cols = []
    for N, n in combos:
        s = df[(df["N"] == N) & (df["n"] == n)].set_index("replicate")["sin_theta"]
        cols.append(s.rename((N, n)))
    Ysin = pd.concat(cols, axis=1).dropna().to_numpy(float)
    Nn = np.array([N * n for N, n in combos], dtype=float)
    claims.append(replace(sin_claim, quantity="slope of sin theta vs N n (all N, n pooled)")
                  .evaluate_fit(theory.fit_loglog_slope(Nn, Ysin, seed=0),
                                note=f"{len(combos)} (N, n) cells"))
    Y = _matrix(df[df["N"] == N1], "sin_theta", ns, "n")
    claims.append(replace(sin_claim, quantity=f"slope of sin theta vs n, N = {N1:g}")
                  .evaluate_fit(theory.fit_loglog_slope(ns, Y, seed=0), note=local(Y, ns)))
    claims.append(replace(sin_claim, quantity=f"slope of sin theta vs N, n = {n1:g}")
                  .evaluate_fit(theory.fit_loglog_slope(
                      Ns, _matrix(big, "sin_theta", Ns, "N"), seed=0),
                      note="seeds differ across N (independent populations)"))

    # ---- figure -----------------------------------------------------------------------------
    gamma = float(df["gamma_mean"].mean())
    C = float(df[df["n"] == n1]["oracle_err2"].mean()
              / theory.oracle_subspace_avg_error(n1, k, gamma=gamma))
    fig, axes = style.new_figure(ncols=3, width=4.6, height=3.8)
    ax, axr, axs = axes[0]
    rows = []
    markers = ["o", "s", "^", "v", "D"]
    for i, N in enumerate(Ns):
        sub = df[df["N"] == N]
        for name in ESTIMATORS:
            if name != "shared" and N != N1:
                continue
            Y = _matrix(sub, f"{name}_err2", ns, "n")
            m = Y.mean(axis=0)
            q10, q90 = np.quantile(Y, 0.1, axis=0), np.quantile(Y, 0.9, axis=0)
            lab = f"{LABELS[name]}, N = {N:g}" if name == "shared" else LABELS[name] + \
                f" (N = {N:g})"
            ls = "-" if name == "shared" else "--"
            line = ax.loglog(ns, m, markers[i % 5] + ls, color=COLOURS[name] if name != "shared"
                             else f"C{3 + i}", ms=4, label=lab)[0]
            ax.fill_between(ns, q10, q90, color=line.get_color(), alpha=0.12)
            if name == "shared":
                pred = theory.shared_lowrank_avg_error(ns, d, k, int(N), gamma=gamma, C=C)
            elif name == "oracle":
                pred = theory.oracle_subspace_avg_error(ns, k, gamma=gamma, C=C)
            else:
                pred = theory.independent_avg_error(ns, d, gamma=gamma, C=C)
            ax.loglog(ns, pred, ":", color=line.get_color(), lw=1)
            for j, n in enumerate(ns):
                rows.append({"panel": "a", "estimator": name, "N": int(N), "n": int(n),
                             "Nn": int(N * n), "mean": m[j], "q10": q10[j], "q90": q90[j],
                             "theory": pred[j], "n_seeds": Y.shape[0]})
    ax.plot([], [], "k:", lw=1, label=f"theory/lowrank.py [I, unverified], C = {C:.2g} fitted "
                                      f"to oracle at n = {n1:g}")
    ax.set(xlabel="comparisons per user n", ylabel="mean_i ||theta_hat_i - theta_i||^2",
           title="per-user squared error (theory slope -1)")
    ax.legend(fontsize=5)

    # ratio vs N, one line per n
    for j, n in enumerate(ns):
        sub = df[df["n"] == n]
        A, B_ = _matrix(sub, "shared_err2", Ns, "N"), _matrix(sub, "oracle_err2", Ns, "N")
        r = A.mean(axis=0) / B_.mean(axis=0)
        rb = np.array([theory.bootstrap_ci(np.stack([A[:, i], B_[:, i]], axis=1),
                                           statistic=lambda v, axis=0: np.mean(v, axis=axis)
                                           [..., 0] / np.mean(v, axis=axis)[..., 1],
                                           seed=0)[1:] for i in range(len(Ns))])
        axr.semilogx(Ns, r, markers[j % 5] + "-", color=f"C{j}", ms=4, label=f"n = {n:g}")
        axr.fill_between(Ns, rb[:, 0], rb[:, 1], color=f"C{j}", alpha=0.1)
        for i, N in enumerate(Ns):
            rows.append({"panel": "b", "estimator": "shared/oracle", "N": int(N), "n": int(n),
                         "Nn": int(N * n), "mean": r[i], "q10": rb[i, 0], "q90": rb[i, 1],
                         "theory": float(theory.shared_to_oracle_ratio(d, int(N))),
                         "n_seeds": A.shape[0]})
    Nf = np.geomspace(Ns[0], Ns[-1], 50)
    axr.semilogx(Nf, 1 + d / Nf, "k--", label="1 + d/N [I, unverified]")
    axr.semilogx(Nf, 1 + (d - k) / Nf, "k:", label="1 + (d - k)/N (exact dof count)")
    axr.axhline(1.0, color="grey", lw=0.6)
    axr.set(xlabel="users N", ylabel="shared error / oracle error",
            title="shared/oracle ratio (band: 95% bootstrap CI)")
    axr.legend(fontsize=6)

    # sin theta vs N n
    nu, kb = float(df["nu"].mean()), float(df["kappa_bar"].mean())
    for i, N in enumerate(Ns):
        Y = _matrix(df[df["N"] == N], "sin_theta", ns, "n")
        m = Y.mean(axis=0)
        q10, q90 = np.quantile(Y, 0.1, axis=0), np.quantile(Y, 0.9, axis=0)
        axs.loglog(N * ns, m, markers[i % 5] + "-", color=f"C{3 + i}", ms=4, label=f"N = {N:g}")
        axs.fill_between(N * ns, q10, q90, color=f"C{3 + i}", alpha=0.12)
        for j, n in enumerate(ns):
            rows.append({"panel": "c", "estimator": "shared sin_theta", "N": int(N), "n": int(n),
                         "Nn": int(N * n), "mean": m[j], "q10": q10[j], "q90": q90[j],
                         "theory": np.nan, "n_seeds": Y.shape[0]})
    Nn_f = np.geomspace(Nn.min(), Nn.max(), 50)
    top = df[df["N"] * df["n"] == Nn.max()]["sin_theta"].mean()
    C2 = float(top / theory.subspace_sin_theta_rate(Nn.max(), d, k, nu=nu, kappa_bar=kb))
    rate = theory.subspace_sin_theta_rate(Nn_f, d, k, nu=nu, kappa_bar=kb, C=C2)
    axs.loglog(Nn_f, rate, "k--", label=f"sqrt(kappa d k/(nu N n)) [P, unverified], "
                                        f"C = {C2:.2g} fitted at max N n")
    for r in rows:
        if r["panel"] == "c":
            r["theory"] = float(theory.subspace_sin_theta_rate(r["Nn"], d, k, nu=nu,
                                                               kappa_bar=kb, C=C2))
    axs.set(xlabel="total comparisons N n", ylabel="sin theta(B_hat, B*)",
            title="subspace recovery (theory slope -1/2)")
    axs.legend(fontsize=6)
    fig.suptitle(f"Shared low rank, d = {d}, k = {k}: levels of the theory lines are fitted "
                 f"(constants unverified); checks are on exponents and ratios", fontsize=8)
    style.save(fig, out_dir, NAME, pd.DataFrame(rows))
    return claims


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig7_lowrank"))
