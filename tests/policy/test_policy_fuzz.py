"""Fuzz of the policy layer (issue 16 item 5, the policies' share): random valid environments,
group parameters and beta over ordinary and harsh scales (rewards up to 1e6, beta from 1e-8 to
100, non-uniform pi_ref with zero-mass actions). Every policy must be a finite distribution per
context on the support of pi_ref; the exact max-min solution's certificate (the duality gap, an
upper bound on its suboptimality) must be non-negative and within tol wherever it says it
converged, and no policy may beat the certified max-min value by more than that gap; the
beta -> 0 limit (the LP) brackets it; refits are bit-identical. ~80 examples in a few seconds."""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.arms import FiniteArmEnv
from simulator.policy import (
    gibbs_policy,
    group_utilities,
    maxmin_limit,
    maxmin_policy,
    pointwise_min_policy,
    utilitarian_policy,
)
from simulator.policy.maxmin_lp import kl_bound


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    M, A, d, U = (draw(st.integers(1, 5)), draw(st.integers(2, 5)), draw(st.integers(1, 4)),
                  draw(st.integers(1, 4)))
    scale = 10.0 ** draw(st.floats(-2, 6))
    beta = 10.0 ** draw(st.floats(-8, 2))
    feats = rng.standard_normal((M, A, d)) * scale
    pi_ref = None
    if draw(st.booleans()):
        pi_ref = rng.dirichlet(np.ones(A), size=M)
        if A > 2 and draw(st.booleans()):  # an action the reference never plays
            pi_ref[:, 0] = 0.0
            pi_ref /= pi_ref.sum(axis=1, keepdims=True)
    env = FiniteArmEnv(feats, pi_ref=pi_ref)
    return env, rng.standard_normal((U, d)), beta


def _check_policy(env, pi):
    assert pi.shape == (env.n_contexts, env.n_actions) and np.all(np.isfinite(pi))
    assert np.all(pi >= 0)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(pi[env.pi_ref == 0] <= 1e-12)  # no mass where the reference has none


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_policies_are_distributions_and_the_certificate_holds(problem):
    env, thetas, beta = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an uncertified exact solve warns
        for pi in (gibbs_policy(env, thetas[0], beta), utilitarian_policy(env, thetas, beta),
                   pointwise_min_policy(env, thetas, beta)):
            _check_policy(env, pi)
        res = maxmin_policy(env, thetas, beta, "exact", max_iter=2000)
        alg1 = maxmin_policy(env, thetas, beta, "algorithm1")
    _check_policy(env, res.pi)
    _check_policy(env, alg1.pi)
    assert np.isfinite(res.duality_gap) and res.duality_gap >= -1e-9 * max(1.0, abs(res.value))
    if res.converged:  # the limit's certificate also allows the round-off of |r| (maxmin.py)
        floor = 256 * np.finfo(float).eps * (abs(res.dual_value) + float(
            np.max(np.abs(env.rewards(thetas)))) + 1.0) if res.beta_limit else 0.0
        assert res.duality_gap <= 1e-8 + 1e-9 * max(1.0, abs(res.value)) + floor
    # no other policy's worst-group utility exceeds the certified upper bound G(q)
    for pi in (alg1.pi, gibbs_policy(env, thetas[0], beta)):
        worst = group_utilities(env, pi, thetas, beta).min()
        assert worst <= res.dual_value + 1e-7 * max(1.0, abs(res.dual_value))
    # the beta -> 0 limit brackets the regularised value [D]: with V0 the LP value,
    # V0 - beta K_max <= V(beta) <= V0, and res.value <= V(beta) <= res.dual_value
    lp = maxmin_limit(env, thetas)
    assert lp.converged and lp.beta_limit
    slack = 1e-8 + 1e-12 * float(np.max(np.abs(env.rewards(thetas))))  # round-off of |r|
    assert res.value <= lp.dual_value + slack
    assert res.dual_value >= lp.value - beta * kl_bound(env) - slack
    if res.beta_limit:  # taken only where the dual is stiff: spread / beta > 1e8
        r = env.rewards(thetas)
        assert float(np.max(np.ptp(r, axis=-1))) > 1e8 * beta
    # refits are bit-identical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        again = maxmin_policy(env, thetas, beta, "exact", max_iter=2000)
    assert again.pi.tobytes() == res.pi.tobytes()
