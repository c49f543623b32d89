"""FiniteArmEnv: validation, rewards, seeded comparison sampling."""

import numpy as np
import pytest

from simulator.arms import FiniteArmEnv
from simulator.policy import FiniteArmEnv as ReExported


def test_reexport_and_defaults():
    assert ReExported is FiniteArmEnv
    env = FiniteArmEnv(np.zeros((4, 3, 2)))
    assert (env.n_contexts, env.n_actions, env.d) == (4, 3, 2)
    np.testing.assert_allclose(env.rho, 0.25)
    np.testing.assert_allclose(env.pi_ref, 1 / 3)
    with pytest.raises(ValueError):
        env.features[0, 0, 0] = 1.0  # read-only


def test_rewards_shapes():
    rng = np.random.default_rng(0)
    env = FiniteArmEnv(rng.normal(size=(4, 3, 2)))
    th = rng.normal(size=(5, 2))
    r = env.rewards(th)
    assert r.shape == (5, 4, 3)
    np.testing.assert_allclose(r[2], env.features @ th[2])
    assert env.rewards(th[0]).shape == (4, 3)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"features": np.zeros((3, 2))}, "features"),
        ({"features": np.full((2, 3, 1), np.nan)}, "features"),
        ({"features": np.zeros((2, 1, 1))}, "A >= 2"),
        ({"features": np.zeros((2, 3, 1)), "rho": [0.5, 0.6]}, "rho"),
        ({"features": np.zeros((2, 3, 1)), "rho": [1.5, -0.5]}, "rho"),
        ({"features": np.zeros((2, 3, 1)), "rho": [1.0]}, "rho"),
        ({"features": np.zeros((2, 3, 1)), "pi_ref": np.full((2, 2), 0.5)}, "pi_ref"),
        ({"features": np.zeros((2, 3, 1)), "pi_ref": np.full((2, 3), 0.5)}, "pi_ref"),
    ],
)
def test_bad_inputs(kwargs, word):
    with pytest.raises(ValueError, match=word):
        FiniteArmEnv(**kwargs)


def test_sample_comparisons_seeded_distinct_and_exact_law():
    rng = np.random.default_rng(3)
    pi_ref = rng.dirichlet(np.ones(4), size=3)
    pi_ref[0, 1] = 0.0
    pi_ref /= pi_ref.sum(1, keepdims=True)
    env = FiniteArmEnv(rng.normal(size=(3, 4, 2)), rho=[0.2, 0.3, 0.5], pi_ref=pi_ref)
    n = 60_000
    ctx, act, X = env.sample_comparisons(n, 7)
    ctx2, act2, _X2 = env.sample_comparisons(n, np.random.SeedSequence(7))
    np.testing.assert_array_equal(act, act2)
    np.testing.assert_array_equal(ctx, ctx2)
    assert ctx.shape == (n,) and act.shape == (n, 2) and X.shape == (n, 2)
    assert np.all(act[:, 0] != act[:, 1])
    assert not np.any((ctx == 0) & ((act[:, 0] == 1) | (act[:, 1] == 1)))  # zero-mass arm
    np.testing.assert_allclose(X, env.features[ctx, act[:, 1]] - env.features[ctx, act[:, 0]])
    # empirical frequencies vs the exact pair law (binomial standard error 4 sigma)
    law = env.pair_probabilities() * env.rho[:, None, None]
    counts = np.zeros_like(law)
    np.add.at(counts, (ctx, act[:, 0], act[:, 1]), 1.0)
    freq = counts / n
    assert np.all(np.abs(freq - law) <= 4 * np.sqrt(law * (1 - law) / n) + 1e-12)
    # a Generator is consumed (advances), seeds must be explicit
    g = np.random.default_rng(1)
    a1 = env.sample_comparisons(10, g)[1]
    a2 = env.sample_comparisons(10, g)[1]
    assert not np.array_equal(a1, a2)
    with pytest.raises(ValueError, match="seed"):
        env.sample_comparisons(10, None)
    with pytest.raises(ValueError, match="n must"):
        env.sample_comparisons(-1, 0)
