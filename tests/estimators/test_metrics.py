"""Estimation metrics: ARI against scikit-learn, subspace distances, error splits, held-out fit."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import Population
from simulator.metrics import (
    adjusted_rand_index,
    heldout_metrics,
    param_error,
    principal_angles,
    purity,
    sigma_norm_error,
    sin_theta,
    span_decomposition,
)


@given(labels=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=60))
def test_ari_matches_sklearn(labels):
    from sklearn.metrics import adjusted_rand_score

    a, b = np.array(labels).T
    assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(b, a), abs=1e-12)


def test_ari_and_purity_basic_cases():
    t = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index([5, 5, 3, 3, 9, 9], t) == 1.0  # relabelling
    assert purity([1, 1, 0, 0, 2, 2], t) == 1.0
    assert purity([0, 0, 0, 0, 0, 0], t) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        adjusted_rand_index([0, 1], [0])


def test_sin_theta_is_basis_free_and_bounded():
    rng = np.random.default_rng(0)
    B = np.linalg.qr(rng.standard_normal((10, 3)))[0]
    G = rng.standard_normal((3, 3))  # any invertible change of basis
    assert sin_theta(B @ G, B) == pytest.approx(0.0, abs=1e-10)
    perp = np.linalg.qr(np.hstack([B, rng.standard_normal((10, 3))]))[0][:, 3:]
    assert sin_theta(perp, B) == pytest.approx(1.0)
    assert sin_theta(B[:, :2], B) == pytest.approx(1.0)  # a smaller subspace misses a direction
    # rotating one direction by angle a gives sin(a)
    a = 0.3
    B2 = B.copy()
    B2[:, 0] = np.cos(a) * B[:, 0] + np.sin(a) * perp[:, 0]
    assert sin_theta(B2, B) == pytest.approx(np.sin(a))
    assert principal_angles(B2, B).max() == pytest.approx(a)


def test_error_norms_and_span_split():
    rng = np.random.default_rng(1)
    th, th_hat = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    np.testing.assert_allclose(sigma_norm_error(th_hat, th, np.eye(6)), param_error(th_hat, th))
    S = np.diag(np.arange(1.0, 7.0))
    e = th_hat - th
    np.testing.assert_allclose(sigma_norm_error(th_hat, th, S, lam=0.5),
                               np.sqrt(np.einsum("ui,ij,uj->u", e, S + 0.5 * np.eye(6), e)))
    B = rng.standard_normal((6, 2))
    sp = span_decomposition(th_hat, th, B)
    np.testing.assert_allclose(sp["inside"] ** 2 + sp["outside"] ** 2, sp["total"] ** 2)
    sp0 = span_decomposition(th + (B @ rng.standard_normal((2, 3))).T, th, B)
    np.testing.assert_allclose(sp0["outside"], 0.0, atol=1e-12)


def test_heldout_metrics_truth_beats_zero():
    pop = Population.shared(5, 2, [0.3, 0.7], seed=0)
    test = pop.sample(4000, seed=1)
    good = heldout_metrics(pop.theta, test)
    zero = heldout_metrics(np.zeros((2, 5)), test)
    np.testing.assert_allclose(zero["log_loss"], np.log(2))
    np.testing.assert_allclose(zero["accuracy"], 0.5)
    assert np.all(good["log_loss"] < np.log(2)) and np.all(good["accuracy"] > 0.6)
    assert good["n"].sum() == test.n


@given(seed=st.integers(0, 2**31), U=st.integers(1, 5), d=st.integers(1, 6))
def test_matched_param_error_is_zero_for_a_permuted_truth(seed, U, d):
    from simulator.metrics import matched_param_error

    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((U, d))
    perm = rng.permutation(U)
    assert np.all(matched_param_error(theta[perm], theta) == 0.0)


def test_matched_param_error_matches_brute_force_and_hungarian():
    """Known answer: the minimum over all matchings, computed independently (an explicit loop
    over permutations for U = 3, scipy's assignment solver for U = 9 > the enumeration limit)."""
    import itertools

    from scipy.optimize import linear_sum_assignment

    from simulator.metrics import matched_param_error

    rng = np.random.default_rng(1)
    theta, hat = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    sums = {p: sum(np.linalg.norm(hat[p[u]] - theta[u]) for u in range(3))
            for p in itertools.permutations(range(3))}
    best = min(sums, key=sums.get)
    err = matched_param_error(hat, theta)
    np.testing.assert_allclose(err, [np.linalg.norm(hat[best[u]] - theta[u]) for u in range(3)],
                               rtol=1e-12)
    assert err.sum() <= param_error(hat, theta).sum()
    theta, hat = rng.standard_normal((9, 3)), rng.standard_normal((9, 3))
    cost = np.linalg.norm(hat[:, None] - theta[None], axis=2)
    r, c = linear_sum_assignment(cost)
    assert matched_param_error(hat, theta).sum() == pytest.approx(cost[r, c].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        matched_param_error(hat[:2], theta)
