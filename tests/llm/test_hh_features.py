"""Real dialogue pairs as a design (simulator/llm/hh_features.py, real_groups.py).

The encoder is the tiny GPT-2 of the LLM tests (a local folder spec, built from a config); the
data are the project's HH-RLHF copy when ../shared is present and a generated file otherwise.
"""

import numpy as np
import pytest

from simulator.llm import hh_features as hh
from simulator.llm import real_groups as rg

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def hh_file(tmp_path_factory):
    return hh.write_tiny_hh(tmp_path_factory.mktemp("hh") / "tiny.jsonl.gz", n=80, seed=0)


@pytest.fixture(scope="module")
def design(hh_file, tiny):
    _model, _tok, folder = tiny
    return rg.RealDesign.from_source(hh_file, encoder=str(folder), max_length=64, d=8)


def test_loader_reads_the_shared_copy_or_the_generated_file(hh_file):
    path = hh.shared_hh_path()
    if path is not None:  # the project's copy: the 2,312 harmless-base test pairs
        rows = hh.load_hh_pairs(path)
        assert len(rows) == 2312
        assert all(r["chosen"] != r["rejected"] for r in rows[:50])
    rows = hh.load_hh_pairs(hh_file)
    assert len(rows) == 80 and hh.load_hh_pairs(hh_file, n=5) == rows[:5]
    with pytest.raises(ValueError, match="does not exist"):
        hh.load_hh_pairs(str(hh_file) + ".missing.jsonl")


def test_pair_order_is_a_seeded_coin_and_the_human_label_follows_it(hh_file):
    rows = hh.load_hh_pairs(hh_file)
    P = hh.HHPairs.from_rows(rows, order_seed=3)
    for i, r in enumerate(rows):
        assert (P.texts1[i] == r["chosen"]) == bool(P.human[i])
        assert {P.texts0[i], P.texts1[i]} == {r["chosen"], r["rejected"]}
    assert 0.2 < P.human.mean() < 0.8  # a fair coin over 80 pairs
    np.testing.assert_array_equal(hh.HHPairs.from_rows(rows, order_seed=3).human, P.human)


def test_final_turn_and_traits_known_answers():
    d = "\n\nHuman: hi\n\nAssistant: first\n\nHuman: more\n\nAssistant:  I love this great day "
    assert hh.final_turn(d) == "I love this great day"
    t = hh.trait_scores([d, "\n\nHuman: x\n\nAssistant: This is awful and terrible."])
    assert t["concise"][0] == pytest.approx(-np.log(6.0))  # five words
    assert t["sentiment"][0] > 0.5 > -0.5 > t["sentiment"][1]


def test_group_labels_rules():
    human = np.array([1, 0, 1, 0], dtype=np.int8)
    t0 = {"sentiment": np.array([0.0, 0.5, 0.2, 0.1]), "concise": np.array([-1.0, -2.0, -3.0, -1.0])}
    t1 = {"sentiment": np.array([0.9, 0.1, 0.2, 0.1]), "concise": np.array([-2.0, -1.0, -3.0, -1.0])}
    groups = (hh.TraitGroup("pos", {"sentiment": 1.0}), hh.TraitGroup("human"),
              hh.TraitGroup("short", {"concise": 1.0}))
    L = hh.group_labels(groups, human, t0, t1, seed=0)
    np.testing.assert_array_equal(L[0], [1, 0, 0, 0])  # ties (pairs 2, 3) go to response 0
    np.testing.assert_array_equal(L[1], human)
    np.testing.assert_array_equal(L[2], [0, 1, 0, 0])
    # BT labels at a tiny temperature are the deterministic ones off ties; seeded
    bt = (hh.TraitGroup("pos", {"sentiment": 1.0}, temperature=1e-6),)
    a = hh.group_labels(bt, human, t0, t1, seed=5)
    np.testing.assert_array_equal(a[0, :2], [1, 0])
    np.testing.assert_array_equal(a, hh.group_labels(bt, human, t0, t1, seed=5))
    with pytest.raises(ValueError, match="weights must name traits"):
        hh.TraitGroup("bad", {"rudeness": 1.0})
    with pytest.raises(ValueError, match="temperature"):
        hh.TraitGroup("bad", {"concise": 1.0}, temperature=-1.0)


def test_embeddings_are_cached_and_keep_the_end_of_long_dialogues(tiny, tmp_path, monkeypatch):
    _model, _tok, folder = tiny
    tail = " the same final answer"
    long_a = "alpha " * 200 + tail
    long_b = "beta gamma " * 200 + tail
    E = hh.embed_texts([long_a, long_b, "short"], encoder=str(folder), max_length=16,
                       cache_dir=tmp_path)
    assert E.shape[0] == 3 and np.all(np.isfinite(E))
    # left truncation: beyond 16 tokens both texts are their (identical) endings
    np.testing.assert_allclose(E[0], E[1], atol=1e-10)
    assert not np.allclose(E[0], E[2])
    # a second call reads the cache without loading the model
    import simulator.llm.models as models

    monkeypatch.setattr(models, "load_backbone", lambda *a, **k: pytest.fail("cache missed"))
    E2 = hh.embed_texts([long_a, long_b, "short"], encoder=str(folder), max_length=16,
                        cache_dir=tmp_path)
    np.testing.assert_array_equal(E, E2)


def test_split_cell_labels_every_test_pair_by_every_group(design):
    train, test, rows = rg.split_cell(design, 0.2, 1, test_fraction=0.25, user_size=5)
    U = design.labels.shape[0]
    n_test = design.n - rows.size
    assert n_test == round(0.25 * design.n) and test.n == U * n_test
    for u in range(U):  # group u's test rows carry group u's labels of the test pairs
        te = np.setdiff1d(np.arange(design.n), rows)
        np.testing.assert_array_equal(test.y[test.group == u], design.labels[u, te])
    np.testing.assert_array_equal(train.y, design.labels[train.group, rows])
    # users never mix groups, hold at most user_size pairs, and every group has data
    assert np.all(train.user_group[train.user] == train.group)
    assert train.user_counts().max() <= 5 and np.all(train.group_counts() >= 2)
    with pytest.raises(ValueError, match="p must lie"):
        rg.split_cell(design, 0.0, 1)


def test_run_cell_rows_are_complete_and_seeded(design):
    methods = ("pooled", "separate", "sharedrep-2", "em", "sharedlora", "official-maxmin",
               "official-sharedrep-2", "official-uniform")
    rows = rg.run_cell(design, 0.3, 4, methods=methods)
    U = design.labels.shape[0]
    names = {r["method"] for r in rows}
    assert names == set(methods) | {"linear ceiling (all labels)"}
    assert len(rows) == (len(methods) + 1) * U
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and np.isfinite(r["logloss"]) and r["logloss"] > 0
    again = rg.run_cell(design, 0.3, 4, methods=methods)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]
    with pytest.raises(ValueError, match="unknown method"):
        rg.run_cell(design, 0.3, 4, methods=("bogus",))


def test_pca_dimension_is_checked(hh_file, tiny):
    _model, _tok, folder = tiny
    with pytest.raises(ValueError, match="d must lie"):
        rg.RealDesign.from_source(hh_file, encoder=str(folder), max_length=64, d=10_000)
