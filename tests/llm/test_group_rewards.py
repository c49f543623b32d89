import numpy as np
import pytest

from simulator.llm.group_rewards import (
    GroupNormaliser,
    GroupRewardFunction,
    aggregate,
    algorithm1_select,
    pointwise_min,
)

pytestmark = pytest.mark.llm

R = np.array([[1.0, 3.0], [5.0, 0.0], [2.0, 2.0]])


def test_pointwise_min():
    assert pointwise_min(R).tolist() == [1.0, 0.0, 2.0]


def test_algorithm1_picks_worst_group_for_the_whole_batch():
    r, g = algorithm1_select(R)  # means: 8/3 vs 5/3 -> group 1
    assert g == 1 and r.tolist() == [3.0, 0.0, 2.0]
    # E[min] <= min E: the two objectives differ on this batch
    assert pointwise_min(R).mean() < R.mean(0).min()


def test_algorithm1_tie_goes_to_lowest_group():
    r, g = algorithm1_select(np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 2.0]]))
    assert g == 0 and r.tolist() == [1.0, 1.0]


def test_aggregate_rejects_unknown_mode():
    with pytest.raises(ValueError, match="rl.aggregation"):
        aggregate(R, "mean")


def test_normalisation_changes_the_active_group():
    ref = np.array([[10.0, 0.0], [12.0, 2.0], [8.0, -2.0]])  # group 0 has a large BT offset
    norm = GroupNormaliser.fit(ref)
    np.testing.assert_allclose(norm(ref).mean(0), [0, 0], atol=1e-12)
    np.testing.assert_allclose(norm(ref).std(0), [1, 1])
    batch = np.array([[9.0, 1.0], [9.0, 1.0]])
    assert algorithm1_select(batch)[1] == 1  # raw: group 1 looks worst
    assert algorithm1_select(norm(batch))[1] == 0  # normalised: group 0 is below its mean


def test_reward_function_logs_active_group():
    fn = GroupRewardFunction(lambda p, c, rows=None: R, GroupNormaliser.identity(2), "algorithm1")
    out = fn(["a"] * 3, ["b"] * 3)
    assert out.tolist() == [3.0, 0.0, 2.0] and fn.log[-1]["active_group"] == 1
    fn.aggregation = "pointwise_min"
    assert fn(["a"] * 3, ["b"] * 3).tolist() == [1.0, 0.0, 2.0]


def _numpy_reference(R):
    """Algorithm 1's selection written out: argmin of the batch means, first index on ties."""
    g = int(np.argmin(R.mean(axis=0)))
    return R[:, g], g


@pytest.mark.parametrize("seed", range(5))
def test_algorithm1_agrees_with_numpy_reference_on_random_batches(seed):
    g = np.random.default_rng(seed)
    for _ in range(20):
        n, U = int(g.integers(1, 40)), int(g.integers(1, 5))
        R = g.normal(size=(n, U)) * g.exponential() + g.normal(size=U)
        r, grp = algorithm1_select(R)
        r_ref, g_ref = _numpy_reference(R)
        assert grp == g_ref and np.array_equal(r, r_ref)


def test_algorithm1_is_the_simulators_first_step():
    """The selection equals trace[0] of simulator.policy's Algorithm 1 on the batch environment
    (one context, the samples as actions, uniform pi_ref, rewards as given)."""
    from simulator.arms import FiniteArmEnv
    from simulator.policy import maxmin_from_rewards

    g = np.random.default_rng(7)
    for _ in range(10):
        R = g.normal(size=(16, 3))
        env = FiniteArmEnv(np.zeros((1, 16, 1)))
        res = maxmin_from_rewards(env, R.T[:, None, :], 2.5, "algorithm1", normalize=None,
                                  n_iter=3)
        assert algorithm1_select(R)[1] == int(res.trace[0])


def test_algorithm1_rejects_bad_shapes():
    with pytest.raises(ValueError, match="R must have shape"):
        algorithm1_select(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="R must have shape"):
        algorithm1_select(np.zeros(3))
