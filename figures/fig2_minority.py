"""Figure 2: minority-group error vs minority proportion eta — Pooled, Separate (MaxMin-RLHF's
reward step), SharedRep and OracleB, with the reconstructed rates laid over the curves.

The synthetic counterpart of SharedRep-RLHF's main comparison (arXiv 2509.03672; our notes
``sharedrep.md`` §3.2, §7.1). Group 0 has proportion ``eta`` (the minority for eta < 1/2), ``n``
comparisons with exactly ``round(eta n)`` from group 0 (``group_sampling="fixed"``), isotropic
Gaussian feature differences, BT labels. Three regimes (an axis), each a registered
:class:`~simulator.Population` constructor (``Population.from_regime``):

* ``spanned`` — :meth:`Population.spanned`, U = 3 > k = 2: majority groups ``w = e1`` and
  ``w = e2``, minority ``w = 0.3 e1 + 0.7 e2`` (the IMDb minority mix, times ``signal``); the
  minority's traits are spanned by the other groups, the case where SharedRep can win;
* ``minority_trait`` — :meth:`Population.minority_trait` (IMDb: majority ``e1``, minority
  ``0.3 e1 + 0.7 e2``; U = k = 2): trait 2 is learned from minority data only;
* ``u_eq_k`` — :meth:`Population.u_eq_k`, U = k = 3, Dirichlet(1) simplex weights drawn per
  replicate (every group uses every trait). With U = k (and in ``minority_trait``) the SharedRep model class {B w_u} contains every
  U-tuple of parameters, so its MLE is the separate MLE up to the ridge: no statistical gain.

``traits_spanned_by_others(0)`` is recorded per regime (cell metric and CSV column ``spanned``).

Estimators: ``PooledMLE``, ``SeparateMLE``, ``SharedRep(k, weights="simplex")`` (the paper's
model, the "SharedRep" curve), ``SharedRep(k, weights="free")`` (the official code's head) and
``OracleB`` (free weights on the true B). All use the true k of the regime. Error: l2 error of
group 0's parameter (features are isotropic, so this is also the Sigma-norm error).

Overlays: ``theory.separate_mle_rate`` = ``C sqrt(d / (eta n))`` and ``theory.sharedrep_rate`` =
``C [sqrt(dk/n) + sqrt(k/(eta n))]``, both reconstructions [I], unverified. **Rule for the
constant:** per regime, ``C`` is the least-squares fit in log space of the rate's scale to the
measured mean curve of its estimator (``log C = mean_eta(log mean_error - log rate_{C=1})``), i.e.
only the *shape* of each rate is tested; the fitted C is reported in the CSV and legend.

Claims checked (per regime unless stated)
-----------------------------------------
* Separate's minority-error log-log slope in eta is -1/2 (tolerance 0.1);
* ``spanned``: SharedRep (simplex) < Separate at the smallest eta (paired difference across
  replicates); and, for each eta above the reconstructed crossover
  ``eta* = (1/sqrt(k) - 1/sqrt(d))^2`` (``theory.sharedrep_crossover_eta``), the reconstructed
  rates predict SharedRep >= Separate (lower bound 0 on the paired difference) — checked as such;
* ``spanned``: the shape of the reconstructed SharedRep rate — the log-log slope in eta of
  (SharedRep error / ``sharedrep_rate``) is 0 (tolerance 0.1), as fig 1 does for Lemma 3.1;
* ``minority_trait`` and ``u_eq_k``: SharedRep is NOT better than Separate beyond noise. Judged on
  the paired relative difference ``(SR - Sep) / Sep`` at the smallest eta: it must be >= -5 %
  (``lower_bound``: holds if the CI's lower end is >= -0.05, does not hold if the whole CI is
  below -0.05, i.e. SharedRep is clearly more than 5 % better);
* OracleB <= SharedRep: paired difference OracleB - SharedRep(free) (same free-weight class as
  OracleB; the simplex constraint is extra information OracleB lacks), averaged over the eta grid
  per replicate, must be < 0; the simplex version of the difference is given in the note.

Common random numbers: ``eta`` is in ``seed_ignore``, so a replicate keeps its population (B, W)
and data streams across the eta grid (the slope CIs resample whole replicates).
"""

