"""MaxMin-RLHF impossibility result for single-reward RLHF, and related closed forms.

Source: Chakraborty, Qiu, Yuan, Koppel, Manocha, Huang, Bedi & Wang, "MaxMin-RLHF: Alignment with
Diverse Human Preferences", ICML 2024 (arXiv 2402.08925), Section 3, **as written in
``shared/research/maxmin.md`` §2.3-2.4**. The formulas come from a secondary, LLM-written summary
[S]; constants and exponents are NOT verified against the PDF (``VERIFIED = False`` throughout).
In particular the notes flag Theorem 1's *linear* dependence on ``epsilon (1 - eta(u))`` and its
``beta^2`` as suspicious (a strong-concavity argument normally gives a square): both exponents are
arguments here, defaulting to the values as written, and :data:`THEOREM1_EXPONENT_VERIFIED` is
``False``.

Symbols: ``epsilon`` sub-population diversity (a total-variation distance, in [0, 1]); ``eta_u``
proportion of group ``u``; ``D`` bound on ``||psi(y, x)||``; ``lambda_psi`` minimum eigenvalue of
the feature covariance; ``L_pi`` Lipschitz constant of ``log pi``; ``beta`` KL coefficient.

Policy computations (Gibbs policies, the exact max-min dual of maxmin.md §4.6, the exact gap
``F_u(pi*_u) - F_u(pi) = beta E_x KL(pi || pi*_u)``) live in ``simulator/policy/``; this module
only holds closed forms of the constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import (
    as_float_array,
    check_nonnegative,
    check_positive,
    check_proportion,
    check_unit_interval_closed,
    scalar_or_array,
)
from .provenance import Source, register, sourced

__all__ = [
    "EM_ABLATION",
    "EM_ASCENT",
    "EM_RECOVERY",
    "THEOREM1_DIRECTIONS",
    "THEOREM1_SQUARED",
    "THEOREM1_EXPONENT_VERIFIED",
    "alignment_gap_quadratic_approx",
    "bt_preference_tv",
    "lemma1_reward_mismatch_lower_bound",
    "mixture_tv_to_group",
    "theorem1_alignment_gap_lower_bound",
]

THEOREM1_EXPONENT_VERIFIED: bool = False
"""The exponent of ``epsilon (1 - eta(u))`` (1 as written) and of ``beta`` (2) are unverified."""

_MAXMIN = "Chakraborty et al. 2024, MaxMin-RLHF (arXiv 2402.08925)"
_MAXMIN_AT = {"url": "https://arxiv.org/abs/2402.08925",
              "looked_in": "shared/research/maxmin.md §2.3-2.4, which had the statement from a "
                           "machine-written summary; the arXiv abstract page"}

THEOREM1_DIRECTIONS = register("theory.maxmin.THEOREM1_DIRECTIONS", Source(
    _MAXMIN, "Theorem 1, qualitative content: the gap is positive for epsilon > 0 and grows with "
    "epsilon and with 1 - eta(u)", "[S]", False,
    "a direction of the gap itself, as machine-written summaries (teleo-codex, alphaXiv) state "
    "it; a lower bound alone would not imply it", **_MAXMIN_AT))
"""The directions of MaxMin-RLHF's Theorem 1 (what fig4's sign rows test)."""

THEOREM1_SQUARED = register("theory.maxmin.THEOREM1_SQUARED", Source(
    "research notes (maxmin.md)", "§2.4 CAUTION: the squared reading (epsilon (1 - eta(u)))^2 "
    "of Theorem 1, from a strong-concavity argument", "[I]", False,
    "the notes' reconstruction, in no summary of the paper; constant 64, L_pi, lambda_psi, D as "
    "in the written form", looked_in="shared/research/maxmin.md §2.4 (CAUTION)"))
"""Theorem 1 with exponent 2: the notes' reading, not the paper's statement."""

EM_RECOVERY = register("theory.maxmin.EM_RECOVERY", Source(
    _MAXMIN, "experiments: EM (Algorithm 2) recovers the two user groups (cluster accuracy over "
    "EM iterations)", "[S]", False,
    "a finding as summaries report it, numbers unknown; no recovery guarantee is stated",
    url=_MAXMIN_AT["url"], looked_in="shared/research/maxmin.md §5.1 (findings [S], figure [R])"))
"""MaxMin-RLHF's experimental claim that EM finds the groups (fig6's level rows)."""

EM_ABLATION = register("theory.maxmin.EM_ABLATION", Source(
    "research notes (maxmin.md)", "§7.1 EM ablations: recovery improves with separation; soft EM "
    "with mixing weights and k-means++ initialisation against Algorithm 2", "[I]", False,
    "the project's hypotheses for an ablation the notes plan, not statements of the paper",
    looked_in="shared/research/maxmin.md §3.2-3.4, §6.4, §7.1"))
"""The directions fig6's separation and soft-vs-hard rows test: hypotheses, not theorems."""

