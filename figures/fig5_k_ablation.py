"""Figure 5: SharedRep ablation over the fitted number of traits k (true k fixed), at two minority
proportions — the synthetic counterpart of SharedRep-RLHF's k ablation (arXiv 2509.03672; our
notes ``sharedrep.md`` §5.1-5.2: IMDb k in {2, 4, 16, 32}, GSM8K k in {2, 8, 16}).

Population: ``Population.shared(d, k_true, minority_proportions(eta, U), weights="gaussian")`` with U groups
(U > k_true, so the minority's traits are spanned by the others; recorded as ``spanned``); group 0
has proportion ``eta``, the other U - 1 groups share the rest equally; exactly ``round(eta n)``
minority comparisons (``group_sampling="fixed"``). SharedRep is fitted with **free** weights
(``weights="free"``, the official code's head and the same weight class as OracleB; the population
weights are Gaussian, not on the simplex) for every k in the grid, on the SAME data (``k_fit`` and
``eta`` are in ``seed_ignore``: common random numbers, so the comparisons across k are paired).
Reference lines: Separate (per-group MLE, MaxMin-RLHF's reward step) and OracleB (true B).

Note on the model class: for ``k >= U`` the SharedRep class {B w_u} contains every U-tuple of
parameters, so its fit coincides with Separate's (up to the ridge) — the curve must flatten onto
the Separate line there. The paper's experiments have U = 2, so every k >= 2 in its ablation
is the same statistical model; differences there come from optimisation (tanh loss, bias, AdamW).

Quick size uses d = 16 and k in {1, 2, 4, 8, 16} (k = d is the "no compression" end, like k = 32 of
the issue's grid); the full size uses d = 32 and k in {1, 2, 4, 8, 16, 32}. A k = d fit is a
(d^2)-dimensional Newton problem in the B-step, too slow for the quick budget at d = 32.

Claims checked (per eta)
------------------------
* the minority error is minimal at the true k in most replicates: the fraction of replicates whose
  argmin over the k grid equals k_true is >= 1/2 (``lower_bound``, bootstrap CI of the fraction;
  the argmin histogram and the same fraction for the mean-over-groups error are in the note);
* error at the true k < error at the largest k below U (paired across replicates; at k >= U the
  class holds every U-tuple and SharedRep is the separate fit, judged by the next row);
* SharedRep at the true k vs Separate: the reconstructed rates
  (``theory.sharedrep_crossover_eta``) predict SharedRep < Separate iff
  ``eta < eta* = (1/sqrt(k) - 1/sqrt(d))^2``; checked as ``less_than`` below eta* and as
  ``lower_bound 0`` (SharedRep >= Separate) above it;
* OracleB < SharedRep at the true k (paired).

Overlay: ``theory.sharedrep_rate`` (reconstructed [I], unverified) for k >= k_true, with its
constant fitted in log space (least squares) to the measured mean curve on those k — only its
shape in k is shown; it ignores the k >= U saturation.
"""

from __future__ import annotations

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import OracleB, SeparateMLE, SharedRep
from simulator.experiment import draw_data, estimation_metrics, fit_estimators, group_estimate
from simulator.metrics import sin_theta
from simulator.population import minority_proportions

NAME = "fig5"
TITLE = "SharedRep ablation over k"
LAM = 1e-4
SR_LAM = 1e-3
MOST = 0.5  # "most replicates": the argmin-at-true-k fraction must be >= this
SEED_IGNORE = ("eta", "k_fit")  # same population and data streams across k (and eta)


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full" (paper-size)."""
    params = {"d": 16, "n": 4000, "U": 10, "k_true": 4, "signal": 2.0, "n_restarts": 1,
              "max_iter": 40}
    axes = {"eta": [0.05, 0.1], "k_fit": [1, 2, 4, 8, 16]}
    if size == "full":
        params.update(d=32, n=20000, n_restarts=3, max_iter=100)
        axes["k_fit"] = [1, 2, 4, 8, 16, 32]
        reps = 20
    elif size == "quick":
        reps = 10
    else:
        params.update(d=6, n=1500, U=5, k_true=2)
        axes["k_fit"] = [1, 2, 4]
        reps = 3
    return {"sweep": {"name": NAME, "task": "figures.fig5_k_ablation:cell", "seed": 5,
                      "replicates": reps, "seed_ignore": list(SEED_IGNORE)},
            **params, "axes": axes}


