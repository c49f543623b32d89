"""The BT objective: derivatives against finite differences, numba == numpy, invariances."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.estimators.bt import bt_objective, fit_bt
from simulator.kernels import bt_numba


def _problem(n, d, seed, weights=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta = rng.standard_normal(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ theta))).astype(np.int8)
    w = rng.random(n) * 2 if weights else None
    return X, y, w, rng.standard_normal(d)


@pytest.mark.parametrize("weights", [False, True])
def test_gradient_and_hessian_match_finite_differences(weights):
    X, y, w, th = _problem(200, 6, 0, weights)
    lam = 0.7
    f, g, H = bt_objective(th, X, y, lam, w)
    h = 1e-6
    g_fd = np.array([(bt_objective(th + h * e, X, y, lam, w)[0]
                      - bt_objective(th - h * e, X, y, lam, w)[0]) / (2 * h)
                     for e in np.eye(6)])
    H_fd = np.array([(bt_objective(th + h * e, X, y, lam, w)[1]
                      - bt_objective(th - h * e, X, y, lam, w)[1]) / (2 * h)
                     for e in np.eye(6)])
    # central differences: O(h^2) truncation + O(eps * f / h) round-off ~ 1e-7 relative
    np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-6)


@given(n=st.integers(1, 700), d=st.integers(1, 12), seed=st.integers(0, 2**31),
       weights=st.booleans())
def test_numba_kernel_equals_numpy_reference(n, d, seed, weights):
    X, y, w, th = _problem(n, d, seed, weights)
    f, g, H = bt_numba.loss_grad_hess(th, X, y, w)
    f2, g2, H2 = bt_objective(th, X, y, 0.0, w)
    assert np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    scale = max(1.0, abs(f2))
    assert abs(f - f2) <= 1e-10 * scale
    np.testing.assert_allclose(g, g2, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(H, H2, rtol=1e-10, atol=1e-10 * scale)
    assert abs(bt_numba.loss(th, X, y, w) - f2) <= 1e-10 * scale


@given(seed=st.integers(0, 2**31), d=st.integers(1, 10))
def test_hessian_symmetric_positive_definite(seed, d):
    X, y, w, th = _problem(50, d, seed)
    _, _, H = bt_objective(th * 3, X, y, 1e-3)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert np.linalg.eigvalsh(H).min() > 0


def test_numba_and_numpy_solvers_agree_to_1e8_relative():
    X, y, w, _ = _problem(5000, 10, 3, weights=True)
    a = fit_bt(X, y, lam=0.1, sample_weight=w, backend="numba")
    b = fit_bt(X, y, lam=0.1, sample_weight=w, backend="numpy")
    assert a.converged and b.converged
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-8, atol=1e-10)


def test_solver_reaches_gradient_tolerance_and_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = _problem(3000, 8, 4)
    res = fit_bt(X, y, lam=2.0, tol=1e-12)
    assert res.converged and res.grad_norm <= 1e-12 * 3000
    _, g, _ = bt_objective(res.theta, X, y, 2.0)
    assert np.linalg.norm(g) <= 1e-8
    sk = LogisticRegression(C=0.5, fit_intercept=False, tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(res.theta, sk.coef_.ravel(), atol=1e-6)


def test_row_permutation_invariance():
    X, y, _, _ = _problem(2000, 5, 5)
    perm = np.random.default_rng(0).permutation(2000)
    a = fit_bt(X, y, lam=1e-3)
    b = fit_bt(X[perm], y[perm], lam=1e-3)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-9, atol=1e-11)


def test_separable_data_warns_without_ridge_and_stays_finite_with_it():
    from simulator.estimators import MLENotExistWarning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(np.int8)  # perfectly separable
    with pytest.warns(MLENotExistWarning):
        fit_bt(X, y, lam=0.0, max_iter=200)
    res = fit_bt(X, y, lam=1e-4)
    assert res.converged and np.all(np.isfinite(res.theta))


def test_norm_bound_is_the_constrained_optimum():
    X, y, _, _ = _problem(2000, 4, 6)
    free = fit_bt(X, y, lam=0.0)
    bound = 0.5 * np.linalg.norm(free.theta)
    res = fit_bt(X, y, lam=0.0, norm_bound=bound)
    assert abs(np.linalg.norm(res.theta) - bound) <= 1e-8 * bound
    # KKT for a ball constraint: the gradient is anti-parallel to theta.
    _, g, _ = bt_objective(res.theta, X, y, 0.0)
    cos = g @ res.theta / (np.linalg.norm(g) * np.linalg.norm(res.theta))
    assert cos < -1 + 1e-8
    # and no feasible point on a random set of directions does better
    rng = np.random.default_rng(1)
    for _ in range(50):
        v = rng.standard_normal(4)
        v *= bound / np.linalg.norm(v)
        assert bt_objective(v, X, y)[0] >= res.objective - 1e-9


@pytest.mark.parametrize("kw,match", [
    ({"lam": -1}, "lam"), ({"tol": 0}, "tol"), ({"max_iter": 0}, "max_iter"),
    ({"backend": "cuda"}, "backend"), ({"sample_weight": -np.ones(10)}, "sample_weight"),
    ({"norm_bound": -1.0}, "norm_bound")])
def test_bad_solver_arguments_raise(kw, match):
    X, y, _, _ = _problem(10, 2, 0)
    with pytest.raises(ValueError, match=match):
        fit_bt(X, y, **kw)


@pytest.mark.parametrize("weights", [False, True])
def test_parallel_kernel_equals_numpy_reference_on_large_n(weights):
    n = bt_numba.SERIAL_BELOW + 1234  # the multi-threaded, BLAS-chunked path
    X, y, w, th = _problem(n, 9, 7, weights)
    f, g, H = bt_numba.loss_grad_hess(th, X, y, w)
    f2, g2, H2 = bt_objective(th, X, y, 0.0, w)
    assert abs(f - f2) <= 1e-10 * abs(f2)
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, H2, rtol=1e-10)


def test_warm_start_from_a_subsample_reaches_the_same_optimum():
    from simulator.estimators import bt

    X, y, _, _ = _problem(bt.WARM_START_ABOVE + 5000, 4, 8)
    warm = fit_bt(X, y, lam=0.5)  # cold call: solves a 1/8 subsample first
    cold = fit_bt(X, y, lam=0.5, theta_init=np.zeros(4))  # a given start disables it
    assert warm.converged and cold.converged
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-8, atol=1e-12)
    assert warm.n_iter < cold.n_iter  # the point of it: fewer full-data Newton steps


@pytest.mark.parametrize("n", [300, bt_numba.SERIAL_BELOW + 777])
def test_loss_grad_kernel_equals_numpy_reference(n):
    X, y, w, th = _problem(n, 7, 9, weights=True)
    f, g = bt_numba.loss_grad(th, X, y, w)
    f2, g2, _ = bt_objective(th, X, y, 0.0, w)
    assert abs(f - f2) <= 1e-10 * abs(f2)
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