from __future__ import annotations

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import OracleB, PooledMLE, SeparateMLE, SharedRep
from simulator.experiment import draw_data, estimation_metrics, fit_estimators, group_estimate
from simulator.metrics import sin_theta, span_decomposition
from simulator.validation import check_choice

NAME = "fig2"
TITLE = "Minority-group error vs minority proportion"
LAM = 1e-4  # ridge of the BT fits (summed objective)
SR_LAM = 1e-3  # SharedRep's ridge on (B, W) (its default)
REGIMES = ("spanned", "minority_trait", "u_eq_k")
REGIME_LABEL = {"spanned": "spanned by others (U=3 > k=2)",
                "minority_trait": "minority-only trait (U=k=2)",
                "u_eq_k": "U = k = 3 (Dirichlet weights)"}
METHODS = ("pooled", "separate", "sharedrep", "sharedrep_free", "oracle")
METHOD_LABEL = {"pooled": "Pooled", "separate": "Separate (MaxMin)",
                "sharedrep": "SharedRep (simplex)", "sharedrep_free": "SharedRep (free w)",
                "oracle": "OracleB"}
NO_GAIN_TOL = 0.05  # U = k regimes: SharedRep may be at most 5 % better than Separate
SEED_IGNORE = ("eta",)  # common random numbers across the eta grid


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full" (paper-size)."""
    params = {"d": 16, "n": 20000, "signal": 2.0, "n_restarts": 1, "max_iter": 100}
    axes = {"regime": list(REGIMES), "eta": [0.01, 0.05, 0.1, 0.15, 0.2, 0.5]}
    if size == "full":
        params.update(d=32, n=50000, n_restarts=3)
        axes["eta"] = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]
        reps = 30
    elif size == "quick":
        axes["eta"] = [0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]  # 4+ points with gamma n_min >= 10 d
        reps = 10
    else:
        params.update(d=8, n=2000)
        axes["eta"] = [0.05, 0.2, 0.5]
        reps = 3
    return {"sweep": {"name": NAME, "task": "figures.fig2_minority:cell", "seed": 2,
                      "replicates": reps, "seed_ignore": list(SEED_IGNORE)},
            **params, "axes": axes}


def cell(params: dict, seed) -> dict:
    """One (regime, eta) point, one replicate: group 0's error under every estimator."""
    s_pop, s_data, s_fit = seed.spawn(3)
    d, n, eta = int(params["d"]), int(params["n"]), float(params["eta"])
    regime = check_choice(str(params["regime"]), "regime", REGIMES)
    pop = Population.from_regime(regime, d=d, minority=eta, seed=s_pop,
                                 signal=float(params["signal"]))
    draw = draw_data(pop, n, s_data, group_sampling="fixed")
    sr = {"n_restarts": int(params["n_restarts"]), "max_iter": int(params["max_iter"]),
          "lam": SR_LAM, "seed": s_fit}
    estimators = {"pooled": PooledMLE(lam=LAM), "separate": SeparateMLE(lam=LAM),
                  "sharedrep": SharedRep(pop.k, weights="simplex", **sr),
                  "sharedrep_free": SharedRep(pop.k, weights="free", **sr),
                  "oracle": OracleB(pop.B, lam=LAM)}
    fits = {m: est for m, (est, _) in fit_estimators(estimators, draw).items()}
    out = {"k": pop.k, "U": pop.n_groups, "n_min": int(draw.data.group_counts()[0]),
           "spanned": bool(pop.traits_spanned_by_others(0)),
           "theta_norm": float(np.linalg.norm(pop.theta[0]))}
    for m, est in fits.items():
        err = estimation_metrics(group_estimate(est, pop.n_groups), pop.theta, None)["err_l2"]
        out[f"err_{m}"] = float(err[0])
        out[f"errmean_{m}"] = float(err.mean())
    for m in ("sharedrep", "sharedrep_free"):
        est = fits[m]
        dec = span_decomposition(est.theta_, pop.theta, pop.B)
        out[f"sin_theta_{m}"] = float(sin_theta(est.B_, pop.B))
        out[f"err_outside_{m}"] = float(dec["outside"][0])
        out[f"n_iter_{m}"] = int(est.n_iter_)
    out["converged"] = all(bool(est.converged_) for est in fits.values())
    return out


cell.seed_ignore = SEED_IGNORE


