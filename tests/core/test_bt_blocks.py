"""The per-unit block solver against the dense BT solver and an independent simplex solver."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.estimators.bt import bt_objective, fit_bt
from simulator.estimators.bt_blocks import fit_bt_blocks, project_simplex_rows


def _units(n, k, N, seed, scale=1.0, offset=False):
    rng = np.random.default_rng(seed)
    Z = scale * rng.standard_normal((n, k))
    unit = rng.integers(0, N, n)
    Wt = 2.0 * rng.dirichlet(np.ones(k), N)
    o = rng.standard_normal(n) if offset else None
    m = np.einsum("ij,ij->i", Z, Wt[unit]) + (0 if o is None else o)
    y = (rng.random(n) < 0.5 * (1 + np.tanh(0.5 * m))).astype(np.int8)
    return Z, y, unit, o, rng


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 400), k=st.integers(1, 6), N=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1), log_lam=st.floats(-6, 1),
       scale=st.sampled_from([0.1, 1.0, 30.0]), weights=st.booleans())
def test_free_blocks_equal_one_dense_fit_per_unit(n, k, N, seed, log_lam, scale, weights):
    Z, y, unit, _, rng = _units(n, k, N, seed, scale)
    lam = 10.0**log_lam
    w = rng.random(n) * 2 if weights else None
    res = fit_bt_blocks(Z, y, unit, N, lam=lam, sample_weight=w)
    assert res.all_converged and np.all(np.isfinite(res.W))
    for u in range(N):
        rows = unit == u
        if not rows.any():
            assert np.all(res.W[u] == 0)  # the ridge alone: w = 0
            continue
        wu = None if w is None else w[rows]
        ref = fit_bt(Z[rows], y[rows], lam=lam, sample_weight=wu, backend="numpy")
        # Both stop at ||g|| <= tol n_u: ||dw|| <= 2 tol n_u / lambda_min (x10 slack).
        H = bt_objective(ref.theta, Z[rows], y[rows], lam, wu)[2]
        nu = rows.sum() if wu is None else max(wu.sum(), 1.0)
        bound = 10 * 2e-9 * nu / np.linalg.eigvalsh(H)[0]
        assert np.linalg.norm(res.W[u] - ref.theta) <= bound + 1e-12


def test_offset_is_a_fixed_margin():
    # An offset o_i equals an extra feature column with a coefficient fixed at 1.
    Z, y, unit, o, _ = _units(600, 3, 5, 0, offset=True)
    res = fit_bt_blocks(Z, y, unit, 5, lam=0.1, offset=o, tol=1e-11)
    for u in range(5):
        rows = unit == u
        f_ref = lambda w, rows=rows: bt_objective(np.r_[w, 1.0], np.c_[Z[rows], o[rows]],
                                                  y[rows])[0] + 0.05 * w @ w
        g = bt_objective(np.r_[res.W[u], 1.0], np.c_[Z[rows], o[rows]], y[rows])[1][:3] \
            + 0.1 * res.W[u]
        assert np.linalg.norm(g) <= 1e-11 * rows.sum()
        assert res.objective[u] == pytest.approx(f_ref(res.W[u]), rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 5), N=st.integers(1, 12), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([0.5, 3.0]))
def test_simplex_blocks_meet_kkt_and_match_slsqp(k, N, seed, scale):
    from scipy.optimize import minimize

    Z, y, unit, o, _ = _units(40 * N, k, N, seed, scale, offset=True)
    lam = 1e-3
    res = fit_bt_blocks(Z, y, unit, N, lam=lam, offset=o, constraint="simplex")
    assert res.all_converged
    assert np.all(res.W >= 0) and np.allclose(res.W.sum(axis=1), 1.0, atol=1e-12)
    for u in range(N):
        rows = unit == u
        if not rows.any():
            continue
        F = np.c_[Z[rows], o[rows]]

        def f(w, rows=rows, F=F):
            return bt_objective(np.r_[w, 1.0], F, y[rows])[0] + 0.5 * lam * w @ w

        # KKT of min f over the simplex: g_j = nu on the support, g_j >= nu off it. The
        # certificate ||w - P(w - g / n_u)|| <= 1e-9 bounds |g_j / n_u - nu / n_u| by ~1e-9 on
        # coordinates that stay inside; 1e-7 leaves room for weights near the 1e-8 cut.
        g = bt_objective(np.r_[res.W[u], 1.0], F, y[rows])[1][:k] + lam * res.W[u]
        supp = res.W[u] > 1e-8
        nu = g[supp].mean()
        n_u = rows.sum()
        assert np.all(np.abs(g[supp] - nu) <= 1e-7 * n_u)
        assert np.all(g[~supp] >= nu - 1e-7 * n_u)
        ref = minimize(f, np.full(k, 1.0 / k), method="SLSQP", bounds=[(0, 1)] * k,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 500})
        assert f(res.W[u]) <= ref.fun + 1e-9 * max(1.0, abs(ref.fun))


def test_project_simplex_rows_known_answers():
    V = np.array([[0.2, 0.3, 0.5], [1.0, 1.0, 1.0], [5.0, 0.0, -1.0], [-1.0, -2.0, -3.0]])
    P = project_simplex_rows(V)
    np.testing.assert_allclose(P, [[0.2, 0.3, 0.5], [1 / 3] * 3, [1, 0, 0], [1, 0, 0]],
                               atol=1e-15)


def test_ten_thousand_units_in_one_call():
    Z, y, unit, o, _ = _units(200_000, 4, 10_000, 3, offset=True)
    res = fit_bt_blocks(Z, y, unit, 10_000, lam=1.0, offset=o, constraint="simplex")
    assert res.all_converged
    assert res.n_iter.max() <= 30


def test_bad_input_names_the_parameter():
    Z, y, unit, _, _ = _units(50, 2, 3, 0)
    with pytest.raises(ValueError, match="unit"):
        fit_bt_blocks(Z, y, unit + 5, 3, lam=1.0)
    with pytest.raises(ValueError, match="constraint"):
        fit_bt_blocks(Z, y, unit, 3, lam=1.0, constraint="box")
    with pytest.raises(ValueError, match="lam"):
        fit_bt_blocks(Z, y, unit, 3, lam=-1.0)
    with pytest.raises(ValueError, match="offset"):
        fit_bt_blocks(Z, y, unit, 3, lam=1.0, offset=np.full(50, np.nan))
    with pytest.raises(ValueError, match="W0"):
        fit_bt_blocks(Z, y, unit, 3, lam=1.0, W0=np.zeros((2, 2)))


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 8), m=st.integers(1, 30), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), max_iter=st.sampled_from([1, 7, 200]))
def test_numba_fista_equals_the_numpy_reference(k, m, seed, scale, max_iter):
    """The compiled FISTA of the simplex Newton model against its vectorised numpy reference:
    the same iterates, so the same point to round-off (also when stopped early)."""
    from simulator.estimators.bt_blocks import fista_simplex_numpy
    from simulator.kernels.simplex_numba import fista_simplex

    rng = np.random.default_rng(seed)
    W = project_simplex_rows(rng.standard_normal((m, k)))
    A = scale * rng.standard_normal((m, k, k))
    H = np.einsum("uij,ukj->uik", A, A) + 1e-6 * np.eye(k)  # PSD, possibly ill-conditioned
    g = scale * rng.standard_normal((m, k))
    L = np.linalg.eigvalsh(H)[:, -1]
    ref = fista_simplex_numpy(W, g, H, L, max_iter=max_iter, tol=1e-12)
    got = fista_simplex(W, g, H, L, max_iter, 1e-12)
    assert np.all(got >= 0) and np.allclose(got.sum(axis=1), 1.0, atol=1e-12)
    # The two differ only in summation order (einsum vs a loop): 1e-9 leaves room for FISTA's
    # momentum to grow a 1-ulp difference over 200 iterations on an ill-conditioned model.
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_numba_projection_known_answers():
    from simulator.kernels.simplex_numba import _project_row

    for x, want in (([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), ([2.0, 0.0], [1.0, 0.0]),
                    ([1.0, 1.0], [0.5, 0.5]), ([-1.0, 3.0, 0.0], [0.0, 1.0, 0.0]),
                    ([0.5, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])):
        out, scratch = np.empty(len(x)), np.empty(len(x))
        _project_row(np.array(x), out, scratch)
        np.testing.assert_allclose(out, want, atol=1e-15)
