"""Figure 8 (greedy vs pessimistic MLE on a coverage-deficient bandit) at the tiny size."""

import io

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import theory
from figures import FIGURES, runner
from figures import fig8_pessimism as fig8
from simulator.seeding import derive_seed_sequence
from theory.pessimism import greedy_failure_limit


def test_spec_protocol_and_registration():
    assert FIGURES["fig8"] == "figures.fig8_pessimism"
    for size in ("tiny", "quick", "full"):
        sp = fig8.spec(size)
        assert runner.sweep_spec(sp) is sp  # already the sweep engine's format
        assert sp["sweep"]["name"] == fig8.NAME == "fig8"
        assert sp["sweep"]["task"] == "figures.fig8_pessimism:cell"
        assert set(sp["axes"]) == {"n"} and sp["sweep"]["seed_ignore"] == ["n"]
        assert sp["n_uncovered"] == 1


def test_design_draws_the_uncovered_label_first():
    # the fixed design's labels are two binomials from the seed's generator, the uncovered pair
    # first: the same numbers as drawing them one by one (so the label of a2 does not depend on n)
    params = {**{k: v for k, v in fig8.spec("tiny").items() if k not in ("sweep", "axes")}}
    for n in (1000, 16000):
        fixed = fig8.design({**params, "n": n})
        np.testing.assert_array_equal(fixed.counts, [1, n - 1])
        np.testing.assert_allclose(fixed.probabilities(), expit([0.5, 1.0]), rtol=1e-15)
        seed = derive_seed_sequence(8, "test", 3)
        lab = fixed.sample(seed)
        rng = np.random.default_rng(seed)
        k2 = rng.binomial(1, expit(0.5))
        k1 = rng.binomial(n - 1, expit(1.0))
        np.testing.assert_array_equal(lab.wins, [k2, k1])
        assert lab.sample_weight.sum() == n


def test_greedy_failure_limit():
    p, subopt = greedy_failure_limit(1.0, 0.5, 1, 2.0)
    assert p == pytest.approx(expit(0.5)) and subopt == pytest.approx(0.5 * expit(0.5))
    # two comparisons: a 1-1 split gives theta_hat_2 = 0 < theta_1, so only 2 wins fail
    assert greedy_failure_limit(1.0, 0.5, 2, 2.0)[0] == pytest.approx(expit(0.5) ** 2)
    assert greedy_failure_limit(1.0, 0.5, 1, 1.2)[0] == 0.0  # sqrt(B^2 - 1) < 1: never fails
    with pytest.raises(ValueError, match="theta"):
        greedy_failure_limit(0.5, 1.0, 1, 2.0)
    with pytest.raises(ValueError, match="m"):
        greedy_failure_limit(1.0, 0.5, 0, 2.0)


def test_fig8_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig8)
    assert (df["status"] == "ok").all() and df["certified"].all()
    assert (df["duality_gap"] <= 1e-6).all()
    for pol in fig8.POLICIES:
        assert df[f"subopt_{pol}"].between(-1e-9, 1.0 + 1e-9).all()
    # common random numbers: a replicate keeps its uncovered label, so greedy's choice is the
    # same for every n, and it fails exactly when the uncovered arm won
    per_rep = df.groupby("replicate")["subopt_greedy"].agg(["min", "max"])
    assert (per_rep["min"] == per_rep["max"]).all()
    np.testing.assert_array_equal(df["subopt_greedy"] > 0, df["uncovered_won"])
    won = df[df["uncovered_won"]]
    assert (won["pess_mass_a2"] > 0).all() and (won["theta_hat_2"] > won["theta_hat_1"]).all()
    # Thm 3.2's bound as recorded by the cell is theory's bound with the cell's constants
    bound = [theory.pessimistic_suboptimality_bound(n, 2, gamma=g, coverage=c, delta=0.1, lam=lam,
                                                    B=2.0)
             for n, g, c, lam in zip(df["n"], df["gamma"], df["coverage"], df["lam"])]
    np.testing.assert_allclose(df["bound_C1"], bound, rtol=1e-12)
    # pessimism beats greedy on average at the largest n
    big = df[df["n"] == df["n"].max()]
    assert big["subopt_pessimistic"].mean() < big["subopt_greedy"].mean()

    claims = runner.analyse(fig8, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig8.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig8.csv")
    # the CSV is points(df), written as it is (a round trip through CSV on both sides)
    pd.testing.assert_frame_equal(pts, pd.read_csv(io.StringIO(fig8.points(df).to_csv(index=False))))
    assert {"series", "replicates", "n", "mean", "q10", "q90", "n_seeds"} <= set(pts.columns)
    assert {f"subopt_{p}" for p in fig8.POLICIES} | {"thm32_bound_C1", "greedy_limit_D"} == set(
        pts["series"])
    assert len(claims) == 5
    assert all(isinstance(c, theory.ClaimResult) for c in claims)
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified and c.figure == "fig8" for c in claims)
    table = theory.claims_table(claims)
    assert table["quantity"].str.contains("greedy").sum() >= 2
    assert table["source"].str.contains("Theorem 3.2").sum() >= 2


def test_uncovered_wins_read_from_the_aggregated_draw():
    """_wins_a2 (the cell's count, read from the pipeline's Draw) equals FixedDesign's own wins
    of the uncovered pair, for several seeds and a count that makes both outcomes occur."""
    from simulator.experiment import draw_data

    p = {**{k: v for k, v in fig8.spec("tiny").items() if k not in ("sweep", "axes")},
         "n": 1000, "n_uncovered": 5}
    fixed = fig8.design(p)
    for s in range(6):
        d = draw_data(fixed, None, s)
        assert fig8._wins_a2(d.data, d.sample_weight) == fixed.sample(s).wins[0]
