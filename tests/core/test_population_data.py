"""Populations and PreferenceData: invariants, determinism, I/O and bad input."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import Population, PreferenceData


@st.composite
def populations(draw):
    d = draw(st.integers(1, 12))
    k = draw(st.integers(1, d))
    U = draw(st.integers(1, 6))
    raw = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=U, max_size=U)))
    weights = draw(st.sampled_from(["simplex", "gaussian"]))
    pop = Population.shared(d, k, raw / raw.sum(), seed=draw(st.integers(0, 2**31)),
                            weights=weights, users_per_group=draw(st.integers(1, 4)),
                            label_model=draw(st.sampled_from(["bt", "deterministic"])))
    return pop


@given(pop=populations(), n=st.integers(1, 400), seed=st.integers(0, 2**31),
       gs=st.sampled_from(["random", "fixed"]))
def test_sample_invariants(pop, n, seed, gs):
    data = pop.sample(n, seed=seed, group_sampling=gs)
    assert data.X.shape == (n, pop.d) and np.all(np.isfinite(data.X))
    assert set(np.unique(data.y)) <= {0, 1}
    assert data.group.min() >= 0 and data.group.max() < pop.n_groups
    # every user belongs to the group it labels for
    np.testing.assert_array_equal(pop.user_group[data.user], data.group)
    assert pop.theta.shape == (pop.n_groups, pop.d)
    np.testing.assert_allclose(pop.B.T @ pop.B, np.eye(pop.k), atol=1e-10)
    if gs == "fixed":
        assert np.all(np.abs(data.group_counts() - pop.proportions * n) < 1)


def test_same_seed_same_bits_and_different_seed_differs():
    pop = Population.shared(8, 2, [0.3, 0.7], seed=1)
    a, b, c = pop.sample(500, seed=3), pop.sample(500, seed=3), pop.sample(500, seed=4)
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    assert not np.array_equal(a.X, c.X)
    again = Population.shared(8, 2, [0.3, 0.7], seed=1)
    assert again.theta.tobytes() == pop.theta.tobytes()


def test_same_seed_same_bits_across_processes():
    code = ("from simulator import Population; import hashlib;"
            "d=Population.shared(6,2,[0.5,0.5],seed=11).sample(300,seed=5);"
            "print(hashlib.sha256(d.X.tobytes()+d.y.tobytes()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(outs) == 1


def test_label_model_changes_only_labels():
    kw = dict(seed=0)
    a = Population.shared(5, 2, [0.5, 0.5], **kw).sample(300, seed=1)
    b = Population.shared(5, 2, [0.5, 0.5], label_model="deterministic", **kw).sample(300, seed=1)
    np.testing.assert_array_equal(a.X, b.X)


def test_bt_labels_follow_the_model():
    pop = Population.shared(4, 2, [1.0], seed=2, signal=1.0)
    data = pop.sample(40000, seed=0)
    p = 1 / (1 + np.exp(-data.X @ pop.theta[0]))
    # mean of y - p has sd <= 0.5 / sqrt(n) = 0.0025; 5 sd
    assert abs(np.mean(data.y - p)) < 0.0125


def test_deterministic_labels_tie_goes_to_y0():
    pop = Population.minority_trait(4, 0.2, seed=0, label_model="deterministic")
    data = pop.sample(200, seed=1)
    margin = np.einsum("ij,ij->i", data.X, pop.theta[data.group])
    np.testing.assert_array_equal(data.y, (margin > 0).astype(np.int8))


def test_regimes_state_whether_minority_traits_are_spanned():
    assert not Population.minority_trait(16, 0.05, seed=0).traits_spanned_by_others()
    assert Population.shared(16, 2, [0.02, 0.245, 0.245, 0.245, 0.245],
                             seed=0).traits_spanned_by_others()
    # U <= k: the others cannot span a generic minority weight
    assert not Population.shared(16, 3, [0.1, 0.45, 0.45], seed=0).traits_spanned_by_others()
    mt = Population.minority_trait(10, 0.1, seed=3)
    np.testing.assert_allclose(mt.W[:, 1], [2.0, 0.0])
    np.testing.assert_allclose(mt.W[:, 0], [0.6, 1.4])
    assert mt.minority == 0


def test_diverse_angle_controls_diversity():
    eps = [Population.diverse(6, a, seed=0).diversity(seed=0, n_mc=20000)[0, 1]
           for a in (0.0, 0.5, 1.5, 3.0)]
    assert eps[0] == 0.0 and np.all(np.diff(eps) > 0)


def test_curvature_reports_gamma():
    pop = Population.shared(8, 2, [0.5, 0.5], seed=0)
    c = pop.curvature()
    z = c.feature_bound * c.norm_bound
    assert c.gamma == pytest.approx(1 / (2 + np.exp(z) + np.exp(-z)))
    assert 0 < c.gamma < c.gamma_mean <= 0.25


def test_preference_data_subset_split_and_parquet_roundtrip(tmp_path):
    pop = Population.shared(5, 2, [0.2, 0.8], seed=0, users_per_group=3)
    data = pop.sample(1000, seed=1)
    g0 = data.by_group(0)
    assert np.all(g0.group == 0) and g0.n == data.group_counts()[0]
    tr, te = data.train_test_split(0.25, seed=2)
    assert tr.n + te.n == data.n and abs(te.n - 250) <= 2
    assert np.all(te.group_counts() > 0)
    path = data.to_parquet(tmp_path / "d.parquet")
    back = PreferenceData.read_parquet(path)
    np.testing.assert_array_equal(back.X, data.X)
    np.testing.assert_array_equal(back.y, data.y)
    np.testing.assert_array_equal(back.group, data.group)
    np.testing.assert_array_equal(back.user, data.user)
    assert (back.n_groups, back.n_users) == (data.n_groups, data.n_users)
    df = data.to_frame()
    assert list(df.columns[:5]) == ["x0", "x1", "x2", "x3", "x4"]


@pytest.mark.parametrize("call,match", [
    (lambda: Population.shared(5, 2, [0.5, 0.6], seed=0), "sum to 1"),
    (lambda: Population.shared(5, 2, [1.2, -0.2], seed=0), "positive"),
    (lambda: Population.shared(5, 6, [1.0], seed=0), "k must"),
    (lambda: Population.shared(5, 0, [1.0], seed=0), "k must"),
    (lambda: Population.shared(5, 2, [1.0], seed=0).sample(0, seed=0), "n must"),
    (lambda: Population.from_regime("nope", d=3), "regime"),
    (lambda: Population.shared(5, 2, [1.0], seed=0, label_model="x"), "label_model"),
    (lambda: Population.diverse(5, angle=4.0, seed=0), "angle"),
    (lambda: Population.minority_trait(5, 1.5, seed=0), "minority"),
    (lambda: PreferenceData(np.array([[np.nan, 1.0]]), [1]), "NaN"),
    (lambda: PreferenceData(np.ones((2, 2)), [0, 2]), "labels 0 and 1"),
    (lambda: PreferenceData(np.ones((2, 2)), [0, 1], group=[0, 3], n_groups=2), "group ids"),
    (lambda: PreferenceData(np.ones((2, 2)), [0, 1], group=[0, -1]), "group ids"),
    (lambda: PreferenceData(np.ones((2, 2)), [0, 1, 1]), "y must have shape"),
])
def test_bad_input_raises_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_seed_none_is_refused_everywhere():
    from simulator.seeding import as_generator, as_seed_sequence

    for fn in (as_generator, as_seed_sequence):
        with pytest.raises(ValueError, match="None is not allowed"):
            fn(None)
    with pytest.raises(ValueError, match="seed"):
        Population.shared(4, 2, [1.0], seed=None)


# ------------------------------------------------------------------ the figures' planted regimes
def _explicit(d, W, proportions, seed):
    """The planted population written out by hand (the figures' code before the registry)."""
    from simulator.population import random_orthonormal

    B = random_orthonormal(d, W.shape[0], np.random.default_rng(seed))
    return Population(B, W, proportions)


def _same_bits(a, b):
    for attr in ("B", "W", "proportions", "theta0", "theta"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr


def test_minority_proportions_known_answer():
    from simulator.population import minority_proportions

    p = minority_proportions(0.1, 5)
    # exactly the entries, not renormalised: [0.1, 0.9 / 4 x 4]
    assert p.tolist() == [0.1] + [(1.0 - 0.1) / 4] * 4
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="minority"):
        minority_proportions(1.0, 3)
    with pytest.raises(ValueError, match="n_groups"):
        minority_proportions(0.2, 1)


@pytest.mark.parametrize("seed", [0, 7, np.random.SeedSequence(3)])
def test_planted_is_B_times_the_given_weights(seed):
    W = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, 0.5]])
    pop = Population.planted(6, W, [0.2, 0.3, 0.5], seed=seed)
    _same_bits(pop, _explicit(6, W, [0.2, 0.3, 0.5], seed))
    np.testing.assert_allclose(pop.theta, (pop.B @ W).T, atol=1e-15)
    np.testing.assert_allclose(pop.B.T @ pop.B, np.eye(2), atol=1e-12)
    assert pop.name == "planted"
    with pytest.raises(ValueError, match="k must"):
        Population.planted(1, W, [0.2, 0.3, 0.5], seed=0)  # k = 2 > d = 1
    with pytest.raises(ValueError, match="W"):
        Population.planted(4, np.ones(3), [1.0], seed=0)


