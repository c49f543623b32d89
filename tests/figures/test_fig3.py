"""Figure 3 (MaxMin policy from estimated rewards) at the tiny size: cell + analyse, files, claims."""

import numpy as np
import pandas as pd

import theory
from figures import fig3_policy as fig3


def test_spec_protocol():
    for size in ("tiny", "quick", "full"):
        sp = fig3.spec(size)
        assert sp["name"] == fig3.NAME == "fig3"
        assert sp["task"] == "figures.fig3_policy:cell"
        assert {"regime", "eta"} == set(sp["axes"])
        assert "binding" in sp["axes"]["regime"]


def test_fig3_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig3)
    num = df.select_dtypes("number")
    assert np.isfinite(num.to_numpy()).all()
    # the planted regimes do what they say: minority spanned by the others, binding or not
    assert df["spanned"].all()
    assert df.loc[df["regime"] == "binding", "minority_binding"].all()
    assert not df.loc[df["regime"] == "nonbinding", "minority_binding"].any()
    assert df["gold_certified"].all()
    # suboptimality is >= 0 (up to the solver tolerance) and the error split is Pythagorean
    for est in fig3.ESTIMATORS:
        for obj in fig3.OBJECTIVES:
            assert (df[f"subopt_{est}_{obj}"] >= -1e-6).all()
            assert df[f"wr_min_{est}_{obj}"].between(0, 1).all()
        np.testing.assert_allclose(df[f"err_{est}_inside"] ** 2 + df[f"err_{est}_outside"] ** 2,
                                   df[f"err_{est}_total"] ** 2, rtol=1e-8)

    claims = fig3.analyse(df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig3.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig3.csv")
    assert {"regime", "series", "eta", "mean", "q10", "q90", "n_seeds"} <= set(pts.columns)
    series = set(pts["series"])
    for est in fig3.ESTIMATORS:
        for obj in fig3.OBJECTIVES:
            assert {f"subopt_{est}_{obj}", f"minu_{est}_{obj}", f"wr_min_{est}_{obj}"} <= series
    assert {"err_separate_inside", "err_separate_outside", "err_sharedrep_inside",
            "err_sharedrep_outside", "gold_value", "gold_pw_subopt"} <= series
    assert claims and all(isinstance(c, theory.ClaimResult) for c in claims)
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)
    assert all(c.figure == "fig3" for c in claims)
    table = theory.claims_table(claims)
    assert table["quantity"].str.contains("SharedRep - Separate").sum() >= 3
    assert table["quantity"].str.contains("nonbinding").any()
