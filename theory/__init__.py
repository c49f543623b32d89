"""Theory overlays for pluralrlhf: bounds, predicted rates, and the fit / CI / verdict layer.

Stands on its own (numpy, scipy, pandas; nothing from ``simulator``). Modules:

- :mod:`theory.bt_mle` — single-reward BT-MLE (Zhu, Jordan & Jiao 2023): curvature ``gamma``,
  Lemma 3.1 error bound, Thm 3.2 pessimistic suboptimality, Thm 3.10 ``sqrt(d/n)`` lower bound.
- :mod:`theory.sharedrep` — minority error of separate per-group MLE ``sqrt(d/n_min)`` and the
  reconstructed SharedRep rate ``sqrt(dk/n) + sqrt(k/n_min)``.
- :mod:`theory.lowrank` — shared low-rank personalisation ``(k/n + dk/(N n))/gamma``, oracle and
  independent baselines, ratio ``1 + d/N``, subspace rate (one phase, and the two phases named by
  Niu et al. 2024, reconstructed), P-ShareLoRA parameter counts.
- :mod:`theory.maxmin` — MaxMin-RLHF Lemma 1 / Theorem 1 as written in the notes (doubtful
  exponent exposed) and related identities.
- :mod:`theory.regimes` — where an asymptotic rate may be judged (``gamma n >= 10 max(p, 2 lam)``)
  and the Gaussian BT curvature.
- :mod:`theory.fitting` — log-log slope with a seed bootstrap CI, seed quantiles, bound ratios.
- :mod:`theory.verdicts` — the three-way decision rules.
- :mod:`theory.claims` — :class:`Claim`, :class:`ClaimResult`, the theory-check table.
- :mod:`theory.provenance` — :class:`Source` records attached to every bound
  (``fn.source``, ``fn.SOURCE``, ``fn.VERIFIED``).

Nothing here is verified against a paper's text (the notes only had abstracts and summaries):
every bound has ``VERIFIED = False`` and unknown universal constants are arguments ``C`` with a
placeholder default of 1.
"""

from .bt_mle import (
    DEFAULT_C,
    bt_curvature,
    bt_mle_error_bound,
    bt_mle_l2_rate,
    bt_mle_lambda,
    coverage_coefficient,
    effective_curvature,
    minimax_lower_bound,
    pessimistic_suboptimality_bound,
    sigmoid_derivative,
)
from .claims import (
    CLAIM_KINDS,
    COLUMNS,
    MIN_REGIME_POINTS,
    Claim,
    ClaimResult,
    claims_table,
    to_markdown,
    write_theory_checks,
)
from .fitting import (
    SlopeFit,
    bootstrap_ci,
    bound_ratio,
    fit_loglog_slope,
    min_seeds_for_quantile,
    quantile_across_seeds,
)
from .lowrank import (
    COUNTING_PHASE_DEPTH,
    PARAMETER_COUNTING,
    PENALISED,
    PHASES,
    independent_avg_error,
    independent_to_oracle_ratio,
    lowrank_degrees_of_freedom,
    oracle_subspace_avg_error,
    shared_lowrank_avg_error,
    shared_subspace_phase,
    shared_subspace_phase_boundary,
    shared_subspace_two_phase_rate,
    shared_to_oracle_ratio,
    sharelora_param_counts,
    sharelora_rank_threshold,
    subspace_sin_theta_rate,
)
from .maxmin import (
    EM_ABLATION,
    EM_ASCENT,
    EM_RECOVERY,
    THEOREM1_DIRECTIONS,
    THEOREM1_EXPONENT_VERIFIED,
    THEOREM1_SQUARED,
    alignment_gap_quadratic_approx,
    bt_preference_tv,
    lemma1_reward_mismatch_lower_bound,
    mixture_tv_to_group,
    theorem1_alignment_gap_lower_bound,
)
from .provenance import REGISTRY, Source, register, source_of, sourced
from .regimes import ASYMPTOTIC_C, MAX_CURVATURE, asymptotic_min_n, gaussian_bt_curvature
from .sharedrep import (
    SHAREDREP_EXPERIMENTS,
    separate_mle_rate,
    sharedrep_class_saturates,
    sharedrep_crossover_eta,
    sharedrep_rate,
)
from .verdicts import (
    DEFAULT_EXPONENT_TOL,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    OUTSIDE_REGIME,
    VERDICTS,
    verdict_exponent,
    verdict_less_than,
    verdict_lower_bound,
    verdict_upper_bound,
    verdict_value,
)

__all__ = [
    "ASYMPTOTIC_C",
    "CLAIM_KINDS",
    "COLUMNS",
    "COUNTING_PHASE_DEPTH",
    "DEFAULT_C",
    "DEFAULT_EXPONENT_TOL",
    "DOES_NOT_HOLD",
    "EM_ABLATION",
    "EM_ASCENT",
    "EM_RECOVERY",
    "HOLDS",
    "INCONCLUSIVE",
    "MAX_CURVATURE",
    "MIN_REGIME_POINTS",
    "OUTSIDE_REGIME",
    "PARAMETER_COUNTING",
    "PENALISED",
    "PHASES",
    "REGISTRY",
    "SHAREDREP_EXPERIMENTS",
    "THEOREM1_DIRECTIONS",
    "THEOREM1_EXPONENT_VERIFIED",
    "THEOREM1_SQUARED",
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "SlopeFit",
    "Source",
    "alignment_gap_quadratic_approx",
    "asymptotic_min_n",
    "bootstrap_ci",
    "bound_ratio",
    "bt_curvature",
    "bt_mle_error_bound",
    "bt_mle_l2_rate",
    "bt_mle_lambda",
    "bt_preference_tv",
    "claims_table",
    "coverage_coefficient",
    "effective_curvature",
    "fit_loglog_slope",
    "gaussian_bt_curvature",
    "independent_avg_error",
    "independent_to_oracle_ratio",
    "lemma1_reward_mismatch_lower_bound",
    "lowrank_degrees_of_freedom",
    "min_seeds_for_quantile",
    "minimax_lower_bound",
    "mixture_tv_to_group",
    "oracle_subspace_avg_error",
    "pessimistic_suboptimality_bound",
    "quantile_across_seeds",
    "register",
    "separate_mle_rate",
    "shared_lowrank_avg_error",
    "shared_subspace_phase",
    "shared_subspace_phase_boundary",
    "shared_subspace_two_phase_rate",
    "shared_to_oracle_ratio",
    "sharedrep_class_saturates",
    "sharedrep_crossover_eta",
    "sharedrep_rate",
    "sharelora_param_counts",
    "sharelora_rank_threshold",
    "sigmoid_derivative",
    "source_of",
    "sourced",
    "subspace_sin_theta_rate",
    "theorem1_alignment_gap_lower_bound",
    "to_markdown",
    "verdict_exponent",
    "verdict_less_than",
    "verdict_lower_bound",
    "verdict_upper_bound",
    "verdict_value",
    "write_theory_checks",
]
