"""PooledMLE and SeparateMLE: recovery, consistency between them, contract, bad input."""

import numpy as np
import pytest

from simulator import Population, PreferenceData
from simulator.estimators import NotFittedError, PooledMLE, SeparateMLE


def test_mle_error_scales_like_sqrt_d_over_n():
    d, n = 16, 20000
    pop = Population.shared(d, 4, [1.0], seed=0, signal=1.0)
    errs = []
    for s in range(3):
        data = pop.sample(n, seed=100 + s)
        errs.append(np.linalg.norm(PooledMLE(lam=1e-6).fit(data).coef_ - pop.theta[0]))
    # Asymptotically ||err||^2 ~ tr(I^{-1}) / n = d / (gamma_mean n); gamma_mean >= 0.15 here, so
    # the expected error is <= sqrt(d / (0.15 n)) ~ 2.6 sqrt(d/n); 4 sqrt(d/n) leaves room for noise.
    assert np.mean(errs) <= 4 * np.sqrt(d / n)
    assert np.mean(errs) >= 0.5 * np.sqrt(d / n)  # and it is not suspiciously small


def test_separate_on_each_group_equals_pooled_on_that_subset():
    pop = Population.shared(6, 2, [0.2, 0.3, 0.5], seed=1)
    data = pop.sample(3000, seed=2)
    sep = SeparateMLE(lam=0.5).fit(data)
    for u in range(3):
        pooled = PooledMLE(lam=0.5).fit(data.by_group(u))
        np.testing.assert_allclose(sep.theta_[u], pooled.coef_, rtol=1e-10, atol=1e-12)


def test_relabelling_groups_permutes_theta():
    pop = Population.shared(5, 2, [0.2, 0.3, 0.5], seed=3)
    data = pop.sample(2000, seed=4)
    perm = np.array([2, 0, 1])
    relabelled = PreferenceData(data.X, data.y, group=perm[data.group], n_groups=3)
    a = SeparateMLE().fit(data).theta_
    b = SeparateMLE().fit(relabelled).theta_
    np.testing.assert_allclose(b[perm], a, rtol=1e-12, atol=1e-14)


def test_contract_attributes_reward_and_likelihood():
    pop = Population.shared(4, 2, [0.5, 0.5], seed=5)
    data = pop.sample(1000, seed=6)
    est = SeparateMLE()
    with pytest.raises(NotFittedError):
        est.reward(data.X, 0)
    assert est.fit(data) is est
    assert est.theta_.shape == (2, 4) and est.converged_ and est.n_iter_.shape == (2,)
    np.testing.assert_allclose(est.reward(data.X[:3], 1), data.X[:3] @ est.theta_[1])
    # log-likelihood at the (nearly unpenalised) optimum beats the truth's on the training data
    ll_fit = est.log_likelihood(data)
    z = np.einsum("ij,ij->i", data.X, pop.theta[data.group])
    ll_true = float(np.sum(-np.logaddexp(0, -(2 * data.y - 1) * z)))
    assert ll_fit >= ll_true
    pooled = PooledMLE().fit(data)
    assert pooled.theta_.shape == (2, 4) and np.array_equal(pooled.theta_[0], pooled.theta_[1])
    assert est.get_params()["lam"] == 1e-4
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(bogus=1)


def test_fit_is_bit_identical_for_the_same_seed():
    pop = Population.shared(6, 2, [0.3, 0.7], seed=7)
    a = SeparateMLE().fit(pop.sample(2000, seed=1)).theta_
    b = SeparateMLE().fit(pop.sample(2000, seed=1)).theta_
    assert a.tobytes() == b.tobytes()


def test_separate_needs_every_group_and_valid_params():
    data = PreferenceData(np.ones((3, 2)), [0, 1, 1], group=[0, 0, 0], n_groups=2)
    with pytest.raises(ValueError, match="group"):
        SeparateMLE().fit(data)
    with pytest.raises(ValueError, match="lam"):
        PooledMLE(lam=-1).fit(data)
    with pytest.raises(ValueError, match="backend"):
        PooledMLE(backend="gpu").fit(data)
    with pytest.raises(TypeError, match="PreferenceData"):
        PooledMLE().fit(np.ones((3, 2)))