def cell(params: dict, seed) -> dict:
    """One (eta, k_fit) point, one replicate: SharedRep(k_fit) plus the reference estimators."""
    s_pop, s_data, s_fit = seed.spawn(3)
    d, n, U = int(params["d"]), int(params["n"]), int(params["U"])
    k_true, k_fit, eta = int(params["k_true"]), int(params["k_fit"]), float(params["eta"])
    pop = Population.shared(d, k_true, minority_proportions(eta, U), seed=s_pop,
                            weights="gaussian", signal=float(params["signal"]))
    draw = draw_data(pop, n, s_data, group_sampling="fixed")
    fits = fit_estimators({
        "sharedrep": SharedRep(k_fit, weights="free", lam=SR_LAM,
                               n_restarts=int(params["n_restarts"]),
                               max_iter=int(params["max_iter"]), seed=s_fit),
        "separate": SeparateMLE(lam=LAM), "oracle": OracleB(pop.B, lam=LAM)}, draw)
    sr, sep, orc = (fits[m][0] for m in ("sharedrep", "separate", "oracle"))
    out = {"spanned": bool(pop.traits_spanned_by_others(0)),
           "n_min": int(draw.data.group_counts()[0]),
           "sin_theta": float(sin_theta(sr.B_, pop.B)),
           "n_iter": int(sr.n_iter_),
           "converged": bool(sr.converged_ and sep.converged_ and orc.converged_)}
    for key, est in (("sharedrep", sr), ("separate", sep), ("oracle", orc)):
        err = estimation_metrics(group_estimate(est, pop.n_groups), pop.theta, None)["err_l2"]
        out[f"err_{key}"] = float(err[0])
        out[f"errmean_{key}"] = float(err.mean())
    return out


cell.seed_ignore = SEED_IGNORE


# --------------------------------------------------------------------------- analysis
def _setting(df) -> dict:
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    ks = np.array(sorted(df["k_fit"].unique()), dtype=float)
    d, n, k_true = int(df["d"].iloc[0]), int(df["n"].iloc[0]), int(df["k_true"].iloc[0])
    return {"etas": etas, "ks": ks, "d": d, "n": n, "k_true": k_true, "U": int(df["U"].iloc[0]),
            "i_true": int(np.flatnonzero(ks == k_true)[0]),
            "eta_star": float(theory.sharedrep_crossover_eta(d, k_true))}


def _summary(df, eta, st) -> dict:
    """At one eta: SharedRep's replicates x k error matrices (minority, mean over groups), the
    reference estimators at the true k (same data for every k), and the reconstructed rate on
    k >= k_true with its scale fitted in log space to the measured means."""
    ks, k_true = st["ks"], st["k_true"]
    sub = df[df["eta"] == eta]
    Y = style.replicate_matrix(sub, "err_sharedrep", ks, "k_fit")
    at_true = sub[sub["k_fit"] == k_true].sort_values("replicate")
    ref = {c: at_true[c].to_numpy() for c in ("err_separate", "err_oracle", "errmean_separate",
                                              "errmean_oracle")}
    mean = Y.mean(axis=0)
    big = ks >= k_true
    r1 = np.asarray(theory.sharedrep_rate(st["n"], st["d"], ks[big].astype(int), eta), dtype=float)
    C = float(np.exp(np.mean(np.log(mean[big]) - np.log(r1))))
    rate = np.full(ks.size, np.nan)
    rate[big] = C * r1
    return {"Y": Y, "Ym": style.replicate_matrix(sub, "errmean_sharedrep", ks, "k_fit"),
            "ref": ref, "mean": mean, "rate": rate, "C": C, "spanned": bool(sub["spanned"].all())}


def _tag(st, eta, spanned):
    return (f"eta = {eta:g} (d={st['d']}, U={st['U']}, true k={st['k_true']}, "
            f"spanned={spanned})")


