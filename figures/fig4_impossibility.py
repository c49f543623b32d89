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
  comparison law (soft labels ``eta P_u + (1 - eta) P_k``;
  :func:`simulator.estimators.population_limit.population_bt_fit`): the reward of Lemma 1 /
  Theorem 1, no estimation error;
* ``util`` — the proportion-weighted (utilitarian) reward ``eta theta_u + (1 - eta) theta_k``.

Diversity ``epsilon = TV(p*_u, p*_k)`` is exact on the environment's comparison law
(``fairness.diversity_epsilon``; for two groups it is the pairwise TV).

Claims checked (all theory from ``theory.maxmin``: secondary-summary formulas, unverified)
------------------------------------------------------------------------------------------
* the gap grows with epsilon (log-log slope > 0), for ``pooled`` and ``pop``: Theorem 1's
  direction as the summaries state it (``theory.THEOREM1_DIRECTIONS``), not its bound;
* the exponent of the gap in epsilon (small-epsilon part of the grid): at most 1 + 0.1 if
  Theorem 1 is right as written (a lower bound linear in epsilon caps the exponent at 1), 2 by
  the local expansion ``Var / (2 beta)`` (maxmin.md §2.4 [D]) — both rows, honestly;
* gap >= Theorem 1's lower bound (as written, constants 64 / L_pi / D / lambda_psi unverified) at
  every grid point, for ``pop`` and ``pooled`` (the theorem is about ``phi*``; the pooled fit adds
  estimation error); also the squared reading, which cites the notes' reconstruction
  (``theory.THEOREM1_SQUARED``), not the paper;
* Lemma 1: ``||phi* - theta_u|| >= epsilon (1 - eta) / (4 D)`` at every grid point;
* the gap shrinks as eta grows (the minority becomes the majority): slope of gap vs eta < 0;
  and the exponent of the ``pop`` gap in ``(1 - eta)`` (at most 1 + 0.1 as written, 2 squared
  reading).

Conventions for Theorem 1's constants (not fixed by the notes): ``D = max ||phi(x, a)||``;
``lambda_psi`` = smallest eigenvalue of the exact comparison design ``E[X X^T]``,
``X = phi(x, a1) - phi(x, a0)``, pairs from ``pi_ref`` (``FiniteArmEnv.design_covariance``); ``L_pi = 2 D`` (Lipschitz constant of
``log pi_w`` in the natural parameter ``w`` of a log-linear policy).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import PooledMLE, population_bt_fit
from simulator.experiment import draw_data, fit_estimators, make_policy
from simulator.fairness import alignment_gaps, diversity_epsilon

NAME = "fig4"
TITLE = "Single-reward impossibility: alignment gap vs diversity and proportion"
LAM = 1e-4
BETA_SCAN = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # KL strengths at which the phi* gap is also computed
EXPANSION_RTOL = 0.1  # the exponent rows' regime: the local expansion within 10% of the exact gap
REGIME_SMALL_EPS = ("small epsilon: the local expansion Var/(2 beta) within 10% of the exact gap "
                    "(mean over replicates, per grid point)")
EXP1_PREDICTION = ("<= 1 + 0.1 (Theorem 1 as written, gap >= c epsilon (1-eta): a gap vanishing "
                   "faster than epsilon would break it as epsilon -> 0)")
EXP1_PREDICTION_ETA = ("<= 1 + 0.1 (Theorem 1 as written, gap >= c epsilon (1-eta): a gap "
                       "vanishing faster than 1 - eta would break it as eta -> 1)")
