"""Hypothesis property tests over random shapes: no NaN, rows on the simplex, finite utilities,
certified exact solver, the max-min policy is at least as fair as every other policy computed."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.arms import FiniteArmEnv
from simulator.fairness import alignment_gaps, win_rate
from simulator.policy import (
    gibbs_policy,
    group_utilities,
    maxmin_policy,
    utilitarian_policy,
)


@st.composite
def problems(draw):
    m = draw(st.integers(1, 5))
    a = draw(st.integers(2, 6))
    d = draw(st.integers(1, 4))
    u = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    beta = draw(st.floats(0.02, 20.0))
    scale = draw(st.floats(0.01, 3.0))
    uniform_ref = draw(st.booleans())
    rng = np.random.default_rng(seed)
    ref = None if uniform_ref else rng.dirichlet(np.ones(a), size=m)
    env = FiniteArmEnv(scale * rng.normal(size=(m, a, d)), rho=rng.dirichlet(np.ones(m)),
                       pi_ref=ref)
    return env, rng.normal(size=(u, d)), beta


@settings(max_examples=40, deadline=None)
@given(problems())
def test_policies_are_valid_and_maxmin_is_fairest(problem):
    env, th, beta = problem
    exact = maxmin_policy(env, th, beta)
    assert exact.converged and 0 <= exact.duality_gap <= 1e-8
    others = {
        "pointwise": maxmin_policy(env, th, beta, "pointwise").pi,
        "algorithm1": maxmin_policy(env, th, beta, "algorithm1", n_iter=20).pi,
        "utilitarian": utilitarian_policy(env, th, beta),
        "gibbs0": gibbs_policy(env, th[0], beta),
        "ref": env.pi_ref,
    }
    for name, pi in {"exact": exact.pi, **others}.items():
        assert np.all(np.isfinite(pi)), name
        assert np.all(pi >= 0), name
        np.testing.assert_allclose(pi.sum(1), 1.0, atol=1e-12)
        util = group_utilities(env, pi, th, beta)
        assert np.all(np.isfinite(util)), name
        assert util.min() <= exact.dual_value + 1e-9, name  # weak duality
        assert util.min() <= exact.value + 1e-8, name  # exact is the fairest
        gaps = alignment_gaps(env, pi, th, beta)
        assert np.all(np.isfinite(gaps)) and np.all(gaps >= -1e-12), name
        wr = win_rate(env, pi, exact.pi, th)
        assert np.all((wr >= 0) & (wr <= 1)), name
    np.testing.assert_allclose(exact.weights.sum(), 1.0)
