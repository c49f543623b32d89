"""Gibbs, exact MaxMin (dual + certificate), cvxpy cross-check, Algorithm 1, pointwise min,
utilitarian and pessimistic policies (issue #4)."""

import numpy as np
import pytest
from policy_helpers import random_env

from simulator.arms import FiniteArmEnv
from simulator.policy import (
    dual_value,
    gibbs_from_rewards,
    gibbs_policy,
    group_utilities,
    lcb_rewards,
    maxmin_cvxpy,
    maxmin_from_rewards,
    maxmin_policy,
    normalize_rewards,
    pessimistic_policy,
    pointwise_min_policy,
    utilitarian_policy,
    utilities_from_rewards,
)

TOL = 1e-8


# ----------------------------------------------------------------------------- Gibbs
def test_gibbs_closed_form_and_stability():
    env = random_env(0, m=4, a=6, d=2, ref="random")
    th = np.array([300.0, -200.0])  # huge rewards / small beta: exp would overflow naively
    pi = gibbs_policy(env, th, 0.01)
    assert np.all(np.isfinite(pi)) and np.allclose(pi.sum(1), 1)
    r = env.features @ np.array([0.7, -0.3])
    direct = env.pi_ref * np.exp(r / 2.0)
    direct /= direct.sum(1, keepdims=True)
    np.testing.assert_allclose(gibbs_policy(env, [0.7, -0.3], 2.0), direct, rtol=1e-12)


def test_gibbs_zero_reference_mass_stays_zero():
    ref = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    env = FiniteArmEnv(np.random.default_rng(0).normal(size=(2, 3, 2)), pi_ref=ref)
    pi = gibbs_policy(env, [5.0, 5.0], 0.1)
    assert pi[0, 2] == 0.0
    assert np.isfinite(group_utilities(env, pi, np.ones((1, 2)), 0.1)).all()


def test_beta_to_infinity_gives_pi_ref(env, thetas):
    beta = 1e9
    np.testing.assert_allclose(gibbs_policy(env, thetas[0], beta), env.pi_ref, atol=1e-8)
    for objective in ("exact", "pointwise", "algorithm1"):
        res = maxmin_policy(env, thetas, beta, objective, n_iter=5)
        np.testing.assert_allclose(res.pi, env.pi_ref, atol=1e-8)


def test_gibbs_is_the_maximiser_of_F(env, thetas):
    """F_u(pi*_u) >= F_u(pi) for random policies pi (pi*_u = Gibbs of r_u)."""
    rng = np.random.default_rng(5)
    beta = 0.7
    pistar = gibbs_policy(env, thetas[0], beta)
    best = group_utilities(env, pistar, thetas[:1], beta)[0]
    for _ in range(50):
        pi = rng.dirichlet(np.ones(env.n_actions), size=env.n_contexts)
        assert group_utilities(env, pi, thetas[:1], beta)[0] <= best + 1e-12


# ----------------------------------------------------------------------------- exact MaxMin
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("beta", [0.02, 0.3, 3.0])
def test_duality_certificate(seed, beta):
    env = random_env(seed, m=8, a=6, d=4, ref="random")
    th = np.random.default_rng(100 + seed).normal(size=(4, 4))
    res = maxmin_policy(env, th, beta)
    assert res.converged and 0 <= res.duality_gap <= TOL
    # certificate = G(q) - min_u F_u(pi_q), recomputed independently
    r = env.rewards(th)
    G = dual_value(env, r, beta, res.weights)
    F = group_utilities(env, res.pi, th, beta)
    assert abs((G - F.min()) - res.duality_gap) <= 1e-10
    np.testing.assert_allclose(res.utilities, F, atol=1e-12)
    assert res.value == pytest.approx(F.min(), abs=1e-12)
    # weak duality: no policy beats G(q*), and pi_q* beats every competitor
    rng = np.random.default_rng(seed)
    competitors = [env.pi_ref, utilitarian_policy(env, th, beta),
                   pointwise_min_policy(env, th, beta)]
    competitors += [gibbs_policy(env, t, beta) for t in th]
    competitors += [rng.dirichlet(np.ones(6), size=8) for _ in range(20)]
    for pi in competitors:
        assert group_utilities(env, pi, th, beta).min() <= G + 1e-12
    # the dual bounds hold for any q, so min over random q of G(q) >= value
    for _ in range(20):
        assert dual_value(env, r, beta, rng.dirichlet(np.ones(4))) >= res.value - 1e-12


