"""EM over users (MaxMin-RLHF Algorithm 2, soft EM, latent SharedRep): kernels, recovery, contract."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import Population
from simulator.estimators import EMMixture
from simulator.estimators.em import e_step_reference, user_loglik_reference
from simulator.kernels import em_numba
from simulator.metrics import heldout_metrics
from simulator.validation import InvalidParameterError


@given(n=st.integers(1, 200), d=st.integers(1, 6), K=st.integers(1, 4), H=st.integers(1, 10),
       seed=st.integers(0, 2**31))
def test_estep_kernels_equal_numpy_reference(n, d, K, H, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 5
    y = rng.integers(0, 2, n).astype(np.int8)
    user = rng.integers(0, H, n)
    theta = rng.standard_normal((K, d)) * 10  # large margins: log space must not overflow
    L = em_numba.user_loglik(np.ascontiguousarray(X @ theta.T), y.astype(float), user, H)
    np.testing.assert_allclose(L, user_loglik_reference(X, y, user, theta, H),
                               rtol=1e-10, atol=1e-10)
    log_pi = np.log(rng.dirichlet(np.ones(K)))
    R, ll = em_numba.e_step(L, log_pi)
    R_ref, ll_ref = e_step_reference(L, log_pi)
    np.testing.assert_allclose(R, R_ref, atol=1e-12)
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-12, atol=1e-9)
    assert np.all(np.isfinite(R)) and np.allclose(R.sum(axis=1), 1.0)


def _separated(users_per_group=15, angle=0.9 * np.pi, n=3000, seed=0):
    pop = Population.diverse(8, angle=angle, seed=seed, users_per_group=users_per_group,
                             signal=3.0)
    return pop, pop.sample(n, seed=seed + 1)


@pytest.mark.parametrize("variant,init", [("hard", "random"), ("hard", "round_robin"),
                                          ("soft", "kmeans++"), ("soft", "random")])
def test_em_recovers_well_separated_groups_and_never_decreases(variant, init):
    pop, data = _separated()
    em = EMMixture(2, variant=variant, init=init, seed=1).fit(data, true_groups=pop.user_group)
    assert em.history_[-1]["ari"] > 0.95 and em.converged_
    assert em.assignments_.shape == (pop.n_users,) and em.theta_.shape == (2, 8)
    np.testing.assert_allclose(em.responsibilities_.sum(axis=1), 1.0)
    # EM / classification-EM objective never decreases (slack: Newton round-off)
    f = np.array([h["objective"] for h in em.history_])
    assert np.all(np.diff(f) >= -1e-9 * np.abs(f[:-1]))
    # the clusters' parameters match the truth up to label switching
    perm = [np.argmin(np.linalg.norm(pop.theta - t, axis=1)) for t in em.theta_]
    assert sorted(perm) == [0, 1]
    assert np.max(np.linalg.norm(em.theta_ - pop.theta[perm], axis=1)) < 1.0


def test_em_reports_honestly_when_groups_are_not_separable():
    # Two groups whose parameters make an angle of 0.05 rad with ~13 comparisons per user: the
    # users' likelihoods cannot tell them apart, and the history says so (ARI near 0).
    pop, data = _separated(users_per_group=30, angle=0.05, n=800)
    em = EMMixture(2, variant="soft", seed=2).fit(data, true_groups=pop.user_group)
    assert em.history_[-1]["ari"] < 0.3
    assert {"purity", "ari", "objective", "log_likelihood"} <= set(em.history_[-1])


@pytest.mark.parametrize("variant", ["hard", "soft"])
def test_latent_sharedrep_recovers_and_never_decreases(variant):
    pop = Population.shared(10, 2, [0.3, 0.3, 0.4], seed=3, users_per_group=8, signal=4.0,
                            weights="gaussian")
    data = pop.sample(4000, seed=4)
    em = EMMixture(3, variant=variant, init="kmeans++", m_step="sharedrep", k=2, weights="free",
                   n_restarts=2, seed=5).fit(data, true_groups=pop.user_group)
    assert em.history_[-1]["ari"] > 0.9
    assert em.B_.shape == (10, 2)
    np.testing.assert_allclose((em.B_ @ em.W_).T, em.theta_, atol=1e-10)
    f = np.array([h["objective"] for h in em.history_])
    assert np.all(np.diff(f) >= -1e-9 * np.abs(f[:-1]))


def test_a_comparison_is_scored_by_its_users_cluster_not_its_group():
    # theta_ rows are clusters in no particular order; predict_proba used to index them by
    # data.group, which silently gave group g cluster g's reward
    pop, data = _separated()
    test = pop.sample(4000, seed=7)
    em = EMMixture(2, seed=1).fit(data)
    p = em.predict_proba(test)
    z = np.einsum("ij,ij->i", test.X, em.theta_[em.assignments_[test.user]])
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-z)), rtol=1e-9)  # tanh form vs exp form
    acc = np.mean((p > 0.5) == (test.y == 1))
    hm = heldout_metrics(pop.theta, test)
    truth = np.average(hm["accuracy"], weights=hm["n"])
    # 1,500 comparisons a cluster in d = 8: the fit ranks test pairs as the truth does to 2%
    assert abs(acc - truth) < 0.02
    # cluster labels are exchangeable: relabelling them moves no prediction
    em.theta_, em.assignments_ = em.theta_[::-1].copy(), 1 - em.assignments_
    np.testing.assert_allclose(em.predict_proba(test), p, rtol=1e-12)
    np.testing.assert_allclose(em.log_likelihood(test), np.sum(np.log(np.where(test.y == 1, p, 1 - p))),
                               rtol=1e-10)
    more = Population.diverse(8, angle=0.9 * np.pi, seed=0, users_per_group=20).sample(50, seed=3)
    with pytest.raises(InvalidParameterError, match="data.user"):
        em.predict_proba(more)


def test_bad_inputs_name_the_parameter():
    _pop, data = _separated(users_per_group=2, n=300)
    for kwargs, name in [({"n_clusters": 0}, "n_clusters"),
                         ({"n_clusters": 2, "variant": "x"}, "variant"),
                         ({"n_clusters": 2, "init": "x"}, "init"),
                         ({"n_clusters": 2, "m_step": "x"}, "m_step"),
                         ({"n_clusters": 2, "m_step": "sharedrep"}, "k"),
                         ({"n_clusters": 2, "m_step": "sharedrep", "k": 9}, "k")]:
        with pytest.raises(ValueError, match=name):
            EMMixture(**kwargs).fit(data)
    with pytest.raises(ValueError, match="too few users"):
        EMMixture(5).fit(data)  # 4 users
    with pytest.raises(ValueError, match="true_groups"):
        EMMixture(2).fit(data, true_groups=np.zeros(3))
