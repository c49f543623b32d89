"""The fuzz in the suite (issue 16 item 5).

(a) ``test_random_valid_configurations_fit_and_certify`` (and its large ``slow`` variant): a
    hypothesis search over random valid configurations: every ``Population`` regime, every
    estimator, ordinary and harsh settings (from 5 comparisons, ``lam`` from 1e-8 to 10, feature
    scale up to 100, temperature down to 0.05). Each fit must not crash, give a finite
    ``theta_``, carry its certificate (``converged_``, a finite ``kkt_residual_``) and meet it
    wherever it says it converged; a refit (of a clone and of the same object) gives the same
    bits, and a row permutation leaves the convex fits (PooledMLE, SeparateMLE, OracleB)
    unchanged to within what their certificates allow.
(b) ``test_bad_input_is_a_named_error``: a table of bad inputs through the API (population,
    data, arms, estimators, metrics), each of which must raise a ``ValueError`` or
    ``TypeError`` whose message names the parameter. (The policy functions and the CLI are
    covered by their own tests.)

Sizes (measured 2026-12-02 on the shared 2-core machine): the default variant runs
``DEFAULT_EXAMPLES`` = 300 configurations in about 6 s, the ``slow`` one ``SLOW_EXAMPLES`` =
1,600 (n up to 2,000, d up to 16) in about 30 to 45 s; the bad-input table (230 cases) in
about 2 s.
"""

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from simulator import Population, PreferenceData
from simulator import metrics as M
from simulator.arms import FiniteArmEnv
from simulator.estimators import (
    EMMixture,
    OracleB,
    PooledMLE,
    SeparateMLE,
    SharedLoRA,
    SharedRep,
    bt_objective,
    fit_bt,
)
from simulator.estimators.bt import CERTIFIED
from simulator.estimators.em import user_loglik_reference
from simulator.seeding import as_generator, as_seed_sequence

DEFAULT_EXAMPLES = 300
SLOW_EXAMPLES = 1600


# =========================================================================== (a) random valid
@st.composite
def configurations(draw, harsh_share=0.5, n_max=300, d_max=6):
    """A population, a sample drawn from it and an estimator, all valid: ordinary (unit
    features and temperature, n up to ``n_max``) or, with probability ``harsh_share``, harsh
    (n from 5 to 40, d up to ``d_max + 4``, lam from 1e-8 to 10, feature scale 0.1 to 100,
    temperature 0.05 to 5)."""
    harsh = draw(st.floats(0, 1)) < harsh_share
    regime = draw(st.sampled_from(["shared-simplex", "shared-gaussian", "minority_trait",
                                   "diverse", "dirichlet"]))
    d = draw(st.integers(2, d_max + 4 if harsh else d_max))
    common = dict(
        feature_scale=(10.0 ** draw(st.floats(-1, 2))) if harsh else 1.0,
        temperature=(10.0 ** draw(st.floats(math.log10(0.05), 0.7))) if harsh else 1.0,
        label_model=draw(st.sampled_from(["bt", "bt", "deterministic"])),
    )
    seed = draw(st.integers(0, 2**31))
    if regime.startswith("shared") or regime == "dirichlet":
        k = draw(st.integers(1, min(d, 3)))
        U = draw(st.integers(1, 4))
        raw = np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=U, max_size=U)))
        base = draw(st.sampled_from([0.0, 0.5]))
        upg = draw(st.integers(1, 3))
        if regime == "dirichlet":
            pop = Population.dirichlet(d, k, U, seed=seed, base=base, users_per_group=upg,
                                       alpha=draw(st.floats(0.3, 3.0)), **common)
        else:
            pop = Population.shared(d, k, raw / raw.sum(), seed=seed,
                                    weights=regime.split("-")[1], base=base,
                                    users_per_group=upg, **common)
    elif regime == "minority_trait":
        pop = Population.minority_trait(d, draw(st.floats(0.2, 0.5)), seed=seed, **common)
    else:
        pop = Population.diverse(d, draw(st.floats(0.0, math.pi)), seed=seed, **common)
    U = pop.n_groups
    # fixed group sampling with at least 2 comparisons per group (every estimator here fits
    # per group and lam="cv" needs a group it can hold a comparison out of)
    n_min = max(5, int(math.ceil(2.0 / pop.proportions.min())) + U)
    n = max(n_min, draw(st.integers(5, 40 if harsh else n_max)))
    data = pop.sample(n, seed=seed + 1, group_sampling="fixed")
    if harsh:
        lam = draw(st.one_of(st.floats(-8, 1).map(lambda e: 10.0 ** e),
                             st.sampled_from(["auto", "cv"])))
    else:
        lam = draw(st.sampled_from([1e-4, 1e-2, 1.0, "auto", "cv"]))
    name = draw(st.sampled_from(["PooledMLE", "SeparateMLE", "OracleB", "SharedRep-free",
                                 "SharedRep-simplex", "SharedLoRA", "EM-soft", "EM-hard"]))
    est = _make(name, pop, lam, draw(st.integers(0, 2**31)), data)
    return pop, data, name, est


