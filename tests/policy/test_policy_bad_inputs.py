"""Bad input to the policy package and simulator.fairness is a named error (issue 16 item 1).

One row per bad argument: strict types (bool, str and complex for a number, bool / str /
complex arrays), NaN, wrong shapes, probability vectors that are not distributions, out of
range tolerances and options. Each must raise :class:`~simulator.validation.
InvalidParameterError` (a ``ValueError`` and a ``TypeError``) whose message names the
parameter, as a word. The table complements ``tests/test_fuzz.py``'s (data layer, estimators,
metrics) and the older per-module error tests of this folder.
"""

import re

import numpy as np
import pytest
from policy_helpers import random_env

from simulator import fairness as F
from simulator.policy import (
    MaxMinOptions,
    bt_curvature,
    confidence_radius,
    data_covariance,
    dual_value,
    gibbs_from_rewards,
    gibbs_policy,
    group_utilities,
    lcb_rewards,
    maxmin_cvxpy,
    maxmin_from_rewards,
    maxmin_limit,
    maxmin_policy,
    normalize_rewards,
    pessimistic_mle_policy,
    pessimistic_policy,
    utilitarian_policy,
    utilities_from_rewards,
)
from simulator.validation import InvalidParameterError

ENV = random_env(0)  # M = 6 contexts, A = 5 actions, d = 3
TH = np.random.default_rng(1).normal(size=(3, 3))
R = ENV.rewards(TH)  # (3, 6, 5)
X = np.random.default_rng(2).normal(size=(20, 3))
NAN = float("nan")
PI = ENV.pi_ref


def _mle(**kw):
    return lambda: pessimistic_mle_policy(ENV, TH[0], X, **{"reference": "pi_ref", "B": 2.0,
                                                           **kw})


