"""The arena benchmark is registered explicit-only and its tables print a row per method; the
protocols' policy-level rules, PAL-A's arm rewards and the fit-memory meter."""

import copy
import math
import tracemalloc

import numpy as np
import pytest

from simulator import arena as protocols
from simulator import bench
from simulator.bench import arena

TINY = {**protocols.SIZES["tiny"], "minority": 0.1}
RULE_KEYS = ("subopt", "minority_win", "subopt_algorithm1", "minority_win_algorithm1",
             "subopt_pointwise", "minority_win_pointwise")
REWARD_FREE = ("DPO", "GR-DPO")


@pytest.fixture(scope="module")
def policy_rep():
    return protocols.policy_level(TINY, np.random.SeedSequence(3))


def test_registered_explicit_only():
    bench._load_all()
    assert bench.BENCHMARKS["arena"] is arena.run and "arena" in bench.EXPLICIT


def test_policy_protocol_tiny_replicate(policy_rep):
    # every method's max-min suboptimality is >= 0 under every rule (V* is the exact max-min
    # value of the truth, the max over all policies) and win rates are probabilities
    out = policy_rep
    names = {k.split(".")[0] for k in out}
    assert {"SharedRep", "LoRe", "PALB", "PALA", "VPL", "DPO", "GR-DPO", "truth"} <= names
    for k, v in out.items():
        assert math.isfinite(v), k
        metric = k.split(".", 1)[1]
        if metric.startswith("subopt"):
            assert v >= -1e-6, k
        if metric.startswith("minority_win"):
            assert 0.0 <= v <= 1.0, k


def test_policy_protocol_keys(policy_rep):
    # reward estimators (PAL-A included): the three rules; reward-free methods: their own policy
    out = policy_rep
    for m in ("SeparateMLE", "PooledMLE", "SharedRep", "LoRe", "PALB", "PALA", "VPL"):
        assert all(f"{m}.{k}" in out for k in RULE_KEYS + ("fit_s", "fit_mb")), m
    for m in REWARD_FREE:
        assert {k.split(".", 1)[1] for k in out if k.startswith(m + ".")} == {
            "subopt", "minority_win", "fit_s", "fit_mb"}
    assert all(out[f"{m}.fit_mb"] > 0 for m in protocols.PEERS + ("SharedRep",))
    assert "PALA" in protocols.PEERS


def test_policy_truth_through_the_three_rules(policy_rep):
    # the truth's exact max-min policy IS the gold policy: 0 suboptimality, win rate 1/2 (ties
    # count half); Algorithm 1 (200 Frank-Wolfe steps, O(1/t)) and the pointwise min (whose
    # max-min value is <= V*) lose >= 0
    out = policy_rep
    assert out["truth.subopt"] == pytest.approx(0.0, abs=1e-8)
    assert out["truth.minority_win"] == pytest.approx(0.5, abs=1e-8)
    assert -1e-8 <= out["truth.subopt_algorithm1"] <= 1e-3
    assert out["truth.subopt_pointwise"] >= -1e-8
    # one group reward (PooledMLE): the three rules are the same Gibbs policy
    assert out["PooledMLE.subopt"] == pytest.approx(out["PooledMLE.subopt_pointwise"], abs=1e-9)
    assert out["PooledMLE.subopt"] == pytest.approx(out["PooledMLE.subopt_algorithm1"],
                                                    abs=1e-9)


def test_policy_protocol_deterministic(policy_rep):
    again = protocols.policy_level(TINY, np.random.SeedSequence(3))
    strip = lambda d: {k: v for k, v in d.items() if not k.endswith((".fit_s", ".fit_mb"))}
    assert strip(again) == strip(policy_rep)
    assert set(again) == set(policy_rep)