def _make(name, pop, lam, seed, data):
    num = lam if not isinstance(lam, str) else 1e-3
    if name == "PooledMLE":
        return PooledMLE(lam=lam, seed=seed, backend="numba" if seed % 2 else "numpy")
    if name == "SeparateMLE":
        return SeparateMLE(lam=lam, seed=seed)
    if name == "OracleB":
        return OracleB(pop.B, theta0=pop.theta0 if np.any(pop.theta0) else None, lam=lam,
                       seed=seed)
    if name.startswith("SharedRep"):
        k = min(pop.k, data.d)
        return SharedRep(k, weights=name.split("-")[1], lam=lam if lam != "cv" else "auto",
                         n_restarts=1, max_iter=30, seed=seed)
    if name == "SharedLoRA":  # rank <= min(d, number of units)
        return SharedLoRA(min(pop.k, data.d, data.n_groups), lam=lam, max_iter=100, seed=seed)
    users = int(np.count_nonzero(data.user_counts()))
    K = max(1, min(pop.n_groups, users))
    return EMMixture(K, variant=name.split("-")[1], lam=num, n_restarts=1, seed=seed)


def _bt_certified(X, y, lam, tol, kkt, n_rows):
    """A BT fit's claim to have converged holds: the gradient test, or (fits whose gradient
    round-off exceeds tol) fit_bt's own round-off certificate on the same problem."""
    if kkt <= tol * n_rows:
        return True
    return fit_bt(X, y, lam=lam, tol=tol).status in CERTIFIED


def _check_certificate(name, est, data):
    assert hasattr(est, "converged_") and isinstance(bool(est.converged_), bool)
    kkt = np.asarray(est.kkt_residual_, dtype=np.float64)
    assert np.all(np.isfinite(kkt)) and np.all(kkt >= 0), (name, kkt)
    assert np.all(np.isfinite(np.asarray(est.objective_, dtype=np.float64)))
    if name == "PooledMLE":
        if est.converged_:
            assert est.status_ in CERTIFIED
            assert est.status_ == "roundoff" or kkt <= est.tol * data.n
    elif name == "SeparateMLE":
        assert est.converged_ == bool(np.all(est.converged_groups_))
        for u, rows in enumerate(data.group_rows()):
            if est.converged_groups_[u]:
                assert est.status_[u] in CERTIFIED
                assert est.status_[u] == "roundoff" or kkt[u] <= est.tol * rows.size
    elif name == "OracleB":
        assert est.converged_ == bool(np.all(est.converged_groups_))
        Beff = est.coef_.shape[0]
        Z = data.X @ (est.B if Beff == est.B.shape[1] else np.hstack(
            [est.B, (est.theta0 / np.linalg.norm(est.theta0))[:, None]]))
        for u, rows in enumerate(data.group_rows()):
            if est.converged_groups_[u]:
                assert _bt_certified(Z[rows], data.y[rows], float(est.lam_[u]), est.tol,
                                     kkt[u], rows.size)
    elif name.startswith("SharedRep"):
        if est.converged_:  # the relative change of F over the last sweep was <= tol
            f = [h["objective"] for h in est.history_ if h["phase"] == est.history_[-1]["phase"]]
            assert len(f) >= 2
            assert abs(f[-2] - f[-1]) <= est.tol * max(1.0, abs(f[-1])) * (1 + 1e-12)
    elif name == "SharedLoRA":
        if est.converged_:  # L-BFGS-B's own tests: relative decrease (ftol) or projected gradient
            msg = est.solver_message_.upper()
            assert "CONVERGENCE" in msg
            if "REL_REDUCTION" in msg and len(est.history_) >= 2:
                a, b = est.history_[-2]["objective"], est.history_[-1]["objective"]
                assert (a - b) <= est.tol * max(abs(a), abs(b), 1.0) * (1 + 1e-9)
    elif name == "EM-soft":
        if est.converged_:
            f = [h["objective"] for h in est.history_]
            assert len(f) >= 2 and abs(f[-1] - f[-2]) <= est.tol * max(1.0, abs(f[-1]))
    elif name == "EM-hard":
        if est.converged_:  # a fixed point: theta_'s E-step gives the same assignments
            L = user_loglik_reference(data.X, data.y, data.user, est.theta_, data.n_users)
            active = data.user_counts() > 0
            best = L.max(axis=1, keepdims=True)
            # each user's cluster is (one of) its argmax(es) under theta_
            got = L[np.arange(data.n_users), est.assignments_]
            assert np.all(got[active] >= best[active, 0] - 1e-9 * np.abs(best[active, 0]) - 1e-12)


