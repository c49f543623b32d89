"""The estimator contract (simulator/estimators/base.py), checked on every estimator.

One battery in the spirit of scikit-learn's ``check_estimator``: parameters round-trip through
``get_params`` / ``set_params`` and ``sklearn.base.clone``; ``fit(data, **fit_params)`` is the one
signature and returns ``self``; ``theta_`` has the documented shape; the same seed gives the same
bits; a row permutation leaves convex fits unchanged; every fit carries its certificate; bad
input raises an error that names the parameter.
"""

import inspect

import numpy as np
import pytest
from sklearn.base import clone

from simulator import Population, PreferenceData
from simulator.estimators import (
    PALB,
    VPL,
    EMMixture,
    LoRe,
    OracleB,
    PooledMLE,
    PreferenceEstimator,
    SeparateMLE,
    SharedLoRA,
    SharedRep,
)
from simulator.estimators.em import e_step_reference, user_loglik_reference

D, K, U, USERS_PER_GROUP = 6, 2, 3, 4
POP = Population.shared(D, K, [0.3, 0.3, 0.4], seed=0, users_per_group=USERS_PER_GROUP)

# name -> (factory, theta_ rows as a function of the data, convex problem?)
ESTIMATORS = {
    "PooledMLE": (lambda: PooledMLE(), "groups", True),
    "SeparateMLE": (lambda: SeparateMLE(), "groups", True),
    "SharedRep-free": (lambda: SharedRep(k=2, weights="free", seed=1), "groups", False),
    "SharedRep-simplex": (lambda: SharedRep(k=2, weights="simplex", seed=1), "groups", False),
    "SharedLoRA": (lambda: SharedLoRA(k=2, solver="factorized", seed=1), "groups", False),
    "SharedLoRA-user": (lambda: SharedLoRA(k=2, solver="factorized", unit="user", seed=1),
                        "users", False),
    "SeparateMLE-user": (lambda: SeparateMLE(unit="user"), "users", True),
    "SharedRep-user": (lambda: SharedRep(k=2, weights="free", unit="user", seed=1), "users",
                       False),
    "OracleB": (lambda: OracleB(POP.B), "groups", True),
    "OracleB-user": (lambda: OracleB(POP.B, unit="user"), "users", True),
    "EMMixture": (lambda: EMMixture(n_clusters=U, seed=1), "groups", False),
    # the arena's peers (PALA needs fit(data, env=env): not in this battery; tests/estimators/
    # test_pal.py covers it)
    "LoRe": (lambda: LoRe(k=2, seed=1), "groups", False),
    "PALB": (lambda: PALB(k=2, seed=1), "groups", False),
    "VPL-user": (lambda: VPL(latent_dim=2, hidden=8, seed=1), "users", False),
}
NAMES = list(ESTIMATORS)
CONVEX = [n for n in NAMES if ESTIMATORS[n][2]]


@pytest.fixture(scope="module")
def data():
    return POP.sample(1800, seed=1, group_sampling="fixed")


@pytest.fixture(scope="module")
def fitted(data):
    """Each estimator fitted once on the easy problem (shared by the tests below)."""
    return {name: ESTIMATORS[name][0]().fit(data) for name in NAMES}


def _params_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


# ------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name", NAMES)
def test_get_set_params_round_trip(name):
    est = ESTIMATORS[name][0]()
    shallow, deep = est.get_params(deep=False), est.get_params(deep=True)
    # no nested estimators here, so deep adds nothing; the keys are the __init__ arguments
    _params_equal(shallow, deep)
    init = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    assert list(shallow) == init
    rebuilt = type(est)(**shallow)
    _params_equal(rebuilt.get_params(), shallow)
    assert est.set_params(**shallow) is est
    _params_equal(est.get_params(), shallow)
    with pytest.raises(ValueError, match="unknown parameter 'bogus'"):
        est.set_params(bogus=1)


@pytest.mark.parametrize("name", NAMES)
def test_clone_gives_unfitted_copy_with_equal_params(name, fitted):
    est = fitted[name]
    copy = clone(est)
    assert type(copy) is type(est) and copy is not est
    assert not hasattr(copy, "theta_")
    _params_equal(copy.get_params(deep=False), est.get_params(deep=False))


