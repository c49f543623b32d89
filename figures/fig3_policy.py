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
numbers across eta (``seed_ignore``) each replicate keeps its population and environment. Regimes
(registered :class:`~simulator.Population` constructors):

* ``"binding"`` — :meth:`Population.binding`, planted free weights
  (``simulator.population.BINDING_W``): the minority ``w = signal (0, 1)`` and ``(1, 0)`` are the
  two extreme groups, the others dominate their mixtures; the minority is a binding group of the
  gold exact max-min solution (dual weight ``q*_min > 0``, recorded per cell);
* ``"nonbinding"`` — :meth:`Population.nonbinding`, planted free weights (``NONBINDING_W``): the
  minority ``signal (0.85, 0.85)`` dominates the two extreme groups' mixture, so ``q*_min = 0``:
  only its estimation error can make it (spuriously) binding;
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
from simulator.experiment import draw_data, evaluate, fit_estimators
from simulator.fairness import maxmin_suboptimality
from simulator.metrics import sin_theta, span_decomposition
from simulator.policy import maxmin_policy
from simulator.population import minority_proportions
from simulator.validation import check_choice

NAME = "fig3"
# Theorem 1 of MaxMin-RLHF bounds one group's alignment gap under a single reward, not a max-min
# suboptimality: this row tests the paper's experimental claim (max-min over group rewards beats
# single-reward RLHF on the worst group), so it cites that, not the theorem.
_SINGLE_REWARD_SOURCE = dict(
    source="Chakraborty et al. 2024, MaxMin-RLHF (arXiv 2402.08925), experiments (max-min over "
           "group rewards vs single-reward RLHF) [P]",
    source_kind="paper", url="https://arxiv.org/abs/2402.08925", read_in_paper=False,
    note="an empirical claim of the paper, not its Theorem 1 (which bounds one group's "
         "alignment gap); as reported in shared/research/maxmin.md")
TITLE = "MaxMin policy from estimated rewards: Separate vs SharedRep vs single reward"
LAM = 1.0  # ridge on the summed BT objective, the same for every estimator
ESTIMATORS = ("separate", "sharedrep", "pooled")
OBJECTIVES = ("exact", "pointwise")
REGIMES = ("binding", "nonbinding", "random")
N_GROUPS = 5  # the minority and four others sharing 1 - eta equally
SEED_IGNORE = ("eta",)  # common random numbers across eta: same B, W draw and env per replicate


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
    return {"sweep": {"name": NAME, "task": "figures.fig3_policy:cell", "seed": 3,
                      "replicates": reps, "seed_ignore": list(SEED_IGNORE)},
            **params, "axes": axes}


def _population(params, seed) -> Population:
    """The regime's population: a planted one (its k must be the spec's) or random simplex."""
    regime = check_choice(params["regime"], "regime", REGIMES)
    d, k, eta, signal = (int(params["d"]), int(params["k"]), float(params["eta"]),
                         float(params["signal"]))
    if regime == "random":
        return Population.shared(d, k, minority_proportions(eta, N_GROUPS), seed=seed,
                                 weights="simplex", signal=signal)
    pop = Population.from_regime(regime, d=d, minority=eta, seed=seed, signal=signal)
    if pop.k != k:
        raise ValueError(f"the {regime!r} regime plants k = {pop.k} traits; got k = {k}")
    return pop