FITTED = (("pooled", "pooled BT-MLE (as trained)"), ("pop", "population phi*"))
LABELS = {"pooled": "pooled BT-MLE", "pop": "population phi*", "util": "utilitarian reward"}
COLOURS = {"pooled": "C0", "pop": "C1", "util": "C2"}
EXP_NOTE = ("theory exponent unverified (THEOREM1_EXPONENT_VERIFIED = "
            f"{theory.THEOREM1_EXPONENT_VERIFIED})")


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
    # common random numbers: the same env / parameters / data stream per replicate on the grid
    return {"sweep": {"name": NAME, "task": "figures.fig4_impossibility:cell", "seed": 4,
                      "replicates": reps, "seed_ignore": ["angle_deg", "eta"]},
            **params, "axes": axes}


def cell(params: dict, seed) -> dict:
    """One grid point, one replicate: the gap of group u (group 0) under three single rewards."""
    s_pop, s_env, s_data = seed.spawn(3)
    beta, eta = float(params["beta"]), float(params["eta"])
    pop = Population.diverse(int(params["d"]), math.radians(float(params["angle_deg"])),
                             proportions=(eta, 1.0 - eta), seed=s_pop,
                             signal=float(params["signal"]))
    env = pop.arm_env(int(params["n_contexts"]), int(params["n_actions"]), s_env)
    theta = pop.theta  # (2, d); row 0 = group u
    eps = float(diversity_epsilon(env, theta, pop.proportions)[0])
    # RLHF as trained (pooled BT-MLE on n comparisons) and its population limit phi*
    draw = draw_data(pop, int(params["n"]), s_data, env=env)
    pooled = fit_estimators({"pooled": PooledMLE(lam=LAM)}, draw)["pooled"][0]
    limit = population_bt_fit(env, theta, pop.proportions)
    phi_star = limit.theta
    policies = {"pooled": make_policy(env, pooled.coef_, beta, "gibbs")[0],
                "pop": make_policy(env, phi_star, beta, "gibbs")[0],
                "util": make_policy(env, theta, beta, "utilitarian",
                                    proportions=pop.proportions)[0]}
    out = {"epsilon": eps}
    for key, pi in policies.items():
        gaps = alignment_gaps(env, pi, theta, beta)
        out[f"gap_{key}"] = float(gaps[0])
        out[f"gap_other_{key}"] = float(gaps[1])
    out["mismatch_pooled"] = float(np.linalg.norm(pooled.coef_ - theta[0]))
    out["mismatch_pop"] = float(np.linalg.norm(phi_star - theta[0]))
    out["quad_approx_pop"] = float(theory.alignment_gap_quadratic_approx(
        env.reward_variance(policies["pop"], phi_star - theta[0]), beta))
    consts = _theorem_constants(env)
    out.update(consts, **_bounds(eps, eta, beta, consts),
               converged=bool(pooled.converged_ and limit.converged))
    # KL-strength scan for phi* (no refit: phi* does not depend on beta); Theorem 1 has beta^2
    for i, b in enumerate(BETA_SCAN):
        # "direct" (F_u(pi*_u) - F_u(pi)): the KL form overflows to inf at small beta, where
        # pi*_u underflows to exactly 0 on some arms that pi still plays
        out[f"gap_pop_b{i}"] = float(alignment_gaps(env, make_policy(env, phi_star, b, "gibbs")[0],
                                                    theta, b, method="direct")[0])
        out[f"thm1_bound_b{i}"] = float(theory.theorem1_alignment_gap_lower_bound(
            eps, eta, beta=b, **consts))
    return out


def _theorem_constants(env) -> dict:
    """Theorem 1's constants by the conventions of the module docstring."""
    D = float(np.linalg.norm(env.features, axis=-1).max())
    lam_psi = float(np.linalg.eigvalsh(env.design_covariance())[0])
    return {"D": D, "lambda_psi": lam_psi, "L_pi": 2.0 * D}


def _bounds(eps, eta, beta, consts) -> dict:
    """Lemma 1's and Theorem 1's lower bounds (as written and in the squared reading)."""
    th1 = theory.theorem1_alignment_gap_lower_bound
    return {"lemma1_bound": float(theory.lemma1_reward_mismatch_lower_bound(eps, eta,
                                                                            consts["D"])),
            "thm1_bound": float(th1(eps, eta, beta=beta, **consts)),
            "thm1_bound_sq": float(th1(eps, eta, beta=beta, exponent=2.0, **consts))}


