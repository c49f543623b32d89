"""Few-shot personalisation with the true representation: OracleB.fit_new_users.

New users are drawn on a fitted population's traits by ``Population.new_users``; with ``B`` known
each user's weights are a k-dimensional BT fit, so their error is governed by the k x k Fisher
information of that user's comparisons.
"""

import numpy as np
import pytest

from simulator import Population, PreferenceData
from simulator.estimators import OracleB
from simulator.estimators.base import NewUsersFit


@pytest.fixture(scope="module")
def planted():
    pop = Population.dirichlet(6, 2, 8, seed=0, alpha=1.0, signal=2.0)
    new = pop.new_users(10, seed=1)
    data = new.sample(10 * 800, seed=2, group_sampling="fixed")
    return pop, new, data


def test_fit_new_users_equals_fit_exactly(planted):
    pop, _new, data = planted
    est = OracleB(pop.B)
    few = est.fit_new_users(data)
    ref = OracleB(pop.B).fit(data)
    assert isinstance(few, NewUsersFit)
    np.testing.assert_array_equal(few.theta, ref.theta_)
    np.testing.assert_array_equal(few.W, ref.W_)
    np.testing.assert_array_equal(few.objective, ref.objective_)
    np.testing.assert_array_equal(few.n_iter, ref.n_iter_)
    np.testing.assert_array_equal(few.predict_proba(data), ref.predict_proba(data))
    assert few.log_likelihood(data) == ref.log_likelihood(data)
    # fit_new_users does not fit (or change) the estimator
    assert not hasattr(est, "theta_")


def test_fit_new_users_recovers_planted_users(planted):
    pop, new, data = planted
    few = OracleB(pop.B).fit_new_users(data)
    assert few.converged and few.converged_units.all()
    assert few.theta.shape == (10, 6) and few.W.shape == (2, 10)
    # the solver's stopping test: gradient of the mean objective below tol = 1e-9
    assert np.all(few.grad_norm <= 1e-9 * data.group_counts())
    # Tolerance: w_hat - w is asymptotically N(0, I^{-1}) with I = Z^T diag(p (1 - p)) Z the
    # Fisher information of the user's comparisons (Z = X_u B) at the truth, so ||w_hat - w||
    # has scale sqrt(tr I^{-1}). Four times that is exceeded with probability about
    # exp(-16 / 2) = 3e-4 per user for k = 2 (chi with 2 degrees of freedom).
    Z = data.X @ pop.B
    for j, rows in enumerate(data.group_rows()):
        p = 1.0 / (1.0 + np.exp(-Z[rows] @ new.W[:, j]))
        info = (Z[rows] * (p * (1 - p))[:, None]).T @ Z[rows]
        scale = np.sqrt(np.trace(np.linalg.inv(info)))
        err = np.linalg.norm(few.W[:, j] - new.W[:, j])
        assert err <= 4.0 * scale, (j, err, scale)
    # and the theta error is the same (B has orthonormal columns)
    np.testing.assert_allclose(np.linalg.norm(few.theta - new.theta, axis=1),
                               np.linalg.norm(few.W - new.W, axis=0), rtol=1e-10)


def test_fit_new_users_is_basis_invariant(planted):
    # ||B Q w|| = ||w|| for orthogonal Q, so the ridge and hence theta do not depend on the basis
    pop, _new, data = planted
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((2, 2)))[0]
    a = OracleB(pop.B).fit_new_users(data)
    b = OracleB(pop.B @ Q).fit_new_users(data)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-7, atol=1e-9)


def test_fit_new_users_with_a_base(planted):
    pop = Population.dirichlet(6, 2, 4, seed=3, base=1.0)
    new = pop.new_users(3, seed=4)
    data = new.sample(3 * 600, seed=5, group_sampling="fixed")
    few = OracleB(pop.B, theta0=pop.theta0).fit_new_users(data)
    ref = OracleB(pop.B, theta0=pop.theta0).fit(data)
    np.testing.assert_array_equal(few.theta, ref.theta_)
    assert few.W.shape == (2, 3)
    # the base's coefficient is fitted per user (about 1 here: theta_u = theta0 + B w_u)
    np.testing.assert_allclose(ref.coef_[2], 1.0, atol=0.2)


def test_new_users_fit_evaluation_methods(planted):
    pop, new, data = planted
    few = OracleB(pop.B).fit_new_users(data)
    assert few.n_users == 10
    np.testing.assert_array_equal(few.kkt_residual, few.grad_norm)
    np.testing.assert_allclose(few.reward(data.X[:5], data.group[:5]),
                               np.einsum("ij,ij->i", data.X[:5], few.theta[data.group[:5]]))
    # held-out accuracy close to the planted truth's (the same users, fresh comparisons)
    test = new.sample(4000, seed=9)
    truth = float(np.mean((new.reward(test.X, test.group) > 0) == (test.y == 1)))
    assert few.accuracy(test) >= truth - 0.02
    with pytest.raises(ValueError, match=r"unit ids must lie in \[0, 10\)"):
        few.reward(data.X[:1], [10])
    with pytest.raises(ValueError, match="X must have 6 columns"):
        few.reward(np.ones((1, 5)), [0])


def test_new_users_fit_validates_shapes():
    with pytest.raises(ValueError, match="W must have shape"):
        NewUsersFit(theta=np.zeros((3, 4)), W=np.zeros((2, 2)), objective=np.zeros(3),
                    grad_norm=np.zeros(3), n_iter=np.zeros(3), converged=True,
                    converged_units=np.ones(3, bool))
    with pytest.raises(ValueError, match="grad_norm must have shape"):
        NewUsersFit(theta=np.zeros((3, 4)), W=np.zeros((2, 3)), objective=np.zeros(3),
                    grad_norm=np.zeros(2), n_iter=np.zeros(3), converged=True,
                    converged_units=np.ones(3, bool))


def test_fit_new_users_bad_input(planted):
    pop, _new, data = planted
    est = OracleB(pop.B)
    with pytest.raises(ValueError, match="simplex.*no public simplex"):
        est.fit_new_users(data, weights="simplex")
    with pytest.raises(ValueError, match="weights must be"):
        est.fit_new_users(data, weights="positive")
    sparse = PreferenceData(X=data.X[:10], y=data.y[:10], group=np.zeros(10, int), n_groups=2)
    with pytest.raises(ValueError, match=r"new user\(s\) \[1\]"):
        est.fit_new_users(sparse)
    with pytest.raises(ValueError, match="B must have shape"):
        OracleB(pop.B[:5]).fit_new_users(data)
    with pytest.raises(TypeError, match="PreferenceData"):
        est.fit_new_users(data.X)
