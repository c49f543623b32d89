"""Figure 3: the MaxMin policy under the TRUE rewards, built from estimated rewards.

Rewards are estimated by Separate per-group BT-MLEs (MaxMin-RLHF's reward step with known
groups), SharedRep (shared ``B``, simplex weights; SharedRep-RLHF) and one pooled BT-MLE
(single-reward RLHF). Each estimate is turned into a policy on a finite-arm environment by the
exact max-min objective (``maxmin_policy(..., "exact")``, MaxMin-RLHF §4.1) and by the pointwise
min (``"pointwise"``, what both official code bases optimise), and judged under the TRUE rewards:

* min-group utility ``min_u F_u(pi)`` and MaxMin suboptimality ``V* - min_u F_u(pi)``, ``V*`` the
  exact max-min value of the true rewards (``fairness.maxmin_suboptimality``), for both
  objectives (the pointwise policy is judged by the same egalitarian criterion);
* win rate against the gold policy per group (sharedrep.md §4, the SharedRep paper's metric; ties
  count 1/2): gold = the exact max-min policy of the true rewards for the exact objective, the
  true pointwise-min policy for the pointwise objective (the paper's gold);
* the minority's estimation error split into its parts inside and outside span(B)
  (``metrics.span_decomposition`` with the TRUE B).

Population: U = 5 groups, k = 2 shared traits, ``theta_u = B w_u``, group 0 the minority with
proportion ``eta``, the rest split equally over 4 groups, so U > k and the minority's weights are
spanned by the others' (``Population.traits_spanned_by_others``): the regime where SharedRep can
help. The gold policy does not depend on eta (max-min ignores proportions), so with common random
numbers across eta (``seed_ignore``) each replicate keeps its population and environment. Regimes:

* ``"binding"`` — planted free weights (``BINDING_W``): the minority ``w = signal (0, 1)`` and
  ``(1, 0)`` are the two extreme groups, the others dominate their mixtures; the minority is a
  binding group of the gold exact max-min solution (dual weight ``q*_min > 0``, recorded per cell);
* ``"nonbinding"`` — planted free weights (``NONBINDING_W``): the minority ``signal (0.85, 0.85)``
  dominates the two extreme groups' mixture, so ``q*_min = 0``: only its estimation error can make
  it (spuriously) binding;
* ``"random"`` (full size only) — ``Population.shared`` with simplex weights. With simplex weights
  every ``w_u`` lies in one affine plane, so at an interior max-min optimum ALL groups tie (the dual
  weights are not unique): "binding" is degenerate there, hence the planted regimes.

SharedRep uses ``weights="free"`` in the planted regimes (their weights are not on the simplex)
and ``"simplex"`` in the random regime.

Claims checked (SharedRep theory is reconstructed, not from the paper: ``theory.sharedrep``, [I])
------------------------------------------------------------------------------------------------
* minority reward error: SharedRep < Separate at the smallest eta (paired over replicates);
* MaxMin suboptimality: SharedRep < Separate at the smallest eta, exact and pointwise objectives,
  both regimes; minority win rate vs gold: SharedRep > Separate;
* Separate: the minority error falls like ``eta^-1/2`` and its MaxMin suboptimality decreases
  with eta;
* the single reward is worse than Separate at the largest eta (the impossibility).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import PooledMLE, SeparateMLE
from simulator.estimators.sharedrep import SharedRep
from simulator.fairness import win_rate
from simulator.metrics import span_decomposition
from simulator.policy import group_utilities, maxmin_policy
from simulator.population import random_orthonormal

NAME = "fig3"
TITLE = "MaxMin policy from estimated rewards: Separate vs SharedRep vs single reward"
LAM = 1.0  # ridge on the summed BT objective, the same for every estimator
ESTIMATORS = ("separate", "sharedrep", "pooled")
OBJECTIVES = ("exact", "pointwise")
# planted weights w_u / signal, group 0 = the minority
BINDING_W = ((0.0, 1.0), (1.0, 0.0), (0.9, 0.8), (0.8, 0.9), (1.0, 0.6))
NONBINDING_W = ((0.85, 0.85), (1.0, 0.0), (0.0, 1.0), (0.8, 0.9), (1.0, 0.6))
PLANTED = {"binding": BINDING_W, "nonbinding": NONBINDING_W}


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full" (paper-size)."""
    params = {"d": 32, "k": 2, "n": 3000, "n_contexts": 40, "n_actions": 8, "beta": 0.5,
              "signal": 2.0, "n_restarts": 1, "sr_tol": 1e-4}
    if size == "full":
        axes = {"regime": ["binding", "nonbinding", "random"],
                "eta": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]}
        params.update(n=6000, n_contexts=100, n_restarts=3, sr_tol=1e-6)
        reps = 30
    elif size == "quick":
        axes = {"regime": ["binding", "nonbinding"], "eta": [0.01, 0.02, 0.05, 0.1, 0.2]}
        reps = 8
    else:
        axes = {"regime": ["binding", "nonbinding"], "eta": [0.02, 0.2]}
        params.update(d=8, n=600, n_contexts=10, n_actions=4)
        reps = 3
    return {"name": NAME, "task": "figures.fig3_policy:cell", "seed": 3, "replicates": reps,
            "params": params, "axes": axes, "seed_ignore": ["eta"]}