# ---------------------------------------------------------------------------------- analysis
def _grid(df):
    """angles, etas, the minority proportion eta_u (smallest eta) and the angle nearest 90."""
    angles = np.array(sorted(df["angle_deg"].unique()), dtype=float)
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    return angles, etas, etas[0], angles[np.argmin(np.abs(angles - 90.0))]


def _epsilons(df):
    """Mean epsilon per angle at eta_u (the x axis of the gap-vs-epsilon panel)."""
    angles, _, eta_u, _ = _grid(df)
    sub = df[df["eta"] == eta_u]
    return sub.groupby("angle_deg")["epsilon"].mean().reindex(angles).to_numpy()


def _expansion_inside(sub, axis, grid) -> np.ndarray:
    """Per grid value of ``axis``: whether the local expansion (``quad_approx_pop``) is within
    :data:`EXPANSION_RTOL` of the exact population gap, on the replicate mean."""
    ratio = (sub["quad_approx_pop"] / sub["gap_pop"]).groupby(sub[axis]).mean()
    return np.abs(ratio.reindex(grid).to_numpy(float) - 1.0) <= EXPANSION_RTOL


def _small_eps_fit(df):
    """The phi* gap against epsilon at the smallest eta: (epsilon grid, replicates x grid
    matrix, the small-epsilon points, the slope fitted on them, the slope on all)."""
    angles, _, eta_u, _ = _grid(df)
    sub, eps_x = df[df["eta"] == eta_u], _epsilons(df)
    inside = _expansion_inside(sub, "angle_deg", angles)
    Y = style.replicate_matrix(sub, "gap_pop", angles, "angle_deg")
    use = inside if inside.sum() >= theory.MIN_REGIME_POINTS else np.ones_like(inside)
    return (eps_x, Y, inside, theory.fit_loglog_slope(eps_x[use], Y[:, use], seed=0),
            theory.fit_loglog_slope(eps_x, Y, seed=0))


def claims(df) -> list:
    """The rows of the theory-check table (module docstring)."""
    return _epsilon_claims(df) + _bound_claims(df) + _eta_claims(df)


def _epsilon_claims(df) -> list:
    """Gap vs epsilon at the smallest eta: sign of the slope, exponent on small epsilon."""
    angles, _, eta_u, _ = _grid(df)
    sub, eps_x = df[df["eta"] == eta_u], _epsilons(df)
    out = []
    for key, label in FITTED:
        fit = theory.fit_loglog_slope(
            eps_x, style.replicate_matrix(sub, f"gap_{key}", angles, "angle_deg"), seed=0)
        out.append(theory.Claim.from_source(
            theory.THEOREM1_DIRECTIONS, figure=NAME,
            quantity=f"slope of group-u gap vs epsilon, {label}, eta = {eta_u:g}",
            prediction="> 0 (gap grows with diversity)", kind="lower_bound", predicted=0.0,
            note=f"epsilon in [{eps_x.min():.3g}, {eps_x.max():.3g}]").evaluate_fit(fit))
    eps_x, Y, inside, _, full_fit = _small_eps_fit(df)
    range_note = f"full-range slope {full_fit.slope:.3f}"
    quantity = f"exponent of population-phi* gap in epsilon (small epsilon), eta = {eta_u:g}"
    out.append(theory.Claim.from_bound(
        theory.theorem1_alignment_gap_lower_bound, figure=NAME, quantity=quantity,
        prediction=EXP1_PREDICTION, kind="upper_bound",
        predicted=1.0 + theory.DEFAULT_EXPONENT_TOL, regime=REGIME_SMALL_EPS,
        note=f"{range_note}; {EXP_NOTE}").evaluate_slope(eps_x, Y, inside=inside))
    out.append(theory.Claim.from_bound(
        theory.alignment_gap_quadratic_approx, figure=NAME, quantity=quantity,
        prediction="2 (local expansion Var/(2 beta), squared reading of Theorem 1)", kind="value",
        predicted=2.0, atol=theory.DEFAULT_EXPONENT_TOL, regime=REGIME_SMALL_EPS,
        note=f"{range_note}; the mismatch ||phi* - theta_u|| is itself ~ epsilon at small "
             f"epsilon").evaluate_slope(eps_x, Y, inside=inside))
    return out


