"""Metrics of issue #4: utilities, alignment gap identity, MaxMin suboptimality, diversity
epsilon (TV), win rate against the gold policy."""

import numpy as np
import pytest
from policy_helpers import random_env

from simulator.arms import FiniteArmEnv
from simulator.fairness import (
    alignment_gaps,
    diversity_epsilon,
    gold_policy,
    maxmin_suboptimality,
    maxmin_value,
    min_group_utility,
    preference_tv,
    win_rate,
)
from simulator.policy import gibbs_policy, group_utilities, maxmin_policy, utilitarian_policy


def test_alignment_gap_identity_against_direct_computation():
    env = random_env(0, m=7, a=6, d=3, ref="random")
    th = np.random.default_rng(2).normal(size=(3, 3))
    beta = 0.35
    rng = np.random.default_rng(0)
    policies = [utilitarian_policy(env, th, beta), maxmin_policy(env, th, beta).pi, env.pi_ref]
    policies += [rng.dirichlet(np.ones(6), size=7) for _ in range(5)]
    for pi in policies:
        kl = alignment_gaps(env, pi, th, beta, method="kl")
        direct = alignment_gaps(env, pi, th, beta, method="direct")
        np.testing.assert_allclose(kl, direct, rtol=1e-9, atol=1e-12)
        # and against F_u(pi*_u) - F_u(pi) written out by hand
        for u in range(3):
            pistar = gibbs_policy(env, th[u], beta)
            f = group_utilities(env, pistar, th[u:u + 1], beta)[0]
            assert kl[u] == pytest.approx(f - group_utilities(env, pi, th, beta)[u], abs=1e-10)
        assert np.all(kl >= 0)
    # zero gap exactly at the group's own optimum
    assert alignment_gaps(env, gibbs_policy(env, th[1], beta), th, beta)[1] == pytest.approx(0, abs=1e-14)


def test_maxmin_suboptimality():
    env = random_env(1, m=6, a=5, d=3)
    th = np.random.default_rng(4).normal(size=(3, 3))
    beta = 0.5
    ref = maxmin_policy(env, th, beta)
    assert maxmin_suboptimality(env, ref.pi, th, beta, reference=ref) == pytest.approx(0, abs=1e-12)
    assert maxmin_value(env, th, beta) == pytest.approx(ref.value, abs=1e-8)
    for pi in (utilitarian_policy(env, th, beta), env.pi_ref, gibbs_policy(env, th[0], beta)):
        s = maxmin_suboptimality(env, pi, th, beta)
        assert s >= -1e-8
        assert s == pytest.approx(ref.value - min_group_utility(env, pi, th, beta), abs=1e-8)
    # estimated thetas -> evaluated under the true ones
    noisy = th + 0.3 * np.random.default_rng(0).normal(size=th.shape)
    pi_hat = maxmin_policy(env, noisy, beta).pi
    assert maxmin_suboptimality(env, pi_hat, th, beta) > 0


def test_win_rate_hand_computed():
    # one context, three arms, scores 0, 1, 2 for group 0 (theta = 1) and 2, 1, 0 for group 1
    env = FiniteArmEnv(np.array([[[0.0], [1.0], [2.0]]]))
    th = np.array([[1.0], [-1.0]])
    pi_hat = np.array([[0.5, 0.0, 0.5]])
    gold = np.array([[0.0, 1.0, 0.0]])
    # group 0: arm 2 beats arm 1 (prob 0.5), arm 0 loses -> 0.5; group 1 mirror -> 0.5
    np.testing.assert_allclose(win_rate(env, pi_hat, gold, th), [0.5, 0.5])
    # identical uniform policies: strict wins 3/9, ties 3/9
    u = np.full((1, 3), 1 / 3)
    np.testing.assert_allclose(win_rate(env, u, u, th, ties="half"), [0.5, 0.5])
    np.testing.assert_allclose(win_rate(env, u, u, th, ties="loss"), [1 / 3, 1 / 3])
    # pi_hat = [0.2, 0.3, 0.5] vs gold = [0.6, 0.4, 0]: group 0
    ph, pg = np.array([[0.2, 0.3, 0.5]]), np.array([[0.6, 0.4, 0.0]])
    strict = 0.3 * 0.6 + 0.5 * (0.6 + 0.4)  # = 0.68
    ties = 0.2 * 0.6 + 0.3 * 0.4  # = 0.24
    assert win_rate(env, ph, pg, th[:1], ties="loss")[0] == pytest.approx(strict)
    assert win_rate(env, ph, pg, th[:1], ties="half")[0] == pytest.approx(strict + ties / 2)
    # rho-weighted over contexts
    env2 = FiniteArmEnv(np.array([[[0.0], [1.0]], [[0.0], [1.0]]]), rho=[0.25, 0.75])
    ph2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    pg2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    per = win_rate(env2, ph2, pg2, np.array([[1.0]]), per_context=True)
    np.testing.assert_allclose(per, [[1.0, 0.0]])
    assert win_rate(env2, ph2, pg2, np.array([[1.0]]))[0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="ties"):
        win_rate(env, u, u, th, ties="draw")


