"""Shared helpers for the policy / fairness tests (a uniquely named module, importable because
pytest puts this folder on sys.path)."""

import numpy as np

from simulator.arms import FiniteArmEnv


def random_env(seed, m=6, a=5, d=3, scale=1.0, ref="uniform"):
    rng = np.random.default_rng(seed)
    feats = scale * rng.normal(size=(m, a, d))
    rho = rng.dirichlet(np.ones(m))
    pi_ref = None if ref == "uniform" else rng.dirichlet(np.ones(a), size=m)
    return FiniteArmEnv(feats, rho=rho, pi_ref=pi_ref)
