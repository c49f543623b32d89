"""Figure 12: the penalised phase of a shared representation (Niu et al. 2024) at many users.

fig7's population has its phase boundary ``n*`` at 4-8 comparisons per user, where ``N <= 128``
users cannot identify the subspace yet (``sin theta ~ 1``), so every point it can judge lies
deep in the parameter-counting phase. Here the users are many (``N`` = 512 and 2,048, 10 seeds;
8,192 too at full size, 20 seeds) and the signal lower (1 instead of 2), which puts ``n*``
near 8 comparisons while ``sin theta`` is already below 1/2: the steepening of the rate that
the penalised term predicts (local slope between ``-1`` and ``-1/2``, ``-(1/2 + r)/(1 + r)``
with ``r = sqrt(n*/n)``) can be measured.

Set-up
------
``Population.dirichlet(d = 8, k = 2, n_groups=N, users_per_group=1, signal=1)``: every user its
own group, ``theta_i = B* w_i``, ``w_i ~ Dirichlet(1)``; exactly ``n`` comparisons per user
(``X ~ N(0, I)``, BT labels; the population is drawn once per replicate and ``N``, shared
across ``n``). The estimator is :class:`SharedLoRA` at its defaults (nuclear-norm weight
``lam = "auto"``, rank ``k``, no base since ``theta0 = 0``; a fixed weight such as fig7's
``lam = 1`` under-shrinks at these ``N``: mean squared error 20-40 against 1-3 with the default,
measured at ``N`` = 512 and 2,048, ``n <= 8``). Measured: ``sin theta(B_hat, B*)``.

Theory overlay (theory/lowrank.py, reconstructed, not verified): the two-phase rate
``C [sqrt(kappa d k/(nu gamma N n)) + (sqrt(d/N) + d/N)/(nu gamma n)]`` and its
parameter-counting term alone, with one ``C`` fitted where ``N n`` is largest; ``n*`` per ``N``
from the population's ``nu``, ``kappa_bar`` and curvature ``gamma``. Every point carries its
phase.

Claims checked (per ``N``)
--------------------------
* the slope of ``sin theta`` in ``n`` over the points away from the deep counting phase
  (``n < 16 n*``) and inside the Davis-Kahan regime (two-phase ``sin theta <= 1/2``) equals the
  two-phase curve's own slope on the same points (C cancels), +/- 0.1;
* on the same points the slope is steeper than parameter counting's ``-1/2`` by more than the
  tolerance (``<= -0.6``): the penalised term is visible.
"""

from __future__ import annotations

import numpy as np

import theory
from figures import style
from simulator import Population
from simulator.estimators import SharedLoRA
from simulator.experiment import draw_data
from simulator.metrics import sin_theta

NAME = "fig12"
TITLE = "The penalised phase at many users: subspace error vs comparisons per user"
NS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 64]
SIN_LINEAR_MAX = 0.5  # Davis-Kahan's first order: the rate is a slope only where sin theta <~ 1/2
REGIME = ("n < 16 n* (the penalised term moves the slope by > 0.1) and two-phase sin theta <= 0.5 "
          "at the fitted C (Davis-Kahan's first order)")
STEEPER = -0.5 - theory.DEFAULT_EXPONENT_TOL


def spec(size: str = "quick") -> dict:
    """Sweep spec; ``size`` is "tiny" (tests), "quick" (default) or "full"."""
    params = {"d": 8, "k": 2, "signal": 1.0}
    if size == "full":
        axes, reps = {"N": [512, 2048, 8192], "n": NS}, 20
    elif size == "quick":
        axes, reps = {"N": [512, 2048], "n": NS}, 10
    else:
        params = {"d": 4, "k": 1, "signal": 1.0}
        axes, reps = {"N": [64], "n": [2, 4, 8, 16]}, 3
    return {"sweep": {"name": NAME, "task": "figures.fig12_two_phase:cell", "seed": 12,
                      "replicates": reps, "seed_ignore": ["n"]},
            **params, "axes": axes}


