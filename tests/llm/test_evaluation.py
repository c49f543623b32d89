"""Win-rate arithmetic and tables on fixed fixtures."""

import numpy as np
import pytest

from simulator.llm.evaluation import format_table, paired_scores, sem, summarise, win_rate

pytestmark = pytest.mark.llm

GROUPS = ["minority", "majority"]


def _recs(scores):
    return [{"prompt_id": i, "group_scores": s} for i, s in enumerate(scores)]


GOLD = _recs([[0.5, 0.5], [0.2, 0.9], [0.7, 0.1], [0.4, 0.4]])
MAXMIN = _recs([[0.6, 0.5], [0.1, 0.95], [0.7, 0.0], [0.9, 0.3]])   # min wins: 2/4, maj: 1/4
SHARED = _recs([[0.1, 0.6], [0.3, 0.91], [0.8, 0.2], [0.5, 0.5]])   # min wins: 3/4, maj: 4/4


def test_win_rate_ties_count_half_unless_strict():
    # one win, one tie, one loss: ties count half by default (the simulator's rule, stated once
    # in simulator.fairness.paired_win_rate); ties="loss" is the papers' strict comparison
    assert win_rate([1, 2, 3], [1, 1, 4]) == pytest.approx(1.5 / 3)
    assert win_rate([1, 2, 3], [1, 1, 4], ties="loss") == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        win_rate([1, 2], [1])


def test_paired_scores_align_on_prompt_id():
    shuffled = list(reversed(MAXMIN))
    a, b = paired_scores(shuffled, GOLD, 0)
    assert win_rate(a, b, ties="loss") == 0.5  # two strict wins of four
    assert win_rate(a, b) == 0.625  # and one tie, counted half by default


def test_summarise_hand_computed():
    runs = [{"method": "gold", "p": None, "seed": 0, "records": GOLD},
            {"method": "maxmin", "p": 0.1, "seed": 0, "records": MAXMIN},
            {"method": "sharedrep", "p": 0.1, "seed": 0, "records": SHARED}]
    rows = {r["method"]: r for r in summarise(runs, GROUPS)}
    assert set(rows) == {"separate", "sharedrep", "gold"}  # "maxmin" normalised
    assert rows["separate"]["win_minority"] == pytest.approx(50.0)
    assert rows["separate"]["win_majority"] == pytest.approx(25.0)
    assert rows["sharedrep"]["win_minority"] == pytest.approx(75.0)
    assert rows["sharedrep"]["win_majority"] == pytest.approx(100.0)
    assert rows["separate"]["mean_minority"] == pytest.approx(np.mean([0.6, 0.1, 0.7, 0.9]))
    assert rows["gold"]["mean_majority"] == pytest.approx(np.mean([0.5, 0.9, 0.1, 0.4]))
    assert rows["gold"]["sem_minority"] == pytest.approx(sem([0.5, 0.2, 0.7, 0.4]))
    assert "win_minority" not in rows["gold"]


def test_summarise_averages_win_rates_over_seeds():
    runs = [{"method": "gold", "p": None, "seed": 0, "records": GOLD},
            {"method": "gold", "p": None, "seed": 1, "records": MAXMIN},
            {"method": "sharedrep", "p": 0.2, "seed": 0, "records": SHARED},   # vs GOLD: 75 %
            {"method": "sharedrep", "p": 0.2, "seed": 1, "records": GOLD}]     # vs MAXMIN: 25 %
    row = summarise(runs, GROUPS)[0]
    assert row["method"] == "sharedrep"
    assert row["win_minority"] == pytest.approx((75.0 + 25.0) / 2)