def _population(params, seed):
    eta = float(params["eta"])
    props = [eta] + [(1.0 - eta) / 4.0] * 4
    d, k, signal = int(params["d"]), int(params["k"]), float(params["signal"])
    regime = params["regime"]
    if regime in PLANTED:
        if k != 2:
            raise ValueError(f"the {regime!r} regime plants k = 2 traits; got k = {k}")
        B = random_orthonormal(d, k, np.random.default_rng(seed))
        W = signal * np.array(PLANTED[regime], dtype=float).T
        return Population(B, W, props, name=regime, info={"signal": signal})
    if regime != "random":
        raise ValueError(f"regime must be 'binding', 'nonbinding' or 'random'; got {regime!r}")
    return Population.shared(d, k, props, seed=seed, weights="simplex", signal=signal)


def cell(params: dict, seed) -> dict:
    s_pop, s_env, s_data, s_est = seed.spawn(4)
    beta = float(params["beta"])
    pop = _population(params, s_pop)
    env = pop.arm_env(int(params["n_contexts"]), int(params["n_actions"]), s_env)
    theta = pop.theta
    u = pop.minority  # group 0
    data = pop.sample(int(params["n"]), seed=s_data, env=env, group_sampling="fixed")

    gold = {obj: maxmin_policy(env, theta, beta, obj, warn=False) for obj in OBJECTIVES}
    v_star = gold["exact"].value
    out = {"spanned": bool(pop.traits_spanned_by_others(u)),
           "n_minority": int(np.sum(data.group == u)),
           "gold_q_min": float(gold["exact"].weights[u]),
           "minority_binding": bool(gold["exact"].weights[u] > 1e-6),
           "gold_n_active": int(gold["exact"].active_groups.size),
           "gold_value": float(v_star),
           "gold_pw_subopt": float(v_star - group_utilities(env, gold["pointwise"].pi, theta,
                                                            beta).min()),
           "gold_certified": bool(gold["exact"].converged)}

    ests = {"separate": SeparateMLE(lam=LAM),
            "sharedrep": SharedRep(int(params["k"]),
                                   weights="simplex" if params["regime"] == "random" else "free",
                                   solver="altmin", lam=LAM,
                                   n_restarts=int(params["n_restarts"]),
                                   tol=float(params["sr_tol"]), seed=s_est),
            "pooled": PooledMLE(lam=LAM)}
    others = np.arange(pop.n_groups) != u
    for name, est in ests.items():
        est.fit(data)
        th = est.theta_
        split = span_decomposition(th, theta, pop.B)
        out[f"err_{name}_total"] = float(split["total"][u])
        out[f"err_{name}_inside"] = float(split["inside"][u])
        out[f"err_{name}_outside"] = float(split["outside"][u])
        out[f"err_{name}_others"] = float(split["total"][others].mean())
        for obj in OBJECTIVES:
            res = maxmin_policy(env, th, beta, obj, warn=False)
            pi = res.pi
            if obj == "exact":  # the minority's dual weight in the policy built from estimates
                out[f"q_min_{name}"] = float(res.weights[u])
            util = group_utilities(env, pi, theta, beta)
            wr = win_rate(env, pi, gold[obj].pi, theta)
            out[f"minu_{name}_{obj}"] = float(util.min())
            out[f"subopt_{name}_{obj}"] = float(v_star - util.min())
            out[f"util_min_{name}_{obj}"] = float(util[u])
            out[f"wr_min_{name}_{obj}"] = float(wr[u])
            out[f"wr_others_{name}_{obj}"] = float(wr[others].mean())
    if hasattr(ests["sharedrep"], "B_"):
        from simulator.metrics import sin_theta

        out["sharedrep_sin_theta"] = float(sin_theta(ests["sharedrep"].B_, pop.B))
    return out


