import numpy as np
import pytest

from simulator.llm.config import GroupConfig
from simulator.llm.pairs import assign_groups, assign_users, build_pairs, label_pairs

pytestmark = pytest.mark.llm

GROUPS = [GroupConfig("minority", {"pos": 0.7, "short": 0.3}),
          GroupConfig("majority", {"short": 1.0})]


def _scored(n, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append({"prompt_id": i, "prompt": f"p{i} ", "response_0": f"a{i}", "response_1": f"b{i}",
                    "traits_0": {"pos": float(g.random()), "short": float(g.random())},
                    "traits_1": {"pos": float(g.random()), "short": float(g.random())}})
    return out


def test_tie_rule_goes_to_response_0():
    s0 = np.array([0.5, 0.2, 0.9, 0.4])
    s1 = np.array([0.5, 0.3, 0.1, 0.4])
    assert label_pairs(s0, s1).tolist() == [0, 1, 0, 0]


def test_tie_rule_in_built_pairs():
    scored = _scored(50)
    for r in scored:
        r["traits_1"] = dict(r["traits_0"])  # every pair is a tie for every group
    pairs = build_pairs(scored, GROUPS, 0.3, seed=1)
    assert all(r["chosen_index"] == 0 for r in pairs)
    assert all(r["chosen"].startswith("a") for r in pairs)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_minority_proportion_within_binomial_tolerance(p):
    n = 20000
    gid = assign_groups(n, p, 2, seed=3)
    tol = 4 * np.sqrt(p * (1 - p) / n)
    assert abs((gid == 0).mean() - p) < tol


def test_three_groups_share_the_majority_mass():
    gid = assign_groups(30000, 0.1, 3, seed=0)
    frac = np.bincount(gid) / len(gid)
    assert abs(frac[0] - 0.1) < 0.01 and abs(frac[1] - 0.45) < 0.015 and abs(frac[2] - 0.45) < 0.015


def test_labels_follow_the_pairs_group():
    scored = _scored(400)
    pairs = build_pairs(scored, GROUPS, 0.5, seed=2)
    for r, s in zip(pairs, scored):
        w = GROUPS[r["group_id"]].weights
        s0 = sum(v * s["traits_0"][k] for k, v in w.items())
        s1 = sum(v * s["traits_1"][k] for k, v in w.items())
        assert r["chosen_index"] == int(s1 > s0)
        assert r["chosen"] == (s["response_1"] if s1 > s0 else s["response_0"])
        assert np.isclose(r["score_0"], s0) and np.isclose(r["score_1"], s1)
    # the two groups disagree on some pairs, so group labels matter
    assert 0 < np.mean([r["group_id"] for r in pairs]) < 1


def test_pairs_are_reproducible_and_seed_dependent():
    scored = _scored(200)
    a = build_pairs(scored, GROUPS, 0.2, seed=5)
    b = build_pairs(scored, GROUPS, 0.2, seed=5)
    c = build_pairs(scored, GROUPS, 0.2, seed=6)
    assert a == b
    assert [r["group_id"] for r in a] != [r["group_id"] for r in c]


def test_bt_noise_labels_match_sigmoid():
    n, T = 40000, 0.5
    s0, s1 = np.zeros(n), np.full(n, 0.5)
    frac = label_pairs(s0, s1, "bt", T, seed=0).mean()
    p = 1 / (1 + np.exp(-1.0))
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_synthetic_users():
    user, group_of_user = assign_users(300, 0.1, 30, 2, seed=0)
    assert np.bincount(user).tolist() == [10] * 30  # round robin
    assert (group_of_user == 0).sum() == 3  # floor(30 * 0.1)
    user, group_of_user = assign_users(100, 0.01, 30, 2, seed=0)
    assert (group_of_user == 0).sum() == 1  # at least one minority user
    pairs = build_pairs(_scored(120), GROUPS, 0.2, seed=0, n_users=12)
    for r in pairs:  # every pair of a user carries the user's group
        assert r["group_id"] == (0 if r["user_id"] < 2 else 1)


def test_eval_split_fraction():
    pairs = build_pairs(_scored(2000), GROUPS, 0.2, seed=0, eval_fraction=0.05)
    frac = np.mean([r["split"] == "eval" for r in pairs])
    assert abs(frac - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 2000)