BAD = [
    # ----------------------------------------------------------------- gibbs
    ("gibbs-beta-bool", lambda: gibbs_policy(ENV, TH[0], True), "beta"),
    ("gibbs-beta-str", lambda: gibbs_policy(ENV, TH[0], "0.5"), "beta"),
    ("gibbs-beta-complex", lambda: gibbs_policy(ENV, TH[0], 0.5 + 0j), "beta"),
    ("gibbs-beta-zero", lambda: gibbs_policy(ENV, TH[0], 0.0), "beta"),
    ("gibbs-beta-inf", lambda: gibbs_policy(ENV, TH[0], float("inf")), "beta"),
    ("gibbs-theta-nan", lambda: gibbs_policy(ENV, np.full(3, NAN), 1.0), "theta"),
    ("gibbs-theta-shape", lambda: gibbs_policy(ENV, np.ones(4), 1.0), "theta"),
    ("gibbs-theta-complex", lambda: gibbs_policy(ENV, np.ones(3) + 1j, 1.0), "theta"),
    ("gibbs-theta-bool", lambda: gibbs_policy(ENV, np.ones(3, bool), 1.0), "theta"),
    ("gibbs-theta-str", lambda: gibbs_policy(ENV, ["a", "b", "c"], 1.0), "theta"),
    ("gibbs-rewards-shape", lambda: gibbs_from_rewards(ENV, np.ones((6, 4)), 1.0), "rewards"),
    ("gibbs-env", lambda: gibbs_policy("env", TH[0], 1.0), "env"),
    # ----------------------------------------------------------------- max-min
    ("maxmin-beta-complex", lambda: maxmin_policy(ENV, TH, 1 + 0j), "beta"),
    ("maxmin-beta-numpy-bool", lambda: maxmin_policy(ENV, TH, np.bool_(True)), "beta"),
    ("maxmin-thetas-nan", lambda: maxmin_policy(ENV, np.full((3, 3), NAN), 1.0), "thetas"),
    ("maxmin-thetas-3d", lambda: maxmin_policy(ENV, TH[None], 1.0), "thetas"),
    ("maxmin-thetas-empty", lambda: maxmin_policy(ENV, np.ones((0, 3)), 1.0), "thetas"),
    ("maxmin-thetas-str", lambda: maxmin_policy(ENV, np.full((3, 3), "1"), 1.0), "thetas"),
    ("maxmin-tol-zero", lambda: maxmin_policy(ENV, TH, 1.0, tol=0.0), "tol"),
    ("maxmin-tol-str", lambda: maxmin_policy(ENV, TH, 1.0, tol="1e-8"), "tol"),
    ("maxmin-tol-nan", lambda: maxmin_policy(ENV, TH, 1.0, options=MaxMinOptions(tol=NAN)),
     "tol"),
    ("maxmin-max-iter-float", lambda: maxmin_policy(ENV, TH, 1.0, max_iter=2.5), "max_iter"),
    ("maxmin-max-iter-bool", lambda: maxmin_policy(ENV, TH, 1.0, max_iter=True), "max_iter"),
    ("maxmin-n-iter-zero", lambda: maxmin_policy(ENV, TH, 1.0, "algorithm1", n_iter=0),
     "n_iter"),
    ("maxmin-step-size-bool", lambda: maxmin_policy(ENV, TH, 1.0, "algorithm1",
                                                    step_size=True), "step_size"),
    ("maxmin-step-size-str", lambda: maxmin_policy(ENV, TH, 1.0, "algorithm1",
                                                   step_size="const"), "step_size"),
    ("maxmin-method", lambda: maxmin_policy(ENV, TH, 1.0, method="newton"), "method"),
    ("maxmin-warn-int", lambda: maxmin_policy(ENV, TH, 1.0, warn=1), "warn"),
    ("maxmin-objective-none", lambda: maxmin_policy(ENV, TH, 1.0, None), "objective"),
    ("maxmin-normalize-bool", lambda: maxmin_policy(ENV, TH, 1.0, normalize=False),
     "normalize"),
    ("maxmin-options-dict", lambda: maxmin_policy(ENV, TH, 1.0, options={"tol": 1.0}),
     "options"),
    ("maxmin-rewards-nan", lambda: maxmin_from_rewards(ENV, np.full((3, 6, 5), NAN), 1.0),
     "rewards"),
    ("maxmin-rewards-shape", lambda: maxmin_from_rewards(ENV, np.ones((3, 6, 4)), 1.0),
     "rewards"),
    ("maxmin-rewards-bool", lambda: maxmin_from_rewards(ENV, R > 0, 1.0), "rewards"),
    ("dual-value-q-sum", lambda: dual_value(ENV, R, 1.0, [0.5, 0.6, 0.1]), "q"),
    ("dual-value-q-negative", lambda: dual_value(ENV, R, 1.0, [1.5, -0.5, 0.0]), "q"),
    ("dual-value-q-shape", lambda: dual_value(ENV, R, 1.0, [0.5, 0.5]), "q"),
    ("dual-value-q-nan", lambda: dual_value(ENV, R, 1.0, [NAN, 0.5, 0.5]), "q"),
    ("maxmin-limit-beta-neg", lambda: maxmin_limit(ENV, TH, -1.0), "beta"),
    ("maxmin-limit-tol", lambda: maxmin_limit(ENV, TH, tol=-1e-8), "tol"),
    ("maxmin-limit-both", lambda: maxmin_limit(ENV, TH, rewards=R), "thetas"),
    ("maxmin-cvxpy-beta-str", lambda: maxmin_cvxpy(ENV, TH, "1"), "beta"),
    # ----------------------------------------------------------------- utilities, utilitarian
    ("utilitarian-proportions-sum", lambda: utilitarian_policy(ENV, TH, 1.0, [0.5] * 3),
     "proportions"),
    ("utilitarian-proportions-nan", lambda: utilitarian_policy(ENV, TH, 1.0, [NAN] * 3),
     "proportions"),
    ("utilitarian-proportions-str", lambda: utilitarian_policy(ENV, TH, 1.0, "uniform"),
     "proportions"),
    ("group-utilities-pi-mass", lambda: group_utilities(ENV, PI * 2, TH, 1.0), "pi"),
    ("group-utilities-beta-str", lambda: group_utilities(ENV, PI, TH, "1"), "beta"),
    ("utilities-rewards-4d", lambda: utilities_from_rewards(ENV, PI, R[None], 1.0), "rewards"),
    ("normalize-rewards-str", lambda: normalize_rewards(ENV, "abc"), "rewards"),
    ("normalize-rewards-convention", lambda: normalize_rewards(ENV, R, "zscore"), "normalize"),
    # ----------------------------------------------------------------- pessimism
    ("pessimistic-alpha-str", lambda: pessimistic_policy(ENV, TH[0], 1.0, X, alpha="1"),
     "alpha"),
    ("pessimistic-lam-zero", lambda: pessimistic_policy(ENV, TH[0], 1.0, X, lam=0.0), "lam"),
    ("pessimistic-X-complex", lambda: pessimistic_policy(ENV, TH[0], 1.0, X + 1j), "X"),
    ("pessimistic-beta-bool", lambda: pessimistic_policy(ENV, TH[0], False, X), "beta"),
    ("lcb-X-nan", lambda: lcb_rewards(ENV, TH[0], np.full((4, 3), NAN)), "X"),
    ("covariance-weights-neg", lambda: data_covariance(X, -np.ones(20)), "sample_weight"),
    ("covariance-weights-zero", lambda: data_covariance(X, np.zeros(20)), "sample_weight"),
    ("bt-curvature-bool", lambda: bt_curvature(True, 1.0), "L"),
    ("radius-delta-one", lambda: confidence_radius(10, 2, gamma=0.1, delta=1.0), "delta"),
    ("radius-gamma-big", lambda: confidence_radius(10, 2, gamma=0.3), "gamma"),
    ("radius-n-str", lambda: confidence_radius("10", 2, gamma=0.1), "n"),
    ("pessimistic-mle-tol", _mle(tol=0.0), "tol"),
    ("pessimistic-mle-max-policies", _mle(max_policies=2.5), "max_policies"),
    ("pessimistic-mle-beta-str", _mle(beta="0"), "beta"),
    ("pessimistic-mle-warn", _mle(warn="no"), "warn"),
    ("pessimistic-mle-theta-nan", lambda: pessimistic_mle_policy(
        ENV, np.full(3, NAN), X, reference="pi_ref", B=2.0), "theta"),
    ("pessimistic-mle-reference-complex", _mle(reference=np.ones(3) + 1j), "reference"),
    # ----------------------------------------------------------------- fairness
    ("min-utility-beta-bool", lambda: F.min_group_utility(ENV, PI, TH, True), "beta"),
    ("alignment-method", lambda: F.alignment_gaps(ENV, PI, TH, 1.0, method="tv"), "method"),
    ("alignment-beta-complex", lambda: F.alignment_gaps(ENV, PI, TH, 1j), "beta"),
    ("alignment-pi-shape", lambda: F.alignment_gaps(ENV, PI[:, :3], TH, 1.0), "pi"),
    ("alignment-thetas-nan", lambda: F.alignment_gaps(ENV, PI, TH * NAN, 1.0), "thetas"),
    ("maxmin-value-tol-neg", lambda: F.maxmin_value(ENV, TH, 1.0, tol=-1.0), "tol"),
    ("maxmin-subopt-pi-nan", lambda: F.maxmin_suboptimality(ENV, np.full((6, 5), NAN), TH,
                                                            1.0), "pi"),
    ("maxmin-subopt-reference", lambda: F.maxmin_suboptimality(ENV, PI, TH, 1.0,
                                                               reference=PI), "reference"),
    ("confidence-set-L-str", lambda: pessimistic_mle_policy(ENV, TH[0], X, reference="pi_ref",
                                                            B=2.0, L="1"), "L"),
    ("tv-temperature-str", lambda: F.preference_tv(ENV, TH, temperature="1"), "temperature"),
    ("tv-temperature-zero", lambda: F.preference_tv(ENV, TH, temperature=0.0), "temperature"),
    ("tv-label", lambda: F.preference_tv(ENV, TH, label="probit"), "label"),
    ("diversity-proportions", lambda: F.diversity_epsilon(ENV, TH, [0.2, 0.2, 0.2]),
     "proportions"),
    ("diversity-temperature-bool", lambda: F.diversity_epsilon(ENV, TH, temperature=True),
     "temperature"),
    ("gold-objective", lambda: F.gold_policy(ENV, TH, 1.0, objective="utilitarian"),
     "objective"),
    ("paired-scores-str", lambda: F.paired_win_rate(["a"], [1.0]), "scores"),
    ("paired-baseline-complex", lambda: F.paired_win_rate([1.0], [1j]), "baseline_scores"),
    ("paired-ties", lambda: F.paired_win_rate([1.0], [0.0], ties="draw"), "ties"),
    ("paired-atol-neg", lambda: F.paired_win_rate([1.0], [0.0], atol=-1.0), "atol"),
    ("win-rate-ties-bool", lambda: F.win_rate(ENV, PI, PI, TH, ties=True), "ties"),
    ("win-rate-per-context-int", lambda: F.win_rate(ENV, PI, PI, TH, per_context=1),
     "per_context"),
    ("win-rate-rewards-nan", lambda: F.win_rate(ENV, PI, PI, rewards=R * NAN), "rewards"),
    ("win-rate-pi-hat", lambda: F.win_rate(ENV, PI[:2], PI, TH), "pi_hat"),
    ("win-rate-atol-str", lambda: F.win_rate(ENV, PI, PI, TH, atol="0"), "atol"),
]


def test_the_table_is_large_and_unique():
    ids = [case[0] for case in BAD]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, name", [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_policy_input_is_a_named_error(call, name):
    with pytest.raises(InvalidParameterError) as info:
        call()
    message = str(info.value)
    # the parameter's own name as a word (so "n" is not found inside "n_iter")
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message), message