def cell(params: dict, seed) -> dict:
    s_pop, s_data, s_fit = seed.spawn(3)
    d, k, N, n = (int(params[x]) for x in ("d", "k", "N", "n"))
    pop = Population.dirichlet(d, k, n_groups=N, users_per_group=1, seed=s_pop,
                               signal=float(params["signal"]))
    # the data stream is keyed by n as well: the population is shared across n, the draws not
    s_n = np.random.SeedSequence(s_data.generate_state(4).tolist() + [n])
    data = draw_data(pop, N * n, s_n, group_sampling="fixed").data  # exactly n per user
    est = SharedLoRA(k=k, unit="group", fit_base=False, seed=s_fit).fit(data)
    nu, kappa_bar = pop.task_diversity()
    return {"sin_theta": float(sin_theta(est.B_, pop.B)),
            "shared_err2": float(np.mean(np.sum((est.theta_ - pop.theta) ** 2, axis=1))),
            "converged": bool(est.converged_), "nu": nu, "kappa_bar": kappa_bar,
            "gamma_mean": float(pop.curvature(seed=0, n_mc=5000).gamma_mean)}


# ---------------------------------------------------------------------------------- analysis
def _grid(df):
    return (int(df["d"].iloc[0]), int(df["k"].iloc[0]), sorted(int(N) for N in df["N"].unique()),
            np.array(sorted(df["n"].unique()), dtype=float))


def constants(df, N) -> dict:
    """One N's constants (means over its cells) and the reconstructed phase boundary n*."""
    d, k, _, _ = _grid(df)
    sub = df[df["N"] == N]
    c = {"gamma": float(sub["gamma_mean"].mean()), "nu": float(sub["nu"].mean()),
         "kappa_bar": float(sub["kappa_bar"].mean())}
    c["n_star"] = float(theory.shared_subspace_phase_boundary(
        d, k, int(N), nu=c["nu"], kappa_bar=c["kappa_bar"], gamma=c["gamma"]))
    return c


def _curves(df, N, ns, C=1.0):
    """(two-phase rate, its parameter-counting term alone) at ``ns`` for one N."""
    d, k, _, _ = _grid(df)
    c = constants(df, N)
    kw = dict(nu=c["nu"], kappa_bar=c["kappa_bar"], gamma=c["gamma"])
    two = np.array([float(theory.shared_subspace_two_phase_rate(n, d, k, int(N), C=C, **kw))
                    for n in ns])
    counting = np.array([float(theory.subspace_sin_theta_rate(int(N * n), d, k, C=C,
                                                              nu=c["nu"],
                                                              kappa_bar=c["kappa_bar"]))
                         for n in ns]) / np.sqrt(c["gamma"])
    return two, counting


def fitted_C(df) -> float:
    """The two-phase rate's constant: mean sin theta over the rate at C = 1, at the largest N n."""
    _, _, Ns, ns = _grid(df)
    Y = style.replicate_matrix(df[df["N"] == Ns[-1]], "sin_theta", ns, "n")
    return float(Y.mean(axis=0)[-1] / _curves(df, Ns[-1], ns[-1:])[0][-1])