def claims(df) -> list:
    """Per eta: argmin at the true k, true k vs the largest k < U, vs Separate, OracleB vs
    SharedRep."""
    st = _setting(df)
    out = []
    for eta in st["etas"]:
        s = _summary(df, eta, st)
        out.extend(_claims(s["Y"], s["Ym"], s["ref"]["err_separate"], s["ref"]["err_oracle"],
                           st["ks"], st["i_true"], st["k_true"], eta, st["eta_star"],
                           _tag(st, eta, s["spanned"]), st["U"]))
    return out


def points(df):
    """Per (eta, k_fit): SharedRep's minority error (mean, 10-90 %), its mean-over-groups error,
    the reference lines, the argmin count and the fitted reconstructed rate."""
    import pandas as pd

    st = _setting(df)
    rows = []
    for eta in st["etas"]:
        s = _summary(df, eta, st)
        Y, ref = s["Y"], s["ref"]
        for i, k in enumerate(st["ks"]):
            rows.append({"eta": eta, "k_fit": int(k), "k_true": st["k_true"], "d": st["d"],
                         "n": st["n"], "U": st["U"], "spanned": s["spanned"],
                         "err_min_mean": s["mean"][i], "err_min_q10": np.quantile(Y[:, i], 0.1),
                         "err_min_q90": np.quantile(Y[:, i], 0.9),
                         "errmean_mean": s["Ym"][:, i].mean(),
                         "separate_min_mean": ref["err_separate"].mean(),
                         "separate_mean_mean": ref["errmean_separate"].mean(),
                         "oracle_min_mean": ref["err_oracle"].mean(),
                         "oracle_mean_mean": ref["errmean_oracle"].mean(),
                         "argmin_count": int(np.sum(np.argmin(Y, axis=1) == i)),
                         "sharedrep_rate_fit": s["rate"][i], "C_sharedrep": s["C"],
                         "n_seeds": Y.shape[0]})
    return pd.DataFrame(rows)


def plot(df, points):
    """One panel per eta: SharedRep's error vs the fitted k, Separate / OracleB lines, the rate."""
    etas = sorted(points["eta"].unique())
    fig, axes = style.new_figure(ncols=len(etas), width=4.6, height=3.8)
    for j, eta in enumerate(etas):
        _panel(axes[0][j], points[points["eta"] == eta], df[df["eta"] == eta])
    return fig


def _panel(ax, p, sub):
    ks = p["k_fit"].to_numpy(dtype=float)
    k_true, U, d, eta = (int(p["k_true"].iloc[0]), int(p["U"].iloc[0]), int(p["d"].iloc[0]),
                         p["eta"].iloc[0])
    line = ax.plot(ks, p["err_min_mean"], "o-", ms=4, color="C3",
                   label="SharedRep (free w), minority")[0]
    ax.fill_between(ks, p["err_min_q10"], p["err_min_q90"], color=line.get_color(), alpha=0.12)
    ax.plot(ks, p["errmean_mean"], "s--", ms=3, color="C3", alpha=0.6,
            label="SharedRep, mean over groups")
    at_true = sub[sub["k_fit"] == k_true]  # the 10-90 % band of a reference line, drawn only
    for key, c, lab in (("separate", "C1", "Separate (MaxMin)"), ("oracle", "C4", "OracleB")):
        ax.axhline(p[f"{key}_min_mean"].iloc[0], color=c, lw=1.2, label=f"{lab}, minority")
        ax.axhspan(np.quantile(at_true[f"err_{key}"], 0.1), np.quantile(at_true[f"err_{key}"], 0.9),
                   color=c, alpha=0.05)
        ax.axhline(p[f"{key}_mean_mean"].iloc[0], color=c, lw=0.8, ls="--", alpha=0.7,
                   label=f"{lab}, mean")
    ax.plot(ks, p["sharedrep_rate_fit"], "k:", lw=1.2,
            label=f"sqrt(dk/n)+sqrt(k/n_min), C={p['C_sharedrep'].iloc[0]:.2g} fitted "
                  "(reconstructed rate)")
    ax.axvline(k_true, color="grey", lw=0.8, alpha=0.6)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set(xlabel="fitted k", ylabel="||theta_hat - theta||_2",
           title=f"eta = {eta:g} (true k = {k_true}, U = {U}, d = {d})\n"
                 "bands: 10-90% over replicates (populations differ)")
    lo_y, hi_y = ax.get_ylim()
    ax.set_ylim(lo_y, hi_y * 3.0)  # room for the legend above the curves
    ax.legend(fontsize=5.5, loc="upper center", ncol=2)