def test_spanned_regime_known_weights_and_bits():
    pop = Population.spanned(8, 0.1, seed=np.random.SeedSequence(5), signal=2.0)
    W = 2.0 * np.array([[0.3, 1.0, 0.0], [0.7, 0.0, 1.0]])
    _same_bits(pop, _explicit(8, W, [0.1, 0.45, 0.45], np.random.SeedSequence(5)))
    assert (pop.n_groups, pop.k, pop.name) == (3, 2, "spanned")
    assert pop.traits_spanned_by_others(0) and pop.minority == 0


def test_u_eq_k_regime_is_shared_with_as_many_groups_as_traits():
    pop = Population.u_eq_k(8, 0.1, seed=4, signal=2.0)
    ref = Population.shared(8, 3, [0.1, 0.45, 0.45], seed=4, weights="simplex", signal=2.0)
    _same_bits(pop, ref)
    assert pop.n_groups == pop.k == 3 and pop.name == "u_eq_k"
    np.testing.assert_allclose(pop.W.sum(axis=0), 2.0, rtol=1e-12)  # signal x simplex
    assert not pop.traits_spanned_by_others(0)  # U = k: generic weights are not spanned


@pytest.mark.parametrize("regime,rows", [("binding", "BINDING_W"),
                                         ("nonbinding", "NONBINDING_W")])
