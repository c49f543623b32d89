"""Figure 2 (minority error vs eta, three regimes) at the tiny size through the real sweep engine."""

import numpy as np
import pandas as pd
import pytest

import theory
from figures import fig2_minority, runner
from simulator import Population


def test_fig2_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig2_minority)
    claims = runner.analyse(fig2_minority, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig2.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig2.csv")
    assert {"regime", "spanned", "eta", "n_min", "method", "err_mean", "err_q10", "err_q90",
            "separate_rate_fit", "sharedrep_rate_fit", "C_separate", "C_sharedrep",
            "crossover_eta", "n_seeds"} <= set(pts.columns)
    spec = fig2_minority.spec("tiny")
    n_eta = len(spec["axes"]["eta"])
    pd.testing.assert_frame_equal(pts, fig2_minority.points(df), check_dtype=False)
    # the fitted rate constants are the log-space least squares of the module docstring
    for _, p in pts[pts["method"] == "separate"].groupby("regime"):
        np.testing.assert_allclose(np.mean(np.log(p["err_mean"]) - np.log(p["separate_rate_fit"])),
                                   0.0, atol=1e-12)
    assert len(pts) == len(fig2_minority.REGIMES) * n_eta * len(fig2_minority.METHODS)
    assert set(pts["method"]) == set(fig2_minority.METHODS)
    # the regime's defining property is recorded: only the spanned regime is spanned
    spanned = pts.groupby("regime")["spanned"].agg(["min", "max"])
    assert spanned.loc["spanned"].tolist() == [True, True]
    assert not spanned.loc["minority_trait", "max"] and not spanned.loc["u_eq_k", "max"]
    assert (pts["err_q10"] <= pts["err_mean"] + 1e-12).all()
    assert (pts["err_mean"] <= pts["err_q90"] + 1e-12).all()
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)
    assert all(c.figure == "fig2" for c in claims)
    # per regime: a Separate slope and an OracleB claim; spanned: SR < Sep at the smallest eta
    quantities = [c.quantity for c in claims]
    assert sum("slope of Separate" in q for q in quantities) == 3
    assert sum(q.startswith("OracleB") for q in quantities) == 3
    assert any(q.startswith("SharedRep - Separate") and "spanned=True" in q for q in quantities)
    assert sum(q.startswith("(SharedRep - Separate) / Separate") for q in quantities) == 2


@pytest.mark.parametrize("regime,U,k,spanned", [("spanned", 3, 2, True),
                                                ("minority_trait", 2, 2, False),
                                                ("u_eq_k", 3, 3, False)])
def test_fig2_regimes(regime, U, k, spanned):
    """Each regime is a registered Population constructor with the stated shape."""
    assert regime in fig2_minority.REGIMES
    pop = Population.from_regime(regime, d=8, minority=0.1, seed=np.random.SeedSequence(0),
                                 signal=2.0)
    assert (pop.n_groups, pop.k) == (U, k)
    assert np.isclose(pop.proportions[0], 0.1)
    assert pop.traits_spanned_by_others(0) is spanned


def test_fig2_cell_metrics():
    sp = fig2_minority.spec("tiny")
    params = {**{k: v for k, v in sp.items() if k not in ("sweep", "axes")},
              "regime": "minority_trait", "eta": 0.2}
    out = fig2_minority.cell(params, np.random.SeedSequence(1))
    for m in fig2_minority.METHODS:
        assert np.isfinite(out[f"err_{m}"]) and out[f"err_{m}"] >= 0
    assert out["n_min"] == round(0.2 * params["n"]) and out["spanned"] is False
    # with U = k the SharedRep class contains every pair of parameters: same fit as Separate
    assert out["err_sharedrep_free"] == pytest.approx(out["err_separate"], rel=0.05)


def test_fig2_cell_refuses_a_regime_outside_its_grid():
    sp = fig2_minority.spec("tiny")
    params = {**{k: v for k, v in sp.items() if k not in ("sweep", "axes")},
              "regime": "diverse", "eta": 0.2}
    with pytest.raises(ValueError, match="regime"):
        fig2_minority.cell(params, np.random.SeedSequence(0))
