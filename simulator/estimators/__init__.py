"""Reward estimators; one module per method, all following :mod:`.base`'s contract."""

from .base import NotFittedError, PreferenceEstimator
from .batched import fit_many
from .bt import BTFit, MLENotExistWarning, bt_objective, fit_bt
from .em import EMMixture
from .lowrank import SharedLoRA
from .mle import PooledMLE, SeparateMLE
from .oracle import OracleB
from .sharedrep import SharedRep

__all__ = [
    "BTFit",
    "EMMixture",
    "MLENotExistWarning",
    "NotFittedError",
    "OracleB",
    "PooledMLE",
    "PreferenceEstimator",
    "SeparateMLE",
    "SharedLoRA",
    "SharedRep",
    "bt_objective",
    "fit_bt",
    "fit_many",
]