def cell(params: dict, seed) -> dict:
    """One (regime, eta) point, one replicate: each estimate's policies under the true rewards."""
    s_pop, s_env, s_data, s_est = seed.spawn(4)
    beta = float(params["beta"])
    pop = _population(params, s_pop)
    env = pop.arm_env(int(params["n_contexts"]), int(params["n_actions"]), s_env)
    u = pop.minority  # group 0
    draw = draw_data(pop, int(params["n"]), s_data, env=env, group_sampling="fixed")
    gold = {obj: maxmin_policy(env, pop.theta, beta, obj, warn=False) for obj in OBJECTIVES}
    out = {"spanned": bool(pop.traits_spanned_by_others(u)),
           "n_minority": int(draw.data.group_counts()[u]),
           "gold_q_min": float(gold["exact"].weights[u]),
           "minority_binding": bool(gold["exact"].weights[u] > 1e-6),
           "gold_n_active": int(gold["exact"].active_groups.size),
           "gold_value": float(gold["exact"].value),
           "gold_pw_subopt": maxmin_suboptimality(env, gold["pointwise"].pi, pop.theta, beta,
                                                  reference=gold["exact"]),
           "gold_certified": bool(gold["exact"].converged)}
    ests = {"separate": SeparateMLE(lam=LAM),
            "sharedrep": SharedRep(int(params["k"]),
                                   weights="simplex" if params["regime"] == "random" else "free",
                                   solver="altmin", lam=LAM,
                                   n_restarts=int(params["n_restarts"]),
                                   tol=float(params["sr_tol"]), seed=s_est),
            "pooled": PooledMLE(lam=LAM)}
    fitted = fit_estimators(ests, draw)
    for name, (est, _) in fitted.items():
        out.update(_estimate_metrics(name, est.theta_, pop, env, beta, gold))
    if hasattr(fitted["sharedrep"][0], "B_"):
        out["sharedrep_sin_theta"] = float(sin_theta(fitted["sharedrep"][0].B_, pop.B))
    return out


cell.seed_ignore = SEED_IGNORE


def _estimate_metrics(name, th, pop, env, beta, gold) -> dict:
    """The minority's reward error inside / outside span(B) and, per objective, the policy
    built from ``th`` judged under the true rewards against the gold policy."""
    u, theta = pop.minority, pop.theta
    others = np.arange(pop.n_groups) != u
    split = span_decomposition(th, theta, pop.B)
    out = {f"err_{name}_total": float(split["total"][u]),
           f"err_{name}_inside": float(split["inside"][u]),
           f"err_{name}_outside": float(split["outside"][u]),
           f"err_{name}_others": float(split["total"][others].mean())}
    for obj in OBJECTIVES:
        res = maxmin_policy(env, th, beta, obj, warn=False)
        if obj == "exact":  # the minority's dual weight in the policy built from estimates
            out[f"q_min_{name}"] = float(res.weights[u])
        ev = evaluate(env, theta, beta, res.pi, gold[obj].pi, gold["exact"].value)
        util, wr = ev["utility"], ev["win_rate"]
        out[f"minu_{name}_{obj}"] = float(util.min())
        out[f"subopt_{name}_{obj}"] = ev["subopt"]
        out[f"util_min_{name}_{obj}"] = float(util[u])
        out[f"wr_min_{name}_{obj}"] = float(wr[u])
        out[f"wr_others_{name}_{obj}"] = float(wr[others].mean())
    return out


# ---------------------------------------------------------------------------------- claims
def _regimes(df):
    return [r for r in REGIMES if r in set(df["regime"])]


def _paired(sub, a, b, eta):
    """Bootstrap CI of the paired difference a - b across replicates at ``eta``, and its size."""
    s = sub[sub["eta"] == eta].sort_values("replicate")
    diff = s[a].to_numpy(float) - s[b].to_numpy(float)
    return theory.bootstrap_ci(diff, seed=0), len(diff)


def _binding_note(sub, regime, e0):
    binding = sub.groupby("eta")["minority_binding"].mean()
    return (f"regime {regime}; minority binding at gold exact max-min in "
            f"{binding.loc[e0]:.0%} of replicates at eta = {e0:g}; minority spanned by others "
            f"in {sub['spanned'].mean():.0%} of cells")


_SR = theory.Claim.from_bound(theory.sharedrep_rate, figure=NAME, quantity="", prediction="",
                              kind="less_than")


