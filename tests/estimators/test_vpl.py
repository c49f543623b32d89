"""VPL (simulator/estimators/vpl.py): the ELBO's gradient, recovery on a planted population,
the few-shot path, active query selection, the estimator contract, bad input and determinism."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from simulator import Population, PreferenceData
from simulator.estimators import VPL, NewUsersFit, OracleB
from simulator.estimators.vpl import label_information, negative_elbo

D, K = 6, 2


def _acc(theta, data):
    z = np.einsum("ij,ij->i", data.X, theta[data.group])
    return float(np.mean((z > 0) == (data.y == 1)))


@pytest.fixture(scope="module")
def planted():
    """120 users x 30 comparisons, Dirichlet(1) weights on k = 2 traits, d = 6; one VPL fit."""
    pop = Population.dirichlet(D, K, n_groups=120, users_per_group=1, seed=0, signal=2.0)
    train = pop.sample(120 * 30, seed=10, group_sampling="fixed")
    test = pop.sample(120 * 200, seed=20, group_sampling="fixed")
    vpl = VPL(latent_dim=K, hidden=16, seed=0).fit(train)
    return pop, train, test, vpl


@pytest.fixture(scope="module")
def small():
    """The contract test's problem: 3 groups x 4 users, d = 6."""
    pop = Population.shared(D, K, [0.3, 0.3, 0.4], seed=0, users_per_group=4)
    data = pop.sample(1800, seed=1, group_sampling="fixed")
    return pop, data, VPL(latent_dim=2, hidden=8, seed=1).fit(data)


# ------------------------------------------------------------------------- the ELBO
@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_elbo_gradient_matches_finite_differences(decoder):
    # float64, fixed draws and contexts: the Monte-Carlo estimate is a smooth deterministic
    # function of the parameters, so autograd must match central differences to O(h^2)
    g = torch.Generator().manual_seed(0)
    N, m, d, L, H = 3, 4, 3, 2, 4
    S = torch.randn(N, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.float64)
    ctx = torch.tensor([[1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.float64)
    eps = torch.randn(2, N, L, generator=g, dtype=torch.float64)
    shapes = {"W1": (H, d), "b1": (H,), "Wm": (L, 2 * H + 1), "bm": (L,),
              "Wv": (L, 2 * H + 1), "bv": (L,), "theta0": (d,)}
    shapes.update({"A": (d, L)} if decoder == "linear" else
                  {"A1": (H, L), "c1": (H,), "A": (d, H)})
    params = {k: 0.5 * torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_(True)
              for k, s in shapes.items()}

    def f():
        return negative_elbo(torch, params, S, mask, ctx, eps, 0.7, decoder, lam=0.1)

    grads = torch.autograd.grad(f(), list(params.values()))
    h = 1e-6
    with torch.no_grad():
        for (name, p), gr in zip(params.items(), grads):
            flat, gflat = p.view(-1), gr.reshape(-1)
            for j in range(flat.numel()):
                old = float(flat[j])
                flat[j] = old + h
                fp = float(f())
                flat[j] = old - h
                fm = float(f())
                flat[j] = old
                assert float(gflat[j]) == pytest.approx((fp - fm) / (2 * h), rel=1e-5,
                                                        abs=1e-8), (name, j)


def test_elbo_known_value_at_the_prior():
    # encoder output mu = 0, logvar = 0 (zero heads), theta(z) = 0: KL = 0 and every pair's
    # log-likelihood is log 1/2, so the objective is exactly log 2
    N, m, d, L, H = 2, 3, 2, 2, 3
    z = {"W1": torch.ones(H, d), "b1": torch.zeros(H), "Wm": torch.zeros(L, 2 * H + 1),
         "bm": torch.zeros(L), "Wv": torch.zeros(L, 2 * H + 1), "bv": torch.zeros(L),
         "theta0": torch.zeros(d), "A": torch.zeros(d, L)}
    p = {k: v.double() for k, v in z.items()}
    S = torch.randn(N, m, d, dtype=torch.float64)
    mask = torch.ones(N, m, dtype=torch.float64)
    eps = torch.randn(5, N, L, dtype=torch.float64)
    assert float(negative_elbo(torch, p, S, mask, mask, eps, 1.0)) == pytest.approx(np.log(2))


def test_label_information_known_answers():
    # no disagreement between draws: no information; draws split between certain 0 and 1:
    # log 2 (the label would reveal which); always in [0, log 2]
    assert label_information(np.full((10, 3), 0.3)) == pytest.approx(np.zeros(3), abs=1e-12)
    half = np.r_[np.zeros(5), np.ones(5)][:, None]
    assert label_information(half)[0] == pytest.approx(np.log(2))
    r = label_information(np.random.default_rng(0).uniform(size=(50, 20)))
    assert np.all((r >= 0) & (r <= np.log(2)))


def test_information_gain_matches_quadrature(small):
    # linear decoder: the logit <x, theta(z)> is N(m, v) under q, so I(y; z) is a 1-D integral;
    # Gauss-Hermite with 80 nodes is exact to ~1e-12 here, the 20,000-draw estimate has a
    # standard error ~ 1e-3 (measured spread 4e-4): 5e-3 is > 3 standard errors
    pop, data, vpl = small
    ctx = data.subset(data.user == 0)
    Xc = np.random.default_rng(2).normal(size=(5, D))
    got = vpl.information_gain(Xc, ctx, n_mc=20_000, seed=3)
    mu, logvar = vpl._context_posterior(ctx)
    A, t0 = vpl.params_["A"], vpl.params_["theta0"]
    nodes, wts = np.polynomial.hermite_e.hermegauss(80)
    wts = wts / wts.sum()

    def H(p):
        p = np.clip(p, 1e-300, 1 - 1e-16)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))

    for j, x in enumerate(Xc):
        m = x @ t0 + (A.T @ x) @ mu
        s = np.sqrt(np.sum((A.T @ x) ** 2 * np.exp(logvar)))
        p = 1 / (1 + np.exp(-(m + s * nodes)))
        ref = H(wts @ p) - wts @ H(p)
        assert got[j] == pytest.approx(ref, abs=5e-3)