def test_maxmin_planted_regimes_bits_and_binding(regime, rows):
    """The minority's dual weight at the exact max-min optimum of the true rewards: > 0 in
    ``binding``, 0 in ``nonbinding`` (on the arm environments fig 3 uses, three seeds)."""
    import simulator.population as P
    from simulator.policy import maxmin_policy

    W = 2.0 * np.array(getattr(P, rows), dtype=float).T
    for s in range(3):
        seed = np.random.SeedSequence(s)
        pop = Population.from_regime(regime, d=8, minority=0.02, seed=seed, signal=2.0)
        _same_bits(pop, _explicit(8, W, [0.02] + [0.98 / 4] * 4, seed))
        assert pop.name == regime and pop.traits_spanned_by_others(0)
        env = pop.arm_env(10, 4, s)
        q0 = maxmin_policy(env, pop.theta, 0.5, "exact", warn=False).weights[0]
        assert bool(q0 > 1e-6) is (regime == "binding"), q0


def test_new_regimes_are_registered():
    from simulator.population import REGIMES

    assert {"planted", "spanned", "u_eq_k", "binding", "nonbinding"} <= set(REGIMES)
    a = Population.from_regime("spanned", d=5, minority=0.2, seed=1)
    _same_bits(a, Population.spanned(5, 0.2, seed=1))
    with pytest.raises(ValueError, match="minority"):
        Population.binding(4, 0.0, seed=0)


# ------------------------------------------------------------------ Population.new_users
@given(pop=populations(), n_new=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_new_users_share_B_and_feature_law(pop, n_new, seed):
    new = pop.new_users(n_new, seed=seed)
    # the traits, base and feature/label law are the parent's, bit for bit
    np.testing.assert_array_equal(new.B, pop.B)
    np.testing.assert_array_equal(new.theta0, pop.theta0)
    assert (new.feature_scale, new.label_model, new.temperature) == (
        pop.feature_scale, pop.label_model, pop.temperature)
    assert new.n_groups == new.n_users == n_new and new.users_per_group == 1
    np.testing.assert_allclose(new.proportions, np.full(n_new, 1.0 / n_new))
    assert new.info["weights"] == pop.info["weights"]
    assert new.info["parent"]["n_groups"] == pop.n_groups
    if pop.info["weights"] == "simplex":
        # columns on the simplex scaled by signal: non-negative, summing to signal
        assert np.all(new.W >= 0)
        np.testing.assert_allclose(new.W.sum(axis=0), pop.info["signal"], rtol=1e-12)
    # the same B and theta0: the new users' parameters lie in theta0 + span(B)
    resid = (new.theta - new.theta0) - (new.theta - new.theta0) @ pop.B @ pop.B.T
    np.testing.assert_allclose(resid, 0.0, atol=1e-10)


def test_new_users_copy_feature_cov_and_are_deterministic():
    cov = np.diag([1.0, 2.0, 0.5, 1.5])
    pop = Population.dirichlet(4, 2, 5, seed=3, alpha=0.3, feature_cov=cov, feature_scale=2.0,
                               base=1.0)
    a, b = pop.new_users(7, seed=11), pop.new_users(7, seed=11)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, pop.new_users(7, seed=12).W)
    np.testing.assert_array_equal(a.feature_cov, cov)
    assert a.name == "dirichlet" and a.info["alpha"] == 0.3
    # the sampled features follow the parent's law: same seed, same X
    np.testing.assert_array_equal(a.sample(50, seed=5).X, pop.sample(50, seed=5).X)