def test_interior_optimum_equalises_active_groups():
    """Two opposed groups: q* interior and F_1(pi*) = F_2(pi*).  Gap <= tol implies
    |F_u - F_v| <= tol / min_u q_u for active u, v (gap = sum_u q_u (F_u - min F))."""
    env = random_env(3, m=10, a=5, d=2)
    th = np.array([[1.0, 0.5], [-1.0, 0.2], [0.1, -1.0]])
    res = maxmin_policy(env, th, 0.5)
    active = res.active_groups
    assert len(active) >= 2
    qmin = res.weights[active].min()
    spread = np.ptp(res.utilities[active])
    assert spread <= TOL / qmin + 1e-12
    # inactive groups are no worse off than the active ones
    assert np.all(res.utilities >= res.value - 1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_solver_matches_cvxpy(seed):
    """Tolerances: |V_cvx - V*| <= 1e-6 (Clarabel's default 1e-8 conic tolerances; values are
    O(1)); policies by strong concavity — min_u F_u is beta-strongly concave in the norm
    sum_x rho_x ||.||_1^2 (Pinsker), so sum_x rho_x ||pi_cvx - pi*||_1^2
    <= 2 (V* - min_u F_u(pi_cvx)) / beta <= 2 (G(q*) - min_u F_u(pi_cvx)) / beta — an exact,
    computable bound, no tuning."""
    pytest.importorskip("cvxpy")
    env = random_env(seed, m=5, a=4, d=3, ref="random")
    th = np.random.default_rng(seed + 10).normal(size=(3, 3))
    beta = 0.4
    ours = maxmin_policy(env, th, beta)
    cvx = maxmin_cvxpy(env, th, beta)
    assert cvx.converged
    assert abs(cvx.value - ours.value) <= 1e-6
    assert cvx.value <= ours.dual_value + 1e-12  # nothing beats the certified upper bound
    dist2 = env.rho @ np.abs(cvx.pi - ours.pi).sum(1) ** 2
    assert dist2 <= 2 * (ours.dual_value - cvx.value) / beta + 1e-12
    np.testing.assert_allclose(cvx.pi, ours.pi, atol=1e-3)
    np.testing.assert_allclose(cvx.weights, ours.weights, atol=1e-3)


def test_eg_only_and_auto_agree(env, thetas):
    a = maxmin_policy(env, thetas, 0.5, method="auto")
    b = maxmin_policy(env, thetas, 0.5, method="eg")
    assert a.converged and b.converged
    assert abs(a.value - b.value) <= 2 * TOL


def test_single_group_maxmin_equals_gibbs(env, thetas):
    for objective in ("exact", "pointwise", "algorithm1"):
        res = maxmin_policy(env, thetas[:1], 0.3, objective, n_iter=3)
        np.testing.assert_allclose(res.pi, gibbs_policy(env, thetas[0], 0.3), atol=1e-12)
        np.testing.assert_allclose(res.weights, [1.0])
        assert res.duality_gap <= 1e-12


def test_duplicate_and_dominated_groups():
    """Degenerate duals (singular Hessian, non-unique q*) still certify."""
    env = random_env(4, m=6, a=5, d=3)
    t = np.random.default_rng(0).normal(size=(2, 3))
    th = np.vstack([t[0], t[0], t[1], np.zeros(3)])
    res = maxmin_policy(env, th, 0.2)
    assert res.converged and res.duality_gap <= TOL


# ----------------------------------------------------------------------------- Algorithm 1
def test_algorithm1_approaches_the_optimum():
    env = random_env(2, m=10, a=6, d=3)
    th = np.random.default_rng(7).normal(size=(3, 3))
    beta = 0.3
    exact = maxmin_policy(env, th, beta)
    runs = {T: maxmin_policy(env, th, beta, "algorithm1", n_iter=T) for T in (10, 100, 1000)}
    subopt = {T: exact.value - r.value for T, r in runs.items()}
    gaps = {T: r.duality_gap for T, r in runs.items()}
    assert all(s >= -TOL for s in subopt.values())
    assert gaps[10] > gaps[100] > gaps[1000]
    assert subopt[1000] <= gaps[1000] + TOL  # the FW gap upper-bounds the suboptimality
    assert subopt[1000] < 0.05 * subopt[10] + 1e-6
    r = runs[1000]
    assert r.trace.shape == (1000,) and set(np.unique(r.trace)) <= {0, 1, 2}
    assert len(r.gap_history) == 1001
    # Algorithm 1's policy is the Gibbs policy of its weights (derivation in the docstring)
    rq = np.einsum("u,uma->ma", r.weights, normalize_rewards(env, env.rewards(th)))
    np.testing.assert_allclose(r.pi, gibbs_from_rewards(env, rq, beta), atol=1e-10)


def test_algorithm1_constant_step_alternates():
    env = random_env(5, m=8, a=5, d=2)
    th = np.array([[1.0, 0.0], [-1.0, 0.3]])
    res = maxmin_policy(env, th, 0.5, "algorithm1", n_iter=200, step_size=0.2)
    assert set(np.unique(res.trace[50:])) == {0, 1}  # the active group keeps switching
    exact = maxmin_policy(env, th, 0.5)
    fw = maxmin_policy(env, th, 0.5, "algorithm1", n_iter=1000)
    # a constant (PPO-like) step only reaches a neighbourhood; the 2/(t+2) step converges
    assert exact.value - res.value > 10 * (exact.value - fw.value) >= -TOL


# ----------------------------------------------------------------------------- pointwise
def test_pointwise_is_gibbs_of_min_and_below_maxmin(env, thetas):
    beta = 0.25
    res = maxmin_policy(env, thetas, beta, "pointwise")
    r = normalize_rewards(env, env.rewards(thetas))
    np.testing.assert_allclose(res.pi, gibbs_from_rewards(env, r.min(0), beta), atol=1e-14)
    exact = maxmin_policy(env, thetas, beta)
    # E[min_u r_u] - beta KL <= min_u F_u(pi_pw) <= V*
    assert res.objective_value <= res.value + 1e-12
    assert res.value <= exact.value + TOL
    assert res.objective_value == pytest.approx(
        utilities_from_rewards(env, res.pi, r.min(0), beta, normalize=None), abs=1e-10)
    assert res.duality_gap >= exact.value - res.value - TOL  # valid upper bound on suboptimality


# ----------------------------------------------------------------------------- normalisation
def _env_with_offset_features(seed):
    """Last two features constant across actions: a per-context c(x) and a global 1 —
    exactly the directions Bradley–Terry cannot identify."""
    rng = np.random.default_rng(seed)
    m, a = 7, 5
    base = rng.normal(size=(m, a, 2))
    cx = np.repeat(rng.normal(size=(m, 1, 1)), a, axis=1)
    ones = np.ones((m, a, 1))
    return FiniteArmEnv(np.concatenate([base, cx, ones], axis=2), rho=rng.dirichlet(np.ones(m)),
                        pi_ref=rng.dirichlet(np.ones(a), size=m))


@pytest.mark.parametrize("objective", ["exact", "pointwise", "algorithm1"])
def test_shift_invariance_under_ref_center(objective):
    env = _env_with_offset_features(0)
    th = np.random.default_rng(1).normal(size=(3, 4))
    shifted = th.copy()
    shifted[:, 2:] += np.random.default_rng(2).normal(scale=5.0, size=(3, 2))
    a = maxmin_policy(env, th, 0.4, objective, n_iter=50)
    b = maxmin_policy(env, shifted, 0.4, objective, n_iter=50)
    np.testing.assert_allclose(a.pi, b.pi, atol=1e-9)
    np.testing.assert_allclose(a.utilities, b.utilities, atol=1e-9)
    # arbitrary per-group-per-context shifts c_u(x) on raw reward arrays
    r = env.rewards(th)
    c = np.random.default_rng(3).normal(scale=10.0, size=(3, env.n_contexts, 1))
    a2 = maxmin_from_rewards(env, r, 0.4, objective, n_iter=50)
    b2 = maxmin_from_rewards(env, r + c, 0.4, objective, n_iter=50)
    np.testing.assert_allclose(a2.pi, b2.pi, atol=1e-9)
    if objective == "exact":
        # without the convention the max-min solution moves with the offsets
        raw_a = maxmin_policy(env, th, 0.4, normalize=None)
        raw_b = maxmin_policy(env, shifted, 0.4, normalize=None)
        assert np.abs(raw_a.pi - raw_b.pi).max() > 1e-3


def test_ref_center_zero_utility_at_reference(env, thetas):
    np.testing.assert_allclose(group_utilities(env, env.pi_ref, thetas, 1.0), 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- other policies
def test_utilitarian_is_gibbs_of_weighted_reward(env, thetas):
    eta = np.array([0.6, 0.3, 0.1])
    np.testing.assert_allclose(utilitarian_policy(env, thetas, 0.5, eta),
                               gibbs_policy(env, eta @ thetas, 0.5), atol=1e-14)
    # it maximises the eta-weighted utility
    pi = utilitarian_policy(env, thetas, 0.5, eta)
    best = eta @ group_utilities(env, pi, thetas, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = rng.dirichlet(np.ones(env.n_actions), size=env.n_contexts)
        assert eta @ group_utilities(env, other, thetas, 0.5) <= best + 1e-12


def test_pessimistic_policy_properties():
    rng = np.random.default_rng(0)
    env = random_env(1, m=6, a=5, d=3)
    theta = rng.normal(size=3)
    # data covering mostly the first feature direction
    X = rng.normal(size=(400, 3)) * np.array([3.0, 0.3, 0.05])
    beta = 0.5
    np.testing.assert_allclose(pessimistic_policy(env, theta, beta, X, alpha=0.0),
                               gibbs_policy(env, theta, beta), atol=1e-14)
    bonus = (env.features @ theta - lcb_rewards(env, theta, X, alpha=1.0))
    assert np.all(bonus >= 0)
    coverage = []
    for alpha in [0.0, 0.1, 0.5, 1.0, 3.0]:
        pi = pessimistic_policy(env, theta, beta, X, alpha=alpha)
        coverage.append(env.rho @ np.sum(pi * bonus, axis=1))  # E_pi ||phi - E_ref phi||
    assert np.all(np.diff(coverage) <= 1e-12)  # mass moves toward well-covered actions
    assert coverage[-1] < coverage[0]


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("beta", [0, -1.0, np.nan, np.inf, "1", True])
def test_bad_beta(env, thetas, beta):
    with pytest.raises(ValueError, match="beta"):
        maxmin_policy(env, thetas, beta)
    with pytest.raises(ValueError, match="beta"):
        gibbs_policy(env, thetas[0], beta)
    with pytest.raises(ValueError, match="beta"):
        group_utilities(env, env.pi_ref, thetas, beta)


def test_bad_shapes_and_options(env, thetas):
    with pytest.raises(ValueError, match="thetas"):
        maxmin_policy(env, thetas[:, :2], 1.0)
    with pytest.raises(ValueError, match="thetas"):
        maxmin_policy(env, thetas[0], 1.0)
    with pytest.raises(ValueError, match="theta"):
        gibbs_policy(env, np.ones(7), 1.0)
    with pytest.raises(ValueError, match="thetas"):
        maxmin_policy(env, np.full_like(thetas, np.nan), 1.0)
    with pytest.raises(ValueError, match="objective"):
        maxmin_policy(env, thetas, 1.0, objective="minmax")
    with pytest.raises(ValueError, match="normalize"):
        maxmin_policy(env, thetas, 1.0, normalize="zscore")
    with pytest.raises(ValueError, match="pi"):
        group_utilities(env, np.ones((2, 2)), thetas, 1.0)
    with pytest.raises(ValueError, match="pi"):
        group_utilities(env, env.pi_ref * 2, thetas, 1.0)
    with pytest.raises(ValueError, match="step_size"):
        maxmin_policy(env, thetas, 1.0, "algorithm1", step_size=1.5)
    with pytest.raises(ValueError, match="alpha"):
        pessimistic_policy(env, thetas[0], 1.0, np.ones((3, 3)), alpha=-1.0)
    with pytest.raises(ValueError, match="X"):
        pessimistic_policy(env, thetas[0], 1.0, np.ones((3, 2)))
    with pytest.raises(ValueError, match="env"):
        maxmin_policy(np.zeros((2, 2, 2)), thetas, 1.0)
    with pytest.raises(ValueError, match="proportions"):
        utilitarian_policy(env, thetas, 1.0, [0.5, 0.5])
