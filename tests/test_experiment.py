"""The pipeline (simulator.experiment): known answers with the true parameters as the estimate,
agreement with the stages run by hand, invariances, the sweep's task, and bad input."""

import numpy as np
import pandas as pd
import pytest

from simulator import FiniteArmEnv, FixedDesign, Population
from simulator.estimators import EMMixture, PooledMLE, SeparateMLE
from simulator.estimators.base import PreferenceEstimator
from simulator.experiment import (
    Experiment,
    build_env,
    draw_data,
    estimator_from_table,
    group_estimate,
    named_child,
)
from simulator.fairness import alignment_gaps, win_rate
from simulator.policy import group_utilities, maxmin_policy, pessimistic_mle_policy
from simulator.validation import InvalidParameterError


class Truth(PreferenceEstimator):
    """An 'estimator' that returns the parameters it is given: the pipeline's known answer."""

    def __init__(self, theta=None):
        self.theta = theta

    def fit(self, data, **fit_params):
        self._set_fitted(theta_=np.asarray(self.theta, dtype=float), converged_=True)
        return self


POP = Population.minority_trait(6, minority=0.2, seed=3)
POLICIES = ["exact", "pointwise", "algorithm1", "gibbs", "utilitarian"]


def _run(estimators, seed=5, **kw):
    args = dict(n=800, estimators=estimators, policies=POLICIES, env=(6, 4), beta=0.5, n_test=300)
    args.update(kw)
    return Experiment(POP, **args).run(seed)


def test_true_parameters_give_the_gold_policies():
    """With the truth as the estimate, each rule's policy IS its gold: win rate exactly 1/2 per
    group, the exact rule's suboptimality 0 to the solver's tolerance, and zero reward error."""
    res = _run({"truth": Truth(POP.theta)})
    t = res.table
    assert set(t["policy"]) == set(POLICIES) and len(t) == len(POLICIES) * POP.n_groups
    np.testing.assert_allclose(t["win_rate"], 0.5, atol=1e-12)
    assert np.all(t["err_l2"] == 0.0)
    assert abs(t.loc[t.policy == "exact", "subopt"]).max() < 1e-7  # maxmin tol 1e-8 + round-off
    # every other rule is judged against V* too and cannot beat it
    assert t["subopt"].min() > -1e-7


def test_rows_equal_the_stages_run_by_hand():
    """The table's numbers are those of the library functions called directly with the same
    streams (named children of the seed)."""
    seed = np.random.SeedSequence(11)
    res = _run({"sep": SeparateMLE(lam=1.0)}, seed=seed)
    env = POP.arm_env(6, 4, named_child(seed, "env"))
    data = POP.sample(800, seed=named_child(seed, "data"), env=env)
    fit = SeparateMLE(lam=1.0).fit(data)
    pi = maxmin_policy(env, fit.theta_, 0.5, "exact", warn=False).pi
    gold = maxmin_policy(env, POP.theta, 0.5, "exact", warn=False)
    row = res.table[res.table.policy == "exact"].sort_values("group")
    np.testing.assert_array_equal(row["err_l2"], np.linalg.norm(fit.theta_ - POP.theta, axis=1))
    np.testing.assert_array_equal(row["utility"], group_utilities(env, pi, POP.theta, 0.5))
    np.testing.assert_array_equal(row["gap"], alignment_gaps(env, pi, POP.theta, 0.5))
    np.testing.assert_array_equal(row["win_rate"],
                                  win_rate(env, pi, gold.pi, thetas=POP.theta))
    assert row["subopt"].iloc[0] == gold.value - group_utilities(env, pi, POP.theta, 0.5).min()
    np.testing.assert_array_equal(res.env.features, env.features)


def test_same_seed_same_table_and_gibbs_equals_utilitarian():
    ests = {"pooled": PooledMLE(lam=1.0), "sep": SeparateMLE(lam=1.0)}
    a, b = _run(ests).table, _run(ests).table
    pd.testing.assert_frame_equal(a.drop(columns="fit_seconds"), b.drop(columns="fit_seconds"))
    c = _run(ests, seed=6).table
    assert not np.array_equal(a["err_l2"], c["err_l2"])
    # for linear rewards the utilitarian optimum is the Gibbs policy of the weighted mean reward
    g = a[a.policy == "gibbs"].reset_index(drop=True)
    u = a[a.policy == "utilitarian"].reset_index(drop=True)
    np.testing.assert_allclose(g["utility"], u["utility"], rtol=1e-12, atol=1e-14)
    # the estimator instances given are templates: never fitted in place
    assert not hasattr(ests["sep"], "theta_")


def test_estimation_only_and_held_out_metrics():
    t = Experiment(POP, n=600, estimators={"sep": SeparateMLE(lam=1.0)}, n_test=400).run(1).table
    assert list(t["policy"].unique()) == ["none"] and len(t) == POP.n_groups
    assert t["test_accuracy"].between(0, 1).all() and (t["test_log_loss"] > 0).all()
    assert "utility" not in t