# ------------------------------------------------------------------------- recovery
@pytest.mark.slow
def test_recovers_a_planted_population_as_well_as_the_oracle(planted):
    # held-out accuracy on fresh pairs of the seen users, against OracleB with the TRUE B
    # (per-user free weights, lam = 1 as fig7's per-user fits) and the planted truth (ceiling).
    # Measured (seeds 0 and 1): VPL 0.737 / 0.734, OracleB 0.734 / 0.735, truth 0.746 / 0.744;
    # the margin asserted, one point below the oracle, is 3x the largest gap seen
    pop, train, test, vpl = planted
    orc = OracleB(pop.B, lam=1.0, unit="user").fit(train)
    acc_v, acc_o = _acc(vpl.theta_, test), _acc(orc.theta_, test)
    assert acc_v >= acc_o - 0.01, (acc_v, acc_o)
    assert acc_v <= _acc(pop.theta, test) + 0.005  # nothing beats the truth beyond noise
    assert vpl.converged_ and np.isfinite(vpl.objective_)
    # the fitted rewards live in the planted trait span: measured 0.8 % of their energy outside
    # span(B) (5 % asserted). (span(A) itself need not be span(B): Dirichlet weights of k = 2
    # traits lie on a segment, theta_0 takes its midpoint and one latent direction suffices; the
    # other collapses to the prior, variance 0.99.) Measured per-user squared error 0.21 against
    # the planted |theta|^2 = 2.65 (OracleB 0.39); 0.25 |theta|^2 asserted
    P = np.eye(D) - pop.B @ pop.B.T
    assert np.sum((vpl.theta_ @ P) ** 2) < 0.05 * np.sum(vpl.theta_ ** 2)
    err = np.mean(np.sum((vpl.theta_ - pop.theta) ** 2, axis=1))
    assert err < 0.25 * np.mean(np.sum(pop.theta ** 2, axis=1))