cell.seed_ignore = ("eta",)  # common random numbers across eta: same B, W draw and env per replicate


# ---------------------------------------------------------------------------------- analysis
def analyse(df, out_dir) -> list:
    import pandas as pd

    regimes = [r for r in ("binding", "nonbinding", "random") if r in set(df["regime"])]
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    e0, e1 = etas[0], etas[-1]
    claims = []
    sr = theory.Claim.from_bound(theory.sharedrep_rate, figure=NAME, quantity="", prediction="",
                                 kind="less_than")
    sep = theory.Claim.from_bound(theory.separate_mle_rate, figure=NAME, quantity="",
                                  prediction="", kind="upper_bound", predicted=0.0)

    def paired(sub, a, b, eta):
        s = sub[sub["eta"] == eta].sort_values("replicate")
        diff = s[a].to_numpy(float) - s[b].to_numpy(float)
        return theory.bootstrap_ci(diff, seed=0), len(diff)

    for regime in regimes:
        sub = df[df["regime"] == regime]
        binding = sub.groupby("eta")["minority_binding"].mean()
        bnote = (f"regime {regime}; minority binding at gold exact max-min in "
                 f"{binding.loc[e0]:.0%} of replicates at eta = {e0:g}; minority spanned by others "
                 f"in {sub['spanned'].mean():.0%} of cells")
        rows = [("err_sharedrep_total", "err_separate_total",
                 "minority reward error ||theta_hat_u - theta_u||"),
                ("subopt_sharedrep_exact", "subopt_separate_exact",
                 "MaxMin suboptimality, exact objective"),
                ("subopt_sharedrep_pointwise", "subopt_separate_pointwise",
                 "MaxMin suboptimality, pointwise-min objective")]
        if regime != regimes[0]:
            rows = rows[1:]
        for a, b, what in rows:
            (est, lo, hi), n_rep = paired(sub, a, b, e0)
            claims.append(replace(sr, quantity=f"{what}: SharedRep - Separate, eta = {e0:g} "
                                               f"({regime})",
                                  prediction="< 0 (SharedRep better)").evaluate(
                est, lo, hi, note=f"paired over {n_rep} replicates; {bnote}"))
        if regime == regimes[0]:
            for obj in OBJECTIVES:
                (est, lo, hi), n_rep = paired(sub, f"wr_min_separate_{obj}",
                                              f"wr_min_sharedrep_{obj}", e0)
                claims.append(replace(
                    sr, quantity=f"minority win rate vs gold ({obj}): Separate - SharedRep, "
                                 f"eta = {e0:g} ({regime})",
                    prediction="< 0 (SharedRep wins more often)").evaluate(
                    est, lo, hi, note=f"paired over {n_rep} replicates; ties count 1/2; {bnote}"))
            Ye = _matrix(sub, "err_separate_total", etas)
            fit = theory.fit_loglog_slope(etas, Ye, seed=0)
            claims.append(theory.Claim.from_bound(
                theory.separate_mle_rate, figure=NAME,
                quantity=f"slope of Separate's minority error vs eta ({regime})",
                prediction="-1/2 (sqrt(d / (eta n)))", kind="value", predicted=-0.5,
                atol=theory.DEFAULT_EXPONENT_TOL,
                note=f"ridge lam = {LAM} on the summed objective").evaluate_fit(fit))
            Ys = _matrix(sub, "subopt_separate_exact", etas)
            fit = theory.fit_loglog_slope(etas, Ys, seed=0)
            claims.append(replace(
                sep, quantity=f"slope of Separate's MaxMin suboptimality (exact) vs eta ({regime})",
                prediction="< 0 (decreases as the minority grows)").evaluate_fit(fit, note=bnote))
            (est, lo, hi), n_rep = paired(sub, "subopt_separate_exact", "subopt_pooled_exact", e1)
            claims.append(theory.Claim.from_bound(
                theory.theorem1_alignment_gap_lower_bound, figure=NAME,
                quantity=f"MaxMin suboptimality (exact): Separate - single reward, eta = {e1:g} "
                         f"({regime})",
                prediction="< 0 (one reward cannot serve diverse groups)", kind="less_than",
            ).evaluate(est, lo, hi, note=f"paired over {n_rep} replicates; {bnote}"))

    # ---- figure -----------------------------------------------------------------------------
    fig, axes = style.new_figure(ncols=3, nrows=2, width=4.4, height=3.4)
    (ax_s, ax_u, ax_w), (ax_e, ax_x, ax_r) = axes
    colours = {"separate": "C0", "sharedrep": "C1", "pooled": "C2"}
    labels = {"separate": "Separate", "sharedrep": "SharedRep", "pooled": "single reward"}
    styles = {"exact": "o-", "pointwise": "s--"}
    main = df[df["regime"] == regimes[0]]
    pts = []

    def band(ax, sub, col, fmt, colour, label, logy=True, regime=None, series=None):
        Y = _matrix(sub, col, etas)
        m = Y.mean(axis=0)
        (ax.loglog if logy else ax.semilogx)(etas, m, fmt, color=colour, label=label, ms=4)
        ax.fill_between(etas, np.quantile(Y, 0.1, axis=0), np.quantile(Y, 0.9, axis=0),
                        color=colour, alpha=0.12)
        for i, e in enumerate(etas):
            pts.append({"regime": regime or regimes[0], "series": series or col, "eta": e,
                        "mean": m[i], "q10": np.quantile(Y[:, i], 0.1),
                        "q90": np.quantile(Y[:, i], 0.9), "n_seeds": Y.shape[0]})

    for name in ESTIMATORS:
        for obj in OBJECTIVES:
            lab = f"{labels[name]}, {obj}"
            band(ax_s, main, f"subopt_{name}_{obj}", styles[obj], colours[name], lab)
            band(ax_u, main, f"minu_{name}_{obj}", styles[obj], colours[name], lab, logy=False)
            band(ax_w, main, f"wr_min_{name}_{obj}", styles[obj], colours[name], lab, logy=False)
    gv = main.groupby("eta")["gold_value"].mean().reindex(etas).to_numpy()
    ax_u.semilogx(etas, gv, "k-", lw=1, label="gold exact max-min value V*")
    band(ax_s, main, "gold_pw_subopt", ":", "k", "true pointwise-min policy (no estimation)")
    for i, e in enumerate(etas):
        pts.append({"regime": regimes[0], "series": "gold_value", "eta": e, "mean": gv[i],
                    "q10": np.nan, "q90": np.nan, "n_seeds": np.nan})
    ax_w.axhline(0.5, color="k", lw=0.8, ls=":")
    ax_s.set(xlabel="minority proportion eta", ylabel="V* - min_u F_u(pi)",
             title=f"MaxMin suboptimality ({regimes[0]} regime)")
    ax_u.set(xlabel="minority proportion eta", ylabel="min_u F_u(pi) (true rewards)",
             title="min-group utility")
    ax_w.set(xlabel="minority proportion eta", ylabel="minority win rate vs gold",
             title="minority win rate vs gold (0.5 = as good as gold)")

    for name in ("separate", "sharedrep"):
        band(ax_e, main, f"err_{name}_inside", "o-", colours[name],
             f"{labels[name]}: inside span(B)")
        band(ax_e, main, f"err_{name}_outside", "s--", colours[name],
             f"{labels[name]}: outside span(B)")
    n_tot = float(main["n"].iloc[0])
    d, k = int(main["d"].iloc[0]), int(main["k"].iloc[0])
    rate_sep = theory.separate_mle_rate(n_tot, d, etas)
    rate_sr = theory.sharedrep_rate(n_tot, d, k, etas)
    ax_e.loglog(etas, rate_sep, "C0:", label=f"sqrt(d/(eta n)), C = 1 ({style.UNVERIFIED})")
    ax_e.loglog(etas, rate_sr, "C1:",
                label=f"sqrt(dk/n) + sqrt(k/(eta n)), C = 1 ({style.UNVERIFIED})")
    for i, e in enumerate(etas):
        pts.append({"regime": regimes[0], "series": "separate_mle_rate_C1", "eta": e,
                    "mean": float(np.atleast_1d(rate_sep)[i]), "q10": np.nan, "q90": np.nan,
                    "n_seeds": np.nan})
        pts.append({"regime": regimes[0], "series": "sharedrep_rate_C1", "eta": e,
                    "mean": float(np.atleast_1d(rate_sr)[i]), "q10": np.nan, "q90": np.nan,
                    "n_seeds": np.nan})
    ax_e.set(xlabel="minority proportion eta", ylabel="minority error part",
             title="minority reward error inside / outside span(B)")

    for name in ("separate", "sharedrep", "pooled"):
        ax_x.loglog(main[f"err_{name}_total"], main[f"subopt_{name}_exact"].clip(lower=1e-6), "o",
                    ms=3, alpha=0.6, color=colours[name], label=labels[name])
    ax_x.set(xlabel="minority reward error (total)", ylabel="MaxMin suboptimality (exact)",
             title="does reward error carry over to the policy?")

    if len(regimes) > 1:
        other = df[df["regime"] == regimes[1]]
        for name in ESTIMATORS:
            for obj in OBJECTIVES:
                band(ax_r, other, f"subopt_{name}_{obj}", styles[obj], colours[name],
                     f"{labels[name]}, {obj}", regime=regimes[1], series=f"subopt_{name}_{obj}")
        fb = other.groupby("eta")["minority_binding"].mean().reindex(etas)
        ax_r.set(title=f"MaxMin suboptimality, {regimes[1]} regime (gold q*_min = "
                       f"{other['gold_q_min'].mean():.2g})")
        for i, e in enumerate(etas):
            pts.append({"regime": regimes[1], "series": "minority_binding_frac", "eta": e,
                        "mean": float(fb.iloc[i]), "q10": np.nan, "q90": np.nan,
                        "n_seeds": np.nan})
    ax_r.set(xlabel="minority proportion eta", ylabel="V* - min_u F_u(pi)")
    for ax in (ax_s, ax_u, ax_w, ax_e, ax_x, ax_r):
        ax.title.set_fontsize(8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5)
    style.save(fig, out_dir, NAME, pd.DataFrame(pts))
    return claims


def _matrix(sub, value, grid, axis="eta"):
    """Replicates × grid matrix of ``value`` (rows: replicate index)."""
    piv = sub.pivot_table(index="replicate", columns=axis, values=value, aggfunc="first")
    piv = piv.reindex(columns=grid)
    return piv.dropna().to_numpy(dtype=float)


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig3_policy"))
