"""fit_bt(constraints=(A, b)): linear equality constraints on theta, solved as an unconstrained
fit in null(A) coordinates (theta = theta_p + N z) and certified by the projected gradient.

Checked against an independent solver (Newton on the Lagrangian's KKT system in the full
space, with multipliers), scipy's SLSQP, a closed form, and the offset kernels against the
numpy reference; plus the bad-input table and a hypothesis property test.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space
from scipy.optimize import minimize

from simulator.estimators.bt import (
    MLENotExistWarning,
    bt_objective,
    check_constraints,
    fit_bt,
    separable,
)
from simulator.kernels import bt_numba
from simulator.kernels.torch_bt import fit_bt_batched
from simulator.validation import InvalidParameterError


def _problem(n, d, seed, weights=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta = rng.standard_normal(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ theta))).astype(np.int8)
    w = rng.random(n) + 0.1 if weights else None
    return X, y, w, rng


def kkt_solve(X, y, w, lam, A, b, mu=0.0):
    """Independent reference: Newton's method on the KKT system of
    min f + (lam + mu)/2 ||theta||^2 s.t. A theta = b, in the full space with multipliers nu:
    [[H, A^T], [A, 0]] [dtheta; nu] = [-g; b - A theta]. Returns theta, nu."""
    d, m = X.shape[1], A.shape[0]
    theta = np.linalg.lstsq(A, b, rcond=None)[0]
    nu = np.zeros(m)
    for _ in range(100):
        _f, g, H = bt_objective(theta, X, y, lam + mu, w)
        K = np.block([[H, A.T], [A, np.zeros((m, m))]])
        sol = np.linalg.solve(K, np.r_[-g, b - A @ theta])
        theta, nu = theta + sol[:d], sol[d:]
        if np.linalg.norm(sol[:d]) <= 1e-15 * max(1.0, np.linalg.norm(theta)):
            break
    return theta, nu


# ------------------------------------------------------------------------- known answers
def test_sum_to_zero_closed_form():
    # d = 2, every comparison has x = e1: x^T theta = theta_1, so under theta_1 + theta_2 = 0
    # the MLE (lam = 0) is theta = (t, -t) with t = logit(k / n), k the number of wins.
    n, k = 50, 36
    X = np.tile([1.0, 0.0], (n, 1))
    y = (np.arange(n) < k).astype(np.int8)
    t = np.log(k / (n - k))
    for backend in ("numba", "numpy", "torch"):
        res = fit_bt(X, y, lam=0.0, tol=1e-12, backend=backend,
                     constraints=(np.ones((1, 2)), [0.0]))
        assert res.converged, res.status
        np.testing.assert_allclose(res.theta, [t, -t], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("b_zero", [True, False])
def test_matches_kkt_newton_and_slsqp(b_zero):
    X, y, w, rng = _problem(400, 5, seed=1)
    A = np.vstack([np.ones(5), rng.standard_normal(5)])
    b = np.zeros(2) if b_zero else np.array([0.5, -1.0])  # b != 0 runs the offset path
    lam = 0.7
    res = fit_bt(X, y, lam=lam, sample_weight=w, tol=1e-12, constraints=(A, b))
    ref, nu = kkt_solve(X, y, w, lam, A, b)
    assert res.converged
    # both are Newton-accurate (gradients ~1e-10 against a curvature ~n/10): 1e-8 is slack
    np.testing.assert_allclose(res.theta, ref, rtol=0, atol=1e-8 * max(1, np.abs(ref).max()))
    np.testing.assert_allclose(res.multipliers, nu, rtol=1e-7, atol=1e-7)
    assert np.abs(A @ res.theta - b).max() <= 1e-12
    f_ref = bt_objective(ref, X, y, lam, w)[0]
    assert abs(res.objective - f_ref) <= 1e-10 * abs(f_ref)
    # a third, unrelated solver (SLSQP, ~1e-8 accurate on this problem)
    sl = minimize(lambda t: bt_objective(t, X, y, lam, w)[0], np.zeros(5),
                  jac=lambda t: bt_objective(t, X, y, lam, w)[1], method="SLSQP",
                  constraints=[{"type": "eq", "fun": lambda t: A @ t - b, "jac": lambda t: A}],
                  options={"ftol": 1e-15, "maxiter": 500})
    np.testing.assert_allclose(sl.x, ref, atol=1e-6)


def test_certificate_is_the_projected_gradient():
    X, y, w, rng = _problem(300, 6, seed=2)
    A, b = rng.standard_normal((2, 6)), rng.standard_normal(2)
    res = fit_bt(X, y, lam=0.3, sample_weight=w, constraints=(A, b))
    g = bt_objective(res.theta, X, y, 0.3, w)[1]
    N = null_space(A)  # an independent basis of null(A)
    proj = np.linalg.norm(N.T @ g)
    assert abs(proj - res.kkt_residual) <= 1e-6 * max(proj, 1e-12) + 1e-12 * np.sum(w)
    assert res.kkt_residual <= 1e-9 * np.sum(w)
    # the gradient itself is far from zero: the constraint binds, the multipliers absorb it
    assert np.linalg.norm(g) > 1e3 * res.kkt_residual
    assert np.linalg.norm(g + A.T @ res.multipliers) <= 2 * res.kkt_residual + 1e-12


def test_backends_agree():
    X, y, w, rng = _problem(500, 4, seed=3)
    A, b = rng.standard_normal((1, 4)), np.array([0.8])
    fits = {be: fit_bt(X, y, lam=0.2, sample_weight=w, tol=1e-11, backend=be,
                       constraints=(A, b)) for be in ("numba", "numpy", "torch")}
    for be, res in fits.items():
        assert res.converged, be
        assert np.abs(A @ res.theta - b).max() <= 1e-12
        # each is within ~1e-11 (gradient / curvature) of the optimum
        np.testing.assert_allclose(res.theta, fits["numpy"].theta, atol=1e-9)
        assert abs(res.objective - fits["numpy"].objective) <= 1e-10 * fits["numpy"].objective


def test_constraint_already_met_gives_the_unconstrained_fit():
    X, y, w, rng = _problem(400, 5, seed=4)
    free = fit_bt(X, y, lam=0.5, sample_weight=w, tol=1e-12)
    A = rng.standard_normal((2, 5))
    res = fit_bt(X, y, lam=0.5, sample_weight=w, tol=1e-12, constraints=(A, A @ free.theta))
    np.testing.assert_allclose(res.theta, free.theta, atol=1e-9)
    np.testing.assert_allclose(res.multipliers, 0.0, atol=1e-7)  # the constraint is slack
    assert abs(res.objective - free.objective) <= 1e-12 * free.objective


def test_equivalent_constraints_and_infeasible_starts_give_one_answer():
    # (M A, M b) for invertible M is the same feasible set; theta_init is projected onto it
    X, y, w, rng = _problem(300, 5, seed=5)
    A, b = rng.standard_normal((2, 5)), rng.standard_normal(2)
    M = rng.standard_normal((2, 2)) + 3 * np.eye(2)
    a = fit_bt(X, y, lam=1.0, tol=1e-12, constraints=(A, b))
    c = fit_bt(X, y, lam=1.0, tol=1e-12, constraints=(M @ A, M @ b),
               theta_init=rng.standard_normal(5) * 10)
    np.testing.assert_allclose(a.theta, c.theta, atol=1e-10)
    np.testing.assert_allclose(M.T @ c.multipliers, a.multipliers, atol=1e-8)


def test_multilevel_warm_start_with_offset():
    # n large enough for the subsample start (bt.WARM_START_*): the offsets are subsampled too
    X, y, w, rng = _problem(12_000, 3, seed=6)
    A, b = np.array([[1.0, 1.0, 1.0]]), np.array([1.5])
    res = fit_bt(X, y, lam=1e-3, sample_weight=w, constraints=(A, b))
    ref, _nu = kkt_solve(X, y, w, 1e-3, A, b)
    assert res.converged
    np.testing.assert_allclose(res.theta, ref, atol=1e-8)


# ------------------------------------------------------------------------- norm bound
def test_norm_bound_with_constraints():
    X, y, w, rng = _problem(400, 4, seed=7)
    A, b = np.ones((1, 4)), np.array([1.0])  # ||theta_p|| = 1 / 2
    free = fit_bt(X, y, lam=1e-3, constraints=(A, b))
    R = 0.5 * (0.5 + np.linalg.norm(free.theta))  # between ||theta_p|| and the free optimum
    res = fit_bt(X, y, lam=1e-3, norm_bound=R, constraints=(A, b))
    assert res.converged and res.mu > 0
    assert abs(np.linalg.norm(res.theta) - R) <= 1e-8 * R
    assert np.abs(A @ res.theta - b).max() <= 1e-12
    # KKT of the bound: theta is the constrained ridge fit at lam + mu (independent solver)
    ref, _nu = kkt_solve(X, y, None, 1e-3, A, b, mu=res.mu)
    np.testing.assert_allclose(res.theta, ref, atol=1e-7)
    with pytest.raises(InvalidParameterError, match="norm_bound must exceed"):
        fit_bt(X, y, norm_bound=0.4, constraints=(A, b))


# ------------------------------------------------------------------------- existence (lam = 0)
def test_constraint_can_make_the_mle_exist():
    # a_i = s_i x_i = (1, 0), (-1, 1): v = (0, 1) separates (quasi-completely), but in null(A)
    # for sum-to-zero, v = (1, -1) gives margins 1 and -2: not separable there
    X = np.array([[1.0, 0.0], [-1.0, 1.0], [0.5, 0.3], [-0.2, 0.9]])
    y = np.array([1, 1, 1, 1], dtype=np.int8)
    assert separable(X, y)
    with pytest.warns(MLENotExistWarning):
        assert fit_bt(X, y, lam=0.0).status == "separable"
    N = null_space(np.ones((1, 2)))
    assert not separable(X @ N, y)
    for b in (0.0, 0.7):  # the offset (b != 0) does not change whether the MLE exists
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = fit_bt(X, y, lam=0.0, tol=1e-12, constraints=(np.ones((1, 2)), [b]))
        assert res.converged, res.status
        ref, _nu = kkt_solve(X, y, None, 0.0, np.ones((1, 2)), np.array([b]))
        np.testing.assert_allclose(res.theta, ref, atol=1e-9)


@pytest.mark.parametrize("b", [0.0, 2.0])
def test_separable_inside_null_space_is_reported(b):
    # labels follow x_1 - x_2 exactly: v = (1, -1, 0) is in null(sum) and separates
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int8)
    with pytest.warns(MLENotExistWarning):
        res = fit_bt(X, y, lam=0.0, constraints=(np.ones((1, 3)), [b]))
    assert res.status == "separable" and not res.converged
    # a norm bound makes it well posed again, on the sphere
    res = fit_bt(X, y, lam=0.0, norm_bound=5.0, constraints=(np.ones((1, 3)), [b]))
    assert res.converged and abs(np.linalg.norm(res.theta) - 5.0) <= 1e-7


# ------------------------------------------------------------------------- offset kernels
@pytest.mark.parametrize("n", [300, 40_000])  # serial and threaded passes
def test_offset_kernels_match_the_numpy_reference(n):
    # independent identity: margins x^T theta + o are those of [X, o] at [theta, 1]
    X, y, w, rng = _problem(n, 5, seed=9)
    o, th = rng.standard_normal(n), rng.standard_normal(5)
    f2, g2, H2 = bt_objective(np.r_[th, 1.0], np.c_[X, o], y, 0.0, w)
    f, g, H = bt_numba.loss_grad_hess(th, X, y, w, offset=o)
    assert abs(f - f2) <= 1e-12 * f2
    np.testing.assert_allclose(g, g2[:5], rtol=1e-11, atol=1e-11 * np.abs(g2).max())
    np.testing.assert_allclose(H, H2[:5, :5], rtol=1e-11, atol=1e-11 * np.abs(H2).max())
    assert abs(bt_numba.loss(th, X, y, w, offset=o) - f2) <= 1e-12 * f2
    np.testing.assert_allclose(bt_numba.loss_grad(th, X, y, w, offset=o)[1], g2[:5],
                               rtol=1e-11, atol=1e-11 * np.abs(g2).max())
    f3, g3, H3 = bt_objective(th, X, y, 0.0, w, offset=o)
    assert abs(f3 - f2) <= 1e-12 * f2
    np.testing.assert_allclose(g3, g2[:5], rtol=1e-12, atol=1e-12 * np.abs(g2).max())


def test_torch_offset_matches_a_fixed_coefficient():
    X, y, w, rng = _problem(200, 3, seed=10)
    o = rng.standard_normal(200)
    res = fit_bt_batched(X[None], y[None], lam=0.5, sample_weight=w[None], offset=o[None],
                         tol=1e-12)
    assert res.converged[0]
    g = bt_objective(res.theta[0], X, y, 0.5, w, offset=o)[1]
    assert np.linalg.norm(g) <= 1e-12 * np.sum(w) * 10
    with pytest.raises(ValueError, match="offset"):
        fit_bt_batched(X[None], y[None], offset=o[None, :10])


# ------------------------------------------------------------------------- bad input
D = 4
_A2 = np.vstack([np.ones(D), np.arange(D, dtype=float)])
BAD = [
    ("sum-to-zero", "must be None or a pair"),
    ((np.ones((1, D)),), "must be None or a pair"),
    ((np.ones((1, D)), [0.0], 1), "must be None or a pair"),
    ((np.ones(D), [0.0]), "constraints A must be a 2-D array"),
    ((np.ones((1, D + 1)), [0.0]), r"d = 4 columns"),
    ((np.ones((D, D)) + np.eye(D), np.zeros(D)), r"1 <= m < d = 4"),
    ((np.ones((0, D)), np.zeros(0)), r"1 <= m < d = 4"),
    ((np.vstack([np.ones(D), 2 * np.ones(D)]), [1.0, 2.0]), r"rank is 1 .*consistent with A"),
    ((np.vstack([np.ones(D), 2 * np.ones(D)]), [1.0, 0.0]), r"rank is 1 .*inconsistent"),
    ((np.zeros((1, D)), [0.0]), r"rank is 0"),
    ((np.full((1, D), np.nan), [0.0]), "constraints A must be finite"),
    ((np.ones((1, D)), [np.inf]), "constraints b must be finite"),
    ((_A2, [0.0]), r"constraints b must have shape \(2,\)"),
    ((_A2, 0.0), "constraints b must be a 1-D array"),
    ((np.full((1, D), "a"), [0.0]), "constraints A must be a numeric array"),
    ((np.ones((1, D)) * 1j, [0.0]), "constraints A must be real-valued"),
    ((np.ones((1, D), dtype=bool), [0.0]), "constraints A must be a real-valued array"),
]


@pytest.mark.parametrize("constraints,match", BAD)
def test_bad_constraints_raise_a_named_error(constraints, match):
    X, y, _w, _rng = _problem(50, D, seed=11, weights=False)
    with pytest.raises(InvalidParameterError, match=match):
        fit_bt(X, y, constraints=constraints)


def test_check_constraints_factors():
    rng = np.random.default_rng(12)
    A, b = rng.standard_normal((2, 5)), rng.standard_normal(2)
    lc = check_constraints((A, b), 5)
    np.testing.assert_allclose(lc.N.T @ lc.N, np.eye(3), atol=1e-15)
    assert np.abs(A @ lc.N).max() <= 1e-15 * 10
    assert np.abs(A @ lc.theta_p - b).max() <= 1e-15 * 10
    assert np.abs(lc.N.T @ lc.theta_p).max() <= 1e-15 * 10  # theta_p in row(A): the norms split
    assert check_constraints(None, 5) is None


# ------------------------------------------------------------------------- property test
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(2, 7), m_frac=st.floats(0.0, 0.99), n=st.integers(10, 300),
       seed=st.integers(0, 2**31), lam=st.sampled_from([1e-2, 1.0, 10.0]),
       zero_b=st.booleans(), weights=st.booleans())
def test_property_constraint_and_certificate(d, m_frac, n, seed, lam, zero_b, weights):
    m = 1 + int(m_frac * (d - 1))  # 1 <= m < d
    X, y, w, rng = _problem(n, d, seed, weights)
    A = rng.standard_normal((m, d)) * rng.choice([0.1, 1.0, 10.0])
    b = np.zeros(m) if zero_b else rng.standard_normal(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLENotExistWarning)
        res = fit_bt(X, y, lam=lam, sample_weight=w, constraints=(A, b))
    assert np.all(np.isfinite(res.theta)) and np.isfinite(res.objective)
    assert np.all(np.isfinite(res.multipliers))
    scale = np.abs(A).max() * max(1.0, np.abs(res.theta).max()) + np.abs(b).max()
    assert np.abs(A @ res.theta - b).max() <= 1e-13 * d * scale
    assert res.converged, res.message
    total = n if w is None else np.sum(w)
    assert res.kkt_residual <= 1e-9 * total
    # the certificate recomputed independently: projected gradient in scipy's null basis
    g = bt_objective(res.theta, X, y, lam, w)[1]
    N = null_space(A)
    assert np.linalg.norm(N.T @ g) <= 1e-9 * total + 1e-12 * np.linalg.norm(g)


def test_fit_many_honours_constraints():
    """fit_many's batched torch path solves unconstrained problems only: with constraints it must
    fit each data set with its own (constrained) fit, also when the constraint arrays are
    distinct objects of equal value."""
    from simulator import Population
    from simulator.estimators import PooledMLE, SeparateMLE, fit_many

    pop = Population.shared(5, 2, [0.5, 0.5], seed=0)
    datasets = [pop.sample(600, seed=s) for s in (1, 2)]
    for cls in (PooledMLE, SeparateMLE):
        ests = [cls(lam=1.0, constraints=(np.ones((1, 5)), np.zeros(1))) for _ in datasets]
        fits = fit_many(ests, datasets)
        for fit, data in zip(fits, datasets):
            np.testing.assert_allclose(fit.theta_.sum(axis=1), 0.0, atol=1e-12)
            alone = cls(lam=1.0, constraints=(np.ones((1, 5)), np.zeros(1)),
                        backend="torch").fit(data)
            np.testing.assert_allclose(fit.theta_, alone.theta_, rtol=1e-9, atol=1e-12)
