"""Figure 7 (shared low rank) at the tiny size through the real sweep engine."""

import io

import numpy as np
import pandas as pd
import pytest

import theory
from figures import fig7_lowrank as fig7
from figures import runner
from simulator.seeding import derive_seed_sequence


def test_spec_protocol():
    for size in ("tiny", "quick", "full"):
        sp = fig7.spec(size)
        assert runner.sweep_spec(sp) is sp  # already the sweep engine's format
        assert sp["sweep"]["name"] == fig7.NAME == "fig7"
        assert sp["sweep"]["task"] == "figures.fig7_lowrank:cell"
        assert set(sp["axes"]) == {"N", "n"}
        assert set(sp["sweep"]["seed_ignore"]) <= set(sp["axes"])
        assert sp["k"] <= sp["d"] <= min(sp["axes"]["N"])


def test_cell_returns_scalars():
    p = {"d": 4, "k": 1, "signal": 2.0, "N": 6, "n": 40}
    out = fig7.cell(p, derive_seed_sequence(0, "x", 0))
    assert all(np.isscalar(v) for v in out.values())
    for name in fig7.ESTIMATORS:
        assert 0.0 <= out[f"{name}_err2"] <= out[f"{name}_err2_max"]
    assert 0.0 <= out["sin_theta"] <= 1.0
    assert out["nu"] > 0 and out["kappa_bar"] >= 1.0 - 1e-12 and 0 < out["gamma_mean"] <= 0.25


def test_ratio_statistic_on_known_values():
    Ns = np.array([4.0, 8.0, 16.0])
    d = 4
    shared = 1.0 + d / Ns  # oracle error 1: ratio - 1 = d / N exactly
    S = np.stack([np.tile(shared, (3, 1)), np.ones((3, 3))], axis=1)
    slope, level = fig7._ratio_stat(d, Ns)(S, axis=0)
    assert np.isclose(slope, -1.0) and np.isclose(level, 1.0)


def test_fig7_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig7)
    claims = runner.analyse(fig7, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig7.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig7.csv")
    # the CSV is points(df), written as it is (a round trip through CSV on both sides)
    pd.testing.assert_frame_equal(pts, pd.read_csv(io.StringIO(fig7.points(df).to_csv(index=False))))
    assert len(fig7.claims(df)) == len(claims)
    assert {"panel", "estimator", "N", "n", "Nn", "mean", "q10", "q90", "theory",
            "n_seeds"} <= set(pts.columns)
    assert set(pts["panel"]) == {"a", "b", "c"}
    assert np.isfinite(pts["theory"]).all()
    sp = fig7.spec("tiny")
    nN, nn = len(sp["axes"]["N"]), len(sp["axes"]["n"])
    assert len(pts) == (nN + 2) * nn + nN * nn + nN * nn
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(c.figure == "fig7" and not c.verified and c.source for c in claims)
    # shared slope per N + oracle + independent + ratio slope + ratio level + 3 sin theta
    # + 2 sin theta slopes against the two-phase rate
    assert len(claims) == nN + 2 + 2 + 3 + 2
    # every grid point carries its subspace phase and whether it lies in its rate's regime
    assert set(pts["phase"]) <= set(theory.PHASES) and pts["in_regime"].dtype == bool
    assert np.isfinite(pts.loc[pts["panel"] == "c", "theory_two_phase"]).all()
    assert all(c.regime for c in claims)
    assert list(theory.claims_table(claims).columns) == list(theory.COLUMNS)


def test_regime_masks_follow_the_stated_conditions():
    """Each cell is tested against its claim's regime: gamma n >= 10 max(p, 2 lam) for the
    per-user fits (p = k, d, k + dk/N; the shared fit also n >= 16 n*), n >= 16 n* for sin theta."""
    rows = [{"d": 8, "k": 2, "N": N, "n": n, "gamma_mean": 0.17, "nu": 0.62, "kappa_bar": 2.4,
             "replicate": 0} for N in (8, 32) for n in (20, 80, 160, 640)]
    df = pd.DataFrame(rows)
    c = fig7._constants(df, 32)
    assert c["n_star"] == pytest.approx(theory.shared_subspace_phase_boundary(
        8, 2, 32, nu=0.62, kappa_bar=2.4, gamma=0.17))
    assert fig7._min_n("oracle", 8, 2, 32, c) == pytest.approx(10 * 2 / 0.17)  # 2 lam = 2 = k
    assert fig7._min_n("independent", 8, 2, 32, c) == pytest.approx(10 * 8 / 0.17)
    assert fig7._min_n("shared", 8, 2, 32, c) == pytest.approx(
        max(10 * 2.5 / 0.17, 16 * c["n_star"]))
    assert fig7._sin_min_n(c) == pytest.approx(16 * c["n_star"])
    assert fig7._phase(df, 32, 20, c) == theory.PARAMETER_COUNTING
    assert fig7._phase(df, 32, 1, c) == theory.PENALISED
