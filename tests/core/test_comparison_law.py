"""FiniteArmEnv's exact comparison law, design covariance and reward variance against the sampler
and explicit loops."""

import numpy as np
import pytest

from simulator.arms import FiniteArmEnv
from simulator.validation import InvalidParameterError


def _env(seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(3, 4, 2))
    pi_ref = rng.dirichlet(np.ones(4), size=3)
    pi_ref[1] = [0.0, 0.5, 0.5, 0.0]          # zero-mass actions
    pi_ref[2] = [1.0, 0.0, 0.0, 0.0]          # a context the sampler can never use
    return FiniteArmEnv(feats, rho=[0.5, 0.3, 0.2], pi_ref=pi_ref)


def test_comparison_law_is_the_samplers_law():
    env = _env()
    w, X = env.comparison_law()
    assert w.shape == (3, 4, 4) and X.shape == (3, 4, 4, 2)
    assert np.isclose(w.sum(), 1.0) and (w >= 0).all()
    assert np.all(w[:, np.arange(4), np.arange(4)] == 0) and np.all(w[2] == 0)
    n = 200_000
    ctx, act, Xs = env.sample_comparisons(n, seed=1)
    freq = np.zeros_like(w)
    np.add.at(freq, (ctx, act[:, 0], act[:, 1]), 1.0 / n)
    # 5 binomial standard deviations per cell: a false alarm has probability ~1e-6 per cell
    assert np.all(np.abs(freq - w) <= 5 * np.sqrt(w * (1 - w) / n) + 1e-12)
    np.testing.assert_array_equal(X[ctx, act[:, 0], act[:, 1]], Xs)


def test_design_covariance_against_a_loop_and_a_known_answer():
    env = _env()
    w, X = env.comparison_law()
    ref = np.zeros((2, 2))
    for x in range(3):
        for a in range(4):
            for b in range(4):
                ref += w[x, a, b] * np.outer(X[x, a, b], X[x, a, b])
    np.testing.assert_allclose(env.design_covariance(), ref, rtol=1e-12, atol=1e-15)
    # one context, two arms e1 and e2: both orders have weight 1/2, X = +-(e2 - e1)
    two = FiniteArmEnv(np.eye(2)[None])
    np.testing.assert_allclose(two.design_covariance(), [[1.0, -1.0], [-1.0, 1.0]], atol=1e-15)


def test_policy_argument_changes_the_law():
    env = _env()
    pi = np.full((3, 4), 0.25)
    w, _ = env.comparison_law(pi)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), env.rho, rtol=1e-12)  # every context usable
    np.testing.assert_allclose(w[0], env.rho[0] / 12 * (1 - np.eye(4)), rtol=1e-12)


def test_no_usable_context_is_refused():
    env = FiniteArmEnv(np.zeros((2, 3, 1)), pi_ref=np.tile([1.0, 0.0, 0.0], (2, 1)))
    with pytest.raises(InvalidParameterError, match="two actions"):
        env.comparison_law()


def test_reward_variance_known_answer_and_loop():
    two = FiniteArmEnv(np.array([[[0.0], [1.0]]]))
    assert two.reward_variance(np.array([[0.5, 0.5]]), np.array([1.0])) == pytest.approx(0.25)
    assert two.reward_variance(np.array([[1.0, 0.0]]), np.array([3.0])) == 0.0
    env = _env()
    rng = np.random.default_rng(2)
    pi, dt = rng.dirichlet(np.ones(4), size=3), rng.normal(size=2)
    r = env.features @ dt
    ref = sum(env.rho[x] * (pi[x] @ r[x] ** 2 - (pi[x] @ r[x]) ** 2) for x in range(3))
    assert env.reward_variance(pi, dt) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(InvalidParameterError, match="dtheta"):
        env.reward_variance(pi, np.ones((2, 2)))
    with pytest.raises(InvalidParameterError, match="pi"):
        env.reward_variance(np.ones((3, 4)), dt)
