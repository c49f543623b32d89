"""The BT solver outside the figures' regime: every fit is right and certifies itself.

Regression tests for the silent theta = 0 of the float32 Newton path (issue: estimation core),
the exact separability test, the Levenberg fallback and the round-off certificate.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import Population
from simulator.data import PreferenceData
from simulator.estimators import MLENotExistWarning, PooledMLE, SeparateMLE
from simulator.estimators.bt import bt_objective, fit_bt, separable


def _bt_data(n, d, seed, scale=1.0, temperature=1.0):
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((n, d))
    theta = rng.standard_normal(d)
    p = 0.5 * (1.0 + np.tanh(0.5 * (X @ theta) / temperature))  # sigma, overflow-free
    y = (rng.random(n) < p).astype(np.int8)
    return X, y


def _agreement_bound(X, y, lam, theta, tol, w=None):
    """Both solvers stop with ||g|| <= tol * n, so ||theta_a - theta_b|| <= 2 tol n / lambda_min(H)
    at the optimum (strong convexity); a factor 10 covers the curvature change along the
    segment between the two points."""
    H = bt_objective(theta, X, y, lam, w)[2]
    lmin = max(np.linalg.eigvalsh(H)[0], 1e-300)
    n = X.shape[0] if w is None else float(np.sum(w))
    return 10.0 * 2.0 * tol * n / lmin


def test_issue_reproducer_returns_the_numpy_answer():
    # Group 0 has 10 comparisons in d = 16 at feature scale 10: the float32 Newton matrix is not
    # positive definite. The numba back-end used to return theta = 0 with a separability
    # warning; it must now give the numpy back-end's certified answer.
    data = Population.shared(d=16, k=2, proportions=[0.01, 0.99], seed=0,
                             feature_scale=10.0).sample(1000, seed=0, group_sampling="fixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # lam > 0: nothing to warn about
        a = SeparateMLE(lam=1e-6).fit(data)
        b = SeparateMLE(lam=1e-6, backend="numpy").fit(data)
    assert a.converged_ and b.converged_
    assert np.abs(a.theta_[0]).max() > 0.1  # the numpy answer has max |theta| = 0.52
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_default_lam_at_feature_scale_100(backend):
    data = Population.shared(d=16, k=2, proportions=[0.01, 0.99], seed=0,
                             feature_scale=100.0).sample(1000, seed=0, group_sampling="fixed")
    est = SeparateMLE(backend=backend).fit(data)
    assert est.converged_
    assert np.all(np.abs(est.theta_).max(axis=1) > 0)


@pytest.mark.parametrize("scale", [1e19, 1e60])
def test_huge_features_are_certified_at_the_roundoff_floor(scale):
    # float32 overflows beyond ~1e19; float64 carries the fit. The gradient test cannot be met
    # (its round-off grows with |X|), so the certificate is the exact Newton step falling below
    # 1e-13 of |theta|. With phi = scale * theta the problem is the unit-scale one with ridge
    # lam / scale^2, so scale * theta must equal that fit.
    X, y = _bt_data(500, 6, 0)
    a = fit_bt(X * scale, y)
    b = fit_bt(X * scale, y, backend="numpy")
    ref = fit_bt(X, y, lam=1e-4 / scale**2)
    for r in (a, b):
        assert r.converged and r.status in ("converged", "roundoff")
        np.testing.assert_allclose(r.theta * scale, ref.theta, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_zero_column_lam0_is_solved(backend):
    # An all-zero column makes the unpenalised Hessian singular. The MLE still exists (the
    # column's coefficient is free; the solver leaves it at its start, 0): a Levenberg step
    # carries the fit instead of declaring the data separable.
    X, y = _bt_data(300, 5, 1)
    X[:, 2] = 0.0
    assert not separable(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fit_bt(X, y, lam=0.0, backend=backend)
    assert r.converged
    assert r.theta[2] == 0.0
    keep = [0, 1, 3, 4]
    ref = fit_bt(X[:, keep], y, lam=0.0, backend="numpy")
    np.testing.assert_allclose(r.theta[keep], ref.theta, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_norm_bound_with_zero_column_and_lam0(backend):
    X, y = _bt_data(300, 5, 1)
    X[:, 2] = 0.0
    data = PreferenceData(X=X, y=y, group=np.zeros(300, dtype=np.int64), n_groups=1)
    free = PooledMLE(lam=0, backend=backend).fit(data)
    assert np.linalg.norm(free.coef_) > 2  # so the bound is active
    est = PooledMLE(lam=0, norm_bound=2.0, backend=backend).fit(data)
    assert est.converged_
    assert np.linalg.norm(est.coef_) == pytest.approx(2.0, rel=1e-8)
    # KKT: the gradient of f is anti-parallel to theta on the bound
    g = bt_objective(est.coef_, X, y, 0.0)[1]
    cos = -g @ est.coef_ / (np.linalg.norm(g) * np.linalg.norm(est.coef_))
    assert cos == pytest.approx(1.0, abs=1e-6)


def test_separable_lp_known_answers():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    # complete separation by the first coordinate
    assert separable(X, (X[:, 0] > 0).astype(np.int8))
    # quasi-complete: add ties (rows orthogonal to the separating direction) of both labels
    Xq = np.vstack([X, np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])])
    yq = np.concatenate([(X[:, 0] > 0), [1, 1]]).astype(np.int8)
    assert separable(Xq, yq)
    # overlapping labels: the MLE exists
    Xo, yo = _bt_data(400, 3, 2)
    assert not separable(Xo, yo)
    # a zero-weight row that would break separation does not count
    X2 = np.vstack([X, X[:1]])
    y2 = np.concatenate([(X[:, 0] > 0), [not (X[0, 0] > 0)]]).astype(np.int8)
    assert not separable(X2, y2)
    assert separable(X2, y2, sample_weight=np.r_[np.ones(60), 0.0])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_separable_data_warn_and_report_status(backend):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = (X[:, 0] > 0).astype(np.int8)
    with pytest.warns(MLENotExistWarning, match="separable"):
        r = fit_bt(X, y, lam=0.0, backend=backend)
    assert not r.converged and r.status == "separable" and "lam > 0" in r.message
    # with a bound the constrained MLE exists and is certified, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rb = fit_bt(X, y, lam=0.0, norm_bound=3.0, backend=backend)
    assert rb.converged and np.linalg.norm(rb.theta) == pytest.approx(3.0, rel=1e-8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(5, 400), d=st.integers(1, 16), seed=st.integers(0, 2**31 - 1),
       log_lam=st.floats(-8, 1), scale=st.sampled_from([0.01, 1.0, 10.0, 100.0]),
       temperature=st.sampled_from([0.05, 1.0]))
def test_harsh_settings_numba_equals_numpy_and_never_an_uncertified_zero(
        n, d, seed, log_lam, scale, temperature):
    X, y = _bt_data(n, d, seed, scale, temperature)
    lam = 10.0**log_lam
    a = fit_bt(X, y, lam=lam)
    b = fit_bt(X, y, lam=lam, backend="numpy")
    for r in (a, b):
        assert np.all(np.isfinite(r.theta))
        # lam > 0: a unique optimum exists, and the solver must reach its certificate
        assert r.converged, r.message
    if np.any(y != y[0]) or lam < 1e3:
        # theta = 0 is the optimum only when the gradient at 0 vanishes
        g0 = bt_objective(np.zeros(d), X, y, lam)[1]
        if np.linalg.norm(g0) > lam * 1e-3:
            assert np.linalg.norm(a.theta) > 0
    bound = _agreement_bound(X, y, lam, b.theta, 1e-9)
    assert np.linalg.norm(a.theta - b.theta) <= bound + 1e-12 * np.linalg.norm(b.theta)
