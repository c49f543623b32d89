"""Figure 9 (the arena) at the tiny size, and the arena's summary helpers on known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from figures import FIGURES, runner
from figures import fig9_arena as fig9
from simulator import arena
from simulator.data import PreferenceData


def test_spec_protocol_and_registration():
    assert FIGURES["fig9"] == "figures.fig9_arena"
    for size in ("tiny", "quick", "full"):
        sp = fig9.spec(size)
        assert runner.sweep_spec(sp) is sp
        assert sp["sweep"]["task"] == "figures.fig9_arena:cell"
        assert sp["axes"]["setting"] == list(range(len(arena.protocol_grid(size))))
        assert {p for p, _ in arena.protocol_grid(size)} == set(arena.PROTOCOLS)


def test_t_interval_known_answer():
    v = [1.0, 2.0, 4.0]
    m, h = arena.t_interval(v)
    assert m == pytest.approx(7 / 3)
    assert h == pytest.approx(stats.t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3), rel=1e-12)
    assert np.isnan(arena.t_interval([3.0])[1]) and arena.t_interval([3.0])[0] == 3.0


def test_unit_accuracy_known_answer():
    # two units, theta = +e1 / -e1; four comparisons, three ranked as labelled, one tie (half)
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    data = PreferenceData(X=X, y=np.array([1, 0, 1, 1]), group=np.array([0, 0, 1, 1]))
    theta = np.array([[1.0, 0.0], [-1.0, 0.0]])
    acc, worst = arena.unit_accuracy(theta, data.group, data)
    # unit 0: right, wrong; unit 1: wrong, tie -> 1.5 / 4 overall; groups 0.5 and 0.25
    assert acc == pytest.approx(1.5 / 4) and worst == pytest.approx(0.25)


def _fake_df():
    # setting 0 (groups_minority): ours beat the peers by 0.02 every replicate -> holds;
    # setting 2 (many_users): ours lose by 0.05 every replicate (+- noise) -> does not hold
    rows = []
    for r in range(4):
        eps = 1e-3 * r
        rows.append({"size": "tiny", "setting": 0, "replicate": r, "SharedRep.accuracy": 0.75,
                     "LoRe.accuracy": 0.73 + eps, "VPL.accuracy": 0.70})
        rows.append({"size": "tiny", "setting": 2, "replicate": r, "SharedRep.accuracy": 0.70,
                     "LoRe.accuracy": 0.75 + eps})
    return pd.DataFrame(rows)


def test_claims_verdicts_on_planted_gaps():
    res = {c.quantity.split(":")[0]: c for c in fig9.claims(_fake_df())}
    assert len(res) == 2
    hold = next(c for q, c in res.items() if q.startswith("groups_minority"))
    fail = next(c for q, c in res.items() if q.startswith("many_users"))
    assert hold.measured == pytest.approx(0.02 - 0.0015) and hold.verdict == "holds"
    assert fail.measured == pytest.approx(-0.05 - 0.0015) and fail.verdict == "does not hold"
    assert not hold.verified and hold.source == fig9.SOURCE.cite()
    assert hold.source_kind == "project target" and hold.source.startswith("issue #14")


def test_points_table_cells():
    pts = fig9.points(_fake_df())
    cell = pts[(pts.setting == 0) & (pts.method == "SharedRep") & (pts.metric == "accuracy")]
    assert cell["mean"].item() == pytest.approx(0.75) and cell["ci"].item() == pytest.approx(0.0)
    assert set(pts[pts.setting == 0].side) == {"ours", "peer"}


@pytest.mark.slow
def test_tiny_sweep_runs_every_protocol(tiny_sweep, tmp_path):
    df = tiny_sweep(fig9)
    assert len(df) == len(arena.protocol_grid("tiny")) * arena.SIZES["tiny"]["seeds"]
    for c in [c for c in df.columns if c.endswith(".accuracy")]:
        v = df[c].dropna()  # a probability; above chance for a fitted reward on planted BT data
        assert ((v >= 0) & (v <= 1)).all()
    assert (df["truth.accuracy"].dropna() > 0.5).all()
    res = runner.analyse(fig9, df, tmp_path)
    assert len(res) == sum(p != "policy_level" for p, _ in arena.protocol_grid("tiny"))
    assert (tmp_path / "fig9.png").exists()
