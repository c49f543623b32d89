"""Figure 6 (EM cluster recovery) at the tiny size through the real sweep engine."""

import io

import numpy as np
import pandas as pd

import theory
from figures import fig6_em as fig6
from figures import runner
from simulator.seeding import derive_seed_sequence


def test_spec_protocol():
    for size in ("tiny", "quick", "full"):
        sp = fig6.spec(size)
        assert runner.sweep_spec(sp) is sp  # already the sweep engine's format
        assert sp["sweep"]["name"] == fig6.NAME == "fig6"
        assert sp["sweep"]["task"] == "figures.fig6_em:cell"
        assert set(sp["axes"]) == {"angle_deg", "eta"}
        assert set(sp["sweep"]["seed_ignore"]) <= set(sp["axes"])
        assert sp["sweep"]["replicates"] >= 3


def test_make_data_gives_every_user_m_comparisons():
    p = {"d": 4, "signal": 2.0, "users": 20, "m": 7, "eta": 0.25, "angle_deg": 60}
    pop, data, ug = fig6.make_data(p, derive_seed_sequence(0, "x", 0))
    assert data.n == 20 * 7 and data.n_users == 20
    assert (data.user_counts() == 7).all()
    assert ug.sum() == 15  # 5 minority users in group 0
    assert (data.user_group[data.user] == data.group).all()
    assert np.isclose(np.degrees(np.arccos(pop.theta[0] @ pop.theta[1]
                                           / np.linalg.norm(pop.theta, axis=1).prod())), 60)


def test_cell_returns_scalars_and_monotone_iterations():
    p = {"d": 4, "signal": 2.0, "users": 12, "m": 15, "eta": 0.5, "angle_deg": 90}
    out = fig6.cell(p, derive_seed_sequence(0, "y", 0))
    assert all(np.isscalar(v) for v in out.values())
    for v in fig6.VARIANTS:
        assert -1.0 <= out[f"{v}_ari"] <= 1.0
        assert out[f"{v}_ari_it{fig6.T_MAX}"] == out[f"{v}_ari"] or out[f"{v}_n_iter"] > fig6.T_MAX
        assert out[f"{v}_max_obj_drop"] >= 0.0
        assert out[f"{v}_err_minority"] >= 0.0


def test_fig6_tiny_writes_files_and_claims(tmp_path, tiny_sweep):
    df = tiny_sweep(fig6)
    claims = runner.analyse(fig6, df, tmp_path)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig6.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig6.csv")
    # the CSV is points(df), written as it is (a round trip through CSV on both sides)
    pd.testing.assert_frame_equal(pts, pd.read_csv(io.StringIO(fig6.points(df).to_csv(index=False))))
    assert len(fig6.claims(df)) == len(claims)
    assert {"panel", "series", "metric", "x_name", "x", "mean", "q10", "q90",
            "n_seeds"} <= set(pts.columns)
    assert set(pts["panel"]) == set("abcdef")
    assert set(pts["series"]) == set(fig6.VARIANTS)
    assert (pts["q10"] <= pts["mean"] + 1e-12).all() and (pts["mean"] <= pts["q90"] + 1e-12).all()
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(c.figure == "fig6" and not c.verified and c.source for c in claims)
    # 2 separation + 2 x 2 (variant x eta) ARI levels + 4 paired ARI/error + 1 + 2 monotone
    assert len(claims) == 2 + 2 * 2 + 4 + 1 + 2
    table = theory.claims_table(claims)
    assert list(table.columns) == list(theory.COLUMNS)