def test_win_rate_against_gold():
    env = random_env(2, m=8, a=6, d=3)
    th = np.random.default_rng(1).normal(size=(2, 3))
    gold = gold_policy(env, th, 0.3)
    np.testing.assert_allclose(win_rate(env, gold, gold, th), 0.5, atol=1e-12)
    np.testing.assert_allclose(gold, maxmin_policy(env, th, 0.3).pi)
    # playing group 0's best (worst) arm never loses (never wins) for group 0
    r0 = env.rewards(th)[0]
    best = np.eye(env.n_actions)[r0.argmax(1)]
    worst = np.eye(env.n_actions)[r0.argmin(1)]
    assert win_rate(env, best, gold, th)[0] >= 0.5
    assert win_rate(env, best, gold, th, ties="loss")[0] == pytest.approx(win_rate(
        env, best, gold, th, ties="half")[0] - 0.5 * (env.rho @ np.sum(best * gold, 1)))
    assert win_rate(env, worst, gold, th)[0] <= 0.5


def test_preference_tv_and_diversity():
    # one context, two arms, phi = (0, 1): Delta r = theta; pairs (0,1) and (1,0), prob 1/2 each
    env = FiniteArmEnv(np.array([[[0.0], [1.0]]]))
    th = np.array([[2.0], [-1.0]])
    s = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    expected = abs(s[0] - s[1])  # both orders give the same |difference|
    tv = preference_tv(env, th)
    assert tv[0, 1] == pytest.approx(expected) and tv[1, 0] == pytest.approx(expected)
    assert np.all(np.diag(tv) == 0)
    np.testing.assert_allclose(diversity_epsilon(env, th), [expected, expected])
    assert preference_tv(env, th, label="deterministic")[0, 1] == pytest.approx(1.0)
    # three groups: epsilon_u = TV(p_u, mixture of the others); identical groups -> 0
    env3 = random_env(3, m=5, a=4, d=2)
    th3 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(diversity_epsilon(env3, th3), 0.0, atol=1e-15)
    th3 = np.random.default_rng(0).normal(size=(3, 2))
    eps = diversity_epsilon(env3, th3, proportions=[0.5, 0.3, 0.2])
    tvm = preference_tv(env3, th3)
    assert np.all((eps >= 0) & (eps <= 1)) and np.all((tvm >= 0) & (tvm <= 1))
    np.testing.assert_allclose(diversity_epsilon(env3, th3[:2]), [tvm[0, 1]] * 2)
    # empirical check of the TV formula: label frequencies of sampled comparisons
    _ctx, _act, X = env3.sample_comparisons(200_000, 0)
    p0 = 1 / (1 + np.exp(-X @ th3[0]))
    p1 = 1 / (1 + np.exp(-X @ th3[1]))
    assert np.mean(np.abs(p0 - p1)) == pytest.approx(tvm[0, 1], abs=3e-3)


def test_win_rate_from_reward_tables_equals_the_linear_form():
    # rewards= is the same computation on given scores: env.rewards(thetas) reproduces the
    # thetas form to the bit; non-linear scores (a monotone transform of each group's score)
    # keep every comparison, so the win rates are unchanged too
    rng = np.random.default_rng(3)
    env = FiniteArmEnv(rng.standard_normal((6, 4, 3)))
    th = rng.standard_normal((2, 3))
    pi_hat = rng.dirichlet(np.ones(4), size=6)
    gold = rng.dirichlet(np.ones(4), size=6)
    ref = win_rate(env, pi_hat, gold, th)
    np.testing.assert_array_equal(win_rate(env, pi_hat, gold, rewards=env.rewards(th)), ref)
    np.testing.assert_allclose(win_rate(env, pi_hat, gold, rewards=np.exp(env.rewards(th))),
                               ref, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="exactly one of thetas"):
        win_rate(env, pi_hat, gold)
    with pytest.raises(ValueError, match="exactly one of thetas"):
        win_rate(env, pi_hat, gold, th, rewards=env.rewards(th))
    with pytest.raises(ValueError, match="rewards must have shape"):
        win_rate(env, pi_hat, gold, rewards=np.zeros((2, 6, 3)))


def test_paired_win_rate_is_win_rate_for_deterministic_policies():
    # one-hot policies on a uniform rho: the finite-arm win rate of group u is the paired win
    # rate of the arms' scores, context by context, with the same tie rule
    from simulator.fairness import paired_win_rate

    rng = np.random.default_rng(5)
    env = FiniteArmEnv(np.round(rng.standard_normal((20, 3, 2)), 1))  # rounding makes ties
    th = np.array([[1.0, 0.0], [0.0, 1.0]])
    a_hat, a_gold = rng.integers(3, size=20), rng.integers(3, size=20)
    ph, pg = np.eye(3)[a_hat], np.eye(3)[a_gold]
    s = env.rewards(th)
    for ties in ("half", "loss"):
        wr = win_rate(env, ph, pg, th, ties=ties)
        for u in range(2):
            pw = paired_win_rate(s[u, np.arange(20), a_hat], s[u, np.arange(20), a_gold], ties)
            assert wr[u] == pytest.approx(pw, abs=1e-15)
    assert paired_win_rate([1.0, 2.0, 3.0], [1.0, 1.0, 4.0]) == pytest.approx(0.5)
    assert np.isnan(paired_win_rate([], []))
    with pytest.raises(ValueError, match="ties"):
        paired_win_rate([1.0], [0.0], ties="draw")