# --------------------------------------------------------------------------- analysis
def _regimes(df):
    return [r for r in REGIMES if r in set(df["regime"])]


def _summary(df, regime) -> dict:
    """One regime's replicates x eta error matrices, their means, and the reconstructed rates
    with their constants fitted in log space to the measured mean curves (module docstring)."""
    etas = np.array(sorted(df["eta"].unique()), dtype=float)
    d, n = int(df["d"].iloc[0]), int(df["n"].iloc[0])
    sub = df[df["regime"] == regime]
    k, U = int(sub["k"].iloc[0]), int(sub["U"].iloc[0])
    Y = {m: style.replicate_matrix(sub, f"err_{m}", etas, "eta") for m in METHODS}
    means = {m: Y[m].mean(axis=0) for m in METHODS}
    sep1 = np.asarray(theory.separate_mle_rate(n, d, etas), dtype=float)
    sr1 = np.asarray(theory.sharedrep_rate(n, d, k, etas), dtype=float)
    n_min = style.replicate_matrix(sub, "n_min", etas, "eta").mean(axis=0)
    # the minority's curvature: exact for these populations' N(0, I) comparison features
    gamma = float(np.mean(theory.gaussian_bt_curvature(sub["theta_norm"].to_numpy(float))))
    return {"etas": etas, "d": d, "n": n, "k": k, "U": U, "spanned": bool(sub["spanned"].all()),
            "n_min": n_min, "gamma": gamma,
            "Y": Y, "means": means, "sep1": sep1, "sr1": sr1,
            "C_sep": float(np.exp(np.mean(np.log(means["separate"]) - np.log(sep1)))),
            "C_sr": float(np.exp(np.mean(np.log(means["sharedrep"]) - np.log(sr1)))),
            "eta_star": float(theory.sharedrep_crossover_eta(d, k))}


def claims(df) -> list:
    """Per regime: Separate's slope, SharedRep vs Separate (or no gain), OracleB vs SharedRep."""
    out = []
    for regime in _regimes(df):
        s = _summary(df, regime)
        tag = f"{regime} (U={s['U']}, k={s['k']}, spanned={s['spanned']})"
        out.append(_separate_slope_claim(s, tag))
        out.extend(_spanned_claims(s, tag) if s["spanned"] else [_no_gain_claim(s, tag)])
        out.append(_oracle_claim(s, tag))
    return out


def _separate_slope_claim(s, tag):
    """Separate's -1/2 slope in eta, on the eta whose minority sample n_min = eta n satisfies
    gamma n_min >= 10 d (theory/regimes.py; gamma the minority's exact curvature)."""
    min_n = float(theory.asymptotic_min_n(s["d"], gamma=s["gamma"], lam=LAM))
    return theory.Claim.from_bound(
        theory.separate_mle_rate, figure=NAME,
        quantity=f"slope of Separate minority error vs eta, {tag}",
        prediction="-1/2 (sqrt(d/(eta n)))", kind="value", predicted=-0.5,
        atol=theory.DEFAULT_EXPONENT_TOL, regime="gamma n_min >= 10 d (n_min = eta n)",
        note=f"tolerance +/-{theory.DEFAULT_EXPONENT_TOL}; eta grid {s['etas'].tolist()}"
    ).evaluate_slope(s["etas"], s["Y"]["separate"], inside=s["n_min"] >= min_n,
                     note=f"gamma = {s['gamma']:.3f}: n_min >= {min_n:.0f}")


