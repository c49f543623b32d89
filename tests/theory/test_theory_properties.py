"""Monotonicity and ordering properties of the rates (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import theory as t

ns = st.floats(min_value=1.0, max_value=1e7, allow_nan=False)
ds = st.integers(min_value=1, max_value=10_000)
etas = st.floats(min_value=1e-4, max_value=1.0)
gammas = st.floats(min_value=1e-3, max_value=0.25)
deltas = st.floats(min_value=1e-6, max_value=0.5)
factor = st.floats(min_value=1.01, max_value=100.0)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(n=ns, d=ds, f=factor, gamma=gammas, delta=deltas)
def test_bt_mle_bound_decreases_in_n_increases_in_d(n, d, f, gamma, delta):
    b = t.bt_mle_error_bound(n, d, gamma=gamma, delta=delta)
    assert t.bt_mle_error_bound(n * f, d, gamma=gamma, delta=delta) < b
    assert t.bt_mle_error_bound(n, d + 1, gamma=gamma, delta=delta) > b
    assert t.bt_mle_error_bound(n, d, gamma=gamma / f, delta=delta) > b
    # the upper bound (same C) is above the minimax rate since gamma <= 1/4
    assert b >= t.minimax_lower_bound(n, d)


@FAST
@given(n=ns, d=ds, f=factor)
def test_minimax_decreases_in_n_increases_in_d(n, d, f):
    b = t.minimax_lower_bound(n, d)
    assert t.minimax_lower_bound(n * f, d) < b
    assert t.minimax_lower_bound(n, d + 1) > b


@FAST
@given(n=ns, d=ds, eta=etas, f=factor)
def test_separate_rate_monotone(n, d, eta, f):
    r = t.separate_mle_rate(n, d, eta)
    assert t.separate_mle_rate(n * f, d, eta) < r
    assert t.separate_mle_rate(n, d + 1, eta) > r
    assert t.separate_mle_rate(n, d, eta / f) > r


@FAST
@given(n=ns, d=st.integers(2, 5000), data=st.data(), eta=etas, f=factor)
def test_sharedrep_rate_monotone(n, d, data, eta, f):
    k = data.draw(st.integers(1, d - 1))
    r = t.sharedrep_rate(n, d, k, eta)
    assert t.sharedrep_rate(n * f, d, k, eta) < r
    assert t.sharedrep_rate(n, d + 1, k, eta) > r
    assert t.sharedrep_rate(n, d, k + 1, eta) > r
    assert t.sharedrep_rate(n, d, k, eta / f) > r


@FAST
@given(n=ns, k=st.integers(1, 50), ratio=st.integers(16, 200), eta_scale=st.floats(1e-3, 1.0))
def test_sharedrep_beats_separate_when_d_much_larger_than_k_and_eta_small(n, k, ratio, eta_scale):
    # d >= 16 k and eta <= 1/(4k): then eta* = (1/sqrt k - 1/sqrt d)^2 >= (9/16)/k > eta.
    d = ratio * k
    eta = eta_scale / (4 * k)
    assert t.sharedrep_rate(n, d, k, eta) <= t.separate_mle_rate(n, d, eta)


@FAST
@given(n=ns, d=st.integers(2, 5000), data=st.data(), u=st.floats(0.01, 0.99))
def test_crossover_separates_the_two_regimes(n, d, data, u):
    k = data.draw(st.integers(1, d - 1))
    eta_star = t.sharedrep_crossover_eta(d, k)
    eta = u  # any proportion
    shared, separate = t.sharedrep_rate(n, d, k, eta), t.separate_mle_rate(n, d, eta)
    if eta < eta_star * (1 - 1e-9):
        assert shared < separate
    elif eta > eta_star * (1 + 1e-9):
        assert shared > separate


@FAST
@given(n=ns, d=st.integers(1, 2000), data=st.data(), N=st.integers(1, 10_000), f=factor)
def test_lowrank_rates_monotone_and_ordered(n, d, data, N, f):
    k = data.draw(st.integers(1, d))
    e = t.shared_lowrank_avg_error(n, d, k, N)
    assert t.shared_lowrank_avg_error(n * f, d, k, N) < e
    assert t.shared_lowrank_avg_error(n, d + 1, k, N) > e
    assert t.shared_lowrank_avg_error(n, d, k, N + 1) < e
    # oracle <= shared; shared <= independent iff k (d + N) <= d N
    assert t.oracle_subspace_avg_error(n, k) <= e
    indep = t.independent_avg_error(n, d)
    assert (e <= indep * (1 + 1e-12)) == (k * (d + N) <= d * N * (1 + 1e-12))


@FAST
@given(L=st.floats(1e-3, 20.0), B=st.floats(1e-3, 20.0), f=factor)
def test_curvature_decreases_in_L_times_B(L, B, f):
    g = t.bt_curvature(L, B)
    assert 0.0 < g <= 0.25
    assert t.bt_curvature(L * f, B) < g
    assert t.bt_curvature(L, B, L_bounds="features") < g


@FAST
@given(eps=st.floats(0.0, 1.0), eta=st.floats(0.01, 1.0), f=st.floats(1.01, 10.0))
def test_maxmin_bounds_monotone(eps, eta, f):
    kw = {"beta": 0.5, "D": 1.0, "lambda_psi": 1.0, "L_pi": 1.0}
    g = t.theorem1_alignment_gap_lower_bound(eps, eta, **kw)
    l1 = t.lemma1_reward_mismatch_lower_bound(eps, eta, 1.0)
    assert g >= 0 and l1 >= 0
    # smaller minority (eta/f) -> larger (or equal) bound
    assert t.theorem1_alignment_gap_lower_bound(eps, eta / f, **kw) >= g
    assert t.lemma1_reward_mismatch_lower_bound(eps, eta / f, 1.0) >= l1
    # stronger KL regularisation -> smaller bound
    assert t.theorem1_alignment_gap_lower_bound(eps, eta, **{**kw, "beta": 0.5 * f}) <= g


def test_vectorised_matches_scalar():
    n = np.logspace(1, 5, 7)
    vec = t.sharedrep_rate(n, 64, 4, 0.05)
    assert isinstance(vec, np.ndarray) and vec.shape == (7,)
    np.testing.assert_allclose(vec, [t.sharedrep_rate(float(x), 64, 4, 0.05) for x in n])
    assert isinstance(t.sharedrep_rate(100, 64, 4, 0.05), float)
