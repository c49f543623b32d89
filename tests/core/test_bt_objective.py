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


def _parallel_rows(d, hessian):
    """Rows that make bt_numba take its multi-threaded, BLAS-chunked path."""
    n = int(bt_numba.SERIAL_BELOW / bt_numba._work(1, d, hessian)) + 1234
    assert bt_numba._work(n, d, hessian) >= bt_numba.SERIAL_BELOW
    return n


@pytest.mark.parametrize("weights", [False, True])
def test_parallel_kernel_equals_numpy_reference_on_large_n(weights):
    n = _parallel_rows(9, hessian=True)
    X, y, w, th = _problem(n, 9, 7, weights)
    f, g, H = bt_numba.loss_grad_hess(th, X, y, w)
    f2, g2, H2 = bt_objective(th, X, y, 0.0, w)
    assert abs(f - f2) <= 1e-10 * abs(f2)
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, H2, rtol=1e-10)


@pytest.mark.parametrize("n", [300, _parallel_rows(7, hessian=False)])
def test_loss_grad_kernel_equals_numpy_reference(n):
    X, y, w, th = _problem(n, 7, 9, weights=True)
    f, g = bt_numba.loss_grad(th, X, y, w)
    f2, g2, _ = bt_objective(th, X, y, 0.0, w)
    assert abs(f - f2) <= 1e-10 * abs(f2)
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
    assert abs(bt_numba.loss(th, X, y, w) - f2) <= 1e-10 * abs(f2)


@pytest.mark.parametrize("n", [500, _parallel_rows(6, hessian=True)])
def test_float32_newton_matrix_is_the_hessian_to_float32_precision(n):
    # hess32 forms the chunk products in float32 (24-bit mantissa) and sums them in float64:
    # relative error a few times 2^-24 ~ 6e-8 per chunk entry; 1e-6 leaves a margin.
    X, y, w, th = _problem(n, 6, 11, weights=True)
    f, g, H = bt_numba.loss_grad_hess(th, X, y, w, hess32=True)
    f2, g2, H2 = bt_objective(th, X, y, 0.0, w)
    assert abs(f - f2) <= 1e-10 * abs(f2)  # f and g stay float64
    np.testing.assert_allclose(g, g2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(H, H2, rtol=1e-6, atol=1e-6 * np.abs(H2).max())
    np.testing.assert_array_equal(H, H.T)


def test_vectorised_exp_and_log1p_are_accurate_to_a_few_ulp():
    from numba import njit

    # exp(-|z|) over the whole range the kernels meet, both signs of z, and the clamp.
    z = np.concatenate([np.linspace(-745, 745, 400_001), [0.0, -0.0, 1e-300, 708.0, 1e300]])
    e, bits = np.empty_like(z), np.empty_like(z)
    bt_numba._exp_neg_abs(z, e, bits, z.size)
    ref = np.exp(np.maximum(-np.abs(z), -708.0))
    assert np.max(np.abs(e - ref) / ref) <= 4 * np.finfo(float).eps

    @njit
    def log1p_all(u, out):
        for i in range(u.size):
            out[i] = bt_numba._log1p_unit(u[i])

    u = np.concatenate([np.linspace(0.0, 1.0, 200_001), np.logspace(-300, 0, 1000)])
    out = np.empty_like(u)
    log1p_all(u, out)
    ref = np.log1p(u)
    pos = ref > 0
    assert out[~pos].max() == 0.0
    assert np.max(np.abs(out[pos] - ref[pos]) / ref[pos]) <= 4 * np.finfo(float).eps


@given(seed=st.integers(0, 2**31), d=st.integers(1, 12))
def test_bfgs_update_satisfies_the_secant_condition_and_the_kernel_matches(seed, d):
    from simulator.estimators.bt import bfgs_update
    from simulator.kernels.newton_numba import bfgs_update as bfgs_numba

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    H = A @ A.T + np.eye(d)
    s = rng.standard_normal(d)
    y = (H + 0.5 * np.eye(d)) @ s  # a secant pair with positive curvature
    H1 = bfgs_update(H, s, y)
    np.testing.assert_allclose(H1 @ s, y, rtol=1e-9, atol=1e-9 * np.abs(y).max())
    np.testing.assert_allclose(H1, H1.T, atol=1e-9 * np.abs(H1).max())
    assert np.linalg.eigvalsh(H1).min() > 0
    np.testing.assert_allclose(bfgs_numba(H, s, y), H1, rtol=1e-12, atol=1e-12 * np.abs(H1).max())
    # no update without positive curvature
    np.testing.assert_array_equal(bfgs_update(H, s, -y), H)
    np.testing.assert_array_equal(bfgs_numba(H, s, -y), H)


@pytest.mark.parametrize("weights", [False, True])
def test_multilevel_warm_start_reaches_the_same_optimum(weights):
    from simulator.estimators import bt

    d = 4
    rows = bt.WARM_START_STRIDE * max(bt.WARM_START_MIN_ROWS, bt.WARM_START_ROWS_PER_DIM * d)
    n = bt.WARM_START_STRIDE * rows + 5000  # two subsample levels: n/8 and n/64
    assert bt._warm_start_applies(n // bt.WARM_START_STRIDE, d)
    X, y, w, _ = _problem(n, d, 8, weights)
    warm = fit_bt(X, y, lam=0.5, sample_weight=w)  # cold call: solves 1/64, then 1/8 first
    cold = fit_bt(X, y, lam=0.5, sample_weight=w, theta_init=np.zeros(d))  # given start: none
    assert warm.converged and cold.converged
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-8, atol=1e-12)
    assert warm.n_hess == 0  # every full-data step used the subsample matrix (BFGS-corrected)
    assert cold.n_hess >= 1


def test_separable_subsample_still_reaches_the_full_data_optimum():
    from simulator.estimators import MLENotExistWarning, bt

    # d = 3 with n/8 = 1000 rows: the subsample is separable on its own (one clean split), the
    # full data are not (a few flipped labels). lam = 0: the subsample has no MLE.
    rng = np.random.default_rng(5)
    n = bt.WARM_START_STRIDE * bt.WARM_START_MIN_ROWS + 40
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] > 0).astype(np.int8)
    flip = np.arange(1, n, bt.WARM_START_STRIDE)[:30]  # rows outside the stride-8 subsample
    y[flip] = 1 - y[flip]
    import warnings

    # The loose subsample solve stops far out along the separating direction; the full-data
    # Newton iterations (exact gradient, line search) must still find the full optimum.
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLENotExistWarning)
        warm = fit_bt(X, y, lam=0.0)
    cold = fit_bt(X, y, lam=0.0, theta_init=np.zeros(3))
    assert warm.converged and cold.converged
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-7)