def test_fixed_design_with_pessimism_matches_the_direct_call():
    """A FixedDesign brings its env and its counts (as sample_weight); the pessimistic rule is
    Zhu, Jordan & Jiao's policy on the fitted theta with Sigma_D from the weighted data."""
    env = FiniteArmEnv(np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    design = FixedDesign(env, np.array([[0, 1, 0], [0, 2, 0]]), np.array([1.0, 0.5]),
                         counts=np.array([5000, 1]))
    pess = {"rule": "pessimistic", "reference": env.features[0, 0], "B": 2.0, "beta": 0.0}
    exp = Experiment(design, estimators={"mle": PooledMLE(lam=0, norm_bound=2, tol=1e-14)},
                     policies={"pess": pess, "greedy": "gibbs"}, beta=1e-3)
    res = exp.run(0)
    lab = design.sample(named_child(np.random.SeedSequence(0), "data"))
    fit = PooledMLE(lam=0, norm_bound=2, tol=1e-14).fit(lab.data, sample_weight=lab.sample_weight)
    direct = pessimistic_mle_policy(env, fit.coef_, lab.data, reference=env.features[0, 0], B=2,
                                    sample_weight=lab.sample_weight).pi
    np.testing.assert_array_equal(res.policies[("mle", "pess")], direct)
    assert res.env is env


def test_group_estimate_of_a_mixture_follows_the_users_clusters():
    # EM's rows are clusters in no particular order: each group's estimate is its users'
    # assigned cluster (row g for group g used to be taken, whichever cluster that was)
    pop = Population.diverse(8, angle=0.9 * np.pi, seed=0, users_per_group=15, signal=3.0)
    data = pop.sample(3000, seed=1)
    em = EMMixture(2, seed=1).fit(data)
    th = group_estimate(em, 2, data.user_group)
    assert np.max(np.linalg.norm(th - pop.theta, axis=1)) < 1.0  # the recovery test's bound
    em.theta_, em.assignments_ = em.theta_[::-1].copy(), 1 - em.assignments_
    np.testing.assert_array_equal(group_estimate(em, 2, data.user_group), th)


def test_group_estimate_averages_users():
    th = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(group_estimate(th, 2, np.array([0, 0, 1, 1])),
                                  [[1.5, 2.5, 3.5], [7.5, 8.5, 9.5]])
    np.testing.assert_array_equal(group_estimate(th[0], 2), [th[0], th[0]])
    with pytest.raises(InvalidParameterError, match="3 groups"):
        group_estimate(th, 3)


def test_table_estimators_get_their_seed_stream():
    est = estimator_from_table("sr", {"class": "SharedRep", "k": 2}, seed=4)
    ss = named_child(np.random.SeedSequence(4), "estimator", "sr")
    assert est.seed == int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert estimator_from_table("sr", {"class": "SharedRep", "k": 2, "seed": 9}, seed=4).seed == 9


def test_experiment_task_in_a_sweep_equals_the_pipeline(tmp_path):
    from simulator.seeding import derive_seed_sequence
    from simulator.sweep import load_spec, run_sweep

    spec = {"sweep": {"task": "experiment", "seed": 2, "replicates": 1},
            "design": {"regime": "minority_trait", "d": 6, "minority": 0.2, "seed": 3},
            "n": 500, "env": [5, 3], "beta": 0.5, "policies": {"mm": "exact"},
            "estimators": {"sep": {"class": "SeparateMLE", "lam": 1.0}}}
    df = run_sweep(spec, tmp_path / "s", executor="serial", progress=False)
    cell = load_spec(spec).cells()[0]
    seed = derive_seed_sequence(2, cell.seed_key, 0)
    t = Experiment({"regime": "minority_trait", "d": 6, "minority": 0.2, "seed": 3}, n=500,
                   estimators={"sep": {"class": "SeparateMLE", "lam": 1.0}},
                   policies={"mm": "exact"}, env=(5, 3), beta=0.5).run(seed).table
    t = t.sort_values("group")
    np.testing.assert_array_equal(np.asarray(df["sep.mm.utility"].iloc[0]), t["utility"])
    assert df["sep.mm.subopt"].iloc[0] == t["subopt"].iloc[0]
    np.testing.assert_array_equal(np.asarray(df["sep.err_l2"].iloc[0]), t["err_l2"])


@pytest.mark.parametrize("kwargs, match", [
    ({"policies": ["exact"], "env": None}, "policies need an environment"),
    ({"policies": ["nope"]}, "policies"),
    ({"policies": [{"rule": "exact", "label": "a"}, {"rule": "gibbs", "label": "a"}]},
     "appears twice"),
    ({"policies": ["exact"], "env": (3,)}, "env must be"),
    ({"estimators": {}}, "non-empty"),
    ({"estimators": {"x": {"class": "NoSuchEstimator"}}}, "unknown estimator"),
    ({"estimators": {"x": {"class": "PooledMLE", "lamda": 1}}}, "estimators.x.lamda"),
    ({"policies": [{"rule": "pessimistic", "B": 2.0}]}, "needs a reference"),
    ({"gold": "best"}, "gold"),
    ({"n": 0}, "n"),
    ({"policies": ["exact"], "beta": -1.0}, "beta"),
])
def test_bad_input_names_the_parameter(kwargs, match):
    args = dict(n=100, estimators={"p": PooledMLE()}, env=(3, 3), beta=0.5)
    args.update(kwargs)
    with pytest.raises((InvalidParameterError, ValueError), match=match):
        Experiment(POP, **args).run(0)


def test_fixed_design_refuses_n_and_its_own_env():
    env = FiniteArmEnv(np.array([[[0.0, 0.0], [1.0, 0.0]]]))
    design = FixedDesign(env, np.array([[0, 1, 0]]), np.array([1.0, 0.5]), counts=np.array([10]))
    with pytest.raises(InvalidParameterError, match="n: a FixedDesign"):
        draw_data(design, 5, 0)
    with pytest.raises(InvalidParameterError, match="test_seed"):
        draw_data(POP, 5, 0, n_test=3)
    with pytest.raises(InvalidParameterError, match="brings its own environment"):
        build_env(design, FiniteArmEnv(env.features.copy()), 0)