def _bound_claims(df) -> list:
    """gap >= Theorem 1's bound and ||phi* - theta_u|| >= Lemma 1's, at every grid point."""
    angles, etas, eta_u, _ = _grid(df)
    thm = theory.Claim.from_bound(
        theory.theorem1_alignment_gap_lower_bound, figure=NAME, quantity="",
        prediction="", kind="lower_bound", predicted=1.0)
    thm_sq = theory.Claim.from_source(theory.THEOREM1_SQUARED, figure=NAME, quantity="",
                                      prediction="", kind="lower_bound", predicted=1.0)
    out = []
    for key, bound_col, reading, claim in (
            ("pop", "thm1_bound", "as written (exponent 1, beta^2)", thm),
            ("pooled", "thm1_bound", "as written (exponent 1, beta^2)",
             replace(thm, note=thm.note + "; Theorem 1 is about the population fit phi*: the "
                                          "pooled finite-n fit adds its estimation error")),
            ("pop", "thm1_bound_sq", "squared reading (exponent 2)", thm_sq)):
        est, lo, hi, where = _min_ratio(df, [(f"gap_{key}", bound_col, "")])
        out.append(replace(
            claim, quantity=f"min over grid of gap / Theorem 1 bound, {key} reward",
            prediction=f">= 1 ({reading}; constant 64, L_pi = 2D, lambda_psi, D unverified)",
        ).evaluate(est, lo, hi, note=f"min of the replicate-mean ratio over {len(angles)}x"
                   f"{len(etas)} grid, attained at {where}; bootstrap over replicates; "
                   f"{EXP_NOTE}"))
    pairs = [(f"gap_pop_b{i}", f"thm1_bound_b{i}", f"beta {b:g}") for i, b in enumerate(BETA_SCAN)]
    for scope, part in (("whole grid", df), (f"eta = {eta_u:g} only", df[df["eta"] == eta_u])):
        est, lo, hi, where = _min_ratio(part, pairs)
        out.append(replace(
            thm, quantity=f"min over {scope} and beta of gap / Theorem 1 bound, pop reward",
            prediction=">= 1 (as written, beta^2 in the denominator; constants unverified)",
        ).evaluate(est, lo, hi, note=f"beta in {list(BETA_SCAN)}; attained at {where}; "
                   f"bootstrap over replicates; {EXP_NOTE}"))
    est, lo, hi, where = _min_ratio(df, [("mismatch_pop", "lemma1_bound", "")])
    out.append(theory.Claim.from_bound(
        theory.lemma1_reward_mismatch_lower_bound, figure=NAME,
        quantity="min over grid of ||phi* - theta_u|| / Lemma 1 bound",
        prediction=">= 1 (||phi* - theta_u|| >= epsilon (1-eta) / (4D), D = max ||phi||)",
        kind="lower_bound", predicted=1.0).evaluate(
            est, lo, hi, note=f"attained at {where}; bootstrap over replicates"))
    return out


