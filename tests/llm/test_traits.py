import numpy as np
import pytest

from simulator.llm.config import GroupConfig, TraitConfig
from simulator.llm.traits import (
    TraitPanel,
    extract_answer,
    group_scores,
    make_scorer,
    normalise_scores,
)

pytestmark = pytest.mark.llm


def test_length_and_conciseness():
    cfg = TraitConfig(name="c", kind="length", unit="words", max_length=4, invert=True)
    raw = make_scorer(cfg)(["p"] * 3, ["one", "one two", "a b c d e f"], None)
    np.testing.assert_allclose(raw, [0.25, 0.5, 1.0])
    scores, stats = normalise_scores(cfg, raw)
    np.testing.assert_allclose(scores, [0.75, 0.5, 0.0])
    assert stats == {}


def test_sigmoid_zscore_then_invert():
    cfg = TraitConfig(name="c", kind="length", unit="words", max_length=10**6,
                      normalise="sigmoid_zscore", mean=10.0, std=5.0, invert=True)
    raw = make_scorer(cfg)(["p"] * 2, [" ".join(["w"] * 10), " ".join(["w"] * 15)], None)
    np.testing.assert_allclose(raw, [10, 15])
    scores, stats = normalise_scores(cfg, raw)
    np.testing.assert_allclose(scores, [0.5, 1 - 1 / (1 + np.exp(-1))])
    assert stats == {"mean": 10.0, "std": 5.0}


def test_vader_orders_sentiment():
    pytest.importorskip("vaderSentiment")
    s = make_scorer(TraitConfig(name="s", kind="vader"))(
        ["", ""], ["I loved this wonderful film.", "Boring plot and awful acting."], None)
    assert s[0] > 0.5 > s[1] and ((0 <= s) & (s <= 1)).all()


@pytest.mark.parametrize("text, ans", [
    ("so \\boxed{42} done", "42"), ("work\n#### 1,234", "1234"), ("The answer is 7.", "7"),
    ("Final answer: -3", "-3"), ("3 apples and 5 pears", "5"), ("no number", None),
])
def test_gsm8k_answer_extraction(text, ans):
    assert extract_answer(text) == ans


def test_correctness_scorer():
    f = make_scorer(TraitConfig(name="c", kind="gsm8k_correctness"))
    out = f(["q", "q", "q"], ["#### 72", "#### 71", "it is 72.0"],
            [{"reference": "72"}, {"reference": "72"}, {"reference": "72"}])
    assert out.tolist() == [1.0, 0.0, 1.0]


def test_group_scores_are_convex_combinations():
    groups = [GroupConfig("minority", {"a": 0.7, "b": 0.3}), GroupConfig("majority", {"b": 1.0})]
    S = group_scores({"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}, groups)
    np.testing.assert_allclose(S, [[0.7, 0.3], [0.0, 1.0]])


def test_panel_estimates_and_reuses_stats():
    cfg = TraitConfig(name="len", kind="length", unit="chars", max_length=100,
                      normalise="sigmoid_zscore")
    panel = TraitPanel([cfg])
    first = panel.score(["", ""], ["ab", "abcd"])["len"]
    np.testing.assert_allclose(first, [1 / (1 + np.e), 1 / (1 + np.exp(-1))])
    again = panel.score([""], ["abc"])["len"]  # same stats: mean 3 -> sigmoid(0)
    np.testing.assert_allclose(again, [0.5])
