"""Provenance of every bound (kind, url, where its text was looked for) and the regime verdict."""

import math

import pytest

import theory
from theory.provenance import KIND_OF_TAG, SOURCE_KINDS, Source


@pytest.mark.parametrize("name", sorted(theory.REGISTRY))
def test_every_bound_names_its_kind_and_where_it_was_looked_for(name):
    src = theory.REGISTRY[name]
    assert src.kind in SOURCE_KINDS
    assert src.looked_in, f"{name}: looked_in is empty"
    if src.kind in ("paper", "secondary summary"):
        assert src.url.startswith("https://arxiv.org/abs/"), name
    if src.verified:  # a constant checked against the text needs the text
        assert src.read_in_paper


def test_machine_written_summaries_are_not_paper_statements():
    # MaxMin-RLHF's Theorem 1 (exponent 1, beta^2) reached the notes through a summary
    src = theory.source_of(theory.theorem1_alignment_gap_lower_bound)
    assert src.kind == "secondary summary" and not src.read_in_paper
    assert KIND_OF_TAG["[S]"] == "secondary summary"


@pytest.mark.parametrize("kwargs, match", [
    ({"tag": "[X]"}, "tag"),
    ({"tag": "[P]", "kind": "rumour"}, "kind"),
    ({"tag": "[P]"}, "url"),
    ({"tag": "[S]", "url": "arxiv.org/abs/1"}, "url"),
    ({"tag": "[P]", "url": "https://arxiv.org/abs/1", "verified": True}, "read_in_paper"),
])
def test_bad_source_records_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Source("A paper", "Theorem 1", **kwargs)


def test_claim_copies_provenance_from_its_bound():
    c = theory.Claim.from_bound(theory.bt_mle_error_bound, figure="f", quantity="q",
                                prediction="p", kind="value", predicted=0.0, atol=0.1)
    src = theory.source_of(theory.bt_mle_error_bound)
    r = c.evaluate(0.0, -0.05, 0.05)
    assert (r.source_kind, r.url, r.read_in_paper) == (src.kind, src.url, src.read_in_paper)
    row = theory.claims_table([r]).iloc[0]
    assert row["source_kind"] == "paper" and row["url"] == src.url


def test_outside_regime_replaces_the_rule_and_keeps_the_measurement():
    c = theory.Claim(figure="f", quantity="slope", prediction="-1/2", kind="value",
                     predicted=-0.5, atol=0.1, regime="n >= 20 d")
    inside = c.evaluate(-1.0, -1.1, -0.9)
    assert inside.verdict == theory.DOES_NOT_HOLD
    outside = c.evaluate(-1.0, -1.1, -0.9, in_regime=False)
    assert outside.verdict == theory.OUTSIDE_REGIME
    assert outside.measured == -1.0 and math.isclose(outside.ci_low, -1.1)
    assert "the rule alone: does not hold" in outside.note and "n >= 20 d" in outside.note
    assert theory.OUTSIDE_REGIME in theory.VERDICTS
    with pytest.raises(TypeError, match="in_regime"):
        c.evaluate(-1.0, -1.1, -0.9, in_regime="no")


def test_l2_rate_is_lemma31_over_sqrt_lambda_min():
    # ||v||_2 <= ||v||_M / sqrt(lambda_min(M)): the Sigma_D-norm bound scaled by 1/sqrt(lam_min)
    b = theory.bt_mle_error_bound(400, 8, gamma=0.2)
    assert math.isclose(theory.bt_mle_l2_rate(400, 8, gamma=0.2, lambda_min=0.04), b / 0.2)
    assert theory.source_of(theory.bt_mle_l2_rate).kind == "derived identity"
    with pytest.raises(ValueError, match="lambda_min"):
        theory.bt_mle_l2_rate(400, 8, gamma=0.2, lambda_min=0.0)


def test_fig1_and_fig3_rows_cite_what_they_test():
    """fig1's l2 slopes cite the l2 rate (Lemma 3.1 + Shah), not Theorem 3.10 (a policy bound);
    fig3's single-reward row cites MaxMin-RLHF's experiments, not its Theorem 1."""
    import pandas as pd

    from figures import fig1_mle_rate, fig3_policy

    rng = __import__("numpy").random.default_rng(0)
    rows = [{"d": d, "n": n, "replicate": r, "err_l2": float(rng.uniform(0.5, 1.5)) / n ** 0.5,
             "err_sigma": 1.0 / n ** 0.5, "gamma_mean": 0.2, "feature_bound": 2.0,
             "norm_bound": 2.0, "converged": True}
            for d in (2, 4) for n in (200, 400, 800) for r in range(4)]
    claims = fig1_mle_rate.claims(pd.DataFrame(rows))
    l2 = [c for c in claims if "l2 error" in c.quantity]
    assert l2 and all("Lemma 3.1" in c.source and "Theorem 3.10" not in c.source for c in l2)
    assert all(c.source_kind == "derived identity" for c in l2)
    assert "Theorem 1" not in fig3_policy._SINGLE_REWARD_SOURCE["source"]


