"""Fixtures for the policy / fairness tests (issue #4)."""

import numpy as np
import pytest
from policy_helpers import random_env


@pytest.fixture
def env():
    return random_env(0)


@pytest.fixture
def thetas():
    return np.random.default_rng(1).normal(size=(3, 3))
