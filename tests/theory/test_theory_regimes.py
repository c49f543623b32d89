"""Regimes of validity (#15 item 3) and the reconstructed two-phase subspace rate (item 4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory as t
from theory import HOLDS, OUTSIDE_REGIME


def test_asymptotic_min_n_known_values():
    # gamma n >= 10 max(p, 2 lam)
    assert t.asymptotic_min_n(8, gamma=0.2) == pytest.approx(400.0)
    assert t.asymptotic_min_n(2, gamma=0.25, lam=5.0) == pytest.approx(400.0)  # ridge dominates
    assert t.asymptotic_min_n(8) == pytest.approx(320.0)  # default gamma = 1/4, the largest
    assert t.asymptotic_min_n(8, gamma=0.1, c=5) == pytest.approx(400.0)
    np.testing.assert_allclose(t.asymptotic_min_n(np.array([1, 4]), gamma=0.25), [40.0, 160.0])


@pytest.mark.parametrize("kwargs,match", [
    ({"p": 0}, "p"), ({"p": 2, "gamma": 0.3}, "gamma"), ({"p": 2, "gamma": 0.0}, "gamma"),
    ({"p": 2, "lam": -1.0}, "lam"), ({"p": np.nan}, "p"), ({"p": 2, "c": 0}, "c"),
])
def test_asymptotic_min_n_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        t.asymptotic_min_n(**kwargs)


def test_the_regime_keeps_the_local_slope_within_the_tolerance():
    # A rate with its next-order term, p/(gamma n) (1 + p/(gamma n)): at n = n_min and above, its
    # local log-log slope is within 0.1 of -1, below it, it is not (the docstring's argument).
    p, gamma = 8, 0.17
    n_min = t.asymptotic_min_n(p, gamma=gamma)
    n = np.geomspace(n_min / 20, n_min * 20, 400)
    r = p / (gamma * n)
    slope = np.gradient(np.log(r * (1 + r)), np.log(n))
    assert np.all(np.abs(slope[n >= n_min] + 1) <= t.DEFAULT_EXPONENT_TOL)
    assert np.all(np.abs(slope[n < n_min / 2] + 1) > t.DEFAULT_EXPONENT_TOL)


def test_gaussian_curvature_against_monte_carlo():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(400_000)
    for norm, scale, temp in ((0.0, 1.0, 1.0), (1.0, 1.0, 1.0), (2.0, 0.5, 1.0), (3.0, 1.0, 2.0)):
        s = 1 / (1 + np.exp(-z * norm * scale / temp))
        mc, se = (s * (1 - s)).mean(), (s * (1 - s)).std() / np.sqrt(z.size)
        got = t.gaussian_bt_curvature(norm, scale=scale, temperature=temp)
        assert abs(got - mc) < 5 * se + 1e-12
    assert t.gaussian_bt_curvature(0.0) == pytest.approx(0.25)
    assert t.gaussian_bt_curvature(1e6) < 1e-5  # overflow-free at a huge norm
    with pytest.raises(ValueError, match="theta_norm"):
        t.gaussian_bt_curvature(-1.0)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 50.0), st.floats(0.0, 50.0))
def test_gaussian_curvature_is_decreasing_in_the_norm(a, b):
    lo, hi = sorted((a, b))
    assert 0 < t.gaussian_bt_curvature(hi) <= t.gaussian_bt_curvature(lo) + 1e-15
    assert t.gaussian_bt_curvature(lo) <= t.MAX_CURVATURE  # usable as asymptotic_min_n's gamma


KW = {"nu": 0.6, "kappa_bar": 2.4, "gamma": 0.17}


def test_two_phase_rate_is_the_sum_of_its_two_terms():
    d, k, N, n = 8, 2, 32, 40.0
    counting = np.sqrt(2.4 * d * k / (0.6 * 0.17 * N * n))
    penalised = (np.sqrt(d / N) + d / N) / (0.6 * 0.17 * n)
    assert t.shared_subspace_two_phase_rate(n, d, k, N, **KW) == pytest.approx(counting + penalised)
    assert t.shared_subspace_two_phase_rate(n, d, k, N, C=3.0, **KW) == pytest.approx(
        3 * (counting + penalised))
    # the counting term is the one-phase rate (gamma folded into nu)
    one = t.subspace_sin_theta_rate(N * n, d, k, nu=0.6 * 0.17, kappa_bar=2.4)
    assert one == pytest.approx(counting)


def test_phase_boundary_equalises_the_terms_and_sets_the_local_slope():
    d, k, N = 8, 2, 32
    n_star = t.shared_subspace_phase_boundary(d, k, N, **KW)
    assert n_star == pytest.approx((1 + np.sqrt(d / N)) ** 2 / (0.6 * 0.17 * 2.4 * k))
    # at n* the two terms are equal: the rate is twice the counting term there
    counting = np.sqrt(2.4 * d * k / (0.6 * 0.17 * N * n_star))
    assert t.shared_subspace_two_phase_rate(n_star, d, k, N, **KW) == pytest.approx(2 * counting)
    # local slope -(1/2 + r)/(1 + r), r = sqrt(n*/n): -3/4 at n*, within 0.1 of -1/2 at 16 n*
    def slope(n):
        h = 1e-4
        f = [np.log(t.shared_subspace_two_phase_rate(n * np.exp(s), d, k, N, **KW)) for s in (-h, h)]
        return (f[1] - f[0]) / (2 * h)
    assert slope(n_star) == pytest.approx(-0.75, abs=1e-6)
    assert abs(slope(t.COUNTING_PHASE_DEPTH * n_star) + 0.5) == pytest.approx(0.1, abs=1e-6)
    for n in (1.5, 2.0, n_star * 1e4):  # the formula everywhere (n = 1.5, 2: penalised phase)
        r = np.sqrt(n_star / n)
        assert slope(n) == pytest.approx(-(0.5 + r) / (1 + r), abs=1e-6)
    # at a fixed total N n the penalised term grows with N (the abstract's "clients many")
    total = 4096.0
    pen = [t.shared_subspace_two_phase_rate(total / N, d, k, N, **KW)
           - t.subspace_sin_theta_rate(total, d, k, nu=0.6 * 0.17, kappa_bar=2.4)
           for N in (16, 64, 256)]
    assert pen[0] < pen[1] < pen[2]


def test_phase_labels():
    d, k, N = 8, 2, 32
    n_star = t.shared_subspace_phase_boundary(d, k, N, **KW)
    got = t.shared_subspace_phase(np.array([1.0, n_star * 0.99, n_star, 100.0]), d, k, N, **KW)
    assert list(got) == [t.PENALISED, t.PENALISED, t.PARAMETER_COUNTING, t.PARAMETER_COUNTING]
    assert t.shared_subspace_phase(100.0, d, k, N, **KW) == t.PARAMETER_COUNTING
    assert set(t.PHASES) == {t.PENALISED, t.PARAMETER_COUNTING}


@pytest.mark.parametrize("kwargs,match", [
    ({"n": 0.5}, "n"), ({"k": 9}, "k"), ({"N": 0}, "N"), ({"nu": 0.0}, "nu"),
    ({"gamma": -1.0}, "gamma"), ({"C": 0.0}, "C"),
])
def test_two_phase_bad_input(kwargs, match):
    args = {"n": 10.0, "d": 8, "k": 2, "N": 16, **KW, **kwargs}
    with pytest.raises(ValueError, match=match):
        t.shared_subspace_two_phase_rate(**args)


def test_niu_functions_are_tagged_reconstructions_with_where_they_were_looked_for():
    for fn in (t.shared_subspace_two_phase_rate, t.shared_subspace_phase_boundary,
               t.shared_subspace_phase):
        src = t.source_of(fn)
        assert src.kind == "reconstruction" and src.tag == "[I]" and not src.verified
        assert not src.read_in_paper and src.url == "https://arxiv.org/abs/2409.04919"
        assert "abstract" in src.looked_in
    assert t.source_of(t.asymptotic_min_n).kind == "derived approximation"


def _claim(**kw):
    return t.Claim(figure="f", quantity="q", prediction="-1/2", kind="value", predicted=-0.5,
                   atol=0.1, regime="n >= 100", **kw)


def test_evaluate_slope_fits_only_inside_the_regime():
    x = np.array([10.0, 20, 40, 80, 160, 320])
    rng = np.random.default_rng(1)
    # slope -1 below n = 40, slope -1/2 from there on (continuous), small seed noise
    base = np.where(x < 40, (x / 40.0) ** -1.0, (x / 40.0) ** -0.5)
    Y = base[None, :] * np.exp(0.01 * rng.standard_normal((12, x.size)))
    all_fit = _claim().evaluate_slope(x, Y)
    inside = _claim().evaluate_slope(x, Y, inside=x >= 40)
    assert all_fit.measured < -0.6  # the whole grid mixes the two slopes
    assert inside.verdict == HOLDS and inside.measured == pytest.approx(-0.5, abs=0.02)
    assert "4 of 6 grid points inside its regime (40, 80, 160, 320)" in inside.note
    assert inside.regime == "n >= 100"
    # fewer than MIN_REGIME_POINTS inside: fitted on all, judged outside regime
    few = _claim().evaluate_slope(x, Y, inside=x >= 160)
    assert few.verdict == OUTSIDE_REGIME and few.measured == pytest.approx(all_fit.measured)
    assert "only 2 of 6" in few.note and "the rule alone" in few.note
    none = _claim().evaluate_slope(x, Y, inside=np.zeros(6, bool))
    assert none.verdict == OUTSIDE_REGIME and "only 0 of 6" in none.note
    with pytest.raises(ValueError, match="inside"):
        _claim().evaluate_slope(x, Y, inside=[True, False])
    with pytest.raises(ValueError, match="min_points"):
        _claim().evaluate_slope(x, Y, min_points=1)
