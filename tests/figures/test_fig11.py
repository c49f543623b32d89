"""Figure 11 (protocol 2 across its range): spec, claims on planted gaps, points, tiny sweep."""

import pandas as pd
import pytest

from figures import FIGURES, runner
from figures import fig9_arena as fig9
from figures import fig11_many_users as fig11
from simulator import arena


def test_spec_and_registration():
    assert FIGURES["fig11"] == "figures.fig11_many_users"
    for size in ("tiny", "quick", "full"):
        sp = fig11.spec(size)
        assert runner.sweep_spec(sp) is sp and sp["size"] == size
        assert sp["sweep"]["task"] == "figures.fig11_many_users:cell"
        assert set(sp["axes"]) == {"alpha"} and set(sp["zip"][0]) == {"N", "n"}
    full = fig11.spec("full")
    pairs = set(zip(full["zip"][0]["N"], full["zip"][0]["n"]))
    # issue 14's ranges: 200-10,000 users, 5-50 comparisons each, concentrations 0.1 and 1
    assert pairs == {(N, n) for N in (200, 1000, 10000) for n in (5, 20, 50)}
    assert full["axes"]["alpha"] == [0.1, 1.0]


def test_setting_is_the_arena_size_with_the_grid_point():
    p = fig11.setting("quick", 0.1, 200, 5)
    assert p["n_users"] == 200 and p["n_per"] == 5 and p["alpha"] == 0.1
    assert p["d"] == arena.SIZES["quick"]["d"] and "seeds" not in p


def _fake_df():
    # (N = 10, n = 5): ours ahead by 0.02 on seen users, behind by 0.05 on new users after 5 shots
    rows = []
    for r in range(4):
        eps = 1e-3 * r
        for n, lead in ((5, 0.02), (20, -0.1)):
            rows.append({"size": "tiny", "alpha": 1.0, "N": 10, "n": n, "replicate": r,
                         "SharedRep.accuracy": 0.70 + lead + 0.5 * eps, "LoRe.accuracy": 0.70,
                         "SharedRep.new_accuracy_5": 0.60, "LoRe.new_accuracy_5": 0.65 + eps,
                         "OracleB.accuracy": 0.9})
    return pd.DataFrame(rows)


def test_claims_verdicts_on_planted_gaps():
    res = {c.quantity: c for c in fig11.claims(_fake_df())}
    assert len(res) == 4  # two grid points x (seen, new after 5 shots: fewest = most)
    seen = res["many_users (alpha = 1, N = 10, n = 5): seen users, held-out pairs, our best - "
               "best peer accuracy"]
    new = res["many_users (alpha = 1, N = 10, n = 5): new users after 5 shots, our best - best "
              "peer accuracy"]
    far = res["many_users (alpha = 1, N = 10, n = 20): seen users, held-out pairs, our best - "
              "best peer accuracy"]
    assert seen.measured == pytest.approx(0.02 + 0.00075) and seen.verdict == "holds"
    assert new.measured == pytest.approx(-0.05 - 0.0015) and new.verdict == "does not hold"
    assert far.verdict == "does not hold"
    assert seen.source == fig9.SOURCE.cite() and seen.source_kind == "project target"


def test_points_and_references():
    pts = fig11.points(_fake_df())
    c = pts[(pts.n == 5) & (pts.method == "LoRe") & (pts.metric == "accuracy")]
    assert c["mean"].item() == pytest.approx(0.70) and c["ci"].item() == pytest.approx(0.0)
    assert set(pts.side) == {"ours", "peer", "reference"}


@pytest.mark.slow
def test_tiny_sweep(tiny_sweep, tmp_path):
    df = tiny_sweep(fig11)
    pairs, alphas, seeds = fig11.GRIDS["tiny"]
    assert len(df) == len(pairs) * len(alphas) * seeds
    for c in [c for c in df.columns if "accuracy" in c]:
        v = df[c].dropna()
        assert ((v >= 0) & (v <= 1)).all()
    assert (df["truth.accuracy"] > 0.5).all()
    assert df.filter(like="fit_mb").isna().all().all()  # fig11 does not trace memory
    res = runner.analyse(fig11, df, tmp_path)
    assert len(res) == len(pairs) * len(alphas) * 2  # seen, and new after 5 shots
    assert (tmp_path / "fig11.png").exists() and (tmp_path / "fig11.csv").exists()