class _Wrapper(PreferenceEstimator):
    """A meta-estimator, to check the nested (``name__param``) half of the params protocol."""

    def __init__(self, inner, scale: float = 1.0):
        self.inner = inner
        self.scale = scale


def test_nested_params_follow_sklearn():
    w = _Wrapper(PooledMLE(lam=0.5), scale=2.0)
    deep = w.get_params(deep=True)
    assert deep["inner__lam"] == 0.5 and deep["scale"] == 2.0 and "inner" in deep
    assert "inner__lam" not in w.get_params(deep=False)
    w.set_params(inner__lam=0.25, scale=3.0)
    assert w.inner.lam == 0.25 and w.scale == 3.0
    c = clone(w)
    assert c.inner is not w.inner and c.inner.lam == 0.25
    with pytest.raises(ValueError, match="unknown parameter 'nope' for PooledMLE"):
        w.set_params(inner__nope=1)
    with pytest.raises(ValueError, match="'scale' of _Wrapper is not an estimator"):
        w.set_params(scale__x=1)


# ------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("name", NAMES)
def test_one_fit_signature(name):
    cls = type(ESTIMATORS[name][0]())
    params = list(inspect.signature(cls.fit).parameters.values())
    assert [p.name for p in params] == ["self", "data", "fit_params"]
    assert params[2].kind is inspect.Parameter.VAR_KEYWORD
    assert isinstance(cls._fit_params, tuple)


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_theta_shape(name, data):
    est = ESTIMATORS[name][0]()
    assert est.fit(data) is est
    rows = data.n_groups if ESTIMATORS[name][1] == "groups" else data.n_users
    assert est.theta_.shape == (rows, data.d)
    assert np.all(np.isfinite(est.theta_))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bits(name, data, fitted):
    again = clone(fitted[name]).fit(data)
    np.testing.assert_array_equal(again.theta_, fitted[name].theta_)
    np.testing.assert_array_equal(again.objective_, fitted[name].objective_)


@pytest.mark.parametrize("name", CONVEX)
def test_row_permutation_leaves_convex_fits_unchanged(name, data, fitted):
    perm = np.random.default_rng(7).permutation(data.n)
    est = clone(fitted[name]).fit(data.subset(perm))
    # A strictly convex problem has one minimiser; both fits stop at a mean gradient <= 1e-9,
    # i.e. within about 1e-9 / (smallest curvature ~ 0.1) of it, far inside 1e-6 relative.
    np.testing.assert_allclose(est.theta_, fitted[name].theta_, rtol=1e-6,
                               atol=1e-6 * np.abs(fitted[name].theta_).max())


@pytest.mark.parametrize("name", NAMES)
def test_certificate_present_and_converged(name, fitted):
    est = fitted[name]
    for attr in ("objective_", "n_iter_", "converged_"):
        assert hasattr(est, attr), f"{name} has no {attr}"
    assert np.all(np.isfinite(est.objective_))
    assert np.all(np.asarray(est.n_iter_) >= 0)
    assert est.converged_ is True or est.converged_ is np.True_
    if not hasattr(est, "kkt_residual_"):
        pytest.xfail(f"{name} does not record kkt_residual_ yet (issue 12 item 2)")
    assert np.all(np.isfinite(est.kkt_residual_))
    assert np.all(np.asarray(est.kkt_residual_) >= 0)


def test_kkt_residual_aliases_grad_norm(fitted):
    # where an estimator records grad_norm_, kkt_residual_ is that certificate
    for name in ("PooledMLE", "SeparateMLE", "OracleB"):
        est = fitted[name]
        np.testing.assert_array_equal(est.kkt_residual_, est.grad_norm_)
    with pytest.raises(AttributeError, match="kkt_residual_"):
        _ = PooledMLE().kkt_residual_