def _tiny_env_data():
    from simulator.experiment import draw_data
    from simulator.population import Population, minority_proportions

    pop = Population.shared(TINY["d"], protocols.K, minority_proportions(0.1, protocols.U),
                            seed=1)
    env = pop.arm_env(*TINY["env"], 2)
    return env, draw_data(pop, TINY["n_group"] * protocols.U, 3, env=env).data


def test_pala_arm_rewards_give_back_its_margin():
    # PAL-A's per-arm reward -||M phi - a_u||^2: the difference of the two arms' rewards of a
    # comparison is PAL-A's own margin (the quadratic term included), not theta_'s linear part
    from simulator.estimators import PALA

    env, data = _tiny_env_data()
    pala = PALA(protocols.K, seed=0, max_iter=50).fit(data, env=env)
    r = protocols.arm_rewards(pala, env)
    assert r.shape == (data.n_groups,) + env.features.shape[:2]
    diff = (r[data.group, data.context, data.actions[:, 1]]
            - r[data.group, data.context, data.actions[:, 0]])
    np.testing.assert_allclose(diff, pala.margin(data), rtol=1e-10, atol=1e-10)
    assert not np.allclose(diff, np.einsum("ij,ij->i", data.X, pala.theta_[data.group]))


def test_peak_mb_known_allocation_and_nesting():
    # 2**20 float64 = 8 MiB allocated inside fn; outside it nothing of that size
    def alloc():
        a = np.ones(2 ** 20)
        return float(a.sum())

    out, mb = protocols.peak_mb(alloc)
    assert out == 2.0 ** 20 and 8.0 <= mb < 8.5
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        keep = np.ones(2 ** 21)  # 16 MiB traced before fn: not counted in fn's peak
        _, mb = protocols.peak_mb(alloc)
        assert 8.0 <= mb < 8.5 and tracemalloc.is_tracing()
        del keep
    finally:
        tracemalloc.stop()


def test_fit_traced_copy_identical_to_untraced_fit():
    # fit_mb comes from a second fit of a deep copy under tracemalloc: its fitted numbers must
    # be those of the untraced fit (and of a plain fit), bit for bit
    from simulator.estimators import PALA

    env, data = _tiny_env_data()
    ests = protocols.estimators(protocols.K, protocols.U, TINY["vpl_iter"], 5)
    ests["PALA"] = PALA(protocols.K, seed=5, max_iter=50)
    for name, est in ests.items():
        kw = {"env": env} if name == "PALA" else {}
        plain = copy.deepcopy(est).fit(data, **kw).theta_
        twin = copy.deepcopy(est)
        traced, _ = protocols.peak_mb(lambda e=twin, kw=kw: e.fit(data, **kw))
        fitted, secs, mb = protocols._fit(est, data, **kw)
        assert fitted is est and secs > 0 and mb > 0
        np.testing.assert_array_equal(traced.theta_, plain, err_msg=name)
        np.testing.assert_array_equal(fitted.theta_, plain, err_msg=name)


@pytest.mark.parametrize("proto", ["groups_minority", "many_users", "latent_groups"])
def test_fit_mb_in_every_protocol(proto):
    p = {**protocols.SIZES["tiny"], "minority": 0.1, "alpha": 1.0}
    out = protocols.PROTOCOLS[proto](p, np.random.SeedSequence(4))
    timed = {k.split(".")[0] for k in out if k.endswith(".fit_s")}
    assert timed and timed == {k.split(".")[0] for k in out if k.endswith(".fit_mb")}
    for m in timed:
        assert math.isfinite(out[f"{m}.fit_mb"]) and out[f"{m}.fit_mb"] >= 0