def _eta_claims(df) -> list:
    """Gap vs eta at the middle angle (sign) and the exponent in (1 - eta) (smallest angle)."""
    angles, etas, _, angle_mid = _grid(df)
    sub_e = df[df["angle_deg"] == angle_mid]
    out = []
    for key, label in FITTED:
        fit = theory.fit_loglog_slope(
            etas, style.replicate_matrix(sub_e, f"gap_{key}", etas, "eta"), seed=0)
        out.append(theory.Claim.from_source(
            theory.THEOREM1_DIRECTIONS, figure=NAME,
            quantity=f"slope of group-u gap vs eta, {label}, angle = {angle_mid:g} deg",
            prediction="< 0 (gap shrinks as the minority becomes the majority)",
            kind="upper_bound", predicted=0.0,
            note=f"eta in [{etas.min():g}, {etas.max():g}]").evaluate_fit(fit))
    # exponent in (1 - eta): at the smallest angle, on the eta where the expansion applies
    def by_eta(a):
        return style.replicate_matrix(df[df["angle_deg"] == a], "gap_pop", 1.0 - etas, "eta_c",
                                      src="eta", transform=lambda e: 1.0 - e)
    other = ", ".join(f"{a:g} deg: {theory.fit_loglog_slope(1.0 - etas, by_eta(a), seed=0).slope:.2f}"
                      for a in angles)
    small = df[df["angle_deg"] == angles[0]]
    inside = _expansion_inside(small, "eta", etas)
    for pred, fn, reading in ((1.0, theory.theorem1_alignment_gap_lower_bound, "as written"),
                              (2.0, theory.alignment_gap_quadratic_approx, "squared reading")):
        # a lower bound linear in (1 - eta) only caps the exponent at 1; the expansion fixes it
        if pred == 1.0:
            kind = {"kind": "upper_bound", "predicted": 1.0 + theory.DEFAULT_EXPONENT_TOL,
                    "prediction": EXP1_PREDICTION_ETA}
        else:
            kind = {"kind": "value", "predicted": pred, "atol": theory.DEFAULT_EXPONENT_TOL,
                    "prediction": f"{pred:g} ({reading})"}
        out.append(theory.Claim.from_bound(
            fn, figure=NAME,
            quantity=f"exponent of population-phi* gap in (1 - eta), angle = {angles[0]:g} deg",
            regime=REGIME_SMALL_EPS, **kind,
            note="; ".join(x for x in (f"slope at every angle: {other}",
                                       EXP_NOTE if pred == 1.0 else "") if x),
        ).evaluate_slope(1.0 - etas, by_eta(angles[0]), inside=inside))
    return out


def _min_ratio(df, pairs):
    """min over grid points (and over the (value, bound, label) ``pairs``) of the replicate-mean
    of value / bound, with a bootstrap CI over replicates, and where the min is attained."""
    mats, where = [], []
    for value, bound, label in pairs:
        d = df.assign(_ratio=df[value] / df[bound])
        piv = d.pivot_table(index="replicate", columns=["angle_deg", "eta"], values="_ratio",
                            aggfunc="first").dropna()
        mats.append(piv.to_numpy(dtype=float))
        where += [f"angle {a:g} deg, eta {e:g}" + (f", {label}" if label else "")
                  for a, e in piv.columns]
    R = np.concatenate(mats, axis=1)
    est, lo, hi = theory.bootstrap_ci(R, statistic=_min_of_means, seed=0)
    return est, lo, hi, where[int(np.argmin(R.mean(axis=0)))]


def _min_of_means(a, axis):
    """Bootstrap statistic: the min over grid points (last axis) of the replicate means."""
    return np.min(np.mean(a, axis=axis), axis=-1)


# ------------------------------------------------------------------------------------ points
def points(df):
    """Every plotted point: per panel and series the replicate mean, 10% / 90% quantiles and
    bound (``fig4.csv``)."""
    import pandas as pd

    rows = _epsilon_points(df) + _eta_points(df) + _lemma1_points(df) + _beta_points(df)
    pts = pd.DataFrame(rows)
    pts["beta"] = pts["beta"].fillna(float(df["beta"].iloc[0]))
    return pts