def _spanned_claims(s, tag) -> list:
    """SharedRep < Separate at the smallest eta, >= above the crossover, and the rate's shape."""
    etas, Y, eta_star = s["etas"], s["Y"], s["eta_star"]
    out = []
    if etas[0] < eta_star:  # below the reconstructed crossover the rates predict SharedRep wins
        out.append(_sharedrep_vs_separate(
            s, 0, tag, theory.sharedrep_crossover_eta, kind="less_than",
            prediction=f"< 0 (SharedRep wins at small eta; reconstructed eta* = {eta_star:.3g})"))
    for i in np.flatnonzero((etas > eta_star) & (etas > etas[0])):
        out.append(_sharedrep_vs_separate(
            s, i, tag, theory.sharedrep_crossover_eta, kind="lower_bound", predicted=0.0,
            prediction=f">= 0 (eta > reconstructed crossover eta* = {eta_star:.3g})"))
    # both terms of the rate are asymptotic: the group part needs gamma n_min >= 10 k, the
    # shared part gamma n >= 10 (dk + Uk) (theory/regimes.py)
    d, k, U, n = s["d"], s["k"], s["U"], s["n"]
    inside = ((s["n_min"] >= theory.asymptotic_min_n(k, gamma=s["gamma"], lam=SR_LAM))
              & (n >= theory.asymptotic_min_n(d * k + U * k, gamma=s["gamma"], lam=SR_LAM)))
    out.append(theory.Claim.from_bound(
        theory.sharedrep_rate, figure=NAME,
        quantity=f"slope of SharedRep error / sharedrep_rate vs eta, {tag}",
        prediction="0 (rate has the measured shape in eta)", kind="value", predicted=0.0,
        atol=theory.DEFAULT_EXPONENT_TOL, note="SharedRep with simplex weights",
        regime="gamma n_min >= 10 k and gamma n >= 10 (dk + Uk)"
    ).evaluate_slope(etas, Y["sharedrep"] / s["sr1"][None, :], inside=inside))
    return out


def _sharedrep_vs_separate(s, i, tag, bound_fn, **claim):
    """The paired difference SharedRep - Separate at the i-th eta, bootstrap CI."""
    Y = s["Y"]
    diff = Y["sharedrep"][:, i] - Y["separate"][:, i]
    est, lo, hi = theory.bootstrap_ci(diff, seed=0)
    return theory.Claim.from_bound(
        bound_fn, figure=NAME,
        quantity=f"SharedRep - Separate minority error at eta = {s['etas'][i]:g}, {tag}",
        note=f"paired across {diff.size} replicates, bootstrap 95% CI; relative "
             f"difference {np.mean(diff / Y['separate'][:, i]):+.1%}", **claim
    ).evaluate(est, lo, hi)


def _no_gain_claim(s, tag):
    """U = k (or a minority-only trait): SharedRep at most NO_GAIN_TOL better than Separate."""
    Y, e0 = s["Y"], s["etas"][0]
    rel = (Y["sharedrep"][:, 0] - Y["separate"][:, 0]) / Y["separate"][:, 0]
    est, lo, hi = theory.bootstrap_ci(rel, seed=0)
    rel_free = (Y["sharedrep_free"][:, 0] - Y["separate"][:, 0]) / Y["separate"][:, 0]
    saturated = theory.sharedrep_class_saturates(s["k"], s["U"])
    return theory.Claim.from_bound(
        theory.sharedrep_class_saturates, figure=NAME,
        quantity=f"(SharedRep - Separate) / Separate minority error at eta = {e0:g}, {tag}",
        prediction=f">= -{NO_GAIN_TOL:g} (no gain beyond noise: with U = k the SharedRep class "
                   "contains every U-tuple of parameters)",
        kind="lower_bound", predicted=-NO_GAIN_TOL,
        note=f"paired across {rel.size} replicates, bootstrap 95% CI; holds if SharedRep is "
             f"at most {NO_GAIN_TOL:.0%} better; free-weight SharedRep: "
             f"{np.mean(rel_free):+.1%}; k >= U: {saturated} (with k < U and the minority's "
             "traits in no other group, SharedRep must fit the minority's own trait from its "
             "own data: no gain is expected either, but that is not the identity)"
    ).evaluate(est, lo, hi)


def _oracle_claim(s, tag):
    """OracleB - SharedRep(free), averaged over the eta grid per replicate, is < 0."""
    Y = s["Y"]
    diff = (Y["oracle"] - Y["sharedrep_free"]).mean(axis=1)
    est, lo, hi = theory.bootstrap_ci(diff, seed=0)
    d_simplex = (Y["oracle"] - Y["sharedrep"]).mean(axis=1)
    _, slo, shi = theory.bootstrap_ci(d_simplex, seed=0)
    # spanned: the oracle fits only the group part k/(gamma n_min) of SharedRep's error; else
    # SharedRep is the separate fit (d parameters) against the oracle's k on the same n_min
    bound = theory.oracle_subspace_avg_error if s["spanned"] else theory.independent_to_oracle_ratio
    return theory.Claim.from_bound(
        bound, figure=NAME,
        quantity=f"OracleB - SharedRep(free) minority error, mean over eta, {tag}",
        prediction="< 0 (knowing B removes the representation error)", kind="less_than",
        note=f"paired across {diff.size} replicates, mean over {s['etas'].size} eta values, "
             f"bootstrap 95% CI; vs SharedRep(simplex): {np.mean(d_simplex):+.3g} "
             f"[{slo:.3g}, {shi:.3g}] (simplex weights carry information OracleB's free weights "
             "lack)"
    ).evaluate(est, lo, hi)


