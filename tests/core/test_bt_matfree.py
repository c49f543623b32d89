"""Matrix-free Newton-CG against the dense Newton solver and the explicit Kronecker design."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.estimators.bt import bt_objective, fit_bt
from simulator.estimators.bt_matfree import dense_operator, fit_bt_matfree, kron_operator


def _problem(n, d, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((n, d))
    theta = rng.standard_normal(d) / np.sqrt(d)
    y = (rng.random(n) < 0.5 * (1 + np.tanh(0.5 * X @ theta))).astype(np.int8)
    return X, y, rng


def _close(a, b, X, y, lam, w=None):
    # Both certificates bound ||g|| <= tol n; strong convexity (lambda_min of H) turns that into
    # ||a - b|| <= 2 tol n / lambda_min, with a factor 10 of slack for curvature changes.
    H = bt_objective(b, X, y, lam, w)[2]
    n = X.shape[0] if w is None else w.sum()
    return np.linalg.norm(a - b) <= 10 * 2e-9 * n / np.linalg.eigvalsh(H)[0] + 1e-12


@settings(max_examples=30, deadline=None)
@given(n=st.integers(5, 300), d=st.integers(1, 20), seed=st.integers(0, 2**31 - 1),
       log_lam=st.floats(-6, 1), weights=st.booleans())
def test_matfree_equals_dense_newton(n, d, seed, log_lam, weights):
    X, y, rng = _problem(n, d, seed)
    lam = 10.0**log_lam
    w = rng.random(n) * 2 if weights else None
    a = fit_bt_matfree(dense_operator(X), y, lam=lam, sample_weight=w)
    b = fit_bt(X, y, lam=lam, sample_weight=w, backend="numpy")
    assert a.converged and b.converged, a.message
    assert _close(a.theta, b.theta, X, y, lam, w)
    assert a.objective == pytest.approx(b.objective, rel=1e-10, abs=1e-10)


def test_kron_operator_is_the_explicit_kronecker_design():
    rng = np.random.default_rng(1)
    n, d, k, U = 200, 7, 3, 4
    X = rng.standard_normal((n, d))
    g = rng.integers(0, U, n)
    W = rng.standard_normal((k, U))
    F = np.einsum("ic,id->icd", W[:, g].T, X).reshape(n, k * d)  # kron(w_g, x), vec(B) col-major
    op = kron_operator(X, g, W)
    th = rng.standard_normal(d * k)
    r = rng.standard_normal(n)
    h = rng.random(n)
    np.testing.assert_allclose(op.matvec(th), F @ th, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(r), r @ F, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.hess_diag(h), h @ (F * F), rtol=1e-12, atol=1e-12)
    B = th.reshape(k, d).T
    np.testing.assert_allclose(op.matvec(th), np.einsum("id,dk,ki->i", X, B, W[:, g]), rtol=1e-12)
    # and the B-step solved both ways agrees
    y = (rng.random(n) < 0.5).astype(np.int8)
    a = fit_bt_matfree(op, y, lam=0.1)
    b = fit_bt(F, y, lam=0.1, backend="numpy")
    assert a.converged and _close(a.theta, b.theta, F, y, 0.1)


def test_wide_design_without_forming_it():
    # d k = 4096 * 5 = 20480 parameters: the dense Hessian would take 3.4 GB; the operator needs
    # O(n d k). Certificate checked independently of the operator: at the ridge optimum
    # lam B = -X^T diag(r) W_g^T (r the BT residuals), written here with an explicit einsum.
    rng = np.random.default_rng(2)
    n, d, k, U = 3000, 4096, 5, 6
    X = rng.standard_normal((n, d))
    g = rng.integers(0, U, n)
    W = rng.dirichlet(np.ones(k), U).T
    B_true = rng.standard_normal((d, k)) / np.sqrt(d)
    m = np.einsum("id,dk,ki->i", X, B_true, W[:, g]) * 3
    y = (rng.random(n) < 0.5 * (1 + np.tanh(0.5 * m))).astype(np.int8)
    lam = 50.0
    fit = fit_bt_matfree(kron_operator(X, g, W), y, lam=lam, tol=1e-8, max_iter=30)
    assert fit.converged, fit.message
    B = fit.theta.reshape(k, d).T
    s = 2.0 * y - 1.0
    t = s * np.einsum("id,dk,ki->i", X, B, W[:, g])
    r = -s * 0.5 * (1 - np.tanh(0.5 * t))
    grad = np.einsum("id,i,ki->dk", X, r, W[:, g]) + lam * B
    assert np.linalg.norm(grad) <= 1e-8 * n * 1.0001


def test_bad_input_names_the_parameter():
    X, y, _ = _problem(20, 3, 0)
    op = dense_operator(X)
    with pytest.raises(ValueError, match="lam"):
        fit_bt_matfree(op, y, lam=0.0)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_bt_matfree(op, y, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="theta_init"):
        fit_bt_matfree(op, y, theta_init=np.zeros(4))
