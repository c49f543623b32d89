"""Reward estimators; one module per method, all following :mod:`.base`'s contract."""

from .base import NotFittedError, PreferenceEstimator
from .bt import BTFit, MLENotExistWarning, bt_objective, fit_bt
from .mle import PooledMLE, SeparateMLE

__all__ = ["PreferenceEstimator", "NotFittedError", "PooledMLE", "SeparateMLE", "fit_bt",
           "bt_objective", "BTFit", "MLENotExistWarning"]
from .em import EMMixture
from .lowrank import SharedLoRA
from .oracle import OracleB
from .sharedrep import SharedRep

__all__ += ["EMMixture", "OracleB", "SharedLoRA", "SharedRep"]
