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