def _convex_close(name, a, b, data):
    """``a`` and ``b`` (fits of the same strictly convex problem on permuted rows) agree to what
    their certificates allow: ||theta_a - theta_b|| <= 2 (r_a + r_b) / mu, mu the curvature
    (the ridge, or half the Hessian's smallest eigenvalue at the solution when larger), plus
    float64 round-off of theta. Per group for the per-group fits."""
    if name == "PooledMLE":
        problems = [(data.X, data.y, a.lam_, a.coef_, b.coef_, a.kkt_residual_,
                     b.kkt_residual_)]
    elif name == "SeparateMLE":
        problems = [(data.X[r], data.y[r], a.lam_[u], a.theta_[u], b.theta_[u],
                     a.kkt_residual_[u], b.kkt_residual_[u])
                    for u, r in enumerate(data.group_rows())]
    else:  # OracleB, in its coefficients on B (and the base direction)
        Beff = data.X @ a.B if a.coef_.shape[0] == a.B.shape[1] else data.X @ np.hstack(
            [a.B, (a.theta0 / np.linalg.norm(a.theta0))[:, None]])
        problems = [(Beff[r], data.y[r], a.lam_[u], a.coef_[:, u], b.coef_[:, u],
                     a.kkt_residual_[u], b.kkt_residual_[u])
                    for u, r in enumerate(data.group_rows())]
    for X, y, lam, ta, tb, ra, rb in problems:
        H = bt_objective(ta, X, y, float(lam))[2]
        mu = max(float(lam), 0.5 * float(np.linalg.eigvalsh(H).min()))
        bound = 2.0 * (ra + rb) / mu + 1e-9 * (1.0 + np.linalg.norm(ta))
        assert np.linalg.norm(ta - tb) <= bound, (name, np.linalg.norm(ta - tb), bound)


def _run_configuration(pop, data, name, est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings are part of the certificate
        fitted = est.fit(data)
        assert fitted is est
        assert np.all(np.isfinite(est.theta_)), (name, est)
        _check_certificate(name, est, data)
        theta, obj = est.theta_.copy(), np.asarray(est.objective_, dtype=np.float64).copy()
        again = clone(est).fit(data)  # a clone refits to the same bits
        assert again.theta_.tobytes() == theta.tobytes(), name
        same = est.fit(data)  # and so does the same object, fitted a second time
        assert same.theta_.tobytes() == theta.tobytes(), name
        assert np.asarray(same.objective_, dtype=np.float64).tobytes() == obj.tobytes()
        if name in ("PooledMLE", "SeparateMLE", "OracleB"):
            perm = as_generator(7).permutation(data.n)
            permuted = clone(est).fit(data.subset(perm))
            _convex_close(name, est, permuted, data)


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cfg=configurations())
def test_random_valid_configurations_fit_and_certify(cfg):
    _run_configuration(*cfg)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cfg=configurations(harsh_share=0.6, n_max=2000, d_max=12))
def test_random_valid_configurations_fit_and_certify_large(cfg):
    _run_configuration(*cfg)


# =========================================================================== (b) bad inputs
POP = Population.shared(4, 2, [0.5, 0.5], seed=0, users_per_group=2)
DATA = POP.sample(120, seed=1, group_sampling="fixed")
ENV = POP.arm_env(3, 3, seed=2)
X2, Y2 = np.ones((2, 2)), np.array([0, 1])
NAN = float("nan")


def _fitted(make):
    cache = {}

    def get():
        if "est" not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache["est"] = make().fit(DATA)
        return cache["est"]

    return get


SR = _fitted(lambda: SharedRep(2, weights="free", n_restarts=1))
LORA = _fitted(lambda: SharedLoRA(2))
POOLED = _fitted(lambda: PooledMLE())


def _fit(make):
    return lambda: make().fit(DATA)


