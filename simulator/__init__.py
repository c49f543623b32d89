"""pluralrlhf: a simulator for pluralistic RLHF.

``from simulator import Population, FixedDesign, FiniteArmEnv, PreferenceData``; estimators live in
:mod:`simulator.estimators`, policies in :mod:`simulator.policy`.
"""

from .arms import FiniteArmEnv
from .data import PreferenceData
from .designs import FixedDesign, LabelledDesign
from .population import Population

__version__ = "0.1.0"
__all__ = ["FiniteArmEnv", "FixedDesign", "LabelledDesign", "Population", "PreferenceData",
           "__version__"]