def test_item_pairs_keep_every_difference_and_label():
    from simulator import Population

    pop = Population.shared(6, 2, [0.3, 0.7], seed=0)
    a, b = pop.sample(400, seed=1), pop.sample(300, seed=2)
    env, (pa, pb) = protocols.item_pairs([a, b], 7)
    assert env.features.shape == (700, 2, 6)
    for orig, paired in ((a, pa), (b, pb)):
        phi0 = env.features[paired.context, paired.actions[:, 0]]
        phi1 = env.features[paired.context, paired.actions[:, 1]]
        np.testing.assert_allclose(phi1 - phi0, orig.X, atol=1e-12)
        np.testing.assert_array_equal(paired.y, orig.y)
        np.testing.assert_array_equal(paired.group, orig.group)
    np.testing.assert_array_equal(pb.context, np.arange(400, 700))
    # X ~ N(0, I): the two responses are uncorrelated, each N(0, I/2) (2000 pairs: sd ~ 0.02)
    big = pop.sample(4000, seed=3)
    env, (pb,) = protocols.item_pairs([big], 8)
    f0, f1 = env.features[:, 0], env.features[:, 1]
    cross = (f0 - f0.mean(0)).T @ (f1 - f1.mean(0)) / len(f0)
    assert np.abs(cross).max() < 0.06
    np.testing.assert_allclose(np.diag(np.cov(f0.T)), 0.5, atol=0.06)


def test_margin_accuracy_is_unit_accuracy_for_linear_rewards():
    from simulator import Population

    pop = Population.shared(5, 2, [0.2, 0.8], seed=4)
    test = pop.sample(500, seed=5, group_sampling="fixed")
    margins = np.einsum("ij,ij->i", test.X, pop.theta[test.group])
    assert protocols.margin_accuracy(margins, test) == protocols.unit_accuracy(pop.theta,
                                                                              test.group, test)
    acc, worst = protocols.margin_accuracy(np.zeros(len(test.y)), test)  # zero margin: half
    assert acc == worst == 0.5


@pytest.mark.parametrize("proto", ["groups_minority", "many_users", "latent_groups"])
def test_pal_a_in_protocols_1_to_3(proto):
    p = next(pp for name, pp in protocols.protocol_grid("tiny") if name == proto)
    out = protocols.PROTOCOLS[proto](p, np.random.SeedSequence(11))
    keys = {k for k in out if k.startswith("PALA.")}
    assert {"PALA.accuracy", "PALA.fit_s", "PALA.fit_mb"} <= keys
    assert 0.4 <= out["PALA.accuracy"] <= 1.0  # a fitted ideal-point model, not a coin
    if proto != "many_users":
        assert 0.0 <= out["PALA.worst_accuracy"] <= out["PALA.accuracy"]
    else:
        assert all(f"PALA.new_accuracy_{m}" in out for m in p["shots"])


def test_memory_tracing_can_be_switched_off_for_a_block():
    # off: every fit runs once and fit_mb is NaN; on (the default): two runs, a finite peak
    calls = []

    def fn():
        calls.append(1)
        return np.ones(10_000).sum()

    with protocols.memory_traced(False):
        out, secs, mb = protocols._measured(fn)
    assert out == 10_000 and len(calls) == 1 and math.isnan(mb) and secs >= 0
    out, secs, mb = protocols._measured(fn)
    assert len(calls) == 3 and mb > 0.07  # the 10,000 float64 ones: 0.076 MiB


def test_fig9_traces_memory_on_replicate_zero_only():
    from figures import fig9_arena
    from simulator.sweep.registry import get_task

    task = get_task("figures.fig9_arena:cell")
    assert task.wants_replicate
    seed = np.random.SeedSequence(9)
    setting = next(i for i, (name, _) in enumerate(protocols.protocol_grid("tiny"))
                   if name == "groups_minority")
    params = {"size": "tiny", "setting": setting}
    first, later = fig9_arena.cell(params, seed, 0), fig9_arena.cell(params, seed, 1)
    mb = [k for k in first if k.endswith(".fit_mb")]
    assert mb and all(first[k] > 0 for k in mb) and all(math.isnan(later[k]) for k in mb)
    same = [k for k in first if not k.endswith((".fit_mb", ".fit_s"))]
    assert all(first[k] == later[k] for k in same)  # the fits themselves do not change
