"""Batched torch SharedRep altmin and EM E-step: equal to the numba back-end, float32 tolerance,
isolation of problems in a batch, fit_many."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Population
from simulator.estimators import SeparateMLE, SharedRep
from simulator.estimators.batched import fit_many
from simulator.estimators.em import EMMixture, e_step_reference, user_loglik_reference
from simulator.kernels.torch_em import e_step_batched, user_loglik_batched
from simulator.kernels.torch_sharedrep import altmin_batched, group_layout


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@settings(max_examples=8, deadline=None)
@given(d=st.integers(2, 6), k=st.integers(1, 2), U=st.integers(2, 4), n=st.integers(150, 400),
       weights=st.sampled_from(["free", "simplex"]), seed=st.integers(0, 2**31))
def test_sharedrep_torch_equals_numba(d, k, U, n, weights, seed):
    k = min(k, d)
    pop = Population.shared(d, k, np.full(U, 1.0 / U), seed=seed % 1000)
    data = pop.sample(n, seed=seed)
    if np.any(data.group_counts() == 0):
        return
    # a fixed number of sweeps (tol far below round-off) so both take the same path to the end
    kw = dict(k=k, weights=weights, n_restarts=2, max_iter=4, tol=1e-300, seed=seed)
    a = SharedRep(**kw).fit(data)
    b = SharedRep(backend="torch", **kw).fit(data)
    assert _rel(b.theta_, a.theta_) <= 1e-6
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-9)
    np.testing.assert_allclose(b.restart_objectives_, a.restart_objectives_, rtol=1e-9)


def test_sharedrep_torch_default_settings_equal_numba():
    pop = Population.shared(8, 2, [0.2, 0.3, 0.5], seed=0)
    data = pop.sample(2000, seed=1)
    for weights in ("free", "simplex"):
        a = SharedRep(2, weights=weights).fit(data)
        b = SharedRep(2, weights=weights, backend="torch").fit(data)
        assert _rel(b.theta_, a.theta_) <= 1e-6
        assert (a.n_iter_, a.converged_) == (b.n_iter_, b.converged_)


def _layout(datasets, U):
    return group_layout([(d.X, d.y, d.group) for d in datasets], U)[:4]


def test_sharedrep_float32_within_documented_tolerance():
    pop = Population.shared(8, 2, [0.3, 0.3, 0.4], seed=2, weights="gaussian")
    ds = [pop.sample(3000, seed=s) for s in range(3)]
    lay = _layout(ds, 3)
    B0 = np.stack([np.linalg.qr(np.random.default_rng(s).standard_normal((8, 2)))[0]
                   for s in range(3)])
    W0 = np.zeros((3, 2, 3))
    a = altmin_batched(*lay, B0, W0, lam=1e-3, dtype="float64")
    b = altmin_batched(*lay, B0, W0, lam=1e-3, dtype="float32")
    for s in range(3):
        ta, tb = (a.B[s] @ a.W[s]), (b.B[s] @ b.W[s])
        # documented: ~1e-3 relative on theta = B W (module docstring of torch_sharedrep)
        assert _rel(tb, ta) < 1e-3
        assert b.objective[s] == pytest.approx(a.objective[s], rel=1e-5)


def test_one_degenerate_sharedrep_problem_does_not_spoil_the_others():
    pop = Population.shared(6, 2, [0.3, 0.3, 0.4], seed=3, weights="gaussian")
    ds = [pop.sample(800, seed=s) for s in range(3)]
    lay = _layout(ds, 3)
    bad = [(ds[1].X, (ds[1].X[:, 0] > 0).astype(np.int8), ds[1].group)]  # separable labels
    lay_bad = group_layout([(d.X, d.y, d.group) for d in (ds[0],)] + bad
                           + [(ds[2].X, ds[2].y, ds[2].group)], 3)[:4]
    B0 = np.stack([np.linalg.qr(np.random.default_rng(s).standard_normal((6, 2)))[0]
                   for s in range(3)])
    W0 = np.zeros((3, 2, 3))
    ref = altmin_batched(*lay, B0, W0, lam=1e-3, max_iter=50)
    mixed = altmin_batched(*lay_bad, B0, W0, lam=1e-3, max_iter=50)
    for s in (0, 2):
        np.testing.assert_allclose(mixed.B[s] @ mixed.W[s], ref.B[s] @ ref.W[s], rtol=1e-9,
                                   atol=1e-12)
        assert mixed.converged[s] and mixed.n_sweeps[s] == ref.n_sweeps[s]
    assert np.all(np.isfinite(mixed.B[1]))


@settings(max_examples=20, deadline=None)
@given(S=st.integers(1, 4), H=st.integers(1, 8), K=st.integers(1, 4), d=st.integers(1, 5),
       n=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_e_step_batched_equals_reference(S, H, K, d, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((S, n, d)) * 3
    y = rng.integers(0, 2, (S, n))
    user = rng.integers(0, H, (S, n))
    theta = rng.standard_normal((S, K, d))
    log_pi = np.log(rng.dirichlet(np.ones(K), size=S))
    L = user_loglik_batched(X, y, user, theta, H)
    R, ll = e_step_batched(L, log_pi)
    for s in range(S):
        Lr = user_loglik_reference(X[s], y[s], user[s], theta[s], H)
        Rr, llr = e_step_reference(Lr, log_pi[s])
        np.testing.assert_allclose(L[s], Lr, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(R[s], Rr, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ll[s], llr, rtol=1e-10, atol=1e-12)
    # float32: documented ~1e-6 relative
    L32 = user_loglik_batched(X, y, user, theta, H, dtype="float32")
    R32, _ = e_step_batched(L, log_pi, dtype="float32")
    assert np.abs(L32 - L).max() <= 1e-5 * max(1.0, np.abs(L).max())
    assert np.abs(R32 - R).max() <= 1e-5


def test_e_step_masks_padding_and_handles_zero_weight_clusters():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1, 10, 3))
    y = rng.integers(0, 2, (1, 10))
    user = rng.integers(0, 3, (1, 10))
    theta = rng.standard_normal((1, 2, 3))
    mask = np.r_[np.ones(6), np.zeros(4)][None]
    L = user_loglik_batched(X, y, user, theta, 3, mask=mask)
    np.testing.assert_allclose(L[0], user_loglik_reference(X[0, :6], y[0, :6], user[0, :6],
                                                           theta[0], 3), rtol=1e-12)
    R, ll = e_step_batched(L, np.full((1, 2), -np.inf))
    np.testing.assert_allclose(R, 0.5)
    assert np.all(np.isneginf(ll))


@pytest.mark.parametrize("variant", ["hard", "soft"])
def test_em_torch_backend_equals_numba(variant):
    pop = Population.shared(6, 2, [0.4, 0.6], seed=1, users_per_group=8)
    data = pop.sample(1500, seed=2)
    kw = dict(n_clusters=2, variant=variant, n_restarts=2, max_iter=5, tol=1e-15, seed=3)
    a = EMMixture(**kw).fit(data)
    b = EMMixture(backend="torch", **kw).fit(data)
    assert _rel(b.theta_, a.theta_) <= 1e-6
    np.testing.assert_allclose(b.responsibilities_, a.responsibilities_, atol=1e-9)
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-9)
    with pytest.raises(ValueError, match="device"):
        EMMixture(2, device="cuda").fit(data)


def test_fit_many_equals_one_at_a_time():
    pop = Population.shared(6, 2, [0.2, 0.3, 0.5], seed=0)
    ds = [pop.sample(400, seed=s) for s in range(3)]
    for factory in (lambda: SeparateMLE(lam=1e-3),
                    lambda: SharedRep(2, weights="free", n_restarts=2, seed=5)):
        many = fit_many(factory, ds)
        for est, d in zip(many, ds):
            ref = factory().fit(d)
            assert _rel(est.theta_, ref.theta_) <= 1e-6
    # an estimator without a batched kernel falls back to one fit per data set
    many = fit_many(EMMixture(2, variant="hard"), ds[:1])
    assert many[0].theta_.shape == (2, 6)
