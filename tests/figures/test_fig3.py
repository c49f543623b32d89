"""Figure 3 (MaxMin policy from estimated rewards) at the tiny size: cell + analyse, files, claims."""

import numpy as np
import pandas as pd
import pytest

import theory
from figures import fig3_policy as fig3
from figures import runner


def test_spec_protocol():
    for size in ("tiny", "quick", "full"):
        sp = fig3.spec(size)
        assert sp["sweep"]["name"] == fig3.NAME == "fig3"
        assert sp["sweep"]["task"] == "figures.fig3_policy:cell"
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

    claims = runner.analyse(fig3, df, tmp_path)
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
    pd.testing.assert_frame_equal(pts, fig3.points(df), check_dtype=False)
    # the second regime (nonbinding): its planted minority binds in no replicate
    frac = pts.loc[pts["series"] == "minority_binding_frac", "mean"]
    assert (frac == 0.0).all()
    assert claims and all(isinstance(c, theory.ClaimResult) for c in claims)
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)
    assert all(c.figure == "fig3" for c in claims)
    table = theory.claims_table(claims)
    assert table["quantity"].str.contains("SharedRep - Separate").sum() >= 3
    assert table["quantity"].str.contains("nonbinding").any()


def test_fig3_planted_regime_must_match_k():
    sp = fig3.spec("tiny")
    params = {**{k: v for k, v in sp.items() if k not in ("sweep", "axes")},
              "regime": "binding", "eta": 0.1, "k": 3}
    with pytest.raises(ValueError, match="plants k = 2"):
        fig3.cell(params, np.random.SeedSequence(0))