@pytest.mark.parametrize("hessian", [False, True])
def test_serial_and_threaded_passes_agree_and_repeat_bit_for_bit(hessian):
    # Both paths split the rows into the same blocks and sum them in the same order; the
    # vectorised reductions inside a block may still be compiled differently in the two
    # contexts, so they agree to round-off (1e-13 relative), not necessarily to the bit. Each
    # path repeats itself exactly (no dependence on thread timing).
    n = _parallel_rows(5, hessian)
    X, y, w, th = _problem(n, 5, 12, weights=True)
    nb = bt_numba._blocks(n)
    a = bt_numba._pass_serial(th, X, y, w, True, nb, hessian, False)
    with bt_numba.one_blas_thread():
        b = bt_numba._pass_parallel(th, X, y, w, True, nb, hessian, False)
        b2 = bt_numba._pass_parallel(th, X, y, w, True, nb, hessian, False)
    assert abs(a[0] - b[0]) <= 1e-13 * abs(a[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-13, atol=1e-13 * np.abs(a[1]).max())
    np.testing.assert_allclose(a[2], b[2], rtol=1e-13)
    assert b[0] == b2[0]
    np.testing.assert_array_equal(b[1], b2[1])
    np.testing.assert_array_equal(b[2], b2[2])


@given(n=st.integers(20, 600), d=st.integers(1, 8), seed=st.integers(0, 2**31),
       weights=st.booleans(), lam=st.sampled_from([0.1, 1.0, 10.0]))
def test_compiled_newton_reaches_the_reference_loops_optimum(n, d, seed, weights, lam):
    # The numba back-end runs the compiled loop (kernels/newton_numba.py), the numpy back-end
    # the Python reference loop (float64 Hessians, LAPACK); with a ridge the optimum is unique,
    # and both stop at a mean gradient below 1e-11, so the estimates agree to ~1e-9.
    X, y, w, _ = _problem(n, d, seed, weights)
    a = fit_bt(X, y, lam=lam, sample_weight=w, tol=1e-11, backend="numba")
    b = fit_bt(X, y, lam=lam, sample_weight=w, tol=1e-11, backend="numpy")
    assert a.converged and b.converged
    assert np.all(np.isfinite(a.theta))
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-7, atol=1e-9)
    assert abs(a.objective - b.objective) <= 1e-10 * max(1.0, abs(b.objective))