def test_minibatch_objective_is_unbiased_for_the_full_one():
    # every b-subset of the N units equally likely: the mean over all subsets of the minibatch
    # objective (divisor n_total * b / N) is the full objective, draw for draw (each unit keeps
    # its own context and eps); a known answer up to rounding
    import itertools

    g = torch.Generator().manual_seed(3)
    N, m, d, L, H, b = 4, 3, 3, 2, 4, 2
    S = torch.randn(N, m, d, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.float64)
    ctx = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1]], dtype=torch.float64)
    eps = torch.randn(2, N, L, generator=g, dtype=torch.float64)
    params = VPL(latent_dim=L, hidden=H)._init_params(torch, d, g, torch.float64)
    full = float(negative_elbo(torch, params, S, mask, ctx, eps, 0.7))
    subsets = [list(c) for c in itertools.combinations(range(N), b)]
    norm = float(mask.sum()) * b / N
    mean = np.mean([float(negative_elbo(torch, params, S[i], mask[i], ctx[i], eps[:, i], 0.7,
                                        norm=norm)) for i in subsets])
    assert mean == pytest.approx(full, rel=1e-12)
    # and the divisor alone is what differs from the default per-comparison mean
    i = subsets[0]
    own = float(negative_elbo(torch, params, S[i], mask[i], ctx[i], eps[:, i], 0.7))
    scaled = float(negative_elbo(torch, params, S[i], mask[i], ctx[i], eps[:, i], 0.7,
                                 norm=float(mask[i].sum())))
    assert own == scaled


def test_minibatch_of_every_unit_is_the_full_batch(small):
    # batch_users >= N draws nothing: the same fit, bit for bit
    _, data, vpl = small
    for b in (data.n_users, 10 * data.n_users):
        again = clone(vpl).set_params(batch_users=b).fit(data)
        np.testing.assert_array_equal(again.theta_, vpl.theta_)
        np.testing.assert_array_equal(again.loss_history_, vpl.loss_history_)


@pytest.mark.slow
def test_minibatches_recover_the_planted_population_as_the_full_batch(planted):
    # a quarter of the users per step: measured (seeds 0 / 1) held-out accuracy 0.736 / 0.733
    # against the full batch's 0.737 / 0.735 and the oracle's 0.734 / 0.735, the certified
    # objective 0.2 % / 0.7 % above the full batch's, in a third to a half of the time; asserted:
    # the full batch's recovery margin against the oracle, and 2 % on the objective (3x)
    pop, train, test, vpl = planted
    mb = clone(vpl).set_params(batch_users=30).fit(train)
    orc = OracleB(pop.B, lam=1.0, unit="user").fit(train)
    assert _acc(mb.theta_, test) >= _acc(orc.theta_, test) - 0.01
    assert mb.converged_ and np.isfinite(mb.objective_)
    assert mb.objective_ <= 1.02 * vpl.objective_
    again = clone(mb).fit(train)  # the draws of the minibatches come from the seed
    np.testing.assert_array_equal(again.theta_, mb.theta_)
    other = clone(mb).set_params(max_iter=200, seed=5).fit(train)
    assert not np.array_equal(other.theta_, clone(mb).set_params(max_iter=200).fit(train).theta_)


@pytest.mark.slow
def test_few_shot_path_is_one_encoder_pass(planted):
    pop, train, _, vpl = planted
    # seen users through the few-shot path: the same encoder pass as fit's theta_, to the bit
    again = vpl.fit_new_users(train.as_units("user"))
    assert isinstance(again, NewUsersFit)
    np.testing.assert_allclose(again.theta, vpl.theta_, rtol=0, atol=1e-12)
    assert np.all(again.n_iter == 0) and again.converged
    # new users: more shots, better held-out accuracy (the posterior sharpens), and at every
    # size at least OracleB(true B, lam = 1) on the same shots less one point. Measured, 2 / 10 /
    # 30 shots: VPL 0.715 / 0.720 / 0.727, OracleB 0.635 / 0.696 / 0.724, truth 0.738
    new = pop.new_users(60, seed=30)
    test = new.sample(60 * 200, seed=31, group_sampling="fixed")
    accs = []
    for shots in (2, 10, 30):
        few = new.sample(60 * shots, seed=32 + shots, group_sampling="fixed")
        accs.append(_acc(vpl.fit_new_users(few).theta, test))
        orc = _acc(OracleB(pop.B, lam=1.0).fit_new_users(few).theta, test)
        assert accs[-1] >= orc - 0.01, (shots, accs[-1], orc)
    assert accs[0] < accs[1] < accs[2], accs