def _rows(name):
    from figures import archive

    return archive.rederive("full", name)


def test_fig2_fig4_fig5_fig6_fig8_rows_cite_what_they_test():
    """The full read of theory/ against the figures (#15 item 2), on the kept full runs."""
    fig2 = _rows("fig2")
    no_gain = [c for c in fig2 if c.quantity.startswith("(SharedRep - Separate) / Separate")]
    assert no_gain and all(c.source_kind == "derived identity" and "model-class" in c.source
                           for c in no_gain)
    small_eta = [c for c in fig2 if "SharedRep - Separate minority error at eta = 0.01" in c.quantity]
    assert small_eta and all("§3.2(c) vs (b)" in c.source for c in small_eta)  # the crossover
    oracle = [c for c in fig2 if c.quantity.startswith("OracleB")]
    assert {c.source for c in oracle} == {
        theory.source_of(theory.oracle_subspace_avg_error).cite(),
        theory.source_of(theory.independent_to_oracle_ratio).cite()}
    fig4 = _rows("fig4")
    signs = [c for c in fig4 if c.quantity.startswith("slope of group-u gap")]
    assert len(signs) == 4 and all(c.source == theory.THEOREM1_DIRECTIONS.cite() for c in signs)
    as_written = [c for c in fig4 if c.quantity.startswith("exponent")
                  and c.prediction.startswith("<= 1 + 0.1")]
    assert len(as_written) == 2 and all(c.verdict == theory.DOES_NOT_HOLD for c in as_written)
    squared = [c for c in fig4 if "squared reading (exponent 2)" in c.prediction]
    assert squared and all(c.source_kind == "reconstruction" for c in squared)
    fig5 = _rows("fig5")
    vs_k = [c for c in fig5 if "minus at k =" in c.quantity]
    assert vs_k and all("minus at k = 8," in c.quantity for c in vs_k)  # the largest k < U = 10
    fig6 = _rows("fig6")
    assert all(c.source_kind and c.source for c in fig6)
    assert {c.source for c in fig6 if c.quantity.startswith("mean ARI")} == {
        theory.EM_RECOVERY.cite()}
    assert {c.source_kind for c in fig6 if "decrease" in c.quantity} == {"derived identity"}
    fig8 = _rows("fig8")
    greedy = [c for c in fig8 if "greedy SubOpt" in c.quantity and "pessimistic" not in c.quantity]
    from theory.pessimism import greedy_failure_limit
    assert len(greedy) == 2 and all(c.source == theory.source_of(greedy_failure_limit).cite()
                                    for c in greedy)
    assert all("Theorem 3.9 [V" not in c.source for c in fig8)


def test_from_source_and_register():
    src = theory.Source("derived for the simulator", "an identity", "[D]")
    assert theory.register("tests.an_identity", src) is src
    assert theory.REGISTRY["tests.an_identity"] is src
    c = theory.Claim.from_source(src, figure="f", quantity="q", prediction="p", kind="less_than",
                                 note="mine")
    assert c.source == src.cite() and c.source_kind == "derived identity" and c.note == "mine"
    with pytest.raises(TypeError, match="Source"):
        theory.register("x", "not a source")
    with pytest.raises(TypeError, match="Source"):
        theory.Claim.from_source("not a source", figure="f", quantity="q", prediction="p",
                                 kind="less_than")
    del theory.REGISTRY["tests.an_identity"]


def test_sharedrep_class_saturates():
    assert theory.sharedrep_class_saturates(3, 3) and theory.sharedrep_class_saturates(4, 2)
    assert not theory.sharedrep_class_saturates(2, 3)
    assert list(theory.sharedrep_class_saturates([1, 2, 4, 8, 16], 10)) == [False] * 4 + [True]
    with pytest.raises(ValueError, match="n_groups"):
        theory.sharedrep_class_saturates(2, 0)
