"""population_bt_fit: the pooled BT fit to an exact comparison law (MaxMin-RLHF Lemma 1's phi*)."""

import numpy as np
import pytest
from scipy.special import expit

from simulator.arms import FiniteArmEnv
from simulator.estimators.bt import fit_bt
from simulator.estimators.population_limit import population_bt_fit
from simulator.validation import InvalidParameterError


def _env(seed=0, M=6, A=4, d=3):
    rng = np.random.default_rng(seed)
    return FiniteArmEnv(rng.normal(size=(M, A, d)), pi_ref=rng.dirichlet(np.ones(A), size=M))


THETA = np.array([[1.0, -0.5, 0.3], [-0.4, 0.8, 0.6]])


def test_a_single_bt_model_is_its_own_limit():
    env = _env()
    fit = population_bt_fit(env, THETA[:1], [1.0])
    assert fit.converged
    np.testing.assert_allclose(fit.theta, THETA[0], atol=1e-7)  # the lam = 1e-10 guard's shift
    # two groups with the same parameter are one BT model, whatever the proportions
    same = population_bt_fit(env, np.vstack([THETA[1], THETA[1]]), [0.3, 0.7])
    np.testing.assert_allclose(same.theta, THETA[1], atol=1e-7)


def test_stationarity_of_the_expected_objective():
    # independent of the solver: the gradient sum_q w_q (P_mix(X_q) - sigma(<phi*, X_q>)) X_q
    # of the expected log-likelihood vanishes at phi*
    env, eta = _env(1), np.array([0.2, 0.8])
    phi = population_bt_fit(env, THETA, eta).theta
    w, X = env.comparison_law()
    w, X = w.reshape(-1), X.reshape(-1, 3)
    p_mix = eta @ expit(THETA @ X.T)
    grad = (w * (p_mix - expit(X @ phi))) @ X
    assert np.linalg.norm(grad) < 1e-10
    # a mixture of two different BT models is not the proportion-weighted BT model
    assert np.linalg.norm(phi - eta @ THETA) > 1e-3


def test_agrees_with_fit_bt_on_many_samples():
    env, eta, n = _env(2), np.array([0.3, 0.7]), 400_000
    rng = np.random.default_rng(3)
    ctx, act, X = env.sample_comparisons(n, seed=rng)
    g = rng.choice(2, size=n, p=eta)
    y = (rng.random(n) < expit(np.einsum("nd,nd->n", X, THETA[g]))).astype(np.int8)
    sample = fit_bt(X, y, lam=1e-6)
    phi = population_bt_fit(env, THETA, eta).theta
    # standard error of the MLE ~ 1/sqrt(n * curvature) ~ 4e-3 per coordinate: 0.025 is ~6 sigma
    np.testing.assert_allclose(sample.theta, phi, atol=0.025)


def test_bad_input_names_the_parameter():
    env = _env()
    with pytest.raises(InvalidParameterError, match="proportions"):
        population_bt_fit(env, THETA, [0.5, 0.4])
    with pytest.raises(InvalidParameterError, match="proportions"):
        population_bt_fit(env, THETA, [1.0])
    with pytest.raises(InvalidParameterError, match="theta"):
        population_bt_fit(env, np.ones((2, 2)), [0.5, 0.5])
    with pytest.raises(InvalidParameterError, match="env"):
        population_bt_fit(np.ones((2, 3, 3)), THETA, [0.5, 0.5])