def _row(panel, series, eta, angle, eps, values):
    v = np.asarray(values, dtype=float)
    return {"panel": panel, "series": series, "eta": eta, "angle_deg": angle, "epsilon": eps,
            "mean": float(v.mean()), "q10": float(np.quantile(v, 0.1)),
            "q90": float(np.quantile(v, 0.9)), "bound": np.nan, "n_seeds": int(v.size),
            "beta": np.nan}


def _show_angles(df):
    angles, _, _, angle_mid = _grid(df)
    return list(dict.fromkeys((angles[0], angle_mid, angles[-1])))


def _epsilon_points(df) -> list:
    angles, _, eta_u, _ = _grid(df)
    sub, eps_x = df[df["eta"] == eta_u], _epsilons(df)
    rows = []
    for key in ("pooled", "pop", "util"):
        Y = style.replicate_matrix(sub, f"gap_{key}", angles, "angle_deg")
        rows += [_row("gap_vs_epsilon", key, eta_u, a, eps_x[i], Y[:, i])
                 for i, a in enumerate(angles)]
    b1 = sub.groupby("angle_deg")["thm1_bound"].mean().reindex(angles).to_numpy()
    b2 = sub.groupby("angle_deg")["thm1_bound_sq"].mean().reindex(angles).to_numpy()
    for i, a in enumerate(angles):
        rows.append(_row("gap_vs_epsilon", "thm1_bound", eta_u, a, eps_x[i], [b1[i]]))
        rows.append(_row("gap_vs_epsilon", "thm1_bound_sq", eta_u, a, eps_x[i], [b2[i]]))
    return rows


def _eta_points(df) -> list:
    _, etas, _, _ = _grid(df)
    rows = []
    for a in _show_angles(df):
        s = df[df["angle_deg"] == a]
        eps_a = s.groupby("eta")["epsilon"].mean().reindex(etas).to_numpy()
        for key, _ in FITTED:
            Y = style.replicate_matrix(s, f"gap_{key}", etas, "eta")
            rows += [_row("gap_vs_eta", key, e, a, eps_a[i], Y[:, i]) for i, e in enumerate(etas)]
        bb = s.groupby("eta")["thm1_bound"].mean().reindex(etas).to_numpy()
        rows += [_row("gap_vs_eta", "thm1_bound", e, a, np.nan, [bb[i]])
                 for i, e in enumerate(etas)]
    return rows


def _lemma1_points(df) -> list:
    g = df.groupby(["angle_deg", "eta"])[["mismatch_pop", "lemma1_bound", "epsilon"]].mean()
    return [{"panel": "lemma1", "series": "mismatch_pop", "eta": e, "angle_deg": a,
             "epsilon": r["epsilon"], "mean": r["mismatch_pop"], "q10": np.nan, "q90": np.nan,
             "bound": r["lemma1_bound"], "n_seeds": np.nan, "beta": np.nan}
            for (a, e), r in g.iterrows()]


def _beta_points(df) -> list:
    _, _, eta_u, _ = _grid(df)
    sub = df[df["eta"] == eta_u]
    rows = []
    for a in _show_angles(df):
        s = sub[sub["angle_deg"] == a]
        G = np.column_stack([style.replicate_matrix(s, f"gap_pop_b{i}", [a], "angle_deg")[:, 0]
                             for i in range(len(BETA_SCAN))])
        Bd = np.column_stack([style.replicate_matrix(s, f"thm1_bound_b{i}", [a], "angle_deg")
                              [:, 0] for i in range(len(BETA_SCAN))])
        for i, b in enumerate(BETA_SCAN):
            r = _row("gap_vs_beta", "pop", eta_u, a, s["epsilon"].mean(), G[:, i])
            r.update(beta=b, bound=float(Bd[:, i].mean()))
            rows.append(r)
    return rows