@pytest.mark.slow
def test_amortisation_gap_is_the_map_gradient(planted):
    # grad_norm = ||grad_z J(mu)||, J(z) = -sum log sigma(<s, theta0 + A z>) + beta/2 ||z||^2,
    # against the numpy formula A^T sum_i -s_i sigma(-<s_i, theta>) + beta z
    pop, _, _, vpl = planted
    few = pop.new_users(4, seed=50).sample(4 * 8, seed=51, group_sampling="fixed")
    res = vpl.fit_new_users(few)
    A, t0 = vpl.params_["A"], vpl.params_["theta0"]
    for j in range(4):
        s = few.signed()[few.group == j]
        mu = res.W[:, j]
        th = t0 + A @ mu
        g = A.T @ (-(s.T @ (1 / (1 + np.exp(s @ th))))) + vpl.beta_kl * mu
        assert res.grad_norm[j] == pytest.approx(np.linalg.norm(g), rel=1e-8)
        J = np.sum(np.logaddexp(0, -s @ th)) + 0.5 * vpl.beta_kl * mu @ mu
        assert res.objective[j] == pytest.approx(J, rel=1e-10)


@pytest.mark.slow
def test_active_selection_beats_random_selection(planted):
    # 30 new users, a pool of 60 labelled candidate pairs each, 2 random pairs to start, then 6
    # more chosen by information gain or at random (fixed seeds). Measured on this problem's
    # bigger twin (200 users, d = 8): squared error of theta(mu) 0.19 active vs 0.45 random,
    # held-out accuracy 0.737 vs 0.725. Asserted: active error < 0.8 x random's and accuracy
    # not lower, averaged over the users
    pop, _, _, vpl = planted
    new = pop.new_users(30, seed=60)
    pool = new.sample(30 * 60, seed=61, group_sampling="fixed")
    test = new.sample(30 * 200, seed=62, group_sampling="fixed")
    rows = pool.group_rows()
    rng = np.random.default_rng(0)
    err = {"active": [], "random": []}
    acc = {"active": [], "random": []}
    for j in range(30):
        r = rows[j]
        start = [int(i) for i in rng.choice(r.size, 2, replace=False)]
        for mode in ("active", "random"):
            chosen, pick = list(start), np.random.default_rng(100 + j)
            for t in range(6):
                ctx = PreferenceData(X=pool.X[r[chosen]], y=pool.y[r[chosen]])
                avail = np.setdiff1d(np.arange(r.size), chosen)
                if mode == "active":
                    i = avail[vpl.select_queries(pool.X[r[avail]], ctx, 1, seed=t)[0]]
                else:
                    i = pick.choice(avail)
                chosen.append(int(i))
            ctx = PreferenceData(X=pool.X[r[chosen]], y=pool.y[r[chosen]])
            th = vpl.theta_of(vpl._context_posterior(ctx)[0])
            err[mode].append(np.sum((th - new.theta[j]) ** 2))
            m = test.group == j
            acc[mode].append(np.mean(((test.X[m] @ th) > 0) == (test.y[m] == 1)))
    assert np.mean(err["active"]) < 0.8 * np.mean(err["random"]), err
    assert np.mean(acc["active"]) >= np.mean(acc["random"])


def test_select_queries_orders_by_information(small):
    _, data, vpl = small
    Xc = np.random.default_rng(5).normal(size=(40, D))
    ctx = data.subset(data.user == 1)
    score = vpl.information_gain(Xc, ctx, seed=0)
    idx = vpl.select_queries(Xc, ctx, 5, seed=0)
    assert idx.shape == (5,) and len(set(idx.tolist())) == 5
    assert np.all(np.diff(score[idx]) <= 0) and score[idx[-1]] >= np.delete(score, idx).max()
    # a pair of zero difference tells nothing: its score is 0
    assert vpl.information_gain(np.zeros((1, D)), ctx)[0] == pytest.approx(0.0, abs=1e-12)
    # the empty context (no pairs yet) is allowed
    assert vpl.select_queries(Xc, None, 3).shape == (3,)


# ------------------------------------------------------------------------- contract
def test_contract_basics(small):
    pop, data, vpl = small
    params = vpl.get_params()
    assert list(params) == ["latent_dim", "hidden", "decoder", "beta_kl", "context", "n_mc",
                            "lr", "max_iter", "tol", "lam", "dtype", "seed", "unit",
                            "batch_users"]
    c = clone(vpl)
    assert not hasattr(c, "theta_") and c.get_params() == params
    assert vpl.theta_.shape == (data.n_users, D)  # unit="user" by default
    for attr in ("objective_", "kkt_residual_", "n_iter_", "converged_"):
        assert np.all(np.isfinite(getattr(vpl, attr)))
    assert vpl.kkt_residual_ == vpl.grad_norm_
    p = vpl.predict_proba(data)
    assert p.shape == (data.n,) and np.all((p > 0) & (p < 1))
    assert vpl.log_likelihood(data) < 0
    with pytest.raises(TypeError, match=r"'bogus'; accepted: none"):
        VPL().fit(data, bogus=1)
    with pytest.raises(TypeError, match="data must be a PreferenceData"):
        VPL().fit(data.X)