def test_new_users_dirichlet_moments():
    # Dirichlet(alpha 1_k) has mean 1/k and variance (k-1)/(k^2 (k alpha + 1)) per coordinate;
    # with 20,000 draws the standard error of the mean is < 0.002, so 0.01 is a 5-sigma band.
    k, alpha, signal = 3, 0.5, 4.0
    pop = Population.shared(6, k, [0.5, 0.5], seed=0, alpha=1.0, signal=2.0)
    new = pop.new_users(20_000, seed=1, alpha=alpha, signal=signal)
    w = new.W / signal
    np.testing.assert_allclose(w.mean(axis=1), 1.0 / k, atol=0.01)
    var = (k - 1) / (k**2 * (k * alpha + 1))
    np.testing.assert_allclose(w.var(axis=1), var, rtol=0.05)
    np.testing.assert_allclose(new.W.sum(axis=0), signal, rtol=1e-12)


def test_new_users_gaussian_moments():
    # w = signal N(0, I/k): coordinate variance signal^2 / k (5% relative at 20,000 draws)
    pop = Population.shared(5, 2, [1.0], seed=0, weights="gaussian", signal=3.0)
    new = pop.new_users(20_000, seed=2)
    np.testing.assert_allclose(new.W.var(axis=1), 9.0 / 2, rtol=0.05)
    assert np.all(np.abs(new.W.mean(axis=1)) < 0.1)


def test_new_users_of_fixed_weight_regimes_need_a_law_or_W():
    pop = Population.minority_trait(4, 0.1, seed=0)
    with pytest.raises(ValueError, match="W=.*weights='simplex'"):
        pop.new_users(3, seed=0)
    W = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    new = pop.new_users(3, seed=0, W=W)
    np.testing.assert_array_equal(new.W, W)
    np.testing.assert_array_equal(new.B, pop.B)
    # a law given by keyword; minority_trait records its signal, so only weights is needed
    drawn = pop.new_users(3, seed=0, weights="simplex")
    np.testing.assert_allclose(drawn.W.sum(axis=0), pop.info["signal"])
    custom = Population(pop.B, pop.W, pop.proportions)
    with pytest.raises(ValueError, match="signal="):
        custom.new_users(2, seed=0, weights="gaussian")


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_users=0), "n_users"),
    (dict(n_users=2.5), "n_users"),
    (dict(n_users=2, proportions=[0.5, 0.25, 0.25]), "proportions"),
    (dict(n_users=2, proportions=[1.2, -0.2]), "proportions"),
    (dict(n_users=2, alpha=0.0), "alpha"),
    (dict(n_users=2, signal=-1.0), "signal"),
    (dict(n_users=2, weights="uniform"), "weights"),
    (dict(n_users=2, W=np.ones((3, 2))), r"W must have shape \(k, n_users\) = \(2, 2\)"),
    (dict(n_users=2, W=np.ones((2, 2)), alpha=1.0), "either W or a weight law"),
])
def test_new_users_bad_input(kwargs, match):
    pop = Population.shared(4, 2, [0.5, 0.5], seed=0)
    with pytest.raises(ValueError, match=match):
        pop.new_users(seed=0, **kwargs)


def test_new_users_refuses_seed_none():
    with pytest.raises(ValueError, match="seed"):
        Population.shared(4, 2, [1.0], seed=0).new_users(2, seed=None)


# ------------------------------------------------------------------ PreferenceData.group_rows
@given(ids=st.lists(st.integers(0, 6), min_size=1, max_size=60), extra=st.integers(0, 3),
       by=st.sampled_from(["group", "user"]))
