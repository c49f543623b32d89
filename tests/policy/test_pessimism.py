"""Pessimism as in Zhu, Jordan & Jiao (2023): hand computations of Sigma_D, gamma, the radius and
the bonus; weights = repeated rows; the reference v changes the policy; certificates; bad inputs."""

import warnings

import numpy as np
import pytest
from policy_helpers import random_env

import theory
from simulator.arms import FiniteArmEnv
from simulator.policy import (
    ConfidenceSet,
    bt_curvature,
    confidence_radius,
    confidence_set,
    data_covariance,
    gibbs_policy,
    lcb_rewards,
    pessimistic_mle_policy,
    pessimistic_policy,
    pessimistic_value,
    reference_vector,
)

# three arms in one context: a0 the reference, a1 covered by many comparisons, a2 by one
BANDIT = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
ROWS = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def _bandit_counts(n):
    return np.array([0.7 * (n - 1), 0.3 * (n - 1), 1.0, 0.0])  # (a0,a1) wins/losses, (a0,a2)


# ----------------------------------------------------------------------------- hand computations
def test_sigma_d_gamma_radius_and_bonus_by_hand():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(data_covariance(X), np.diag([0.75, 0.25]))
    # sigma'(log 3) = 3 / (1 + 3)^2
    assert bt_curvature(np.log(3.0), 1.0) == pytest.approx(3.0 / 16.0, rel=1e-15)
    # f = C sqrt((d + log(1/delta)) / (gamma^2 n) + lam B^2) with d = 2, log(1/delta) = 1,
    # gamma = 1/4, n = 4, lam = 0.25, B = 2, C = 3: 3 sqrt(3 / (1/16 * 4) + 1) = 3 sqrt(13)
    f = confidence_radius(4, 2, gamma=0.25, delta=np.exp(-1.0), lam=0.25, B=2.0, C=3.0)
    assert f == pytest.approx(3.0 * np.sqrt(13.0), rel=1e-14)
    conf = confidence_set([0.5, -1.0], X, lam=0.25, radius=2.0)
    # Sigma_D + lam I = diag(1, 1/2): ||(1, 1)||_{inverse} = sqrt(1 + 2)
    assert float(conf.dual_norm([1.0, 1.0])) == pytest.approx(np.sqrt(3.0), rel=1e-14)
    assert float(conf.bonus([1.0, 1.0])) == pytest.approx(2.0 * np.sqrt(3.0), rel=1e-14)
    assert float(conf.lower([1.0, 1.0])) == pytest.approx(-0.5 - 2.0 * np.sqrt(3.0), rel=1e-14)
    # the worst case lies on the boundary of Theta and attains the lower bound
    tw = conf.worst_theta([1.0, 1.0])
    assert conf.contains(tw)
    dlt = tw - conf.theta_hat
    assert np.sqrt(dlt @ conf.sigma @ dlt) == pytest.approx(2.0, rel=1e-12)
    assert tw @ np.array([1.0, 1.0]) == pytest.approx(float(conf.lower([1.0, 1.0])), rel=1e-12)
    # the pessimistic value of a deterministic policy: theta_hat^T z - f ||z||, z = phi(a) - v
    env = FiniteArmEnv([[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]])
    pi = np.array([[0.0, 1.0, 0.0]])
    assert pessimistic_value(env, pi, conf, [0.0, 0.0]) == pytest.approx(-0.5 - 2 * np.sqrt(3))
    # with beta > 0 the KL term is subtracted: KL(e_1 || uniform) = log 3
    assert pessimistic_value(env, pi, conf, [0.0, 0.0], beta=0.5) == pytest.approx(
        -0.5 - 2 * np.sqrt(3) - 0.5 * np.log(3.0))


def test_radius_and_bound_agree_with_theory_module():
    """The policy's radius is the Lemma 3.1 bound of `theory`; radius x coverage is Thm 3.2's."""
    X, w = ROWS, _bandit_counts(5000)
    conf = confidence_set([1.0, 1.7], X, sample_weight=w, B=2.0, delta=0.1, C=1.5)
    gamma = theory.bt_curvature(1.0, 2.0)
    assert gamma == pytest.approx(bt_curvature(1.0, 2.0), rel=1e-15)
    lam = theory.bt_mle_lambda(conf.n, 2, gamma=gamma, B=2.0, delta=0.1)
    assert conf.lam == pytest.approx(lam, rel=1e-14)
    assert conf.radius == pytest.approx(theory.bt_mle_error_bound(
        conf.n, 2, gamma=gamma, delta=0.1, lam=lam, B=2.0, C=1.5), rel=1e-14)
    direction = np.array([1.0, 0.0])
    cov = theory.coverage_coefficient(conf.sigma_d, direction, lam=conf.lam)
    assert float(conf.dual_norm(direction)) == pytest.approx(cov, rel=1e-12)
    assert float(conf.bonus(direction)) == pytest.approx(theory.pessimistic_suboptimality_bound(
        conf.n, 2, gamma=gamma, coverage=cov, delta=0.1, lam=lam, B=2.0, C=1.5), rel=1e-12)