def claims(df) -> list:
    """SharedRep vs Separate at the smallest eta (every regime); in the first regime also the
    win rates, Separate's slopes and the single reward at the largest eta."""
    regimes = _regimes(df)
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    out = []
    for regime in regimes:
        sub = df[df["regime"] == regime]
        bnote = _binding_note(sub, regime, etas[0])
        rows = [("err_sharedrep_total", "err_separate_total",
                 "minority reward error ||theta_hat_u - theta_u||"),
                ("subopt_sharedrep_exact", "subopt_separate_exact",
                 "MaxMin suboptimality, exact objective"),
                ("subopt_sharedrep_pointwise", "subopt_separate_pointwise",
                 "MaxMin suboptimality, pointwise-min objective")]
        for a, b, what in rows if regime == regimes[0] else rows[1:]:
            (est, lo, hi), n_rep = _paired(sub, a, b, etas[0])
            out.append(replace(_SR, quantity=f"{what}: SharedRep - Separate, eta = {etas[0]:g} "
                                             f"({regime})",
                               prediction="< 0 (SharedRep better)").evaluate(
                est, lo, hi, note=f"paired over {n_rep} replicates; {bnote}"))
        if regime == regimes[0]:
            out.extend(_main_regime_claims(sub, regime, etas, bnote))
    return out


def _main_regime_claims(sub, regime, etas, bnote) -> list:
    e0, e1 = etas[0], etas[-1]
    out = []
    for obj in OBJECTIVES:
        (est, lo, hi), n_rep = _paired(sub, f"wr_min_separate_{obj}", f"wr_min_sharedrep_{obj}", e0)
        out.append(replace(
            _SR, quantity=f"minority win rate vs gold ({obj}): Separate - SharedRep, "
                          f"eta = {e0:g} ({regime})",
            prediction="< 0 (SharedRep wins more often)").evaluate(
            est, lo, hi, note=f"paired over {n_rep} replicates; ties count 1/2; {bnote}"))
    # the arm environment's features are not Gaussian: gamma <= 1/4 gives the smallest n_min
    d = int(sub["d"].iloc[0])
    min_n = float(theory.asymptotic_min_n(d, lam=LAM))
    n_min = style.replicate_matrix(sub, "n_minority", etas, "eta").mean(axis=0)
    out.append(theory.Claim.from_bound(
        theory.separate_mle_rate, figure=NAME,
        quantity=f"slope of Separate's minority error vs eta ({regime})",
        prediction="-1/2 (sqrt(d / (eta n)))", kind="value", predicted=-0.5,
        atol=theory.DEFAULT_EXPONENT_TOL, regime="gamma n_min >= 10 d with gamma <= 1/4",
        note=f"ridge lam = {LAM} on the summed objective").evaluate_slope(
        etas, style.replicate_matrix(sub, "err_separate_total", etas, "eta"),
        inside=n_min >= min_n, note=f"n_min >= {min_n:.0f} needed at gamma = 1/4 (its largest "
                                    f"value; a cell outside at 1/4 is outside at any gamma)"))
    fit = theory.fit_loglog_slope(etas, style.replicate_matrix(sub, "subopt_separate_exact", etas,
                                                               "eta"), seed=0)
    out.append(theory.Claim.from_bound(
        theory.separate_mle_rate, figure=NAME,
        quantity=f"slope of Separate's MaxMin suboptimality (exact) vs eta ({regime})",
        prediction="< 0 (decreases as the minority grows)", kind="upper_bound",
        predicted=0.0).evaluate_fit(fit, note=bnote))
    (est, lo, hi), n_rep = _paired(sub, "subopt_separate_exact", "subopt_pooled_exact", e1)
    out.append(theory.Claim(
        figure=NAME, quantity=f"MaxMin suboptimality (exact): Separate - single reward, "
                              f"eta = {e1:g} ({regime})",
        prediction="< 0 (one reward cannot serve diverse groups)", kind="less_than",
        **_SINGLE_REWARD_SOURCE).evaluate(est, lo, hi,
                                          note=f"paired over {n_rep} replicates; {bnote}"))
    return out


