"""Figure 4: single-reward impossibility (MaxMin-RLHF, arXiv 2402.08925, Section 3).

Two groups with parameters at an angle (``Population.diverse(d, angle, proportions=(eta, 1-eta))``,
group 0 = "group u", a minority when ``eta < 1/2``), comparisons drawn from a finite-arm
environment (``arm_env``). Single-reward RLHF fits ONE Bradley–Terry reward and plays its Gibbs
policy ``pi ∝ pi_ref exp(r / beta)``; the alignment gap of group u is
``F_u(pi*_u) - F_u(pi) = beta E_x KL(pi || pi*_u)`` under the TRUE rewards
(``fairness.alignment_gaps``). Three single rewards separate estimation from the impossibility:

* ``pooled`` — :class:`PooledMLE` fitted on ``n`` comparisons pooled from both groups (RLHF as
  trained: estimation error + impossibility);
* ``pop`` — ``phi*``, the population limit of the pooled BT fit on the environment's exact
  comparison law (soft labels ``eta P_u + (1 - eta) P_k``): the reward of Lemma 1 / Theorem 1,
  no estimation error;
* ``util`` — the proportion-weighted (utilitarian) reward ``eta theta_u + (1 - eta) theta_k``.

Diversity ``epsilon = TV(p*_u, p*_k)`` is exact on the environment's comparison law
(``fairness.diversity_epsilon``; for two groups it is the pairwise TV).

Claims checked (all theory from ``theory.maxmin``: secondary-summary formulas, unverified)
------------------------------------------------------------------------------------------
* the gap grows with epsilon (log-log slope > 0), for ``pooled`` and ``pop``;
* the exponent of the gap in epsilon (small-epsilon part of the grid): 1 as Theorem 1 is written,
  2 by the local expansion ``Var / (2 beta)`` (maxmin.md §2.4 [D]) — both rows, honestly;
* gap >= Theorem 1's lower bound (as written, constants 64 / L_pi / D / lambda_psi unverified) at
  every grid point, for ``pop`` and ``pooled``; also the squared reading;
* Lemma 1: ``||phi* - theta_u|| >= epsilon (1 - eta) / (4 D)`` at every grid point;
* the gap shrinks as eta grows (the minority becomes the majority): slope of gap vs eta < 0;
  and the exponent of the ``pop`` gap in ``(1 - eta)`` (1 as written, 2 squared reading).

Conventions for Theorem 1's constants (not fixed by the notes): ``D = max ||phi(x, a)||``;
``lambda_psi`` = smallest eigenvalue of the exact comparison design ``E[X X^T]``,
``X = phi(x, a1) - phi(x, a0)``, pairs from ``pi_ref``; ``L_pi = 2 D`` (Lipschitz constant of
``log pi_w`` in the natural parameter ``w`` of a log-linear policy).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import PooledMLE
from simulator.estimators.bt import fit_bt
from simulator.fairness import alignment_gaps, diversity_epsilon
from simulator.policy import gibbs_policy, utilitarian_policy

NAME = "fig4"
TITLE = "Single-reward impossibility: alignment gap vs diversity and proportion"
LAM = 1e-4
BETA_SCAN = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # KL strengths at which the phi* gap is also computed
SMALL_EPS_MAX_ANGLE = 45.0  # degrees: the "small epsilon" part of the grid for the exponent fits


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full" (paper-size)."""
    params = {"d": 8, "n_contexts": 40, "n_actions": 8, "n": 2000, "beta": 1.0, "signal": 2.0}
    if size == "full":
        axes = {"angle_deg": [2.5, 5, 10, 20, 30, 45, 60, 90, 120, 150, 180],
                "eta": [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}
        params.update(n=8000, n_contexts=100)
        reps = 30
    elif size == "quick":
        axes = {"angle_deg": [5, 10, 20, 45, 90, 180], "eta": [0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9]}
        reps = 10
    else:
        axes = {"angle_deg": [10, 45, 180], "eta": [0.1, 0.5, 0.9]}
        params.update(n=400, n_contexts=10, n_actions=4, d=4)
        reps = 3
    return {"name": NAME, "task": "figures.fig4_impossibility:cell", "seed": 4,
            "replicates": reps, "params": params, "axes": axes,
            "seed_ignore": list(cell.seed_ignore)}


def cell(params: dict, seed) -> dict:
    """One grid point, one replicate: the gap of group u (group 0) under three single rewards."""
    s_pop, s_env, s_data = seed.spawn(3)
    d, beta = int(params["d"]), float(params["beta"])
    eta = float(params["eta"])
    angle = math.radians(float(params["angle_deg"]))
    pop = Population.diverse(d, angle, proportions=(eta, 1.0 - eta), seed=s_pop,
                             signal=float(params["signal"]))
    env = pop.arm_env(int(params["n_contexts"]), int(params["n_actions"]), s_env)
    theta = pop.theta  # (2, d); row 0 = group u
    eps = float(diversity_epsilon(env, theta, pop.proportions)[0])

    # RLHF as trained: pooled BT-MLE on n comparisons from both groups
    data = pop.sample(int(params["n"]), seed=s_data, env=env)
    pooled = PooledMLE(lam=LAM).fit(data)
    # population limit phi* of the pooled fit (exact comparison law, soft mixture labels)
    phi_star, pop_converged = _population_bt_fit(env, theta, pop.proportions)

    policies = {"pooled": gibbs_policy(env, pooled.coef_, beta),
                "pop": gibbs_policy(env, phi_star, beta),
                "util": utilitarian_policy(env, theta, beta, pop.proportions)}
    out = {"epsilon": eps}
    for key, pi in policies.items():
        gaps = alignment_gaps(env, pi, theta, beta)
        out[f"gap_{key}"] = float(gaps[0])
        out[f"gap_other_{key}"] = float(gaps[1])
    out["mismatch_pooled"] = float(np.linalg.norm(pooled.coef_ - theta[0]))
    out["mismatch_pop"] = float(np.linalg.norm(phi_star - theta[0]))
    out["quad_approx_pop"] = float(theory.alignment_gap_quadratic_approx(
        _reward_variance(env, policies["pop"], phi_star - theta[0]), beta))

    # Theorem 1 / Lemma 1 constants (conventions in the module docstring)
    D = float(np.linalg.norm(env.features, axis=-1).max())
    lam_psi = float(np.linalg.eigvalsh(_design_cov(env))[0])
    L_pi = 2.0 * D
    out.update(D=D, lambda_psi=lam_psi, L_pi=L_pi,
               lemma1_bound=float(theory.lemma1_reward_mismatch_lower_bound(eps, eta, D)),
               thm1_bound=float(theory.theorem1_alignment_gap_lower_bound(
                   eps, eta, beta=beta, D=D, lambda_psi=lam_psi, L_pi=L_pi)),
               thm1_bound_sq=float(theory.theorem1_alignment_gap_lower_bound(
                   eps, eta, beta=beta, D=D, lambda_psi=lam_psi, L_pi=L_pi, exponent=2.0)),
               converged=bool(pooled.converged_ and pop_converged))
    # KL-strength scan for phi* (no refit: phi* does not depend on beta); Theorem 1 has beta^2
    for i, b in enumerate(BETA_SCAN):
        # "direct" (F_u(pi*_u) - F_u(pi)): the KL form overflows to inf at small beta, where
        # pi*_u underflows to exactly 0 on some arms that pi still plays
        out[f"gap_pop_b{i}"] = float(alignment_gaps(env, gibbs_policy(env, phi_star, b),
                                                    theta, b, method="direct")[0])
        out[f"thm1_bound_b{i}"] = float(theory.theorem1_alignment_gap_lower_bound(
            eps, eta, beta=b, D=D, lambda_psi=lam_psi, L_pi=L_pi))
    return out


cell.seed_ignore = ("angle_deg", "eta")  # common random numbers: same env/B/data stream per replicate


def _pairs(env):
    """Exact law of the comparison queries: weights (M, A, A) and X (M, A, A, d), X = phi(a1) - phi(a0)."""
    w = env.pair_probabilities() * env.rho[:, None, None]
    w = w / w.sum()
    phi = env.features
    X = phi[:, None, :, :] - phi[:, :, None, :]  # [x, a0, a1] -> phi(a1) - phi(a0)
    return w, X


def _design_cov(env):
    w, X = _pairs(env)
    Xf = X.reshape(-1, env.d)
    return (Xf * w.reshape(-1)[:, None]).T @ Xf


def _population_bt_fit(env, theta, eta):
    """phi* = argmin_phi E[-log-lik of the mixture labels] on the exact comparison law (Lemma 1's phi*).

    Every query (x, a0, a1) with weight w enters twice: label 1 with weight w P_mix, label 0 with
    weight w (1 - P_mix), P_mix = sum_u eta_u sigma(<theta_u, X>): the expected pooled BT objective.
    """
    w, X = _pairs(env)
    keep = w.reshape(-1) > 0
    Xf = X.reshape(-1, env.d)[keep]
    wf = w.reshape(-1)[keep]
    p_mix = np.asarray(eta) @ (1.0 / (1.0 + np.exp(-(theta @ Xf.T))))
    Xs = np.concatenate([Xf, Xf])
    ys = np.concatenate([np.ones(len(wf), np.int8), np.zeros(len(wf), np.int8)])
    ws = np.concatenate([wf * p_mix, wf * (1.0 - p_mix)]) * len(wf)  # mean scale ~ one query each
    res = fit_bt(Xs, ys, lam=1e-10, sample_weight=ws, theta_init=np.asarray(eta) @ theta,
                 tol=1e-12, max_iter=200)
    return res.theta, bool(res.converged)


def _reward_variance(env, pi, dtheta):
    """E_x Var_{a~pi(.|x)} <dtheta, phi(x, a)> (input of the quadratic approximation)."""
    r = env.features @ dtheta
    m = np.sum(pi * r, axis=1)
    return float(env.rho @ np.sum(pi * (r - m[:, None]) ** 2, axis=1))


# ---------------------------------------------------------------------------------- analysis
def analyse(df, out_dir) -> list:
    import pandas as pd

    angles = np.array(sorted(df["angle_deg"].unique()), dtype=float)
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    eta_u = etas[0]  # smallest proportion: group u is the minority
    angle_mid = angles[np.argmin(np.abs(angles - 90.0))]
    claims = []
    exp_note = ("theory exponent unverified (THEOREM1_EXPONENT_VERIFIED = "
                f"{theory.THEOREM1_EXPONENT_VERIFIED})")

    # ---- gap vs epsilon at the smallest eta ------------------------------------------------
    sub = df[df["eta"] == eta_u]
    eps_x = sub.groupby("angle_deg")["epsilon"].mean().reindex(angles).to_numpy()
    for key, label in (("pooled", "pooled BT-MLE (as trained)"), ("pop", "population phi*")):
        Y = _matrix(sub, f"gap_{key}", angles, "angle_deg")
        fit = theory.fit_loglog_slope(eps_x, Y, seed=0)
        claims.append(theory.Claim.from_bound(
            theory.theorem1_alignment_gap_lower_bound, figure=NAME,
            quantity=f"slope of group-u gap vs epsilon, {label}, eta = {eta_u:g}",
            prediction="> 0 (gap grows with diversity)", kind="lower_bound", predicted=0.0,
            note=f"epsilon in [{eps_x.min():.3g}, {eps_x.max():.3g}]").evaluate_fit(fit))
    small = angles <= SMALL_EPS_MAX_ANGLE
    Ys = _matrix(sub, "gap_pop", angles[small], "angle_deg")
    sfit = theory.fit_loglog_slope(eps_x[small], Ys, seed=0)
    full_fit = theory.fit_loglog_slope(eps_x, _matrix(sub, "gap_pop", angles, "angle_deg"), seed=0)
    range_note = (f"angles <= {SMALL_EPS_MAX_ANGLE:g} deg (epsilon <= {eps_x[small].max():.3g}); "
                  f"full-range slope {full_fit.slope:.3f}")
    claims.append(theory.Claim.from_bound(
        theory.theorem1_alignment_gap_lower_bound, figure=NAME,
        quantity=f"exponent of population-phi* gap in epsilon (small epsilon), eta = {eta_u:g}",
        prediction="1 (Theorem 1 as written: gap ~ epsilon (1-eta))", kind="value",
        predicted=1.0, atol=theory.DEFAULT_EXPONENT_TOL,
        note=f"{range_note}; {exp_note}").evaluate_fit(sfit))
    claims.append(theory.Claim.from_bound(
        theory.alignment_gap_quadratic_approx, figure=NAME,
        quantity=f"exponent of population-phi* gap in epsilon (small epsilon), eta = {eta_u:g}",
        prediction="2 (local expansion Var/(2 beta), squared reading of Theorem 1)", kind="value",
        predicted=2.0, atol=theory.DEFAULT_EXPONENT_TOL, note=range_note).evaluate_fit(sfit))

    # ---- gap >= Theorem 1 bound, Lemma 1, at every grid point -------------------------------
    thm = theory.Claim.from_bound(
        theory.theorem1_alignment_gap_lower_bound, figure=NAME, quantity="",
        prediction="", kind="lower_bound", predicted=1.0)
    for key, bound_col, reading in (("pop", "thm1_bound", "as written (exponent 1, beta^2)"),
                                    ("pooled", "thm1_bound", "as written (exponent 1, beta^2)"),
                                    ("pop", "thm1_bound_sq", "squared reading (exponent 2)")):
        est, lo, hi, where = _min_ratio(df, f"gap_{key}", bound_col, angles, etas)
        claims.append(replace(
            thm, quantity=f"min over grid of gap / Theorem 1 bound, {key} reward",
            prediction=f">= 1 ({reading}; constant 64, L_pi = 2D, lambda_psi, D unverified)",
        ).evaluate(est, lo, hi, note=f"min of the replicate-mean ratio over {len(angles)}x"
                   f"{len(etas)} grid, attained at {where}; bootstrap over replicates; "
                   f"{exp_note}"))
    pairs = [(f"gap_pop_b{i}", f"thm1_bound_b{i}", f"beta {b:g}") for i, b in enumerate(BETA_SCAN)]
    for scope, part in (("whole grid", df), (f"eta = {eta_u:g} only", sub)):
        est, lo, hi, where = _min_ratio_multi(part, pairs)
        claims.append(replace(
            thm, quantity=f"min over {scope} and beta of gap / Theorem 1 bound, pop reward",
            prediction=">= 1 (as written, beta^2 in the denominator; constants unverified)",
        ).evaluate(est, lo, hi, note=f"beta in {list(BETA_SCAN)}; attained at {where}; "
                   f"bootstrap over replicates; {exp_note}"))
    est, lo, hi, where = _min_ratio(df, "mismatch_pop", "lemma1_bound", angles, etas)
    claims.append(theory.Claim.from_bound(
        theory.lemma1_reward_mismatch_lower_bound, figure=NAME,
        quantity="min over grid of ||phi* - theta_u|| / Lemma 1 bound",
        prediction=">= 1 (||phi* - theta_u|| >= epsilon (1-eta) / (4D), D = max ||phi||)",
        kind="lower_bound", predicted=1.0).evaluate(
            est, lo, hi, note=f"attained at {where}; bootstrap over replicates"))

    # ---- gap vs eta at the middle angle -----------------------------------------------------
    sub_e = df[df["angle_deg"] == angle_mid]
    for key, label in (("pooled", "pooled BT-MLE (as trained)"), ("pop", "population phi*")):
        Y = _matrix(sub_e, f"gap_{key}", etas, "eta")
        fit = theory.fit_loglog_slope(etas, Y, seed=0)
        claims.append(theory.Claim.from_bound(
            theory.theorem1_alignment_gap_lower_bound, figure=NAME,
            quantity=f"slope of group-u gap vs eta, {label}, angle = {angle_mid:g} deg",
            prediction="< 0 (gap shrinks as the minority becomes the majority)",
            kind="upper_bound", predicted=0.0,
            note=f"eta in [{etas.min():g}, {etas.max():g}]").evaluate_fit(fit))
    # exponent in (1 - eta): in the local regime (smallest angle), where the expansion applies
    slopes_1m = {}
    for a in angles:
        Y1 = _matrix(df[df["angle_deg"] == a], "gap_pop", 1.0 - etas, "eta_c", src="eta",
                     transform=lambda e: 1.0 - e)
        slopes_1m[a] = theory.fit_loglog_slope(1.0 - etas, Y1, seed=0)
    fit1 = slopes_1m[angles[0]]
    other = ", ".join(f"{a:g} deg: {f.slope:.2f}" for a, f in slopes_1m.items())
    for pred, fn, reading in ((1.0, theory.theorem1_alignment_gap_lower_bound, "as written"),
                              (2.0, theory.alignment_gap_quadratic_approx, "squared reading")):
        claims.append(theory.Claim.from_bound(
            fn, figure=NAME,
            quantity=f"exponent of population-phi* gap in (1 - eta), angle = {angles[0]:g} deg",
            prediction=f"{pred:g} ({reading})", kind="value", predicted=pred,
            atol=theory.DEFAULT_EXPONENT_TOL,
            note="; ".join(x for x in (f"slope at every angle: {other}",
                                       exp_note if pred == 1.0 else "") if x),
        ).evaluate_fit(fit1))

    # ---- figure -----------------------------------------------------------------------------
    fig, axes = style.new_figure(ncols=4, width=4.4)
    ax_e, ax_n, ax_l, ax_b = axes[0]
    rows = []
    colours = {"pooled": "C0", "pop": "C1", "util": "C2"}
    labels = {"pooled": "pooled BT-MLE", "pop": "population phi*", "util": "utilitarian reward"}
    for key in ("pooled", "pop", "util"):
        Y = _matrix(sub, f"gap_{key}", angles, "angle_deg")
        m = Y.mean(axis=0)
        ax_e.loglog(eps_x, m, "o-" if key != "util" else "s:", color=colours[key], label=labels[key])
        ax_e.fill_between(eps_x, np.quantile(Y, 0.1, axis=0), np.quantile(Y, 0.9, axis=0),
                          color=colours[key], alpha=0.15)
        for i, a in enumerate(angles):
            rows.append(_row("gap_vs_epsilon", key, eta_u, a, eps_x[i], Y[:, i]))
    b1 = sub.groupby("angle_deg")["thm1_bound"].mean().reindex(angles).to_numpy()
    b2 = sub.groupby("angle_deg")["thm1_bound_sq"].mean().reindex(angles).to_numpy()
    ax_e.loglog(eps_x, b1, "k--", label=f"Thm 1 as written ({style.UNVERIFIED}; exponent doubtful)")
    ax_e.loglog(eps_x, b2, "k:", label=f"Thm 1 squared reading ({style.UNVERIFIED})")
    for i, a in enumerate(angles):
        rows.append(_row("gap_vs_epsilon", "thm1_bound", eta_u, a, eps_x[i], [b1[i]]))
        rows.append(_row("gap_vs_epsilon", "thm1_bound_sq", eta_u, a, eps_x[i], [b2[i]]))
    ax_e.set(xlabel="diversity epsilon = TV(p_u, p_k)", ylabel="alignment gap of group u",
             title=f"gap vs epsilon (eta_u = {eta_u:g}); fitted exponent {sfit.slope:.2f} "
                   f"[{sfit.ci_low:.2f}, {sfit.ci_high:.2f}]")
    ax_e.title.set_fontsize(8)
    from matplotlib.ticker import NullFormatter

    ax_e.xaxis.set_minor_formatter(NullFormatter())
    ax_e.legend(fontsize=6)

    show_angles = [a for a in (angles[0], angle_mid, angles[-1])]
    for j, a in enumerate(dict.fromkeys(show_angles)):
        s = df[df["angle_deg"] == a]
        for key, ls in (("pooled", "o-"), ("pop", "s--")):
            Y = _matrix(s, f"gap_{key}", etas, "eta")
            m = Y.mean(axis=0)
            ax_n.semilogy(etas, m, ls, color=f"C{j + 3}",
                          label=f"{labels[key]}, angle {a:g} deg")
            eps_a = s.groupby("eta")["epsilon"].mean().reindex(etas).to_numpy()
            for i, e in enumerate(etas):
                rows.append(_row("gap_vs_eta", key, e, a, eps_a[i], Y[:, i]))
        bb = s.groupby("eta")["thm1_bound"].mean().reindex(etas).to_numpy()
        ax_n.semilogy(etas, bb, ":", color=f"C{j + 3}")
        for i, e in enumerate(etas):
            rows.append(_row("gap_vs_eta", "thm1_bound", e, a, np.nan, [bb[i]]))
    ax_n.plot([], [], "k:", label=f"Thm 1 as written ({style.UNVERIFIED})")
    ax_n.set(xlabel="proportion eta of group u", ylabel="alignment gap of group u",
             title="gap vs eta (group u: minority -> majority)")
    ax_n.title.set_fontsize(8)
    ax_n.legend(fontsize=5)

    g = df.groupby(["angle_deg", "eta"])[["mismatch_pop", "lemma1_bound", "epsilon"]].mean()
    ax_l.loglog(g["lemma1_bound"], g["mismatch_pop"], "o", ms=3, color="C1",
                label="||phi* - theta_u|| per grid point")
    lim = np.array([g["lemma1_bound"].min(), g["lemma1_bound"].max()])
    ax_l.loglog(lim, lim, "k--", label=f"Lemma 1 bound (y = x; {style.UNVERIFIED})")
    for (a, e), r in g.iterrows():
        rows.append({"panel": "lemma1", "series": "mismatch_pop", "eta": e, "angle_deg": a,
                     "epsilon": r["epsilon"], "mean": r["mismatch_pop"], "q10": np.nan,
                     "q90": np.nan, "bound": r["lemma1_bound"], "n_seeds": np.nan,
                     "beta": np.nan})
    ax_l.set(xlabel="epsilon (1 - eta) / (4 D)", ylabel="||phi* - theta_u||",
             title="Lemma 1: reward mismatch (above the line = holds)")
    ax_l.title.set_fontsize(8)
    ax_l.legend(fontsize=6)
    betas = np.array(BETA_SCAN)
    for j, a in enumerate(dict.fromkeys(show_angles)):
        s = sub[sub["angle_deg"] == a]
        G = np.column_stack([_matrix(s, f"gap_pop_b{i}", [a], "angle_deg")[:, 0]
                             for i in range(len(betas))])
        Bd = np.column_stack([_matrix(s, f"thm1_bound_b{i}", [a], "angle_deg")[:, 0]
                              for i in range(len(betas))])
        ax_b.loglog(betas, G.mean(axis=0), "o-", color=f"C{j + 3}",
                    label=f"phi* gap, angle {a:g} deg")
        ax_b.loglog(betas, Bd.mean(axis=0), "--", color=f"C{j + 3}")
        for i, b in enumerate(betas):
            r = _row("gap_vs_beta", "pop", eta_u, a, s["epsilon"].mean(), G[:, i])
            r.update(beta=b, bound=float(Bd[:, i].mean()))
            rows.append(r)
    ax_b.plot([], [], "k--", label=f"Thm 1 as written, beta^-2 ({style.UNVERIFIED})")
    ax_b.set(xlabel="KL coefficient beta", ylabel="alignment gap of group u",
             title=f"gap vs beta (population phi*, eta_u = {eta_u:g})")
    ax_b.title.set_fontsize(8)
    ax_b.legend(fontsize=6)
    points = pd.DataFrame(rows)
    points["beta"] = points["beta"].fillna(float(df["beta"].iloc[0]))
    style.save(fig, out_dir, NAME, points)
    return claims


def _row(panel, series, eta, angle, eps, values):
    v = np.asarray(values, dtype=float)
    return {"panel": panel, "series": series, "eta": eta, "angle_deg": angle, "epsilon": eps,
            "mean": float(v.mean()), "q10": float(np.quantile(v, 0.1)),
            "q90": float(np.quantile(v, 0.9)), "bound": np.nan, "n_seeds": int(v.size),
            "beta": np.nan}


def _min_ratio(df, value, bound, angles=None, etas=None):
    """min over grid points of the replicate-mean of value / bound, with a bootstrap CI."""
    return _min_ratio_multi(df, [(value, bound, "")])


def _min_ratio_multi(df, pairs):
    """As :func:`_min_ratio`, the min also running over several (value, bound, label) pairs."""
    mats, where = [], []
    for value, bound, label in pairs:
        d = df.assign(_ratio=df[value] / df[bound])
        piv = d.pivot_table(index="replicate", columns=["angle_deg", "eta"], values="_ratio",
                            aggfunc="first").dropna()
        mats.append(piv.to_numpy(dtype=float))
        where += [f"angle {a:g} deg, eta {e:g}" + (f", {label}" if label else "")
                  for a, e in piv.columns]
    R = np.concatenate(mats, axis=1)
    stat = lambda a, axis: np.min(np.mean(a, axis=axis), axis=-1)
    est, lo, hi = theory.bootstrap_ci(R, statistic=stat, seed=0)
    return est, lo, hi, where[int(np.argmin(R.mean(axis=0)))]


def _matrix(sub, value, grid, axis, src=None, transform=None):
    """Replicates × grid matrix of ``value`` (rows: replicate index)."""
    if src is not None:
        sub = sub.assign(**{axis: transform(sub[src])})
    piv = sub.pivot_table(index="replicate", columns=axis, values=value, aggfunc="first")
    piv = piv.reindex(columns=grid)
    return piv.dropna().to_numpy(dtype=float)


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig4_impossibility"))
