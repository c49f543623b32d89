"""Fixed designs (simulator/designs.py): given comparisons labelled under a known theta."""

import numpy as np
import pytest

from simulator import FiniteArmEnv, FixedDesign
from simulator.estimators import PooledMLE


def _design(counts, theta=(1.0, -0.5)):
    # one context, three arms: phi(a0) = 0, phi(a1) = e1, phi(a2) = e2
    env = FiniteArmEnv(np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    pairs = np.array([[0, 1, 0], [0, 2, 0], [0, 1, 2]])
    return FixedDesign(env, pairs, np.array(theta), counts=np.array(counts))


def test_features_and_probabilities_known_answers():
    D = _design([1, 1, 1])
    np.testing.assert_array_equal(D.features(), [[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    np.testing.assert_allclose(D.probabilities(), [sig(1.0), sig(-0.5), sig(1.5)], rtol=1e-15)


def test_wins_are_binomial_and_layouts_agree():
    D = _design([4000, 4000, 0])
    lab = D.sample(0)
    assert lab.wins[2] == 0 and lab.data.meta["aggregated"]
    # the mean win rate is the BT probability (binomial standard error 0.0075 at n = 4000: 4 SE)
    p = D.probabilities()
    assert abs(lab.wins[0] / 4000 - p[0]) < 0.03 and abs(lab.wins[1] / 4000 - p[1]) < 0.03
    # aggregated rows carry the counts as weights: the same fit as the expanded data
    exp = D.sample(0, aggregate=False)
    np.testing.assert_array_equal(exp.wins, lab.wins)
    assert exp.data.n == 8000 and exp.sample_weight is None
    assert lab.data.n <= 4 and lab.sample_weight.sum() == 8000
    a = PooledMLE(lam=1e-3).fit(lab.data, sample_weight=lab.sample_weight)
    b = PooledMLE(lam=1e-3).fit(exp.data)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12)
    # the MLE recovers theta (n = 8000 on two coordinates; the error is a few hundredths)
    np.testing.assert_allclose(a.coef_, [1.0, -0.5], atol=0.1)
    # same seed, same labels
    np.testing.assert_array_equal(D.sample(0).wins, lab.wins)
    assert not np.array_equal(D.sample(1).wins, lab.wins)


def test_groups_label_their_own_pairs():
    env = FiniteArmEnv(np.array([[[0.0], [1.0]]]))
    D = FixedDesign(env, np.array([[0, 1, 0], [0, 1, 0]]), np.array([[5.0], [-5.0]]),
                    counts=np.array([200, 200]), group=np.array([0, 1]))
    lab = D.sample(3)
    assert lab.wins[0] > 190 and lab.wins[1] < 10  # sigmoid(+-5) = 0.993 / 0.007
    assert set(lab.data.group.tolist()) == {0, 1} and lab.data.n_groups == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(pairs=np.array([[0, 1, 1]])), "must differ"),
    (dict(pairs=np.array([[1, 1, 0]])), "context ids"),
    (dict(pairs=np.array([[0, 3, 0]])), "action ids"),
    (dict(pairs=np.array([[0.0, 1.0, 0.0]])), "integer array"),
    (dict(theta=np.array([1.0, 2.0, 3.0])), "theta must have shape"),
    (dict(theta=np.array([np.nan, 0.0])), "theta must be finite"),
    (dict(counts=np.array([-1])), "counts"),
    (dict(counts=np.array([0])), "at least one"),
    (dict(group=np.array([1])), "group"),
])
def test_bad_input_names_the_parameter(kwargs, match):
    env = FiniteArmEnv(np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    args = dict(env=env, pairs=np.array([[0, 1, 0]]), theta=np.array([1.0, 0.0]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FixedDesign(**args)
    with pytest.raises(TypeError, match="env"):
        FixedDesign(None, np.array([[0, 1, 0]]), np.array([1.0, 0.0]))