# ---------------------------------------------------------------------------------- points
def _band_rows(sub, col, etas, regime, series=None) -> list:
    Y = style.replicate_matrix(sub, col, etas, "eta")
    m = Y.mean(axis=0)
    return [{"regime": regime, "series": series or col, "eta": e, "mean": m[i],
             "q10": np.quantile(Y[:, i], 0.1), "q90": np.quantile(Y[:, i], 0.9),
             "n_seeds": Y.shape[0]} for i, e in enumerate(etas)]


def _line_rows(regime, series, etas, values) -> list:
    return [{"regime": regime, "series": series, "eta": e, "mean": values[i], "q10": np.nan,
             "q90": np.nan, "n_seeds": np.nan} for i, e in enumerate(etas)]


def points(df):
    """Every band (mean, 10-90 %) and line of the figure, one row per (regime, series, eta)."""
    import pandas as pd

    regimes = _regimes(df)
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    r0, main = regimes[0], df[df["regime"] == regimes[0]]
    pts = []
    for name in ESTIMATORS:
        for obj in OBJECTIVES:
            for col in (f"subopt_{name}_{obj}", f"minu_{name}_{obj}", f"wr_min_{name}_{obj}"):
                pts += _band_rows(main, col, etas, r0)
    pts += _band_rows(main, "gold_pw_subopt", etas, r0)
    pts += _line_rows(r0, "gold_value", etas,
                      main.groupby("eta")["gold_value"].mean().reindex(etas).to_numpy())
    for name in ("separate", "sharedrep"):
        pts += _band_rows(main, f"err_{name}_inside", etas, r0)
        pts += _band_rows(main, f"err_{name}_outside", etas, r0)
    n_tot, d, k = float(main["n"].iloc[0]), int(main["d"].iloc[0]), int(main["k"].iloc[0])
    rate_sep = np.atleast_1d(theory.separate_mle_rate(n_tot, d, etas))
    rate_sr = np.atleast_1d(theory.sharedrep_rate(n_tot, d, k, etas))
    for i, e in enumerate(etas):  # the two C = 1 rates, interleaved per eta
        pts += _line_rows(r0, "separate_mle_rate_C1", [e], [float(rate_sep[i])])
        pts += _line_rows(r0, "sharedrep_rate_C1", [e], [float(rate_sr[i])])
    if len(regimes) > 1:
        other = df[df["regime"] == regimes[1]]
        for name in ESTIMATORS:
            for obj in OBJECTIVES:
                pts += _band_rows(other, f"subopt_{name}_{obj}", etas, regimes[1])
        fb = other.groupby("eta")["minority_binding"].mean().reindex(etas)
        pts += _line_rows(regimes[1], "minority_binding_frac", etas,
                          [float(fb.iloc[i]) for i in range(etas.size)])
    return pd.DataFrame(pts)


# ---------------------------------------------------------------------------------- plot
COLOURS = {"separate": "C0", "sharedrep": "C1", "pooled": "C2"}
LABELS = {"separate": "Separate", "sharedrep": "SharedRep", "pooled": "single reward"}
STYLES = {"exact": "o-", "pointwise": "s--"}


def _draw(ax, points, regime, series, fmt, colour, label, logy=True, band=True, **line):
    p = points[(points["regime"] == regime) & (points["series"] == series)]
    e = p["eta"].to_numpy(dtype=float)
    kw = {"ms": 4, **line} if colour is None else {"color": colour, "ms": 4, **line}
    (ax.loglog if logy else ax.semilogx)(e, p["mean"], fmt, label=label, **kw)
    if band:
        ax.fill_between(e, p["q10"], p["q90"], color=colour, alpha=0.12)


