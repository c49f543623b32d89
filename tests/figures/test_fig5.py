"""Figure 5 (SharedRep k ablation) at the tiny size through the real sweep engine."""

import numpy as np
import pandas as pd
import pytest

import theory
from figures import fig5_k_ablation, runner


def test_fig5_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig5_k_ablation)
    claims = runner.analyse(fig5_k_ablation, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig5.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig5.csv")
    assert {"eta", "k_fit", "k_true", "err_min_mean", "err_min_q10", "err_min_q90",
            "errmean_mean", "separate_min_mean", "oracle_min_mean", "argmin_count",
            "sharedrep_rate_fit", "spanned", "n_seeds"} <= set(pts.columns)
    axes = fig5_k_ablation.spec("tiny")["axes"]
    assert len(pts) == len(axes["eta"]) * len(axes["k_fit"])
    pd.testing.assert_frame_equal(pts, fig5_k_ablation.points(df), check_dtype=False)
    # argmin counts over k add up to the number of replicates at each eta
    assert (pts.groupby("eta")["argmin_count"].sum() == pts.groupby("eta")["n_seeds"].first()).all()
    # the rate is drawn only for k >= true k
    assert pts.loc[pts["k_fit"] < pts["k_true"], "sharedrep_rate_fit"].isna().all()
    assert pts.loc[pts["k_fit"] >= pts["k_true"], "sharedrep_rate_fit"].notna().all()
    assert pts["spanned"].all()
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)
    assert len(claims) == 4 * len(axes["eta"])


def test_fig5_reference_estimators_do_not_depend_on_k():
    """k_fit is in seed_ignore: every k sees the same data, so the comparisons are paired."""
    spec = fig5_k_ablation.spec("tiny")
    assert {"k_fit", "eta"} <= set(spec["sweep"]["seed_ignore"])
    base = {**{k: v for k, v in spec.items() if k not in ("sweep", "axes")}, "eta": 0.1}
    a = fig5_k_ablation.cell({**base, "k_fit": 1}, np.random.SeedSequence(3))
    b = fig5_k_ablation.cell({**base, "k_fit": 2}, np.random.SeedSequence(3))
    assert a["err_separate"] == b["err_separate"] and a["err_oracle"] == b["err_oracle"]
    # k_fit < true k cannot contain span(B): sin theta is 1 up to rounding
    assert a["sin_theta"] == pytest.approx(1.0, abs=1e-12)