# -------------------------------------------------------------------------------------- plot
def plot(df, points):
    """Four panels drawn from ``points``: gap vs epsilon, gap vs eta, Lemma 1, gap vs beta."""
    fig, axes = style.new_figure(ncols=4, width=4.4)
    ax_e, ax_n, ax_l, ax_b = axes[0]
    _plot_epsilon(ax_e, df, points)
    _plot_eta(ax_n, points, _show_angles(df))
    lem = points[points["panel"] == "lemma1"]
    ax_l.loglog(lem["bound"], lem["mean"], "o", ms=3, color="C1",
                label="||phi* - theta_u|| per grid point")
    lim = np.array([lem["bound"].min(), lem["bound"].max()])
    ax_l.loglog(lim, lim, "k--", label=f"Lemma 1 bound (y = x; {style.UNVERIFIED})")
    ax_l.set(xlabel="epsilon (1 - eta) / (4 D)", ylabel="||phi* - theta_u||",
             title="Lemma 1: reward mismatch (above the line = holds)")
    for j, a in enumerate(_show_angles(df)):
        P = points[(points["panel"] == "gap_vs_beta") & (points["angle_deg"] == a)]
        ax_b.loglog(P["beta"], P["mean"], "o-", color=f"C{j + 3}",
                    label=f"phi* gap, angle {a:g} deg")
        ax_b.loglog(P["beta"], P["bound"], "--", color=f"C{j + 3}")
    ax_b.plot([], [], "k--", label=f"Thm 1 as written, beta^-2 ({style.UNVERIFIED})")
    ax_b.set(xlabel="KL coefficient beta", ylabel="alignment gap of group u",
             title=f"gap vs beta (population phi*, eta_u = {_grid(df)[2]:g})")
    for ax in (ax_l, ax_b):
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
    return fig


def _plot_epsilon(ax, df, points):
    from matplotlib.ticker import NullFormatter

    P = points[points["panel"] == "gap_vs_epsilon"]
    for key in ("pooled", "pop", "util"):
        s = P[P["series"] == key]
        ax.loglog(s["epsilon"], s["mean"], "o-" if key != "util" else "s:", color=COLOURS[key],
                  label=LABELS[key])
        ax.fill_between(s["epsilon"], s["q10"], s["q90"], color=COLOURS[key], alpha=0.15)
    for series, ls, what in (("thm1_bound", "k--", "as written"),
                             ("thm1_bound_sq", "k:", "squared reading")):
        s = P[P["series"] == series]
        doubt = "; exponent doubtful" if series == "thm1_bound" else ""
        ax.loglog(s["epsilon"], s["mean"], ls, label=f"Thm 1 {what} ({style.UNVERIFIED}{doubt})")
    sfit = _small_eps_fit(df)[3]
    ax.set(xlabel="diversity epsilon = TV(p_u, p_k)", ylabel="alignment gap of group u",
           title=f"gap vs epsilon (eta_u = {_grid(df)[2]:g}); fitted exponent {sfit.slope:.2f} "
                 f"[{sfit.ci_low:.2f}, {sfit.ci_high:.2f}]")
    ax.title.set_fontsize(8)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=6)


def _plot_eta(ax, points, show_angles):
    P = points[points["panel"] == "gap_vs_eta"]
    for j, a in enumerate(show_angles):
        s = P[P["angle_deg"] == a]
        for key, ls in (("pooled", "o-"), ("pop", "s--")):
            k = s[s["series"] == key]
            ax.semilogy(k["eta"], k["mean"], ls, color=f"C{j + 3}",
                        label=f"{LABELS[key]}, angle {a:g} deg")
        b = s[s["series"] == "thm1_bound"]
        ax.semilogy(b["eta"], b["mean"], ":", color=f"C{j + 3}")
    ax.plot([], [], "k:", label=f"Thm 1 as written ({style.UNVERIFIED})")
    ax.set(xlabel="proportion eta of group u", ylabel="alignment gap of group u",
           title="gap vs eta (group u: minority -> majority)")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=5)


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig4_impossibility"))