# ----------------------------------------------------------------------------- weights
def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    w = np.array([0, 1, 2, 3, 1, 5])
    Xr = np.repeat(X, w, axis=0)
    np.testing.assert_allclose(data_covariance(X, w), data_covariance(Xr), rtol=1e-14, atol=1e-15)
    theta = rng.normal(size=3)
    c_w = confidence_set(theta, X, sample_weight=w, B=3.0)
    c_r = confidence_set(theta, Xr, B=3.0)
    assert c_w.n == c_r.n == w.sum()
    assert c_w.radius == pytest.approx(c_r.radius, rel=1e-14)
    assert c_w.lam == pytest.approx(c_r.lam, rel=1e-14)
    env = random_env(2, m=2, a=4, d=3)
    res_w = pessimistic_mle_policy(env, theta, X, reference="pi_ref", sample_weight=w, B=3.0,
                                   policy_class="deterministic")
    res_r = pessimistic_mle_policy(env, theta, Xr, reference="pi_ref", B=3.0,
                                   policy_class="deterministic")
    np.testing.assert_array_equal(res_w.pi, res_r.pi)
    assert res_w.value == pytest.approx(res_r.value, rel=1e-12)
    # the per-action variant takes the weights too
    np.testing.assert_allclose(lcb_rewards(env, theta, X, 0.7, 0.1, sample_weight=w),
                               lcb_rewards(env, theta, Xr, 0.7, 0.1), rtol=1e-12)


# ----------------------------------------------------------------------------- the reference v
def test_reference_changes_the_policy_on_a_coverage_deficient_bandit():
    """a2's single comparison made theta_hat rank it first; with v = phi(a0) the deviation of a1
    is covered and pessimism picks a1 (the true best); with v = phi(a2) the deviations of a0 and
    a1 are the uncovered direction and pessimism keeps a2."""
    env = FiniteArmEnv(BANDIT)
    theta_hat = np.array([1.0, np.sqrt(3.0)])  # the constrained MLE after a2 won (B = 2)
    w = _bandit_counts(20_000)
    kw = dict(sample_weight=w, B=2.0, delta=0.1)
    greedy = np.argmax(env.rewards(theta_hat)[0])
    assert greedy == 2
    for cls in ("deterministic", "stochastic"):
        good = pessimistic_mle_policy(env, theta_hat, ROWS, reference=BANDIT[0, 0],
                                      policy_class=cls, **kw)
        bad = pessimistic_mle_policy(env, theta_hat, ROWS, reference=BANDIT[0, 2],
                                     policy_class=cls, **kw)
        assert good.pi[0, 1] > 0.95 and bad.pi[0, 2] > 0.999, cls
        assert good.converged and bad.converged
    # a reference policy gives the same v as its mean feature
    pi0 = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(reference_vector(env, pi0), BANDIT[0, 0])
    np.testing.assert_allclose(reference_vector(env, "pi_ref"), BANDIT[0].mean(axis=0))