def test_user_units_are_the_group_fit_of_the_user_view(small):
    # 150 steps suffice for a bit-for-bit comparison (convergence is not what is checked)
    _, data, vpl = small
    short = clone(vpl).set_params(max_iter=150)
    user = clone(short).fit(data)
    ref = clone(short).set_params(unit="group").fit(data.as_units("user"))
    np.testing.assert_array_equal(user.theta_, ref.theta_)
    grp = clone(short).set_params(unit="group").fit(data)
    assert grp.theta_.shape == (data.n_groups, D)


def test_encoder_is_permutation_invariant(small):
    _, data, vpl = small
    one = data.subset(data.user == 2)
    perm = one.subset(np.random.default_rng(0).permutation(one.n))
    a, b = vpl.posterior(PreferenceData(X=one.X, y=one.y)), \
        vpl.posterior(PreferenceData(X=perm.X, y=perm.y))
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-12)
    # swapping the two arms of every pair (X -> -X, y -> 1 - y) is the same context
    c = vpl.posterior(PreferenceData(X=-one.X, y=1 - one.y))
    np.testing.assert_allclose(a[0], c[0], rtol=0, atol=1e-12)


def test_deterministic(small):
    _, data, vpl = small
    again = clone(vpl).fit(data)  # the full fit once, against the fixture's
    np.testing.assert_array_equal(again.theta_, vpl.theta_)
    np.testing.assert_array_equal(again.loss_history_, vpl.loss_history_)
    short = clone(vpl).set_params(max_iter=150)
    other = clone(short).set_params(seed=2).fit(data)
    assert not np.array_equal(other.theta_, clone(short).fit(data).theta_)
    ss = np.random.SeedSequence(7)  # a SeedSequence passed twice gives the same fit
    a = clone(short).set_params(seed=ss).fit(data)
    b = clone(short).set_params(seed=ss).fit(data)
    np.testing.assert_array_equal(a.theta_, b.theta_)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"latent_dim": 0}, "latent_dim must be"),
    ({"hidden": 1.5}, "hidden must be"),
    ({"decoder": "cnn"}, "decoder must be one of"),
    ({"beta_kl": -1.0}, "beta_kl must be"),
    ({"context": "some"}, "context must be one of"),
    ({"n_mc": 0}, "n_mc must be"),
    ({"lr": 0.0}, "lr must be"),
    ({"unit": "person"}, "unit must be one of"),
    ({"seed": None}, "seed must be"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"batch_users": 0}, "batch_users must be"),
    ({"batch_users": 2.5}, "batch_users must be"),
])
def test_bad_hyperparameters_name_themselves(kwargs, match, small):
    _, data, _ = small
    with pytest.raises(ValueError, match=match):
        VPL(**kwargs).fit(data)


def test_bad_input_to_the_fitted_estimator(small):
    _, data, vpl = small
    with pytest.raises(RuntimeError, match="not fitted"):
        VPL().fit_new_users(data)
    wide = PreferenceData(X=np.ones((3, D + 1)), y=[1, 0, 1])
    with pytest.raises(ValueError, match=f"d = {D} features"):
        vpl.fit_new_users(wide)
    with pytest.raises(ValueError, match="weights must be None or 'free'"):
        vpl.fit_new_users(data, weights="simplex")
    sparse = PreferenceData(X=data.X[:5], y=data.y[:5], group=np.zeros(5, int), n_groups=2)
    with pytest.raises(ValueError, match=r"needs data for every new user"):
        vpl.fit_new_users(sparse)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 4\]"):
        vpl.select_queries(np.ones((4, D)), None, 5)
    with pytest.raises(ValueError, match="X_candidates must be finite"):
        vpl.select_queries(np.full((4, D), np.nan), None, 1)
    with pytest.raises(ValueError, match="z must have latent_dim"):
        vpl.theta_of(np.zeros(3))
    empty_user = PreferenceData(X=data.X, y=data.y, user=data.user, n_users=data.n_users + 1)
    with pytest.raises(ValueError, match=r"needs data for every user"):
        VPL(max_iter=1).fit(empty_user)
