"""Figure 10 (reward heads on real-text features) at the tiny size: the design is the generated
HH-style file embedded by the tiny GPT-2 (no download), injected into the figure's design cache;
the sweep runs serially in-process through the real engine."""

import io

import numpy as np
import pandas as pd
import pytest

from figures import FIGURES
from figures import fig10_real_features as fig10
from figures.runner import analyse, sweep_spec
from simulator.llm import hh_features as hh
from simulator.llm import real_groups as rg

pytestmark = pytest.mark.llm


@pytest.fixture
def injected(tmp_path, tiny, monkeypatch):
    _model, _tok, folder = tiny
    path = hh.write_tiny_hh(tmp_path / "tiny.jsonl.gz", n=120, seed=1)
    sp = fig10.spec("tiny")
    design = rg.RealDesign.from_source(path, encoder=str(folder), max_length=64, d=sp["d"])
    monkeypatch.setitem(fig10._DESIGNS, (sp["d"], sp["n_pairs"]), design)
    return design


def test_registration_and_skip_reason(monkeypatch):
    assert FIGURES["fig10"] == "figures.fig10_real_features"
    for size in ("tiny", "quick", "full"):
        sp = fig10.spec(size)
        assert sweep_spec(sp) is sp  # already the sweep engine's format
        assert sp["sweep"]["name"] == fig10.NAME and set(sp["axes"]) == {"p"}
        assert sp["sweep"]["task"] == "figures.fig10_real_features:cell"
    monkeypatch.setenv("PLURALRLHF_HH_PATH", "/nonexistent/hh.jsonl.gz")
    assert "fig10 skipped" in fig10.available()


def test_main_job_skips_fig10_with_one_line(monkeypatch, tmp_path):
    from figures.runner import run_figures

    monkeypatch.setenv("PLURALRLHF_HH_PATH", "/nonexistent/hh.jsonl.gz")
    lines = []
    table = run_figures(["fig10"], tmp_path, size="tiny", echo=lines.append, progress=False)
    assert len(table) == 0 and any("fig10 skipped" in ln for ln in lines)


def test_fig10_tiny_writes_the_table_and_claims(injected, tmp_path):
    from simulator.sweep import run_sweep

    df = run_sweep(fig10.spec("tiny"), tmp_path / "sweep", executor="serial", progress=False)
    assert (df["status"] == "ok").all()
    claims = analyse(fig10, df, tmp_path)
    assert len(claims) == 4 and all(c.figure == "fig10" for c in claims)
    assert [c.measured for c in fig10.claims(df)] == [c.measured for c in claims]

    table = pd.read_csv(tmp_path / "fig10.csv")
    # the CSV is points(df), written as it is (a round trip through CSV on both sides)
    pd.testing.assert_frame_equal(table, pd.read_csv(io.StringIO(
        fig10.points(df).to_csv(index=False))))
    # the accuracy means are the seeds' means of the sweep's own columns
    minority = table[(table["method"] == "separate") & (table["group"] == 0)].sort_values("p")
    np.testing.assert_allclose(minority["accuracy_mean"],
                               df.groupby("p")["acc|separate|0"].mean().sort_index(), rtol=1e-12)
    assert set(table["method"]) == set(fig10.PLOTTED)
    assert set(table["p"]) == set(fig10.spec("tiny")["axes"]["p"])
    for col in ("accuracy_mean", "logloss_mean", "winrate_exact_mean",
                "winrate_algorithm1_mean", "winrate_pointwise_mean"):
        assert table[col].between(0, np.inf).all() and table[col].notna().all()
    assert table["winrate_exact_mean"].between(0, 1).all()
    assert (tmp_path / "fig10.png").exists()


def test_gold_policy_from_the_true_scores_wins_half(injected):
    # the policy computed from the TRUE scores is the gold policy, so its win rate is exactly
    # 1/2 for every group and objective (ties count half): the policy layer's fixed point
    env, truth = rg.policy_env(injected, np.arange(30))
    from simulator.fairness import win_rate
    from simulator.policy import maxmin_from_rewards

    for obj in rg.POLICY_OBJECTIVES:
        pi = maxmin_from_rewards(env, truth, 1.0, obj, warn=False).pi
        np.testing.assert_allclose(win_rate(env, pi, pi, rewards=truth), 0.5, atol=1e-12)
