"""Reward-free policies (simulator/reward_free.py): DPO, IPO, GR-DPO, GR-IPO on a finite-arm env.

Known answers (DPO on the log-linear class is BT logistic regression with theta = beta omega;
pooled IPO is least squares), exact population losses (every ordered pair and label weighted by
its probability), finite differences, an independent min-max solver (SLSQP on the epigraph
form), the group-robust properties, bad input and determinism.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from simulator import FiniteArmEnv, Population, PreferenceData
from simulator.estimators import PooledMLE
from simulator.fairness import maxmin_suboptimality, win_rate
from simulator.policy import gibbs_policy, maxmin_policy
from simulator.reward_free import (
    comparison_features,
    dpo_policy,
    gr_dpo_policy,
    gr_ipo_policy,
    group_losses,
    ipo_policy,
    pair_loss,
    preference_optimization,
)

BETA = 0.5


@pytest.fixture(scope="module")
def two_groups():
    # a 10 % minority whose reward makes an angle of 2.5 rad with the majority's
    pop = Population.diverse(4, angle=2.5, proportions=(0.1, 0.9), seed=0)
    env = pop.arm_env(10, 5, seed=1)
    data = pop.sample(3000, seed=2, env=env, group_sampling="fixed")
    return pop, env, data


@pytest.fixture(scope="module")
def fits(two_groups):
    _, env, data = two_groups
    return {name: fn(env, data, BETA) for name, fn in
            (("dpo", dpo_policy), ("ipo", ipo_policy), ("gr_dpo", gr_dpo_policy),
             ("gr_ipo", gr_ipo_policy))}


# ------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("loss", ["dpo", "ipo"])
@given(t=st.floats(-20, 20), beta=st.floats(0.05, 5.0))
def test_pair_loss_derivative_matches_finite_differences(loss, t, beta):
    h = 1e-6
    (fp, _), (fm, _) = pair_loss(t + h, beta, loss), pair_loss(t - h, beta, loss)
    _, der = pair_loss(t, beta, loss)
    # central differences: error O(h^2 l''') plus round-off ~ 1e-16 |l| / h
    assert float(der) == pytest.approx(float(fp - fm) / (2 * h), rel=1e-5,
                                       abs=1e-7 * (1 + abs(float(fp))))


def test_pair_loss_known_values():
    v, d = pair_loss(0.0, 2.0, "dpo")
    assert float(v) == pytest.approx(np.log(2.0)) and float(d) == pytest.approx(-1.0)
    v, d = pair_loss(0.25, 2.0, "ipo")  # 1 / (2 beta) = 0.25: the IPO target margin
    assert float(v) == 0.0 and float(d) == 0.0


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_group_loss_gradients_match_finite_differences(two_groups, loss):
    _, env, data = two_groups
    S = comparison_features(env, data) * (2.0 * data.y - 1.0)[:, None]
    w = np.random.default_rng(0).uniform(0.5, 2.0, data.n)
    om = np.random.default_rng(1).normal(size=env.d)
    L, G = group_losses(om, S, data.group, w, 2, BETA, loss, lam=0.3)
    h = 1e-6
    for j in range(env.d):
        e = np.zeros(env.d)
        e[j] = h
        fd = (group_losses(om + e, S, data.group, w, 2, BETA, loss, 0.3)[0]
              - group_losses(om - e, S, data.group, w, 2, BETA, loss, 0.3)[0]) / (2 * h)
        np.testing.assert_allclose(G[:, j], fd, rtol=1e-6, atol=1e-8)
    # and the loss is each group's weighted mean of the pair losses (numpy reference)
    val = pair_loss(S @ om, BETA, loss)[0]
    for g in range(2):
        m = data.group == g
        assert L[g] == pytest.approx(np.sum(w[m] * val[m]) / w[m].sum() + 0.15 * om @ om,
                                     rel=1e-12)


# ------------------------------------------------------------------------- known answers
def test_pooled_dpo_is_bt_logistic_regression(two_groups, fits):
    # two independent solvers (the package's Newton BT-MLE and L-BFGS-B on the DPO loss) on the
    # same strictly convex problem: theta_hat = beta omega_hat to the solvers' tolerances
    _, _, data = two_groups
    mle = PooledMLE(lam=0.0, tol=1e-12).fit(data)
    np.testing.assert_allclose(BETA * fits["dpo"].omega, mle.theta_[0], rtol=1e-6, atol=1e-7)
    assert fits["dpo"].converged and fits["dpo"].grad_norm <= 1e-9


def test_pooled_ipo_is_least_squares(two_groups, fits):
    # (s_i . omega - 1/(2 beta))^2 summed: normal equations S^T S omega = S^T 1 / (2 beta)
    _, env, data = two_groups
    S = comparison_features(env, data) * (2.0 * data.y - 1.0)[:, None]
    ref = np.linalg.solve(S.T @ S, S.T @ np.ones(data.n)) / (2 * BETA)
    np.testing.assert_allclose(fits["ipo"].omega, ref, rtol=1e-6, atol=1e-8)


def _population_data(env, theta):
    """Every (context, a0, a1, label), weighted by rho * P(pair) * P(label | theta): the exact
    population loss as a weighted data set."""
    M, A, _ = env.shape
    pairs = env.pair_probabilities()
    rows = [(x, a, b) for x in range(M) for a in range(A) for b in range(A) if a != b]
    c = np.array([r[0] for r in rows])
    act = np.array([[r[1], r[2]] for r in rows])
    X = env.features[c, act[:, 1]] - env.features[c, act[:, 0]]
    p1 = 1.0 / (1.0 + np.exp(-X @ theta))
    base = env.rho[c] * pairs[c, act[:, 0], act[:, 1]]
    data = PreferenceData(X=np.vstack([X, X]), y=np.r_[np.ones(len(rows)), np.zeros(len(rows))],
                          context=np.r_[c, c], actions=np.vstack([act, act]))
    return data, np.r_[base * p1, base * (1 - p1)]


def test_dpo_recovers_theta_over_beta_from_the_population_loss():
    # infinite data from one BT group: the expected DPO loss is the expected BT log-loss in
    # theta = beta omega, minimised exactly at the truth (well-specified, strictly convex as the
    # differences span R^d); the only error is the solver's: ||grad|| <= 1e-10 over the
    # smallest curvature (~0.05 here) leaves < 1e-8
    rng = np.random.default_rng(3)
    env = FiniteArmEnv(rng.normal(size=(6, 4, 3)))
    theta = np.array([1.0, -0.5, 0.8])
    data, w = _population_data(env, theta)
    res = dpo_policy(env, data, BETA, sample_weight=w, tol=1e-10)
    np.testing.assert_allclose(res.omega, theta / BETA, atol=1e-7)
    # and then the policy is the KL-regularised optimum of the true reward
    np.testing.assert_allclose(res.pi, gibbs_policy(env, theta, BETA), atol=1e-8)


def test_dpo_recovers_theta_over_beta_from_plentiful_samples():
    # 40,000 sampled comparisons from one group, d = 4: the MLE's error is
    # ~ sqrt(tr(I^-1) / n) ~ 0.03 in theta (Fisher information ~ 0.15 I; measured 0.020 here),
    # so 0.1 in theta (0.2 in omega = theta / beta) is > 3 standard errors
    pop = Population.shared(4, 2, [1.0], seed=4, weights="gaussian")
    env = pop.arm_env(20, 6, seed=5)
    data = pop.sample(40_000, seed=6, env=env)
    res = dpo_policy(env, data, BETA)
    assert np.linalg.norm(BETA * res.omega - pop.theta[0]) < 0.1


# ------------------------------------------------------------------------- group robust
def test_group_robust_certificate(fits):
    for name in ("gr_dpo", "gr_ipo"):
        r = fits[name]
        assert r.robust and r.converged
        assert 0.0 <= r.duality_gap <= 1e-6
        assert r.objective == pytest.approx(r.group_losses.max())


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_group_robust_value_matches_an_independent_solver(two_groups, fits, loss):
    # min_omega max_g L_g(omega) by SLSQP on the epigraph form min t s.t. L_g(omega) <= t
    _, env, data = two_groups
    S = comparison_features(env, data) * (2.0 * data.y - 1.0)[:, None]
    w = np.ones(data.n)
    r = fits[f"gr_{loss}"]

    def cons(v):
        return v[-1] - group_losses(v[:-1], S, data.group, w, 2, BETA, loss)[0]

    x0 = np.r_[np.zeros(env.d), 1.0]
    sol = minimize(lambda v: v[-1], x0, jac=lambda v: np.r_[np.zeros(env.d), 1.0],
                   constraints=[{"type": "ineq", "fun": cons}], method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 500})
    assert sol.success
    # both are certified to ~1e-6 (the gap; SLSQP's ftol 1e-12): the values agree to 1e-5
    assert r.objective == pytest.approx(sol.fun, abs=1e-5)


def test_group_robust_protects_the_worst_group(fits):
    # GR minimises the worst group's loss, so its worst-group loss is at most the pooled fit's
    # (up to the certified gap); the pooled fit minimises the average, so it wins on that
    for loss in ("dpo", "ipo"):
        gr, pooled = fits[f"gr_{loss}"], fits[loss]
        assert gr.group_losses.max() <= pooled.group_losses.max() - 1e-3
        share = pooled.weights  # each group's share of the comparisons
        assert share @ pooled.group_losses < share @ gr.group_losses
        assert pooled.worst_group == 0  # the minority is the one the pooled fit serves worst


def test_adaptive_weights_sit_on_the_worst_groups(fits):
    # the optimality (KKT) condition of the min-max: q_g > 0 only where L_g = max_g L_g; with the
    # 10 % minority the worst group under pooling, it carries far more than its 10 % share
    for loss in ("dpo", "ipo"):
        r = fits[f"gr_{loss}"]
        active = r.weights > 1e-3
        assert np.all(r.group_losses[active] >= r.group_losses.max() - 1e-4)
        assert r.weights[0] > 0.3
        assert r.weights_gap <= 1e-4


def test_policy_is_log_linear_and_judged_like_reward_based_ones(two_groups, fits):
    pop, env, _ = two_groups
    for r in fits.values():
        # pi_omega = pi_ref exp(<omega, phi>) / Z, rows on the simplex
        logits = np.log(env.pi_ref) + env.features @ r.omega
        ref = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(r.pi, ref / ref.sum(axis=1, keepdims=True), atol=1e-12)
        sub = maxmin_suboptimality(env, r.pi, pop.theta, BETA)
        assert sub >= -1e-8
    gold = maxmin_policy(env, pop.theta, BETA).pi
    wr_gr = win_rate(env, fits["gr_dpo"].pi, gold, pop.theta)
    wr_pool = win_rate(env, fits["dpo"].pi, gold, pop.theta)
    # the robust policy serves the minority (group 0) at least as well as the pooled one
    assert wr_gr[0] >= wr_pool[0]


def test_pooled_allows_an_empty_group_robust_does_not(two_groups):
    _, env, data = two_groups
    one = data.subset(data.group == 1)
    res = dpo_policy(env, one, BETA)
    assert np.isnan(res.group_losses[0]) and np.isfinite(res.group_losses[1])
    with pytest.raises(ValueError, match=r"needs data for every group; group\(s\) \[0\]"):
        gr_dpo_policy(env, one, BETA)


# ------------------------------------------------------------------------- bad input
def test_bad_input_names_the_parameter(two_groups):
    pop, env, data = two_groups
    plain = pop.sample(50, seed=0)  # no env: no context / actions
    with pytest.raises(ValueError, match="must record context and actions"):
        dpo_policy(env, plain, BETA)
    other = pop.arm_env(10, 5, seed=99)
    with pytest.raises(ValueError, match="not drawn on this environment"):
        dpo_policy(other, data, BETA)
    with pytest.raises(ValueError, match="beta must be"):
        dpo_policy(env, data, 0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        preference_optimization(env, data, BETA, loss="kto")
    with pytest.raises(ValueError, match="eta_q must be"):
        gr_dpo_policy(env, data, BETA, eta_q=-1.0)
    with pytest.raises(ValueError, match="lam must be"):
        dpo_policy(env, data, BETA, lam=-1.0)
    with pytest.raises(ValueError, match="robust must be"):
        preference_optimization(env, data, BETA, robust="yes")
    with pytest.raises(ValueError, match="sample_weight must have entries >= 0"):
        dpo_policy(env, data, BETA, sample_weight=-np.ones(data.n))
    with pytest.raises(ValueError, match="env must be a FiniteArmEnv"):
        dpo_policy("env", data, BETA)
    ref = np.full((10, 5), 0.25)
    ref[:, 4] = 0.0
    with pytest.raises(ValueError, match="pi_ref never plays"):
        dpo_policy(FiniteArmEnv(env.features, pi_ref=ref), data, BETA)


def test_deterministic(two_groups, fits):
    _, env, data = two_groups
    again = gr_dpo_policy(env, data, BETA)
    np.testing.assert_array_equal(again.omega, fits["gr_dpo"].omega)
    np.testing.assert_array_equal(again.weights, fits["gr_dpo"].weights)
    np.testing.assert_array_equal(dpo_policy(env, data, BETA).pi, fits["dpo"].pi)
