"""Figure 4 (single-reward impossibility) at the tiny size: cell + analyse, files and claims."""

import io

import numpy as np
import pandas as pd

import theory
from figures import fig4_impossibility as fig4
from figures import runner


def test_spec_protocol():
    for size in ("tiny", "quick", "full"):
        sp = fig4.spec(size)
        assert runner.sweep_spec(sp) is sp  # already the sweep engine's format
        assert sp["sweep"]["name"] == fig4.NAME == "fig4"
        assert sp["sweep"]["task"] == "figures.fig4_impossibility:cell"
        assert set(sp["axes"]) == {"angle_deg", "eta"}
        assert set(sp["sweep"]["seed_ignore"]) == set(sp["axes"])  # common random numbers


def test_fig4_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig4)
    sp = fig4.spec("tiny")
    assert np.isfinite(df.select_dtypes("number").to_numpy()).all()
    assert df["converged"].all()
    # gaps are >= 0; the exact identity F_u(pi*_u) - F_u(pi) = beta E KL is used at beta = 1
    gap_cols = [c for c in df if c.startswith("gap_")]
    assert (df[gap_cols] >= -1e-9).all().all()
    i_beta1 = fig4.BETA_SCAN.index(1.0)
    np.testing.assert_allclose(df[f"gap_pop_b{i_beta1}"], df["gap_pop"], rtol=1e-6, atol=1e-10)
    # diversity grows with the angle (same env per replicate: common random numbers)
    e = df.groupby("angle_deg")["epsilon"].mean()
    assert e.is_monotonic_increasing

    # the cell's Theorem 1 constants are the environment's (module docstring conventions)
    assert (df["L_pi"] == 2 * df["D"]).all() and (df["lambda_psi"] > 0).all()
    # the groups always differ (angle > 0), so phi* is never group u's own parameter
    assert (df["mismatch_pop"] > 0).all()

    claims = runner.analyse(fig4, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig4.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig4.csv")
    # the CSV is points(df), written as it is (a round trip through CSV on both sides)
    pd.testing.assert_frame_equal(pts, pd.read_csv(io.StringIO(fig4.points(df).to_csv(index=False))))
    assert len(fig4.claims(df)) == len(claims) == 14
    assert {"panel", "series", "eta", "angle_deg", "epsilon", "mean", "q10", "q90", "bound",
            "n_seeds", "beta"} <= set(pts.columns)
    assert set(pts["panel"]) == {"gap_vs_epsilon", "gap_vs_eta", "lemma1", "gap_vs_beta"}
    n_pts = len(sp["axes"]["angle_deg"]) * len(sp["axes"]["eta"])
    assert (pts["panel"] == "lemma1").sum() == n_pts
    assert claims and all(isinstance(c, theory.ClaimResult) for c in claims)
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)  # nothing in the notes is verified
    assert all(c.figure == "fig4" for c in claims)
    table = theory.claims_table(claims)
    assert list(table.columns) == list(theory.COLUMNS)
    # Lemma 1 and the exponent rows are present
    assert table["quantity"].str.contains("Lemma 1").any()
    assert table["quantity"].str.contains("exponent").sum() == 4