def _window(df, N, C):
    """Grid points of one N inside the claims' regime (module docstring)."""
    _, _, _, ns = _grid(df)
    two, _ = _curves(df, N, ns, C)
    return (ns < theory.COUNTING_PHASE_DEPTH * constants(df, N)["n_star"]) & (
        two <= SIN_LINEAR_MAX)


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def claims(df) -> list:
    """Per N: the slope on the window against the two-phase curve's, and steeper than -1/2."""
    _, _, Ns, ns = _grid(df)
    C, tol = fitted_C(df), theory.DEFAULT_EXPONENT_TOL
    out = []
    for N in Ns:
        Y = style.replicate_matrix(df[df["N"] == N], "sin_theta", ns, "n")
        inside = _window(df, N, C)
        two, _ = _curves(df, N, ns, C)
        use = inside if inside.sum() >= 2 else np.ones_like(inside)
        pred = _slope(ns[use], two[use])
        c = constants(df, N)
        n_pen = int(np.sum(ns < c["n_star"]))
        note = (f"n* = {c['n_star']:.2f}; {n_pen} of {ns.size} points in the penalised phase; "
                f"C = {C:.3g} fitted at the largest N n")
        out.append(theory.Claim.from_bound(
            theory.shared_subspace_two_phase_rate, figure=NAME,
            quantity=f"slope of sin theta vs n at N = {N} (n < 16 n*), against the two-phase rate",
            prediction=f"{pred:.3f} (slope of the two-phase rate on the same points)",
            kind="value", predicted=pred, atol=tol, regime=REGIME,
            note=f"tolerance +/-{tol}").evaluate_slope(ns, Y, inside=inside, note=note))
        out.append(theory.Claim.from_bound(
            theory.shared_subspace_phase_boundary, figure=NAME,
            quantity=f"slope of sin theta vs n at N = {N} (n < 16 n*): steeper than counting's "
                     "-1/2",
            prediction=f"<= {STEEPER:g} (the penalised term's steepening)", kind="upper_bound",
            predicted=STEEPER, regime=REGIME,
            note="parameter counting alone predicts -1/2").evaluate_slope(ns, Y, inside=inside,
                                                                            note=note))
    return out


def points(df):
    """Per (N, n): mean sin theta with its 10-90% band, the two curves, the phase, the window."""
    import pandas as pd

    d, k, Ns, ns = _grid(df)
    C = fitted_C(df)
    rows = []
    for N in Ns:
        Y = style.replicate_matrix(df[df["N"] == N], "sin_theta", ns, "n")
        E = style.replicate_matrix(df[df["N"] == N], "shared_err2", ns, "n")
        c = constants(df, N)
        two, counting = _curves(df, N, ns, C)
        inside = _window(df, N, C)
        for j, n in enumerate(ns):
            rows.append({"N": N, "n": int(n), "sin_theta": Y[:, j].mean(),
                         "q10": np.quantile(Y[:, j], 0.1), "q90": np.quantile(Y[:, j], 0.9),
                         "shared_err2": E[:, j].mean(), "two_phase": two[j],
                         "counting_only": counting[j], "n_star": c["n_star"],
                         "phase": str(theory.shared_subspace_phase(
                             n, d, k, N, nu=c["nu"], kappa_bar=c["kappa_bar"],
                             gamma=c["gamma"])),
                         "in_window": bool(inside[j]), "n_seeds": Y.shape[0]})
    return pd.DataFrame(rows)


def plot(df, points):
    """One panel per N: sin theta vs n, the two-phase curve, counting alone, n* marked."""
    Ns = sorted(points["N"].unique())
    fig, axes = style.new_figure(ncols=len(Ns), width=4.4, height=3.8)
    for ax, N in zip(axes[0], Ns):
        P = points[points["N"] == N].sort_values("n")
        win = P["in_window"].to_numpy()
        ax.fill_between(P["n"], P["q10"], P["q90"], color="C1", alpha=0.2, lw=0)
        ax.plot(P["n"], P["sin_theta"], "-", color="C1", lw=1)
        ax.plot(P["n"][win], P["sin_theta"][win], "o", color="C1", ms=4,
                label="SharedLoRA (defaults), in the claims' window")
        ax.plot(P["n"][~win], P["sin_theta"][~win], "o", mfc="none", color="C1", ms=4,
                label="outside the window")
        ax.plot(P["n"], P["two_phase"], "--", color="k", label="two-phase rate (reconstructed)")
        ax.plot(P["n"], P["counting_only"], ":", color="0.4", label="counting term alone")
        ax.axvline(P["n_star"].iloc[0], color="C3", lw=0.8, label="n* (phase boundary)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(P["n"], [str(int(v)) for v in P["n"]], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("comparisons per user n")
        ax.set_ylabel("sin theta(B_hat, B*)")
        ax.set_title(f"N = {N} users ({style.UNVERIFIED})", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(TITLE, fontsize=10)
    return fig


if __name__ == "__main__":
    import sys

    from figures.runner import main_for

    sys.exit(main_for(__name__))