# (id, call, name the message must mention)
BAD = [
    # ----------------------------------------------------------------- Population constructors
    ("shared-d-float", lambda: Population.shared(4.0, 2, [1.0], seed=0), "d"),
    ("shared-d-bool", lambda: Population.shared(True, 1, [1.0], seed=0), "d"),
    ("shared-d-str", lambda: Population.shared("4", 2, [1.0], seed=0), "d"),
    ("shared-d-zero", lambda: Population.shared(0, 1, [1.0], seed=0), "d"),
    ("shared-k-float", lambda: Population.shared(4, 2.0, [1.0], seed=0), "k"),
    ("shared-k-big", lambda: Population.shared(4, 5, [1.0], seed=0), "k"),
    ("shared-k-bool", lambda: Population.shared(4, True, [1.0], seed=0), "k"),
    ("shared-prop-sum", lambda: Population.shared(4, 2, [0.5, 0.6], seed=0), "proportions"),
    ("shared-prop-neg", lambda: Population.shared(4, 2, [1.5, -0.5], seed=0), "proportions"),
    ("shared-prop-nan", lambda: Population.shared(4, 2, [NAN, 1.0], seed=0), "proportions"),
    ("shared-prop-str", lambda: Population.shared(4, 2, ["a", "b"], seed=0), "proportions"),
    ("shared-prop-empty", lambda: Population.shared(4, 2, [], seed=0), "proportions"),
    ("shared-prop-complex", lambda: Population.shared(4, 2, [0.5 + 0j, 0.5], seed=0),
     "proportions"),
    ("shared-weights", lambda: Population.shared(4, 2, [1.0], seed=0, weights="uniform"),
     "weights"),
    ("shared-alpha-zero", lambda: Population.shared(4, 2, [1.0], seed=0, alpha=0.0), "alpha"),
    ("shared-alpha-str", lambda: Population.shared(4, 2, [1.0], seed=0, alpha="1"), "alpha"),
    ("shared-signal-nan", lambda: Population.shared(4, 2, [1.0], seed=0, signal=NAN), "signal"),
    ("shared-signal-inf", lambda: Population.shared(4, 2, [1.0], seed=0, signal=np.inf),
     "signal"),
    ("shared-base-nan", lambda: Population.shared(4, 2, [1.0], seed=0, base=NAN), "base"),
    ("shared-base-neg", lambda: Population.shared(4, 2, [1.0], seed=0, base=-1.0), "base"),
    ("shared-seed-none", lambda: Population.shared(4, 2, [1.0], seed=None), "seed"),
    ("shared-seed-neg", lambda: Population.shared(4, 2, [1.0], seed=-3), "seed"),
    ("shared-seed-float", lambda: Population.shared(4, 2, [1.0], seed=1.5), "seed"),
    ("shared-upg-str", lambda: Population.shared(4, 2, [1.0], seed=0, users_per_group="3"),
     "users_per_group"),
    ("shared-upg-float", lambda: Population.shared(4, 2, [1.0], seed=0, users_per_group=2.5),
     "users_per_group"),
    ("shared-upg-zero", lambda: Population.shared(4, 2, [1.0], seed=0, users_per_group=0),
     "users_per_group"),
    ("shared-scale-zero", lambda: Population.shared(4, 2, [1.0], seed=0, feature_scale=0.0),
     "feature_scale"),
    ("shared-scale-str", lambda: Population.shared(4, 2, [1.0], seed=0, feature_scale="1"),
     "feature_scale"),
    ("shared-temp-str", lambda: Population.shared(4, 2, [1.0], seed=0, temperature="1"),
     "temperature"),
    ("shared-temp-neg", lambda: Population.shared(4, 2, [1.0], seed=0, temperature=-1.0),
     "temperature"),
    ("shared-temp-nan", lambda: Population.shared(4, 2, [1.0], seed=0, temperature=NAN),
     "temperature"),
    ("shared-label", lambda: Population.shared(4, 2, [1.0], seed=0, label_model="probit"),
     "label_model"),
    ("shared-cov-shape", lambda: Population.shared(4, 2, [1.0], seed=0, feature_cov=np.eye(3)),
     "feature_cov"),
    ("shared-cov-asym", lambda: Population.shared(4, 2, [1.0], seed=0,
                                                  feature_cov=np.triu(np.ones((4, 4)))),
     "feature_cov"),
    ("shared-cov-indef", lambda: Population.shared(4, 2, [1.0], seed=0,
                                                   feature_cov=-np.eye(4)), "feature_cov"),
    ("minority-d-float", lambda: Population.minority_trait(4.5, seed=0), "d"),
    ("minority-frac", lambda: Population.minority_trait(4, 1.5, seed=0), "minority"),
    ("minority-frac-str", lambda: Population.minority_trait(4, "0.1", seed=0), "minority"),
    ("minority-mix-short", lambda: Population.minority_trait(4, 0.1, seed=0, mix=(0.3,)),
     "mix"),
    ("minority-mix-nan", lambda: Population.minority_trait(4, 0.1, seed=0, mix=(NAN, 0.7)),
     "mix"),
    ("minority-signal-nan", lambda: Population.minority_trait(4, 0.1, seed=0, signal=NAN),
     "signal"),
    ("diverse-angle", lambda: Population.diverse(4, angle=4.0, seed=0), "angle"),
    ("diverse-angle-nan", lambda: Population.diverse(4, angle=NAN, seed=0), "angle"),
    ("diverse-prop", lambda: Population.diverse(4, proportions=(1.0,), seed=0), "proportions"),
    ("dirichlet-groups-float", lambda: Population.dirichlet(4, 2, 2.5, seed=0), "n_groups"),
    ("dirichlet-groups-zero", lambda: Population.dirichlet(4, 2, 0, seed=0), "n_groups"),
    ("dirichlet-prop-len", lambda: Population.dirichlet(4, 2, 3, seed=0, proportions=[0.5, 0.5]),
     "proportions"),
    ("regime", lambda: Population.from_regime("mixed", d=4), "regime"),
    ("regime-list", lambda: Population.from_regime(["shared"], d=4), "regime"),
    ("init-B-nan", lambda: Population(np.full((3, 1), NAN), np.ones((1, 1)), [1.0]), "B"),
    ("init-B-complex", lambda: Population(np.eye(3)[:, :1] + 0j, np.ones((1, 1)), [1.0]), "B"),
    ("init-B-1d", lambda: Population(np.ones(3), np.ones((1, 1)), [1.0]), "B"),
    ("init-B-notorth", lambda: Population(np.ones((3, 1)), np.ones((1, 1)), [1.0]), "B"),
    ("init-W-shape", lambda: Population(np.eye(3)[:, :1], np.ones((2, 1)), [1.0]), "W"),
    ("init-W-nan", lambda: Population(np.eye(3)[:, :1], np.full((1, 1), NAN), [1.0]), "W"),
    ("init-theta0", lambda: Population(np.eye(3)[:, :1], np.ones((1, 1)), [1.0],
                                       theta0=np.full(3, NAN)), "theta0"),
    ("init-prop-count", lambda: Population(np.eye(3)[:, :1], np.ones((1, 2)), [1.0]),
     "proportions"),
    ("init-name", lambda: Population(np.eye(3)[:, :1], np.ones((1, 1)), [1.0], name=3), "name"),
    # ----------------------------------------------------------------- Population methods
    ("sample-n-zero", lambda: POP.sample(0, seed=0), "n"),
    ("sample-n-float", lambda: POP.sample(10.0, seed=0), "n"),
    ("sample-n-str", lambda: POP.sample("10", seed=0), "n"),
    ("sample-seed", lambda: POP.sample(10, seed="0"), "seed"),
    ("sample-gs", lambda: POP.sample(10, seed=0, group_sampling="even"), "group_sampling"),
    ("sample-env", lambda: POP.sample(10, seed=0, env="env"), "env"),
    ("sample-env-d", lambda: POP.sample(10, seed=0, env=FiniteArmEnv(np.zeros((2, 2, 3)))),
     "env"),
    ("new-users-n", lambda: POP.new_users(2.5, seed=0), "n_users"),
    ("new-users-signal", lambda: POP.new_users(2, seed=0, signal=NAN), "signal"),
    ("new-users-alpha", lambda: POP.new_users(2, seed=0, alpha="1"), "alpha"),
    ("new-users-weights", lambda: POP.new_users(2, seed=0, weights=1), "weights"),
    ("new-users-W", lambda: POP.new_users(2, seed=0, W=np.ones((3, 2))), "W"),
    ("new-users-W-nan", lambda: POP.new_users(2, seed=0, W=np.full((2, 2), NAN)), "W"),
    ("arm-env-contexts", lambda: POP.arm_env(0, 3, seed=0), "n_contexts"),
    ("arm-env-contexts-float", lambda: POP.arm_env(2.0, 3, seed=0), "n_contexts"),
    ("arm-env-actions", lambda: POP.arm_env(2, 1, seed=0), "n_actions"),
    ("arm-env-actions-bool", lambda: POP.arm_env(2, True, seed=0), "n_actions"),
    ("curvature-nmc", lambda: POP.curvature(n_mc=0), "n_mc"),
    ("diversity-nmc", lambda: POP.diversity(n_mc=1.5), "n_mc"),
    ("spanned-u", lambda: POP.traits_spanned_by_others(5), "u"),
    ("pop-reward-group", lambda: POP.reward(np.ones((1, 4)), [7]), "group"),
    ("pop-reward-X", lambda: POP.reward(np.ones((1, 3)), [0]), "X"),
    # ----------------------------------------------------------------- PreferenceData
    ("data-X-nan", lambda: PreferenceData(np.array([[NAN, 1.0]]), [1]), "X"),
    ("data-X-complex", lambda: PreferenceData(X2 + 1j, Y2), "X"),
    ("data-X-str", lambda: PreferenceData(np.array([["a", "b"]]), [1]), "X"),
    ("data-X-1d", lambda: PreferenceData(np.ones(3), [0, 1, 1]), "X"),
    ("data-X-ragged", lambda: PreferenceData([[1.0, 2.0], [1.0]], Y2), "X"),
    ("data-X-empty", lambda: PreferenceData(np.ones((0, 2)), []), "X"),
    ("data-y-label", lambda: PreferenceData(X2, [0, 2]), "y"),
    ("data-y-str", lambda: PreferenceData(X2, ["0", "1"]), "y"),
    ("data-y-shape", lambda: PreferenceData(X2, [0, 1, 1]), "y"),
    ("data-y-half", lambda: PreferenceData(X2, [0, 0.5]), "y"),
    ("data-group-str", lambda: PreferenceData(X2, Y2, group=["a", "b"]), "group"),
    ("data-group-neg", lambda: PreferenceData(X2, Y2, group=[0, -1]), "group"),
    ("data-group-frac", lambda: PreferenceData(X2, Y2, group=[0, 0.5]), "group"),
    ("data-group-huge", lambda: PreferenceData(X2, Y2, group=[0, 1e20]), "group"),
    ("data-group-range", lambda: PreferenceData(X2, Y2, group=[0, 3], n_groups=2), "group"),
    ("data-group-bool", lambda: PreferenceData(X2, Y2, group=[True, False]), "group"),
    ("data-group-shape", lambda: PreferenceData(X2, Y2, group=[0]), "group"),
    ("data-user-range", lambda: PreferenceData(X2, Y2, user=[0, 5], n_users=2), "user"),
    ("data-n-groups-float", lambda: PreferenceData(X2, Y2, n_groups=2.5), "n_groups"),
    ("data-n-groups-zero", lambda: PreferenceData(X2, Y2, n_groups=0), "n_groups"),
    ("data-n-users-str", lambda: PreferenceData(X2, Y2, n_users="2"), "n_users"),
    ("data-context", lambda: PreferenceData(X2, Y2, context=[0.5, 1]), "context"),
    ("data-actions", lambda: PreferenceData(X2, Y2, actions=np.ones((2, 3), int)), "actions"),
    ("data-user-group", lambda: PreferenceData(X2, Y2, user_group=[0, 0, 0]), "user_group"),
    ("data-meta", lambda: PreferenceData(X2, Y2, meta=[1]), "meta"),
    ("data-subset-empty", lambda: DATA.subset([]), "subset"),
    ("data-subset-float", lambda: DATA.subset([0.5, 1.5]), "index"),
    ("data-subset-range", lambda: DATA.subset([0, 10_000]), "index"),
    ("data-subset-mask", lambda: DATA.subset(np.ones(3, bool)), "index"),
    ("data-by-group", lambda: DATA.by_group(9), "group"),
    ("data-by-group-float", lambda: DATA.by_group(0.5), "group"),
    ("data-split-size", lambda: DATA.train_test_split(1.5, seed=0), "test_size"),
    ("data-split-str", lambda: DATA.train_test_split("0.2", seed=0), "test_size"),
    ("data-split-strat", lambda: DATA.train_test_split(0.2, seed=0, stratify_group="yes"),
     "stratify_group"),
    ("data-group-rows", lambda: DATA.group_rows("cluster"), "by"),
    ("data-as-units", lambda: DATA.as_units("person"), "unit"),
    # ----------------------------------------------------------------- FiniteArmEnv
    ("env-features-2d", lambda: FiniteArmEnv(np.zeros((3, 2))), "features"),
    ("env-features-nan", lambda: FiniteArmEnv(np.full((2, 3, 1), NAN)), "features"),
    ("env-features-complex", lambda: FiniteArmEnv(np.zeros((2, 3, 1)) + 1j), "features"),
    ("env-features-str", lambda: FiniteArmEnv(np.full((2, 3, 1), "a")), "features"),
    ("env-rho-sum", lambda: FiniteArmEnv(np.zeros((2, 3, 1)), rho=[0.5, 0.6]), "rho"),
    ("env-rho-str", lambda: FiniteArmEnv(np.zeros((2, 3, 1)), rho=["a", "b"]), "rho"),
    ("env-rho-shape", lambda: FiniteArmEnv(np.zeros((2, 3, 1)), rho=[1.0]), "rho"),
    ("env-piref-shape", lambda: FiniteArmEnv(np.zeros((2, 3, 1)), pi_ref=np.full((2, 2), 0.5)),
     "pi_ref"),
    ("env-piref-neg", lambda: FiniteArmEnv(np.zeros((2, 3, 1)),
                                           pi_ref=[[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]),
     "pi_ref"),
    ("env-rewards-shape", lambda: ENV.rewards(np.ones(3)), "thetas"),
    ("env-rewards-nan", lambda: ENV.rewards(np.full(4, NAN)), "thetas"),
    ("env-rewards-complex", lambda: ENV.rewards(np.ones(4) + 1j), "thetas"),
    ("env-policy", lambda: ENV.check_policy(np.ones((3, 3)), "pi"), "pi"),
    ("env-sample-n", lambda: ENV.sample_comparisons(-1, 0), "n"),
    ("env-sample-n-float", lambda: ENV.sample_comparisons(2.5, 0), "n"),
    ("env-sample-seed", lambda: ENV.sample_comparisons(5, None), "seed"),
    ("env-sample-policy", lambda: ENV.sample_comparisons(5, 0, policy=np.ones((3, 3))),
     "policy"),
    ("env-pairs-policy", lambda: ENV.pair_probabilities(np.full((3, 3), NAN)), "policy"),
    # ----------------------------------------------------------------- estimators
    ("pooled-lam-str", _fit(lambda: PooledMLE(lam="big")), "lam"),
    ("pooled-lam-neg", _fit(lambda: PooledMLE(lam=-1.0)), "lam"),
    ("pooled-lam-nan", _fit(lambda: PooledMLE(lam=NAN)), "lam"),
    ("pooled-lam-complex", _fit(lambda: PooledMLE(lam=1j)), "lam"),
    ("pooled-tol-zero", _fit(lambda: PooledMLE(tol=0.0)), "tol"),
    ("pooled-tol-str", _fit(lambda: PooledMLE(tol="1e-9")), "tol"),
    ("pooled-max-iter-float", _fit(lambda: PooledMLE(max_iter=2.7)), "max_iter"),
    ("pooled-max-iter-zero", _fit(lambda: PooledMLE(max_iter=0)), "max_iter"),
    ("pooled-norm-bound", _fit(lambda: PooledMLE(norm_bound=-1.0)), "norm_bound"),
    ("pooled-backend", _fit(lambda: PooledMLE(backend="gpu")), "backend"),
    ("pooled-device", _fit(lambda: PooledMLE(device="cuda")), "device"),
    ("pooled-device-type", _fit(lambda: PooledMLE(device=0)), "device"),
    ("pooled-seed", _fit(lambda: PooledMLE(lam="cv", seed=-1)), "seed"),
    ("pooled-n-folds", _fit(lambda: PooledMLE(lam="cv", n_folds=2.5)), "n_folds"),
    ("pooled-sample-weight", lambda: PooledMLE().fit(DATA, sample_weight=-np.ones(DATA.n)),
     "sample_weight"),
    ("pooled-sample-weight-shape", lambda: PooledMLE().fit(DATA, sample_weight=np.ones(3)),
     "sample_weight"),
    ("pooled-sample-weight-str", lambda: PooledMLE().fit(DATA, sample_weight=["a"] * DATA.n),
     "sample_weight"),
    ("pooled-fit-param", lambda: PooledMLE().fit(DATA, weights=1), "weights"),
    ("pooled-data", lambda: PooledMLE().fit(DATA.X), "data"),
    ("pooled-reward-group", lambda: POOLED().reward(DATA.X[:2], [0, 5]), "group"),
    ("pooled-reward-group-str", lambda: POOLED().reward(DATA.X[:2], ["a", "b"]), "group"),
    ("pooled-reward-X", lambda: POOLED().reward(np.ones((2, 3)), [0, 0]), "X"),
    ("separate-unit", _fit(lambda: SeparateMLE(unit="users")), "unit"),
    ("separate-lam-bool", _fit(lambda: SeparateMLE(lam=True)), "lam"),
    ("oracle-B-shape", _fit(lambda: OracleB(np.eye(3))), "B"),
    ("oracle-B-nan", _fit(lambda: OracleB(np.full((4, 2), NAN))), "B"),
    ("oracle-B-complex", _fit(lambda: OracleB(POP.B + 0j)), "B"),
    ("oracle-theta0-nan", _fit(lambda: OracleB(POP.B, theta0=np.full(4, NAN))), "theta0"),
    ("oracle-theta0-shape", _fit(lambda: OracleB(POP.B, theta0=np.ones(3))), "theta0"),
    ("oracle-tol", _fit(lambda: OracleB(POP.B, tol=-1.0)), "tol"),
    ("oracle-weights", lambda: OracleB(POP.B).fit_new_users(DATA, weights="positive"),
     "weights"),
    ("sharedrep-k-float", _fit(lambda: SharedRep(2.0)), "k"),
    ("sharedrep-k-big", _fit(lambda: SharedRep(9)), "k"),
    ("sharedrep-weights", _fit(lambda: SharedRep(2, weights="dirichlet")), "weights"),
    ("sharedrep-solver", _fit(lambda: SharedRep(2, solver="sgd")), "solver"),
    ("sharedrep-lam", _fit(lambda: SharedRep(2, lam="bic")), "lam"),
    ("sharedrep-lam-list", _fit(lambda: SharedRep(2, lam=[1.0])), "lam"),
    ("sharedrep-max-iter", _fit(lambda: SharedRep(2, max_iter=2.7)), "max_iter"),
    ("sharedrep-restarts", _fit(lambda: SharedRep(2, n_restarts=0)), "n_restarts"),
    ("sharedrep-tol", _fit(lambda: SharedRep(2, tol=NAN)), "tol"),
    ("sharedrep-vertex-lam", _fit(lambda: SharedRep(2, vertex_lam=-1.0)), "vertex_lam"),
    ("sharedrep-accelerate", _fit(lambda: SharedRep(2, accelerate="yes")), "accelerate"),
    ("sharedrep-use-tanh", _fit(lambda: SharedRep(2, use_tanh=1)), "use_tanh"),
    ("sharedrep-lr", _fit(lambda: SharedRep(2, solver="joint", lr=0.0)), "lr"),
    ("sharedrep-batch", _fit(lambda: SharedRep(2, solver="joint", batch_size=0.5)),
     "batch_size"),
    ("sharedrep-seed", _fit(lambda: SharedRep(2, seed="0")), "seed"),
    ("sharedrep-init", lambda: SharedRep(2).fit(DATA, init=(np.ones((4, 2)), np.ones((2, 9)))),
     "init"),
    ("sharedrep-init-complex", lambda: SharedRep(2).fit(
        DATA, init=(np.ones((4, 2)) + 1j, np.full((2, 2), 0.5))), "init"),
    ("sharedrep-fewshot-weights", lambda: SR().fit_new_users(DATA, weights="dirichlet"),
     "weights"),
    ("sharedrep-fewshot-d", lambda: SR().fit_new_users(Population.shared(5, 2, [1.0], seed=0)
                                                       .sample(20, seed=0)), "d"),
    ("sharedrep-arrays-group", lambda: SharedRep(2).fit_arrays(DATA.X, DATA.y,
                                                               DATA.group + 0.5, 2), "group"),
    ("sharedrep-arrays-n-groups", lambda: SharedRep(2).fit_arrays(DATA.X, DATA.y, DATA.group,
                                                                  2.5), "n_groups"),
    ("lora-k-float", _fit(lambda: SharedLoRA(2.5)), "k"),
    ("lora-rank-alias-float", _fit(lambda: SharedLoRA(rank=2.5)), "rank"),
    ("lora-k-big", _fit(lambda: SharedLoRA(9)), "k"),
    ("lora-lam-zero", _fit(lambda: SharedLoRA(2, lam=0)), "lam"),
    ("lora-lam0", _fit(lambda: SharedLoRA(2, lam0=NAN)), "lam0"),
    ("lora-fit-base", _fit(lambda: SharedLoRA(2, fit_base="no")), "fit_base"),
    ("lora-norm-bound", _fit(lambda: SharedLoRA(2, norm_bound=1.0)), "norm_bound"),
    ("lora-max-iter", _fit(lambda: SharedLoRA(2, max_iter=1.5)), "max_iter"),
    ("lora-solver", _fit(lambda: SharedLoRA(2, solver="admm")), "solver"),
    ("lora-k-units", _fit(lambda: SharedLoRA(3)), "k"),  # 2 groups
    ("lora-fewshot-weights", lambda: LORA().fit_new_users(DATA, weights="simplex"), "weights"),
    ("em-clusters-float", _fit(lambda: EMMixture(2.0)), "n_clusters"),
    ("em-clusters-zero", _fit(lambda: EMMixture(0)), "n_clusters"),
    ("em-groups-alias-zero", _fit(lambda: EMMixture(n_groups=0)), "n_groups"),
    ("em-clusters-many", _fit(lambda: EMMixture(50)), "n_clusters"),
    ("em-variant", _fit(lambda: EMMixture(2, variant="stochastic")), "variant"),
    ("em-init", _fit(lambda: EMMixture(2, init="kmeans")), "init"),
    ("em-max-iter", _fit(lambda: EMMixture(2, max_iter=2.5)), "max_iter"),
    ("em-lam", _fit(lambda: EMMixture(2, lam="auto")), "lam"),
    ("em-m-step", _fit(lambda: EMMixture(2, m_step="lowrank")), "m_step"),
    ("em-k-missing", _fit(lambda: EMMixture(2, m_step="sharedrep")), "k"),
    ("em-k-big", _fit(lambda: EMMixture(2, m_step="sharedrep", k=9)), "k"),
    ("em-restarts", _fit(lambda: EMMixture(2, n_restarts=1.5)), "n_restarts"),
    ("em-true-groups", lambda: EMMixture(2).fit(DATA, true_groups=np.zeros(3)),
     "true_groups"),
    # ----------------------------------------------------------------- metrics
    ("param-error-shape", lambda: M.param_error(np.ones((2, 3)), np.ones((2, 4))), "theta"),
    ("param-error-nan", lambda: M.param_error(np.full((2, 3), NAN), np.ones((2, 3))),
     "theta_hat"),
    ("param-error-str", lambda: M.param_error("abc", np.ones(3)), "theta_hat"),
    ("param-error-complex", lambda: M.param_error(np.ones(3) + 1j, np.ones(3)), "theta_hat"),
    ("param-error-3d", lambda: M.param_error(np.ones((1, 2, 3)), np.ones((1, 2, 3))),
     "theta_hat"),
    ("sigma-norm-lam", lambda: M.sigma_norm_error(np.ones(3), np.zeros(3), np.eye(3), lam=-1),
     "lam"),
    ("sigma-norm-lam-str", lambda: M.sigma_norm_error(np.ones(3), np.zeros(3), np.eye(3),
                                                      lam="0"), "lam"),
    ("sigma-norm-Sigma", lambda: M.sigma_norm_error(np.ones(3), np.zeros(3), np.eye(2)),
     "Sigma"),
    ("sigma-norm-Sigma-nan", lambda: M.sigma_norm_error(np.ones(3), np.zeros(3),
                                                        np.full((3, 3), NAN)), "Sigma"),
    ("empirical-sigma-group", lambda: M.empirical_sigma(DATA, group=7), "group"),
    ("empirical-sigma-data", lambda: M.empirical_sigma(DATA.X), "data"),
    ("angles-rows", lambda: M.principal_angles(np.ones((3, 1)), np.ones((4, 1))), "B"),
    ("angles-nan", lambda: M.principal_angles(np.full((3, 1), NAN), np.ones((3, 1))), "B_hat"),
    ("sin-theta-str", lambda: M.sin_theta("B", np.ones((3, 1))), "B_hat"),
    ("span-B-rows", lambda: M.span_decomposition(np.ones(3), np.zeros(3), np.ones((4, 1))),
     "B"),
    ("heldout-d", lambda: M.heldout_metrics(np.ones((2, 3)), DATA), "theta_hat"),
    ("heldout-rows", lambda: M.heldout_metrics(np.ones((1, 4)), DATA), "theta_hat"),
    ("heldout-data", lambda: M.heldout_metrics(np.ones((2, 4)), DATA.X), "data"),
    ("ari-length", lambda: M.adjusted_rand_index([0, 1], [0]), "pred"),
    ("ari-empty", lambda: M.adjusted_rand_index([], []), "pred"),
    ("purity-complex", lambda: M.purity([1j, 2j], [0, 1]), "pred"),
    ("contingency-nan", lambda: M.contingency_table([0, 1], [0.0, NAN]), "true"),
    ("contingency-2d", lambda: M.contingency_table(np.zeros((2, 2)), np.zeros((2, 2))),
     "pred"),
    # ----------------------------------------------------------------- seeding
    ("seed-none", lambda: as_seed_sequence(None), "seed"),
    ("seed-str", lambda: as_generator("1"), "seed"),
]


def test_the_bad_input_table_is_large_and_unique():
    ids = [case[0] for case in BAD]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, name", [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_a_named_error(call, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError)) as info:
            call()
    message = str(info.value)
    # the parameter's own name, as a word (so "n" is not found inside "n_groups")
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message), (
        f"{type(info.value).__name__}: {message!r} does not name {name!r}")
