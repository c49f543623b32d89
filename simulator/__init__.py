"""pluralrlhf: a simulator for pluralistic RLHF.

``from simulator import Population, PreferenceData``; estimators live in
:mod:`simulator.estimators`, policies in :mod:`simulator.policy`.
"""

from .data import PreferenceData
from .population import Population

__version__ = "0.1.0"
__all__ = ["Population", "PreferenceData", "__version__"]
