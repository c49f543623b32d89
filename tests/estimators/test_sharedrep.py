"""SharedRep (altmin and joint) and OracleB: recovery, model-class facts, invariances, contract."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import Population, PreferenceData
from simulator.estimators import OracleB, SeparateMLE, SharedRep
from simulator.estimators.sharedrep import project_simplex, sharedrep_objective
from simulator.metrics import param_error, sin_theta


def _objectives(est, phase=None):
    return np.array([h["objective"] for h in est.history_ if phase is None or h["phase"] == phase])


@given(v=st.lists(st.floats(-5, 5), min_size=1, max_size=8))
def test_project_simplex_is_a_projection(v):
    v = np.array(v)
    p = project_simplex(v)
    assert np.all(p >= 0) and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(project_simplex(p), p, atol=1e-12)
    # optimality: <v - p, q - p> <= 0 for every vertex q of the simplex
    for q in np.eye(v.size):
        assert (v - p) @ (q - p) <= 1e-9


@pytest.mark.parametrize("weights", ["simplex", "free"])
def test_factors_theta_and_monotone_objective(weights):
    pop = Population.shared(12, 3, [0.1, 0.3, 0.3, 0.3], seed=0)
    data = pop.sample(3000, seed=1)
    est = SharedRep(3, weights=weights, n_restarts=2, seed=3).fit(data)
    assert est.theta_.shape == (4, 12) and est.converged_
    np.testing.assert_allclose(est.B_.T @ est.B_, np.eye(3), atol=1e-10)
    np.testing.assert_allclose((est.B_ @ est.W_).T, est.theta_, atol=1e-10)
    np.testing.assert_allclose((est.B_raw_ @ est.W_raw_).T, est.theta_, atol=1e-10)
    assert est.objective_ == pytest.approx(
        sharedrep_objective(data.X, data.y, data.group, est.B_raw_, est.W_raw_, est.lam_))
    if weights == "simplex":  # the constraint holds exactly (up to round-off)
        assert np.all(est.W_raw_ >= 0)
        np.testing.assert_allclose(est.W_raw_.sum(axis=0), 1.0, atol=1e-12)
    # every altmin sweep solves a convex block exactly from a warm start: F never increases
    # (the slack is the Newton solvers' round-off, 1e-9 relative)
    for phase in {h["phase"] for h in est.history_}:
        f = _objectives(est, phase)
        assert np.all(np.diff(f) <= 1e-9 * np.abs(f[:-1]))
    assert est.objective_ == pytest.approx(est.restart_objectives_.min())


def test_subspace_error_falls_with_n():
    pop = Population.shared(16, 2, [0.2, 0.2, 0.2, 0.2, 0.2], seed=4, weights="gaussian")
    errs = [np.mean([sin_theta(SharedRep(2, weights="free", n_restarts=1)
                               .fit(pop.sample(n, seed=10 * s + n)).B_, pop.B)
                     for s in range(2)]) for n in (1000, 4000, 16000)]
    # sin-theta ~ sqrt(d k / n): each 4x in n should halve it; demand a clear fall at each step
    assert errs[1] < 0.8 * errs[0] and errs[2] < 0.8 * errs[1], errs


def test_with_U_at_most_k_sharedrep_reaches_separate_likelihood():
    # U = k = 2 (the paper's LLM set-up): B = [theta_1 theta_2] is feasible, so the model class
    # contains every pair of parameters and the maxima coincide. Both use lam = 1e-6; the
    # difference of the penalties is <= lam/2 * (||B||^2 + ||W||^2 + sum ||theta_u||^2) ~ 1e-5 and
    # the solvers stop at gradient 1e-10 per comparison, so 1e-3 absolute on a log-likelihood of
    # ~ -2000 is a tolerance with room (observed ~ 1e-6).
    pop = Population.minority_trait(10, minority=0.2, seed=5)
    data = pop.sample(3000, seed=6)
    sep = SeparateMLE(lam=1e-6).fit(data)
    for weights in ("free", "simplex"):
        sr = SharedRep(2, weights=weights, lam=1e-6, n_restarts=2).fit(data)
        assert sr.log_likelihood(data) == pytest.approx(sep.log_likelihood(data), abs=1e-3)
    sr3 = SharedRep(3, weights="free", lam=1e-6, n_restarts=1).fit(data)  # U < k
    assert sr3.log_likelihood(data) == pytest.approx(sep.log_likelihood(data), abs=1e-3)


def test_oracle_theta_invariant_to_rotations_of_B():
    pop = Population.shared(8, 3, [0.3, 0.3, 0.4], seed=7)
    data = pop.sample(1500, seed=8)
    Q = np.linalg.qr(np.random.default_rng(9).standard_normal((3, 3)))[0]
    a = OracleB(pop.B).fit(data).theta_
    b = OracleB(pop.B @ Q).fit(data).theta_
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_sharedrep_theta_invariant_to_rotating_the_data_basis():
    # Rotating every feature by an orthogonal R rotates theta_ by R (spectral init and ridge
    # are rotation-equivariant), so the fit does not depend on the coordinates of span(B).
    pop = Population.shared(6, 2, [0.3, 0.3, 0.4], seed=10)
    data = pop.sample(1500, seed=11)
    R = np.linalg.qr(np.random.default_rng(12).standard_normal((6, 6)))[0]
    rot = PreferenceData(data.X @ R, data.y, group=data.group, n_groups=3)
    a = SharedRep(2, weights="free", n_restarts=1).fit(data).theta_
    b = SharedRep(2, weights="free", n_restarts=1).fit(rot).theta_
    np.testing.assert_allclose(b, a @ R, atol=1e-5)


@pytest.mark.slow
def test_minority_error_sharedrep_clearly_below_separate():
    # d = 64, k = 2, U = 5 with w_u = 2 Dirichlet(1): the minority's w is spanned by the other
    # groups' (U > k), so pooling can help. Minority proportion 0.02 of n = 20000 (~400
    # comparisons for 64 parameters). Measured on population seeds 0..5 (data seed 100 + s,
    # n_restarts=1), minority l2 error:
    #   Separate 1.94 1.72 1.37 2.48 1.29 1.55;
    #   SharedRep defaults (lam = "auto"): free 0.33 0.30 0.14 0.52 0.52 0.27,
    #     simplex 0.29 0.22 0.12 0.26 0.33 0.25;
    #   SharedRep(lam = 1e-3): free 0.50 0.41 0.21 0.84 0.47 0.27, simplex 0.32 0.24 0.12 0.31
    #     0.33 0.26; OracleB (lam = 1e-4) 0.34 0.39 0.15 0.68 0.39 0.07.
    #   Ratios Separate / SharedRep at the defaults: free 2.5 to 10, simplex 3.9 to 11.3. The
    #   margin we defend: Separate's minority error is at least TWICE SharedRep's, seed by seed,
    #   for both weight models (below the smallest observed ratio, 2.5).
    # Ordering: OracleB (true B, FREE weights) <= SharedRep(free) <= Separate at the same small
    # ridge (lam = 1e-3; the default's larger ridge shrinks, and beat the near-unpenalised oracle
    # on seeds 0 to 3, so that pair is not an ordering of estimators). The oracle is not a
    # floor for simplex SharedRep: on the simplex the minority's theta has k - 1 = 1 free
    # coordinate against the oracle's k = 2, and simplex SharedRep beat the free oracle on some
    # seeds (0.243 vs 0.386 on seed 1). Oracle vs SharedRep(free) is an ordering in expectation
    # (closest observed: 0.39 vs 0.41; seed 3 0.68 vs 0.84), so we allow the oracle 25% slack per seed.
    for s in (0, 1):
        pop = Population.shared(64, 2, [0.02, 0.245, 0.245, 0.245, 0.245], seed=s)
        assert pop.traits_spanned_by_others()
        data = pop.sample(20000, seed=100 + s)
        sep = param_error(SeparateMLE().fit(data).theta_, pop.theta)[0]
        free = param_error(SharedRep(2, weights="free", n_restarts=1).fit(data).theta_,
                           pop.theta)[0]
        simp = param_error(SharedRep(2, weights="simplex", n_restarts=1).fit(data).theta_,
                           pop.theta)[0]
        free_small = param_error(SharedRep(2, weights="free", lam=1e-3, n_restarts=1)
                                 .fit(data).theta_, pop.theta)[0]
        orc = param_error(OracleB(pop.B).fit(data).theta_, pop.theta)[0]
        assert sep >= 2.0 * free and sep >= 2.0 * simp, (s, sep, free, simp)
        assert orc <= 1.25 * free_small and free_small <= sep, (s, orc, free_small, sep)


def test_joint_solver_reproducible_and_constraints():
    pop = Population.shared(6, 2, [0.3, 0.7], seed=13)
    data = pop.sample(800, seed=14)
    kw = {"solver": "joint", "n_restarts": 1, "n_epochs": 5, "batch_size": 64, "lr": 2e-2, "seed": 15}
    a = SharedRep(2, weights="free", **kw).fit(data)
    b = SharedRep(2, weights="free", **kw).fit(data)
    np.testing.assert_array_equal(a.theta_, b.theta_)
    assert a.theta_.shape == (2, 6) and len(a.history_) == 5
    assert a.history_[-1]["objective"] < a.history_[0]["objective"]
    c = SharedRep(2, weights="simplex", use_tanh=True, **kw).fit(data)
    assert np.all(c.W_raw_ >= 0)
    np.testing.assert_allclose(c.W_raw_.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose((c.B_ @ c.W_).T, c.theta_, atol=1e-10)


@given(n=st.integers(8, 80), d=st.integers(1, 5), U=st.integers(1, 4), data_seed=st.integers(0, 99),
       k_frac=st.floats(0, 1), weights=st.sampled_from(["free", "simplex"]))
def test_random_shapes_no_crash_no_nan(n, d, U, data_seed, k_frac, weights):
    k = 1 + int(k_frac * (d - 1))
    rng = np.random.default_rng(data_seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 2, n)
    data = PreferenceData(X, y, group=np.arange(n) % U, n_groups=U)
    est = SharedRep(k, weights=weights, n_restarts=1, max_iter=5).fit(data)
    assert est.theta_.shape == (U, d) and np.all(np.isfinite(est.theta_))
    assert np.all(np.isfinite(est.B_)) and est.B_.shape == (d, k)
    assert np.all(np.isfinite(OracleB(np.eye(d)[:, :k]).fit(data).theta_))


def test_bad_inputs_name_the_parameter():
    data = Population.shared(4, 2, [0.5, 0.5], seed=0).sample(200, seed=1)
    for kwargs, name in [({"k": 5}, "k"), ({"k": 0}, "k"), ({"k": 2, "weights": "x"}, "weights"),
                         ({"k": 2, "solver": "x"}, "solver"), ({"k": 2, "lam": -1}, "lam"),
                         ({"k": 2, "n_restarts": 0}, "n_restarts")]:
        with pytest.raises(ValueError, match=name):
            SharedRep(**kwargs).fit(data)
    empty = PreferenceData(data.X, data.y, group=np.zeros(data.n, int), n_groups=2)
    with pytest.raises(ValueError, match="group"):
        SharedRep(2).fit(empty)
    with pytest.raises(ValueError, match="B"):
        OracleB(np.eye(3)).fit(data)