def test_table_layout_and_bold_winner():
    runs = [{"method": "gold", "p": None, "seed": 0, "records": GOLD},
            {"method": "maxmin", "p": 0.1, "seed": 0, "records": MAXMIN},
            {"method": "sharedrep", "p": 0.1, "seed": 0, "records": SHARED},
            {"method": "maxmin", "p": 0.2, "seed": 0, "records": SHARED},
            {"method": "sharedrep", "p": 0.2, "seed": 0, "records": MAXMIN}]
    table = format_table(summarise(runs, GROUPS), GROUPS)
    lines = table.splitlines()
    assert lines[0].startswith("| p | Mean minority score")
    assert "minority win rate %" in lines[0] and "majority win rate %" in lines[0]
    assert lines[2] == ("|  | MaxMin | SharedRep | Gold | MaxMin | SharedRep | Gold | MaxMin | "
                        "SharedRep | MaxMin | SharedRep |")
    row01 = lines[3].split(" | ")
    assert row01[0] == "| 0.1"
    assert row01[-4:] == ["50.00", "**75.00**", "25.00", "**100.00** |"]
    assert len(lines) == 5


def test_plot_writes_file(tmp_path):
    pytest.importorskip("matplotlib")
    from simulator.llm.evaluation import plot_scores_vs_p

    runs = [{"method": "gold", "p": None, "seed": 0, "records": GOLD},
            {"method": "maxmin", "p": 0.1, "seed": 0, "records": MAXMIN},
            {"method": "maxmin", "p": 0.2, "seed": 0, "records": SHARED}]
    plot_scores_vs_p(summarise(runs, GROUPS), GROUPS, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_mean_ci_known_answer_and_coverage():
    from simulator.llm.evaluation import mean_ci

    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t_{2, 0.975} * s / sqrt(n), s = 1
    assert m == 2.0 and lo == pytest.approx(2.0 - half) and hi == pytest.approx(2.0 + half)
    assert np.isnan(mean_ci([5.0])[1])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)
    # coverage of the true mean by the 95% t interval with n = 4 normal draws: 2,000 seeded
    # intervals, binomial SD of the hit rate 0.5 %, so +-2 points is > 4 SD
    g = np.random.default_rng(0)
    hits = [lo <= 1.0 <= hi for lo, hi in (mean_ci(g.normal(1.0, 3.0, 4))[1:] for _ in range(2000))]
    assert abs(np.mean(hits) - 0.95) < 0.02


def test_seed_summary_pairs_the_difference_by_seed():
    from simulator.llm.evaluation import format_seed_summary, seed_summary, seed_win_rates

    runs = [{"method": "gold", "p": None, "seed": 0, "records": GOLD},
            {"method": "gold", "p": None, "seed": 1, "records": MAXMIN},
            {"method": "maxmin", "p": 0.1, "seed": 0, "records": MAXMIN},    # vs GOLD: 50 / 25
            {"method": "maxmin", "p": 0.1, "seed": 1, "records": SHARED},    # vs MAXMIN
            {"method": "sharedrep", "p": 0.1, "seed": 0, "records": SHARED},  # vs GOLD: 75 / 100
            {"method": "sharedrep", "p": 0.1, "seed": 1, "records": GOLD}]   # vs MAXMIN
    per_seed = seed_win_rates(runs, GROUPS)
    assert len(per_seed) == 4 and {r["method"] for r in per_seed} == {"separate", "sharedrep"}
    win = {(r["method"], r["seed"]): r["win_minority"] for r in per_seed}
    assert win[("separate", 0)] == 50.0 and win[("sharedrep", 0)] == 75.0
    # seed 1 against MAXMIN: SHARED wins prompts 1 and 2 strictly, GOLD prompt 1 (2: a tie)
    assert win[("separate", 1)] == 50.0 and win[("sharedrep", 1)] == 25.0
    rows = {r["method"]: r for r in seed_summary(per_seed, GROUPS)}
    diff = rows["separate - sharedrep"]
    assert diff["n_seeds"] == 2
    assert diff["win_minority"] == pytest.approx(((50 - 75) + (50 - 25)) / 2)
    from simulator.llm.evaluation import mean_ci

    assert (diff["low_minority"], diff["high_minority"]) == pytest.approx(
        mean_ci([50 - 75, 50 - 25])[1:])
    text = format_seed_summary(list(rows.values()), GROUPS)
    assert "MaxMin - SharedRep" in text and "95% CI" in text