def points(df):
    """Per (regime, eta, method): the minority error's mean and 10-90 % band, and the two
    reconstructed rates with their fitted constants."""
    import pandas as pd

    rows = []
    for regime in _regimes(df):
        s = _summary(df, regime)
        Y, n = s["Y"], s["n"]
        for i, eta in enumerate(s["etas"]):
            for m in METHODS:
                rows.append({"regime": regime, "spanned": s["spanned"], "d": s["d"], "k": s["k"],
                             "U": s["U"], "n": n, "eta": eta, "n_min": round(float(eta) * n),
                             "method": m, "err_mean": s["means"][m][i],
                             "err_q10": np.quantile(Y[m][:, i], 0.1),
                             "err_q90": np.quantile(Y[m][:, i], 0.9), "n_seeds": Y[m].shape[0],
                             "separate_rate_fit": s["C_sep"] * s["sep1"][i],
                             "C_separate": s["C_sep"],
                             "sharedrep_rate_fit": s["C_sr"] * s["sr1"][i],
                             "C_sharedrep": s["C_sr"], "crossover_eta": s["eta_star"]})
    return pd.DataFrame(rows)


def plot(df, points):
    """One panel per regime: every method's mean and band, the fitted rates and eta*."""
    regimes = [r for r in REGIMES if r in set(points["regime"])]
    fig, axes = style.new_figure(ncols=len(regimes), width=4.4, height=3.8)
    for j, regime in enumerate(regimes):
        _panel(axes[0][j], points[points["regime"] == regime], regime, first=j == 0)
    return fig


def _panel(ax, p, regime, first):
    by = {m: p[p["method"] == m].sort_values("eta") for m in METHODS}
    etas = by["separate"]["eta"].to_numpy(dtype=float)
    for m in METHODS:
        line = ax.loglog(etas, by[m]["err_mean"], "o-", ms=3, label=METHOD_LABEL[m])[0]
        ax.fill_between(etas, by[m]["err_q10"], by[m]["err_q90"], color=line.get_color(),
                        alpha=0.15)
    ref = by["separate"]
    C_sep, C_sr = ref["C_separate"].iloc[0], ref["C_sharedrep"].iloc[0]
    eta_star, spanned = ref["crossover_eta"].iloc[0], bool(ref["spanned"].iloc[0])
    ax.loglog(etas, ref["separate_rate_fit"], "k--", lw=1,
              label=f"sqrt(d/n_min), C={C_sep:.2g} fitted (reconstructed rate)")
    ax.loglog(etas, ref["sharedrep_rate_fit"], "k:", lw=1.2,
              label=f"sqrt(dk/n)+sqrt(k/n_min), C={C_sr:.2g} fitted (reconstructed rate)")
    if etas[0] < eta_star < etas[-1]:
        ax.axvline(eta_star, color="grey", lw=0.8, alpha=0.6,
                   label=f"reconstructed crossover eta* = {eta_star:.2g}")
    top = max(by["separate"]["err_mean"].max(), by["pooled"]["err_mean"].max())
    ax.set(xlabel="proportion eta of group 0", ylabel="||theta_hat_0 - theta_0||_2",
           title=f"{REGIME_LABEL.get(regime, regime)}\nspanned by others: {spanned}",
           ylim=(None, 12.0 * top))
    if first:
        ax.legend(fontsize=5.5, loc="upper center", ncol=2)
    else:  # methods as in the first panel; only this panel's fitted constants
        extra = ax.get_lines()[len(METHODS):]  # rate lines (and eta*) of this panel
        ax.legend(extra, [ln.get_label() for ln in extra], fontsize=5.5, loc="upper center")


if __name__ == "__main__":
    from figures.runner import main_for

    raise SystemExit(main_for("figures.fig2_minority"))