EM_ASCENT = register("theory.maxmin.EM_ASCENT", Source(
    "derived for the simulator", "EM ascent (Dempster, Laird & Rubin 1977): with an exact "
    "M-step neither step decreases the MAP-EM objective (soft) or the classification likelihood "
    "(hard)", "[D]", False,
    "holds for this implementation's exact M-step (simulator/estimators/em.py)",
    kind="derived identity", looked_in="simulator/estimators/em.py docstring; the standard proof"))
"""The monotonicity fig6 checks (an identity of the algorithm, not a rate)."""


@sourced(
    Source(
        _MAXMIN,
        "Lemma 1 (reward mismatch due to diversity), as in maxmin.md §2.3",
        "[S]",
        False,
        "formula from a secondary summary; constant 4 not checked against the PDF",
        **_MAXMIN_AT,
    )
)
def lemma1_reward_mismatch_lower_bound(epsilon: Any, eta_u: Any, D: Any) -> float | np.ndarray:
    """Lower bound on the single-reward parameter mismatch: ``epsilon (1 - eta_u) / (4 D)``.

    ``||phi* - phi*_u|| >= epsilon (1 - eta(u)) / (4 D)``, ``phi*`` the population single-BT fit,
    ``phi*_u`` group ``u``'s true parameter.

    Source: MaxMin-RLHF Lemma 1 [S] (secondary summary; unverified).

    Parameters
    ----------
    epsilon : float or array_like
        Diversity (a TV distance) in [0, 1].
    eta_u : float or array_like
        Proportion of group ``u`` in (0, 1].
    D : float or array_like
        Feature norm bound > 0.

    Returns
    -------
    float or numpy.ndarray
    """
    eps = check_unit_interval_closed("epsilon", epsilon)
    eta = check_proportion("eta_u", eta_u)
    D = check_positive("D", D)
    return scalar_or_array(eps * (1.0 - eta) / (4.0 * D))


@sourced(
    Source(
        _MAXMIN,
        "Theorem 1 (impossibility of single-reward RLHF), as in maxmin.md §2.4",
        "[S]",
        False,
        "DOUBTFUL EXPONENTS: linear epsilon(1-eta) and beta^2 as written in a secondary summary; "
        "strong concavity suggests (epsilon(1-eta))^2; constant 64 unverified",
        **_MAXMIN_AT,
    )
)
def theorem1_alignment_gap_lower_bound(
    epsilon: Any,
    eta_u: Any,
    *,
    beta: Any,
    D: Any,
    lambda_psi: Any,
    L_pi: Any,
    exponent: float = 1.0,
    beta_power: float = 2.0,
) -> float | np.ndarray:
    """Lower bound on the single-reward policy's alignment gap for group ``u``.

    As written in maxmin.md §2.4 (defaults ``exponent = 1``, ``beta_power = 2``)::

        Align-Gap(pi_RLHF) >= lambda_psi * (epsilon (1 - eta_u))**exponent
                              / (64 * beta**beta_power * L_pi * D**2)

    Source: MaxMin-RLHF Theorem 1 [S]. **The exponent of ``epsilon (1 - eta_u)`` and the power of
    ``beta`` are doubtful** (a strong-concavity argument normally gives exponent 2; the exact gap
    ``beta E KL`` expands as ``Var / (2 beta)``, see :func:`alignment_gap_quadratic_approx`); they
    are arguments so that a figure can overlay both readings. Unverified.

    Parameters
    ----------
    epsilon : float or array_like
        Diversity (a TV distance) in [0, 1].
    eta_u : float or array_like
        Proportion of group ``u`` in (0, 1].
    beta : float or array_like
        KL coefficient > 0.
    D : float or array_like
        Feature norm bound > 0.
    lambda_psi : float or array_like
        Minimum eigenvalue of the feature covariance, > 0.
    L_pi : float or array_like
        Lipschitz constant of ``log pi`` in the policy parameters, > 0.
    exponent : float
        Power of ``epsilon (1 - eta_u)``, > 0 (1 as written; 2 is the alternative reading).
    beta_power : float
        Power of ``beta``, >= 0 (2 as written).

    Returns
    -------
    float or numpy.ndarray
    """
    eps = check_unit_interval_closed("epsilon", epsilon)
    eta = check_proportion("eta_u", eta_u)
    beta = check_positive("beta", beta)
    D = check_positive("D", D)
    lam = check_positive("lambda_psi", lambda_psi)
    L_pi = check_positive("L_pi", L_pi)
    exponent = check_positive("exponent", exponent)
    beta_power = check_nonnegative("beta_power", beta_power)
    return scalar_or_array(
        lam * (eps * (1.0 - eta)) ** exponent / (64.0 * beta**beta_power * L_pi * D**2)
    )


