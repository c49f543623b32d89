"""Alignment gaps stay finite where the group-optimal policy underflows (small beta)."""

import numpy as np

from simulator import Population
from simulator.fairness import alignment_gaps
from simulator.policy import gibbs_policy


def test_kl_gap_equals_direct_gap_at_small_beta():
    pop = Population.diverse(6, angle=2.0, seed=0, signal=4.0)
    env = pop.arm_env(20, 8, seed=1)
    beta = 0.005
    pi = gibbs_policy(env, pop.theta.mean(axis=0), beta)
    kl = alignment_gaps(env, pi, pop.theta, beta, method="kl")
    direct = alignment_gaps(env, pi, pop.theta, beta, method="direct")
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    # both are exact; direct subtracts O(|r|) numbers, so agreement to ~1e-9 relative of |r|
    np.testing.assert_allclose(kl, direct, rtol=1e-6, atol=1e-8)