def plot(df, points):
    """Top: suboptimality, min-group utility, minority win rate (first regime); bottom: the
    error split, error vs suboptimality, and the second regime's suboptimality."""
    regimes = [r for r in REGIMES if r in set(points["regime"])]
    fig, axes = style.new_figure(ncols=3, nrows=2, width=4.4, height=3.4)
    (ax_s, ax_u, ax_w), (ax_e, ax_x, ax_r) = axes
    r0 = regimes[0]
    for name in ESTIMATORS:
        for obj in OBJECTIVES:
            lab, c, f = f"{LABELS[name]}, {obj}", COLOURS[name], STYLES[obj]
            _draw(ax_s, points, r0, f"subopt_{name}_{obj}", f, c, lab)
            _draw(ax_u, points, r0, f"minu_{name}_{obj}", f, c, lab, logy=False)
            _draw(ax_w, points, r0, f"wr_min_{name}_{obj}", f, c, lab, logy=False)
    _draw(ax_u, points, r0, "gold_value", "k-", None, "gold exact max-min value V*", logy=False,
          band=False, lw=1)
    _draw(ax_s, points, r0, "gold_pw_subopt", ":", "k", "true pointwise-min policy (no estimation)")
    ax_w.axhline(0.5, color="k", lw=0.8, ls=":")
    ax_s.set(xlabel="minority proportion eta", ylabel="V* - min_u F_u(pi)",
             title=f"MaxMin suboptimality ({r0} regime)")
    ax_u.set(xlabel="minority proportion eta", ylabel="min_u F_u(pi) (true rewards)",
             title="min-group utility")
    ax_w.set(xlabel="minority proportion eta", ylabel="minority win rate vs gold",
             title="minority win rate vs gold (0.5 = as good as gold)")
    _error_panels(ax_e, ax_x, df[df["regime"] == r0], points, r0)
    if len(regimes) > 1:
        _other_regime_panel(ax_r, df[df["regime"] == regimes[1]], points, regimes[1])
    ax_r.set(xlabel="minority proportion eta", ylabel="V* - min_u F_u(pi)")
    for ax in (ax_s, ax_u, ax_w, ax_e, ax_x, ax_r):
        ax.title.set_fontsize(8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5)
    return fig


def _error_panels(ax_e, ax_x, main, points, regime):
    for name in ("separate", "sharedrep"):
        _draw(ax_e, points, regime, f"err_{name}_inside", "o-", COLOURS[name],
              f"{LABELS[name]}: inside span(B)")
        _draw(ax_e, points, regime, f"err_{name}_outside", "s--", COLOURS[name],
              f"{LABELS[name]}: outside span(B)")
    _draw(ax_e, points, regime, "separate_mle_rate_C1", "C0:", None,
          f"sqrt(d/(eta n)), C = 1 ({style.UNVERIFIED})", band=False)
    _draw(ax_e, points, regime, "sharedrep_rate_C1", "C1:", None,
          f"sqrt(dk/n) + sqrt(k/(eta n)), C = 1 ({style.UNVERIFIED})", band=False)
    ax_e.set(xlabel="minority proportion eta", ylabel="minority error part",
             title="minority reward error inside / outside span(B)")
    for name in ESTIMATORS:
        ax_x.loglog(main[f"err_{name}_total"], main[f"subopt_{name}_exact"].clip(lower=1e-6), "o",
                    ms=3, alpha=0.6, color=COLOURS[name], label=LABELS[name])
    ax_x.set(xlabel="minority reward error (total)", ylabel="MaxMin suboptimality (exact)",
             title="does reward error carry over to the policy?")


def _other_regime_panel(ax_r, other, points, regime):
    for name in ESTIMATORS:
        for obj in OBJECTIVES:
            _draw(ax_r, points, regime, f"subopt_{name}_{obj}", STYLES[obj], COLOURS[name],
                  f"{LABELS[name]}, {obj}")
    ax_r.set(title=f"MaxMin suboptimality, {regime} regime (gold q*_min = "
                   f"{other['gold_q_min'].mean():.2g})")


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig3_policy"))