@sourced(
    Source(
        "research notes (maxmin.md)",
        "§2.3 [D] two-group identity",
        "[D]",
        False,
        "exact algebra (not a paper claim): TV(p*, p*_u) = (1 - eta_u) TV(p*_k, p*_u)",
        looked_in="derived in shared/research/maxmin.md; checked numerically in tests/theory",
    )
)
def mixture_tv_to_group(eta_u: Any, tv_between_groups: Any) -> float | np.ndarray:
    """Two-group identity ``TV(p*, p*_u) = (1 - eta_u) TV(p*_k, p*_u)``.

    ``p* = eta_u p*_u + (1 - eta_u) p*_k`` is the pooled mixture, so
    ``p* - p*_u = (1 - eta_u)(p*_k - p*_u)`` exactly.

    Parameters
    ----------
    eta_u : float or array_like
        Proportion of group ``u`` in (0, 1].
    tv_between_groups : float or array_like
        ``TV(p*_k, p*_u)`` in [0, 1].

    Returns
    -------
    float or numpy.ndarray
    """
    eta = check_proportion("eta_u", eta_u)
    tv = check_unit_interval_closed("tv_between_groups", tv_between_groups)
    return scalar_or_array((1.0 - eta) * tv)


@sourced(
    Source(
        "research notes (maxmin.md)",
        "§2.2 [D] BT diversity identity",
        "[D]",
        False,
        "exact when both groups share the (x, y1, y2) sampling distribution",
        looked_in="derived in shared/research/maxmin.md; checked numerically in tests/theory",
    )
)
def bt_preference_tv(delta_r_i: Any, delta_r_j: Any) -> float:
    """Diversity between two BT groups: ``TV(p*_i, p*_j) = E |sigma(dr_i) - sigma(dr_j)|``.

    The expectation is the sample mean over the given comparisons ``(x, y1, y2)``, each with
    reward differences ``dr = r(y1, x) - r(y2, x)`` under the two groups' rewards.

    Parameters
    ----------
    delta_r_i, delta_r_j : array_like
        Reward differences of the same comparisons under groups ``i`` and ``j`` (same shape).

    Returns
    -------
    float
        TV distance in [0, 1].
    """
    a = as_float_array("delta_r_i", delta_r_i)
    b = as_float_array("delta_r_j", delta_r_j)
    if a.shape != b.shape:
        raise ValueError(
            f"delta_r_i and delta_r_j must have the same shape, got {a.shape} and {b.shape}"
        )
    sig = lambda z: 0.5 * (1.0 + np.tanh(0.5 * z))
    return float(np.mean(np.abs(sig(a) - sig(b))))


@sourced(
    Source(
        "research notes (maxmin.md)",
        "§2.4 [D] local expansion of beta E_x KL(pi_phi* || pi_phi*_u)",
        "[D]",
        False,
        "second-order approximation, valid for small reward differences relative to beta",
        kind="derived approximation",
        looked_in="derived in shared/research/maxmin.md; checked numerically in tests/theory",
    )
)
def alignment_gap_quadratic_approx(reward_diff_variance: Any, beta: Any) -> float | np.ndarray:
    """Small-difference approximation of the exact alignment gap: ``Var / (2 beta)``.

    For Gibbs policies the exact gap is ``beta E_x KL(pi || pi*_u)``; expanding for a reward
    difference ``<phi* - phi*_u, psi>`` small relative to ``beta`` gives
    ``E_x Var_pi(<phi* - phi*_u, psi>) / (2 beta)`` — quadratic in the parameter mismatch.

    Source: maxmin.md §2.4 [D] (derived in the notes; not a paper claim).

    Parameters
    ----------
    reward_diff_variance : float or array_like
        ``E_x Var_{y~pi}(<phi* - phi*_u, psi(y, x)>)`` >= 0.
    beta : float or array_like
        KL coefficient > 0.

    Returns
    -------
    float or numpy.ndarray
    """
    v = check_nonnegative("reward_diff_variance", reward_diff_variance)
    beta = check_positive("beta", beta)
    return scalar_or_array(v / (2.0 * beta))