def test_per_action_variant_is_greedy_on_zjj_instance_but_the_paper_form_is_not():
    """ZJJ's 4-action instance (App. B.3 as in the notes): with uniform pi_ref the per-action
    bonus is the same for every action, so the old pessimistic policy equals the Gibbs policy of
    theta_hat; the paper's form with v = phi(a3) avoids the uncovered a1, a2."""
    feats = np.array([[[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    env = FiniteArmEnv(feats)
    n = 10_000
    X = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # a1 - a2 (n - 1 times), a2 - a3 (once)
    w = np.array([n - 1.0, 1.0])
    theta_hat = np.array([1.5, 0.1, 0.0])  # a2 happened to win its single comparison
    r_lcb = lcb_rewards(env, theta_hat, X, alpha=1.0, lam=1e-3, sample_weight=w)
    bonus = env.rewards(theta_hat) - r_lcb
    np.testing.assert_allclose(bonus, bonus[0, 0], rtol=1e-12)  # the same for every action
    np.testing.assert_allclose(pessimistic_policy(env, theta_hat, 0.1, X, 1.0, sample_weight=w),
                               gibbs_policy(env, theta_hat, 0.1), rtol=1e-12)
    res = pessimistic_mle_policy(env, theta_hat, X, reference=feats[0, 2], sample_weight=w,
                                 B=2.0, delta=0.1, policy_class="deterministic")
    assert np.argmax(res.pi[0]) in (2, 3)  # never the uncovered a1 / a2 that greedy picks
    assert np.argmax(env.rewards(theta_hat)[0]) == 0


# ----------------------------------------------------------------------------- solver
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_certificate_and_saddle_point(beta):
    env = random_env(3, m=3, a=4, d=3, ref="random")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3)) * np.array([2.0, 0.5, 0.05])
    theta = rng.normal(size=3)
    res = pessimistic_mle_policy(env, theta, X, reference="pi_ref", beta=beta, radius=0.05,
                                 lam=1e-3)
    assert res.converged and 0 <= res.duality_gap <= 1e-6
    assert res.value <= res.dual_value + 1e-12
    np.testing.assert_allclose(res.pi.sum(axis=1), 1.0, atol=1e-12)
    # no other policy does better in the pessimistic objective
    for _ in range(20):
        other = rng.dirichlet(np.ones(4), size=3)
        assert pessimistic_value(env, other, res.confidence, "pi_ref", beta) <= res.value + 1e-9
    if beta > 0:  # the saddle point: pi is the Gibbs policy of its worst-case theta
        np.testing.assert_allclose(res.pi, gibbs_policy(env, res.theta_worst, beta), atol=1e-5)
    else:  # the stochastic class contains the deterministic one
        det = pessimistic_mle_policy(env, theta, X, reference="pi_ref", radius=0.05, lam=1e-3,
                                     policy_class="deterministic")
        assert det.value <= res.value + 1e-9
    # with Lemma 3.1's radius and n = 300 the set contains theta = 0: the worst-case reward is 0
    # and the reference policy (z = 0, no KL) is optimal
    wide = pessimistic_mle_policy(env, theta, X, reference="pi_ref", beta=beta, B=3.0)
    assert wide.confidence.contains(np.zeros(3)) and wide.converged
    assert abs(wide.value) <= 1e-6
    if beta > 0:
        np.testing.assert_allclose(wide.pi, env.pi_ref, atol=1e-5)


def test_zero_radius_is_greedy_and_gibbs_and_radius_is_monotone():
    env = random_env(5, m=4, a=5, d=3)
    rng = np.random.default_rng(5)
    X, theta = rng.normal(size=(50, 3)), rng.normal(size=3)
    r0 = pessimistic_mle_policy(env, theta, X, reference="pi_ref", beta=0.3, radius=0.0, lam=0.1)
    np.testing.assert_array_equal(r0.pi, gibbs_policy(env, theta, 0.3))
    np.testing.assert_array_equal(
        pessimistic_policy(env, theta, 0.3, X, alpha=0.0, reference="pi_ref"),
        gibbs_policy(env, theta, 0.3))
    g = pessimistic_mle_policy(env, theta, X, reference="pi_ref", radius=0.0, lam=0.1)
    np.testing.assert_array_equal(np.argmax(g.pi, axis=1), np.argmax(env.rewards(theta), axis=1))
    values = [pessimistic_mle_policy(env, theta, X, reference="pi_ref", radius=f, lam=0.1).value
              for f in (0.0, 0.1, 0.5, 2.0)]
    assert np.all(np.diff(values) <= 1e-9)  # a larger confidence set is more pessimistic


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_are_named():
    env = FiniteArmEnv(BANDIT)
    th, w = np.array([1.0, 1.0]), _bandit_counts(100)
    ok = dict(sample_weight=w, B=2.0)
    with pytest.raises(TypeError, match="reference"):
        pessimistic_mle_policy(env, th, ROWS, **ok)
    cases = [
        (dict(reference=[0.0, 0.0, 0.0]), "reference"),
        (dict(reference="uniform"), "reference"),
        (dict(reference=np.ones((2, 3))), "reference"),
        (dict(reference=[0.0, 0.0], policy_class="mixed"), "policy_class"),
        (dict(reference=[0.0, 0.0], beta=-1.0), "beta"),
        (dict(reference=[0.0, 0.0], beta=0.5, policy_class="deterministic"), "deterministic"),
        (dict(reference=[0.0, 0.0], delta=1.5), "delta"),
        (dict(reference=[0.0, 0.0], C=0.0), "C"),
        (dict(reference=[0.0, 0.0], gamma=0.3), "gamma"),
        (dict(reference=[0.0, 0.0], B=None), "B"),
        (dict(reference=[0.0, 0.0], radius=1.0), "lam"),
        (dict(reference=[0.0, 0.0], radius=-1.0, lam=0.1), "radius"),
        (dict(reference=[0.0, 0.0], sample_weight=-w), "sample_weight"),
        (dict(reference=[0.0, 0.0], sample_weight=w[:2]), "sample_weight"),
        (dict(reference=[0.0, 0.0], confidence="tight"), "confidence"),
        (dict(reference=[0.0, 0.0], policy_class="deterministic", max_policies=2), "max_policies"),
    ]
    for extra, word in cases:
        with pytest.raises(ValueError, match=word):
            pessimistic_mle_policy(env, th, ROWS, **{**ok, **extra})
    with pytest.raises(ValueError, match="data"):
        pessimistic_mle_policy(env, th, np.ones((4, 3)), reference=[0.0, 0.0], B=2.0)
    with pytest.raises(ValueError, match="theta"):
        pessimistic_mle_policy(env, np.ones(3), ROWS, reference=[0.0, 0.0], B=2.0)
    with pytest.raises(ValueError, match="lam"):  # Sigma_D singular and no ridge
        confidence_set(th, np.array([[1.0, 0.0]]), radius=1.0, lam=0.0)
    with pytest.raises(ValueError, match="L"):
        bt_curvature(0.0, 1.0)
    with pytest.raises(ValueError, match="B must be given"):
        confidence_radius(10, 2, gamma=0.1, lam=0.1)
    with pytest.raises(ValueError, match="radius"):
        ConfidenceSet(theta_hat=th, sigma_d=np.eye(2), lam=0.1, radius=np.nan, n=3.0)


def test_uncertified_solve_warns():
    env = random_env(6, m=2, a=3, d=2)
    rng = np.random.default_rng(6)
    X, theta = rng.normal(size=(40, 2)), rng.normal(size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pessimistic_mle_policy(env, theta, X, reference="pi_ref", B=2.0)
    with pytest.warns(RuntimeWarning, match="certified gap"):
        pessimistic_mle_policy(env, theta, X, reference="pi_ref", B=2.0, tol=1e-300,
                               max_policies=1)


def test_extreme_beta_and_reward_scales_never_give_nan():
    # issue 16: gibbs at beta = 1e-320 (r / beta overflows) is the exact limit policy, greedy on
    # the support of pi_ref; gibbs_from_rewards refuses NaN rewards by name and the unchecked log Z
    # is +inf (never NaN) where it overflows;
    # the exact max-min solver, where the regularised dual is out of float64 reach
    # (spread^2 / beta overflows), returns the certified beta -> 0 limit policy (it named the
    # scale problem before the limit existed; tests/policy/test_maxmin_limit.py)
    import numpy as np
    import pytest

    from simulator import FiniteArmEnv
    from simulator.policy import (
        gibbs_and_log_partition,
        gibbs_from_rewards,
        gibbs_policy,
        maxmin_policy,
    )

    rng = np.random.default_rng(0)
    env = FiniteArmEnv(rng.standard_normal((4, 3, 2)))
    th = rng.standard_normal((2, 2))
    pi = gibbs_policy(env, th[0], 1e-320)
    assert np.all(np.isfinite(pi))
    np.testing.assert_array_equal(pi.argmax(axis=1), env.rewards(th[0]).argmax(axis=1))
    np.testing.assert_allclose(pi.max(axis=1), 1.0)
    # an ordinary beta is unchanged by the fallback (it is not taken)
    np.testing.assert_array_equal(gibbs_policy(env, th[0], 0.5), gibbs_policy(env, th[0], 0.5))
    with pytest.raises(ValueError, match="finite"):
        gibbs_from_rewards(env, np.full((4, 3), np.nan), 1.0)
    pi_o, logz = gibbs_and_log_partition(env, np.full((4, 3), 1.0), 1e-320)
    assert np.all(np.isposinf(logz)) and np.all(np.isfinite(pi_o))
    res = maxmin_policy(env, th * 1e200, 1.0)
    assert res.beta_limit and res.converged and np.all(np.isfinite(res.pi))
