r"""KL-regularised policies on a finite-arm environment: Gibbs (single reward), exact MaxMin,
MaxMin-RLHF's Algorithm 1, the pointwise-min objective, utilitarian and pessimistic policies.

Modules
-------
- :mod:`~simulator.policy.validation` — the policy-specific argument checks (environment,
  shapes against it, beta, the reward convention), built on :mod:`simulator.validation`.
- :mod:`~simulator.policy.gibbs` — the closed-form Gibbs policy pi ∝ pi_ref exp(r / beta).
- :mod:`~simulator.policy.utilities` — F_u(pi), the reward normalisation, KL to pi_ref.
- :mod:`~simulator.policy.maxmin` — exact max-min (dual + certificate), Algorithm 1, pointwise
  min, cvxpy cross-check; one keyword set for every entry point (:class:`MaxMinOptions`).
- :mod:`~simulator.policy.maxmin_lp` — the beta -> 0 limit of the exact max-min policy (a
  linear program plus a minimum-KL selection on its optimal face), used by the exact solver
  where the regularised dual is out of float64 reach (`maxmin_limit`).
- :mod:`~simulator.policy.utilitarian` — argmax_pi sum_u eta_u F_u(pi).
- :mod:`~simulator.policy.pessimistic` — Zhu, Jordan & Jiao's pessimistic MLE (reference v,
  Sigma_D from weighted data, Lemma 3.1 radius with its constants exposed) and the older
  per-action LCB.

Sources: MaxMin-RLHF, Chakraborty et al., arXiv 2402.08925 (notes: shared/research/maxmin.md,
cited "MM §k"); SharedRep-RLHF notes (sharedrep.md §2.4); Zhu, Jordan & Jiao, "Principled
Reinforcement Learning with Human Feedback from Pairwise or K-wise Comparisons", ICML 2023.
Items marked [D] are derived here (not stated in the papers).

Notation (papers' symbols)
--------------------------
x ~ rho contexts, a actions, pi_ref reference policy, beta > 0 KL coefficient, groups u in U with
rewards r_u(x, a) (linear: r_u = <theta_u, phi(x, a)>), weights q in the simplex Delta^U.

    F_u(pi) = E_{x~rho}[ E_{a~pi(.|x)} r_u(x, a) - beta KL(pi(.|x) || pi_ref(.|x)) ]   (MM §1, §4.1)

Reward normalisation (MM §4.4) [D]
----------------------------------
Bradley–Terry identifies r_u only up to an additive constant per group (per context, for
prompt-dependent offsets), and anything that compares groups (min_u F_u, argmin_u, min_u r_u)
depends on it.  Convention used everywhere a min over groups is taken: ``normalize="ref_center"``
(default) replaces r_u(x, a) by r_u(x, a) - E_{a'~pi_ref(.|x)} r_u(x, a'), i.e. every group's
reward has mean zero under pi_ref in every context.  Consequences: F_u(pi_ref) = 0 for all u;
results are invariant to per-group and per-group-per-context additive shifts of the rewards.
``normalize=None`` uses the rewards as given.  Single-reward Gibbs policies are invariant to
per-context shifts anyway, so `gibbs_policy` takes no ``normalize`` argument.
"""

from __future__ import annotations

from simulator.arms import FiniteArmEnv

from .gibbs import gibbs_and_log_partition, gibbs_from_rewards, gibbs_policy
from .maxmin import (
    OBJECTIVES,
    MaxMinOptions,
    MaxMinResult,
    dual_value,
    maxmin_cvxpy,
    maxmin_from_rewards,
    maxmin_limit,
    maxmin_policy,
    pointwise_min_policy,
)
from .pessimistic import (
    POLICY_CLASSES,
    ConfidenceSet,
    PessimisticResult,
    bt_curvature,
    confidence_radius,
    confidence_set,
    data_covariance,
    lcb_rewards,
    pessimistic_mle_policy,
    pessimistic_policy,
    pessimistic_value,
    reference_vector,
)
from .utilitarian import utilitarian_policy
from .utilities import (
    group_utilities,
    normalize_rewards,
    utilities_from_rewards,
)
from .validation import NORMALIZATIONS

__all__ = [
    "NORMALIZATIONS",
    "OBJECTIVES",
    "POLICY_CLASSES",
    "ConfidenceSet",
    "FiniteArmEnv",
    "MaxMinOptions",
    "MaxMinResult",
    "PessimisticResult",
    "bt_curvature",
    "confidence_radius",
    "confidence_set",
    "data_covariance",
    "dual_value",
    "gibbs_and_log_partition",
    "gibbs_from_rewards",
    "gibbs_policy",
    "group_utilities",
    "lcb_rewards",
    "maxmin_cvxpy",
    "maxmin_from_rewards",
    "maxmin_limit",
    "maxmin_policy",
    "normalize_rewards",
    "pessimistic_mle_policy",
    "pessimistic_policy",
    "pessimistic_value",
    "pointwise_min_policy",
    "reference_vector",
    "utilitarian_policy",
    "utilities_from_rewards",
]