def test_em_kkt_residual_is_the_objective_gradient(data):
    """Soft EM's certificate against finite differences of its own objective.

    l(theta, pi) = sum_h log sum_c pi_c exp(L[h, c]) - lam/2 sum_c ||theta_c||^2; the residual is
    the norm of (grad_theta l, grad_pi l - H), the KKT residual with pi on the simplex.
    """
    em = EMMixture(n_clusters=U, seed=1, max_iter=3).fit(data)  # stopped early: nonzero gradient
    theta, pi, lam = em.theta_, em.mixing_weights_, em.lam
    H = data.n_users

    def objective(th, p):
        L = user_loglik_reference(data.X, data.y, data.user, th.reshape(theta.shape), H)
        return float(e_step_reference(L, np.log(p))[1].sum() - 0.5 * lam * np.sum(th * th))

    h = 1e-6
    g_theta = np.array([(objective(theta.ravel() + h * e, pi)
                         - objective(theta.ravel() - h * e, pi)) / (2 * h)
                        for e in np.eye(theta.size)])
    g_pi = np.array([(objective(theta.ravel(), pi + h * e) - objective(theta.ravel(), pi - h * e))
                     / (2 * h) for e in np.eye(pi.size)])
    expected = np.sqrt(g_theta @ g_theta + np.sum((g_pi - H) ** 2))
    assert expected > 1e-3  # the check is not vacuous
    assert em.kkt_residual_ == pytest.approx(expected, rel=1e-5)


def test_declared_fit_params_are_used(data):
    ones = np.ones(data.n)
    for est in (PooledMLE(), SeparateMLE(), OracleB(POP.B)):
        a, b = clone(est).fit(data), clone(est).fit(data, sample_weight=ones)
        np.testing.assert_allclose(b.theta_, a.theta_, rtol=1e-8, atol=1e-10)
        # doubling every weight is the same objective with the ridge halved: a different fit
        c = clone(est).fit(data, sample_weight=2 * ones)
        assert not np.allclose(c.theta_, a.theta_, rtol=1e-8, atol=0)
    em = EMMixture(n_clusters=U, seed=1).fit(data, true_groups=POP.user_group)
    assert "ari" in em.history_[-1]


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", NAMES)
def test_unknown_fit_param_is_a_type_error_naming_it(name, data):
    est = ESTIMATORS[name][0]()
    accepted = list(type(est)._fit_params) or "none"
    with pytest.raises(TypeError, match=rf"'bogus'; accepted: {accepted!s}".replace("[", r"\[")
                       .replace("]", r"\]")):
        est.fit(data, bogus=1)


@pytest.mark.parametrize("name", NAMES)
def test_data_must_be_preference_data(name, data):
    with pytest.raises(TypeError, match="data must be a PreferenceData"):
        ESTIMATORS[name][0]().fit(data.X)


@pytest.mark.parametrize("make, match", [
    (lambda: SharedRep(k=D + 1), r"k must be <= d = 6"),
    (lambda: SharedLoRA(k=D + 1), r"k must be <= d = 6"),
    (lambda: OracleB(np.ones((D, D + 1))), r"B must have k <= d columns"),
    (lambda: EMMixture(n_clusters=U, m_step="sharedrep", k=D + 1), r"k must be an integer"),
], ids=["SharedRep", "SharedLoRA", "OracleB", "EMMixture"])
def test_rank_above_d_names_the_parameter(make, match, data):
    with pytest.raises(ValueError, match=match):
        make().fit(data)


@pytest.mark.parametrize("name", ["SeparateMLE", "SharedRep-free", "SharedRep-simplex",
                                  "SharedLoRA", "OracleB"])
def test_empty_group_names_it(name, data):
    # group 2 declared but given no comparisons
    keep = data.group != 2
    sparse = PreferenceData(X=data.X[keep], y=data.y[keep], group=data.group[keep],
                            user=data.user[keep], n_groups=U, n_users=data.n_users)
    with pytest.raises(ValueError, match=r"needs data for every group"):
        ESTIMATORS[name][0]().fit(sparse)


def test_em_with_fewer_users_than_clusters_names_it(data):
    with pytest.raises(ValueError, match="too few users: n_clusters = 50"):
        EMMixture(n_clusters=50).fit(data)


def test_nan_features_are_refused_by_preference_data(data):
    X = data.X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite entries"):
        PreferenceData(X=X, y=data.y, group=data.group)


def test_set_fitted_hook(data):
    est = PooledMLE().fit(data)
    with pytest.raises(ValueError, match="must end in '_'"):
        est._set_fitted(theta=np.zeros((U, D)))
    with pytest.raises(ValueError, match="not start with '_'"):
        est._set_fitted(_secret_=1)
    # a batched driver handing over grad_norm_ only: the alias follows it, no stale residual
    est._set_fitted(grad_norm_=5.0)
    assert est.kkt_residual_ == 5.0
    est._set_fitted(grad_norm_=6.0, kkt_residual_=7.0)
    assert est.kkt_residual_ == 7.0