def _claims(Y, Ym, sep, orc, ks, i_true, k_true, eta, eta_star, tag, U) -> list:
    out = []
    n_rep = Y.shape[0]
    arg = np.argmin(Y, axis=1)
    hit = (arg == i_true).astype(float)
    est, lo, hi = theory.bootstrap_ci(hit, seed=0)
    hist = ", ".join(f"k={int(ks[i])}: {int(np.sum(arg == i))}" for i in range(ks.size))
    hit_mean = float(np.mean(np.argmin(Ym, axis=1) == i_true))
    out.append(theory.Claim.from_bound(
        theory.sharedrep_rate, figure=NAME,
        quantity=f"fraction of replicates with argmin_k minority error = true k, {tag}",
        prediction=f">= {MOST:g} (error minimal at the true k in most replicates)",
        kind="lower_bound", predicted=MOST,
        note=f"{n_rep} replicates, bootstrap 95% CI of the fraction; argmin counts: {hist}; "
             f"same fraction for the mean-over-groups error: {hit_mean:.2f}; k >= true k: "
             "variance grows with k (reconstructed rate), k < true k: misspecified"
    ).evaluate(est, lo, hi))
    # against the largest k that still constrains the groups: at k >= U the class holds every
    # U-tuple (theory.sharedrep_class_saturates) and SharedRep is the separate fit, which the
    # crossover row below judges
    over = np.flatnonzero((ks > k_true) & ~np.asarray(theory.sharedrep_class_saturates(ks, U)))
    if over.size:
        j = int(over[-1])
        diff = Y[:, i_true] - Y[:, j]
        est, lo, hi = theory.bootstrap_ci(diff, seed=0)
        out.append(theory.Claim.from_bound(
            theory.sharedrep_rate, figure=NAME,
            quantity=f"SharedRep minority error at k = {k_true} minus at k = {int(ks[j])}, {tag}",
            prediction="< 0 (extra traits cost minority samples)", kind="less_than",
            note=f"paired across {diff.size} replicates (same data for every k), bootstrap 95% "
                 f"CI; relative {np.mean(diff / Y[:, j]):+.1%}; the largest k < U = {U}"
        ).evaluate(est, lo, hi))
    diff = Y[:, i_true] - sep
    est, lo, hi = theory.bootstrap_ci(diff, seed=0)
    rel = f"relative {np.mean(diff / sep):+.1%}; paired across {diff.size} replicates"
    if eta < eta_star:
        claim = theory.Claim.from_bound(
            theory.sharedrep_crossover_eta, figure=NAME,
            quantity=f"SharedRep(k = {k_true}) - Separate minority error, {tag}",
            prediction=f"< 0 (eta < reconstructed crossover eta* = {eta_star:.3g})",
            kind="less_than", note=rel)
    else:
        claim = theory.Claim.from_bound(
            theory.sharedrep_crossover_eta, figure=NAME,
            quantity=f"SharedRep(k = {k_true}) - Separate minority error, {tag}",
            prediction=f">= 0 (eta >= reconstructed crossover eta* = {eta_star:.3g})",
            kind="lower_bound", predicted=0.0, note=rel)
    out.append(claim.evaluate(est, lo, hi))
    diff = orc - Y[:, i_true]
    est, lo, hi = theory.bootstrap_ci(diff, seed=0)
    out.append(theory.Claim.from_bound(
        theory.oracle_subspace_avg_error, figure=NAME,
        quantity=f"OracleB - SharedRep(k = {k_true}) minority error, {tag}",
        prediction="< 0 (knowing B removes the representation error)", kind="less_than",
        note=f"paired across {diff.size} replicates; both free weights"
    ).evaluate(est, lo, hi))
    return out


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig5_k_ablation"))
