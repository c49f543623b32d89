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


# ------------------------------------------------------------------ linear equality constraints
def _kkt(X, y, w, lam, A, b):
    """Independent reference: Newton on the KKT system [[H, A^T], [A, 0]] in the full space."""
    from simulator.estimators.bt import bt_objective

    d, m = X.shape[1], A.shape[0]
    theta = np.linalg.lstsq(A, b, rcond=None)[0]
    for _ in range(100):
        _f, g, H = bt_objective(theta, X, y, lam, w)
        sol = np.linalg.solve(np.block([[H, A.T], [A, np.zeros((m, m))]]),
                              np.r_[-g, b - A @ theta])
        theta = theta + sol[:d]
        if np.linalg.norm(sol[:d]) <= 1e-15 * max(1.0, np.linalg.norm(theta)):
            break
    return theta


SUM0 = (np.ones((1, 5)), [0.0])


def test_pooled_with_constraints_and_weights_matches_the_kkt_solution():
    pop = Population.shared(5, 2, [0.4, 0.6], seed=11)
    data = pop.sample(1500, seed=12)
    w = np.random.default_rng(13).random(data.n) + 0.2
    A, b = np.vstack([np.ones(5), np.arange(5.0)]), np.array([0.3, -0.4])
    est = PooledMLE(lam=0.5, tol=1e-12, constraints=(A, b)).fit(data, sample_weight=w)
    ref = _kkt(data.X, data.y, w, 0.5, A, b)
    np.testing.assert_allclose(est.coef_, ref, atol=1e-9)  # two Newton-accurate solvers
    assert np.abs(A @ est.coef_ - b).max() <= 1e-12 and est.converged_
    assert est.multipliers_.shape == (2,)
    assert PooledMLE(lam=0.5).fit(data).multipliers_ is None
    # the unconstrained fit breaks the constraint: it binds
    assert np.abs(A @ PooledMLE(lam=0.5).fit(data, sample_weight=w).coef_ - b).max() > 1e-2


def test_separate_with_shared_constraints_equals_pooled_per_group():
    pop = Population.shared(5, 2, [0.3, 0.3, 0.4], seed=14)
    data = pop.sample(2400, seed=15)
    w = np.random.default_rng(16).random(data.n) + 0.2
    sep = SeparateMLE(lam=0.5, constraints=SUM0).fit(data, sample_weight=w)
    for u in range(3):
        rows = data.group == u
        pooled = PooledMLE(lam=0.5, constraints=SUM0).fit(data.by_group(u),
                                                           sample_weight=w[rows])
        np.testing.assert_allclose(sep.theta_[u], pooled.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sep.theta_.sum(1), 0.0, atol=1e-13)
    assert sep.converged_ and len(sep.multipliers_) == 3
    # torch fits the constrained units one by one: the same optimum
    tor = SeparateMLE(lam=0.5, constraints=SUM0, backend="torch").fit(data, sample_weight=w)
    np.testing.assert_allclose(tor.theta_, sep.theta_, atol=1e-8)


def test_separate_with_per_unit_constraints():
    pop = Population.shared(5, 2, [0.3, 0.3, 0.4], seed=17)
    data = pop.sample(2400, seed=18)
    A1 = (np.eye(5)[:2], [0.5, -0.5])  # fixes theta_1[0] and theta_1[1]
    est = SeparateMLE(lam=0.5, constraints={0: SUM0, 1: A1}).fit(data)
    free = SeparateMLE(lam=0.5).fit(data)
    assert abs(est.theta_[0].sum()) <= 1e-13
    np.testing.assert_allclose(est.theta_[1, :2], [0.5, -0.5], atol=1e-13)
    np.testing.assert_allclose(est.theta_[2], free.theta_[2], rtol=1e-12)  # group 2: free
    assert est.multipliers_[2] is None and est.multipliers_[1].shape == (2,)
    with pytest.raises(ValueError, match="lam='cv'"):
        SeparateMLE(lam="cv", constraints={0: SUM0}).fit(data)
    with pytest.raises(ValueError, match=r"keys must be unit indices in \[0, 3\)"):
        SeparateMLE(constraints={3: SUM0}).fit(data)
    with pytest.raises(ValueError, match="keys must be unit indices"):
        SeparateMLE(constraints={"a": SUM0}).fit(data)
    with pytest.raises(ValueError, match=r"constraints\[1\] A must have d = 5 columns"):
        SeparateMLE(constraints={1: (np.ones((1, 4)), [0.0])}).fit(data)
    with pytest.raises(ValueError, match="constraints must be None or a pair"):
        PooledMLE(constraints={0: SUM0}).fit(data)  # one theta: no per-unit dict


def test_cv_with_constraints_fits_every_candidate_under_them():
    pop = Population.shared(5, 2, [0.5, 0.5], seed=19)
    data = pop.sample(600, seed=20)
    est = PooledMLE(lam="cv", constraints=SUM0).fit(data)
    assert abs(est.coef_.sum()) <= 1e-13 and est.lam_ in est.cv_result_.grid
    # the chosen lam refitted by hand under the constraint is the estimate
    again = PooledMLE(lam=est.lam_, constraints=SUM0).fit(data)
    np.testing.assert_array_equal(again.coef_, est.coef_)
    sep = SeparateMLE(lam="cv", constraints=SUM0).fit(data)
    np.testing.assert_allclose(sep.theta_.sum(1), 0.0, atol=1e-13)


def test_oracle_with_constraints():
    from simulator.estimators import OracleB

    pop = Population.shared(6, 2, [0.5, 0.5], seed=21)
    data = pop.sample(2000, seed=22)
    A, b = np.ones((1, 6)), np.array([0.25])
    est = OracleB(pop.B, lam=0.5, tol=1e-12, constraints=(A, b)).fit(data)
    np.testing.assert_allclose(est.theta_ @ A.T, 0.25, atol=1e-12)
    for u in range(2):  # the KKT solution on the group's design X B with (A B) c = b
        rows = data.group == u
        ref = _kkt(data.X[rows] @ pop.B, data.y[rows], None, 0.5, A @ pop.B, b)
        np.testing.assert_allclose(est.W_[:, u], ref, atol=1e-9)
    # a constraint that span(B) meets by itself is dropped: B with columns summing to zero
    B0 = np.linalg.qr(pop.B - pop.B.mean(0))[0]
    free = OracleB(B0, lam=0.5).fit(data)
    same = OracleB(B0, lam=0.5, constraints=(np.ones((1, 6)), [0.0])).fit(data)
    np.testing.assert_array_equal(same.theta_, free.theta_)
    with pytest.raises(ValueError, match="no theta in the span of B"):
        OracleB(B0, constraints=(np.ones((1, 6)), [1.0])).fit(data)
    with pytest.raises(ValueError, match="leave no free coefficient"):
        OracleB(pop.B, constraints=(pop.B.T, [0.0, 0.0])).fit(data)
    with pytest.raises(ValueError, match="constraints must be None or a pair"):
        OracleB(pop.B, constraints="sum").fit(data)