def test_em_sharedrep_kkt_residual_matches_finite_differences(data):
    # hard EM with SharedRep M-step: J(B, W) = sum_h L[h, c(h)] - lam/2 (||B||^2 + ||W||^2) at
    # fixed assignments, with theta_c = B w_c; the residual is the norm of its gradient.
    em = EMMixture(n_clusters=U, variant="hard", m_step="sharedrep", k=2, lam=0.1)
    rng = np.random.default_rng(3)
    B, W = rng.standard_normal((D, 2)), rng.standard_normal((2, U))
    labels = rng.integers(0, U, size=data.n_users)
    R = np.eye(U)[labels]
    active = data.user_counts() > 0

    def J(v):
        Bv, Wv = v[:D * 2].reshape(D, 2), v[D * 2:].reshape(2, U)
        L = user_loglik_reference(data.X, data.y, data.user, (Bv @ Wv).T, data.n_users)
        return float(L[np.arange(data.n_users), labels].sum()
                     - 0.05 * (np.sum(Bv * Bv) + np.sum(Wv * Wv)))

    v0, h = np.concatenate([B.ravel(), W.ravel()]), 1e-6
    g = np.array([(J(v0 + h * e) - J(v0 - h * e)) / (2 * h) for e in np.eye(v0.size)])
    state = {"theta": (B @ W).T, "B": B, "W": W}
    got = em._kkt_residual(data, state, R, np.full(U, 1.0 / U), active)
    assert got == pytest.approx(np.linalg.norm(g), rel=1e-6)


# ------------------------------------------------------------------------------- units
@pytest.mark.parametrize("name", [n for n in NAMES if n.endswith("-user")])
def test_user_units_fit_the_user_view_and_score_by_user(name, data):
    # unit="user" is the same fit as unit="group" on the user view (as_units), to the bit, and
    # comparisons are scored by their user's row (the user view scored by group gives the same)
    est = ESTIMATORS[name][0]().fit(data)
    view = data.as_units("user")
    ref = clone(est).set_params(unit="group").fit(view)
    assert est.theta_.shape == (data.n_users, data.d)
    np.testing.assert_array_equal(est.theta_, ref.theta_)
    assert est.log_likelihood(data) == ref.log_likelihood(view)
    np.testing.assert_array_equal(est.predict_proba(data), ref.predict_proba(view))


def test_unknown_unit_names_the_parameter(data):
    for est in (SeparateMLE(unit="users"), SharedRep(2, unit="users"), OracleB(POP.B, unit=1),
                SharedLoRA(2, unit="person")):
        with pytest.raises(ValueError, match="unit must be one of"):
            est.fit(data)


def test_user_units_recover_users_that_differ_within_a_group():
    # 40 users, 4 per group, each user with its own planted theta (Dirichlet weights on shared
    # traits, 150 comparisons each): per-user units recover each user; per-group units can only
    # fit the group's mean, whose error is the within-group spread. Measured mean squared errors
    # (user units vs group units): SharedRep 0.050 vs 0.50, SeparateMLE(lam=1) 0.35 vs 0.54 (d = 8
    # parameters from 150 comparisons each), OracleB 0.12 vs 0.49; the margin asserted is 1.4x,
    # below the smallest observed ratio (1.56).
    pop = Population.dirichlet(8, 2, n_groups=40, users_per_group=1, seed=3, signal=2.0)
    d0 = pop.sample(40 * 150, seed=4, group_sampling="fixed")
    data = PreferenceData(X=d0.X, y=d0.y, group=d0.group // 4, user=d0.group, n_groups=10,
                          n_users=40)
    group_of_user = np.arange(40) // 4
    for make in (lambda u: SharedRep(2, unit=u), lambda u: SeparateMLE(lam=1.0, unit=u),
                 lambda u: OracleB(pop.B, unit=u)):
        per_user = make("user").fit(data)
        per_group = make("group").fit(data)
        err_user = np.mean(np.sum((per_user.theta_ - pop.theta) ** 2, axis=1))
        err_group = np.mean(np.sum((per_group.theta_[group_of_user] - pop.theta) ** 2, axis=1))
        assert 1.4 * err_user < err_group, (type(per_user).__name__, err_user, err_group)
