"""Reward estimators; one module per method, all following :mod:`.base`'s contract."""

from .base import NewUsersFit, NotFittedError, PreferenceEstimator
from .batched import fit_many
from .bt import BTConvergenceWarning, BTFit, MLENotExistWarning, bt_objective, fit_bt, separable
from .bt_blocks import BlocksFit, fit_bt_blocks
from .bt_matfree import fit_bt_matfree, kron_operator
from .em import EMMixture
from .lore import LoRe
from .lowrank import SharedLoRA
from .mle import PooledMLE, SeparateMLE
from .oracle import OracleB
from .pal import PALA, PALB
from .population_limit import population_bt_fit
from .sharedrep import SharedRep
from .vpl import VPL

__all__ = [
    "BTConvergenceWarning",
    "BTFit",
    "BlocksFit",
    "EMMixture",
    "LoRe",
    "MLENotExistWarning",
    "NewUsersFit",
    "NotFittedError",
    "OracleB",
    "PALA",
    "PALB",
    "PooledMLE",
    "PreferenceEstimator",
    "SeparateMLE",
    "SharedLoRA",
    "SharedRep",
    "VPL",
    "bt_objective",
    "fit_bt",
    "fit_bt_blocks",
    "fit_bt_matfree",
    "fit_many",
    "kron_operator",
    "population_bt_fit",
    "separable",
]