def test_group_rows_partition_the_rows(ids, extra, by):
    ids = np.array(ids)
    n, count = ids.size, int(ids.max()) + 1 + extra   # extra ids with no comparisons
    kw = {"n_groups": count} if by == "group" else {"n_users": count}
    data = PreferenceData(X=np.zeros((n, 1)), y=np.zeros(n, int), **{by: ids}, **kw)
    rows = data.group_rows(by)
    assert len(rows) == count
    np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(n))
    for u, r in enumerate(rows):
        assert np.all(ids[r] == u) and np.all(np.diff(r) > 0)   # own rows, in data order
    np.testing.assert_array_equal([r.size for r in rows],
                                  np.bincount(ids, minlength=count))


def test_group_rows_are_cached_read_only_and_follow_reassignment():
    data = PreferenceData(X=np.zeros((5, 1)), y=np.zeros(5, int), group=[1, 0, 1, 0, 0])
    first = data.group_rows()
    assert all(a is b for a, b in zip(first, data.group_rows()))   # computed once
    with pytest.raises(ValueError, match="read-only"):
        first[0][0] = 3
    data.group = np.array([0, 0, 0, 1, 1])                         # a new id array: recomputed
    np.testing.assert_array_equal(data.group_rows()[1], [3, 4])
    with pytest.raises(ValueError, match="by must be 'group' or 'user'"):
        data.group_rows("cluster")


def test_split_users_gives_equal_users_in_data_order():
    """split_users against an independent computation: user = (group's users before) + rank of
    the comparison within its group // m."""
    from simulator.population import split_users

    pop = Population.diverse(4, 1.0, proportions=(0.25, 0.75), seed=3)
    raw = pop.sample(20 * 7, seed=4, group_sampling="fixed")
    data = split_users(raw, 7)
    assert data.n_users == 20 and (data.user_counts() == 7).all()
    expect = np.empty(raw.n, np.int64)
    seen = {0: 0, 1: 0}
    for i, g in enumerate(raw.group):
        expect[i] = (0 if g == 0 else 5) + seen[int(g)] // 7
        seen[int(g)] += 1
    np.testing.assert_array_equal(data.user, expect)
    np.testing.assert_array_equal(data.user_group, [0] * 5 + [1] * 15)
    assert (data.user_group[data.user] == data.group).all()
    np.testing.assert_array_equal(data.X, raw.X)
    np.testing.assert_array_equal(data.y, raw.y)
    with pytest.raises(ValueError, match="comparisons_per_user"):
        split_users(raw, 6)
    with pytest.raises(ValueError, match="comparisons_per_user"):
        split_users(raw, 0)


def test_task_diversity_known_answers():
    """Orthogonal weights of equal norm are isotropic (kappa_bar = 1, nu = their squared norm /
    U); stretching one trait by 2 gives nu = 1/U and kappa_bar = (1 + 4) / 2."""
    from simulator.population import random_orthonormal

    B = random_orthonormal(5, 2, np.random.default_rng(0))
    iso = Population(B, np.array([[1.0, 0.0], [0.0, 1.0]]), [0.5, 0.5])
    np.testing.assert_allclose(iso.task_diversity(), (0.5, 1.0), rtol=1e-12)
    skew = Population(B, np.array([[2.0, 0.0], [0.0, 1.0]]), [0.5, 0.5])
    np.testing.assert_allclose(skew.task_diversity(), (0.5, 2.5), rtol=1e-12)


def test_fixed_user_sampling_shares_a_groups_pairs_evenly():
    from simulator import Population

    pop = Population.shared(4, 2, [0.02, 0.98], seed=0, users_per_group=7)
    rnd = pop.sample(3000, seed=1)
    fix = pop.sample(3000, seed=1, user_sampling="fixed")
    # the same groups, features and labels: only the user ids move, within their group
    np.testing.assert_array_equal(fix.group, rnd.group)
    np.testing.assert_array_equal(fix.X, rnd.X)
    np.testing.assert_array_equal(fix.y, rnd.y)
    np.testing.assert_array_equal(fix.user // 7, fix.group)
    for g in range(2):
        counts = np.bincount(fix.user[fix.group == g] - 7 * g, minlength=7)
        assert counts.max() - counts.min() <= 1 and counts.min() >= 1
    # the default is unchanged by the option's existence (same stream, same draw)
    np.testing.assert_array_equal(pop.sample(3000, seed=1, user_sampling="random").user, rnd.user)
    with pytest.raises(ValueError, match="user_sampling"):
        pop.sample(10, seed=1, user_sampling="even")
