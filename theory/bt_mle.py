"""Single-reward Bradley–Terry MLE: curvature, estimation bound, pessimistic policy, lower bound.

Source: Zhu, Jordan & Jiao, "Principled Reinforcement Learning with Human Feedback from Pairwise or
K-wise Comparisons", ICML 2023 (arXiv 2301.11270), as summarised in
``shared/research/sharelora_theory.md`` §2.1 and ``sharedrep.md`` §3.2(a).

Setting (their symbols): comparison features ``x_i = phi(s_i, a_i^1) - phi(s_i, a_i^0)``,
``P(y = 1) = sigma(theta*^T x)``, ``theta* in Theta_B = {<1, theta> = 0, ||theta||_2 <= B}``,
``Sigma_D = (1/n) sum_i x_i x_i^T``.

Status of the constants
-----------------------
The *forms* below are tagged ``[P]`` in the notes (reliable shape; constants, theorem numbers and
side conditions not checked against the PDF). The universal constant ``C`` of Lemma 3.1 /
Theorem 3.2 / Theorem 3.10 is not stated in the notes, so every function takes ``C`` as an argument
with the placeholder default :data:`DEFAULT_C` ``= 1.0``. With ``C = 1`` the functions give the
*rate* (useful for exponents and ratios), not the paper's numerical bound. All functions are
``VERIFIED = False``.

Curvature convention
--------------------
``gamma = 1 / (2 + exp(-L B) + exp(L B)) = sigma'(L B)``, the smallest value of ``sigma'`` over the
attainable logits ``|theta^T x| <= L B``. In this package **L bounds the feature-difference norm**
``||phi(s, a^1) - phi(s, a^0)||_2 <= L`` (``L_bounds="difference"``, the default), which makes the
formula exact. The paper (and the reproduction ``divyaksh-shukla/principled-rlhf:
src/pessimistic_mle.py`` [V-code]) prints the same expression with ``||phi(s, a)|| <= L``; under that
reading the logit can reach ``2 L B`` and the rigorous value is ``sigma'(2 L B)`` —
``L_bounds="features"`` gives it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import (
    as_float_array,
    check_at_least_one,
    check_delta,
    check_dimension,
    check_nonnegative,
    check_positive,
    scalar_or_array,
)
from .provenance import Source, sourced

__all__ = [
    "DEFAULT_C",
    "bt_curvature",
    "bt_mle_error_bound",
    "bt_mle_lambda",
    "coverage_coefficient",
    "effective_curvature",
    "minimax_lower_bound",
    "pessimistic_suboptimality_bound",
    "sigmoid_derivative",
]

DEFAULT_C: float = 1.0
"""Placeholder for the unstated universal constant ``C`` (NOT the paper's value)."""

_ZHU = "Zhu, Jordan & Jiao 2023 (arXiv 2301.11270)"
_ZHU_AT = {"url": "https://arxiv.org/abs/2301.11270",
           "looked_in": "shared/research/sharelora_theory.md §2.1 (form as the literature reports "
                        "it); the arXiv abstract page"}
_C_NOTE = (
    "universal constant C not given in the notes; C is an argument (default 1.0 = placeholder, "
    "gives the rate, not the paper's numerical bound)"
)


def sigmoid_derivative(z: Any) -> float | np.ndarray:
    """Derivative of the logistic function, ``sigma'(z) = 1 / (2 + e^z + e^-z)``.

    Computed as ``e^{-|z|} / (1 + e^{-|z|})^2`` (no overflow for large ``|z|``).

    Parameters
    ----------
    z : float or array_like
        Logit(s).

    Returns
    -------
    float or numpy.ndarray
        ``sigma'(z)`` in ``(0, 1/4]``.
    """
    z = as_float_array("z", z)
    e = np.exp(-np.abs(z))
    return scalar_or_array(e / (1.0 + e) ** 2)


@sourced(
    Source(
        _ZHU,
        "Lemma 3.1 (definition of gamma)",
        "[P]",
        False,
        "expression used verbatim by divyaksh-shukla/principled-rlhf [V-code]; exp(LB) vs exp(2LB) "
        "depends on whether L bounds ||phi|| or ||phi1 - phi0|| (see L_bounds)",
        **_ZHU_AT,
    )
)
def bt_curvature(L: Any, B: Any, *, L_bounds: str = "difference") -> float | np.ndarray:
    """Worst-case BT curvature ``gamma = 1 / (2 + exp(-m) + exp(m))`` with logit bound ``m``.

    Source: Zhu, Jordan & Jiao 2023, Lemma 3.1 [P] (form); not verified against the PDF.

    Parameters
    ----------
    L : float or array_like
        Feature norm bound, > 0. Its meaning is set by ``L_bounds``.
    B : float or array_like
        Parameter norm bound ``||theta||_2 <= B``, > 0.
    L_bounds : {"difference", "features"}
        ``"difference"`` (default, this package's convention): ``||phi(s,a1) - phi(s,a0)|| <= L``,
        logit bound ``m = L B`` — the printed formula is then exact.
        ``"features"``: ``||phi(s, a)|| <= L`` as in the paper's setting; the logit can reach
        ``m = 2 L B``.

    Returns
    -------
    float or numpy.ndarray
        ``gamma = sigma'(m)`` in ``(0, 1/4]``.
    """
    L = check_positive("L", L)
    B = check_positive("B", B)
    if L_bounds == "difference":
        m = L * B
    elif L_bounds == "features":
        m = 2.0 * L * B
    else:
        raise ValueError(f"L_bounds must be one of 'difference', 'features', got {L_bounds!r}")
    return sigmoid_derivative(m)


@sourced(
    Source(
        "research notes",
        "sharelora_theory.md §2.5 (gamma_F) and §3 item 5",
        "[I]",
        False,
        "effective (Fisher) curvature E[sigma'(theta*^T x)]; the worst-case gamma lower-bounds it",
        looked_in="shared/research/sharelora_theory.md §2.5 (no paper states it in this form)",
    )
)
def effective_curvature(logits: Any) -> float:
    """Effective (Fisher) curvature ``gamma_F = mean_i sigma'(theta*^T x_i)``.

    Zhu et al.'s worst-case ``gamma`` is a pessimistic lower bound on it; the notes recommend
    comparing ``n * error`` against ``1 / gamma_F`` as well as ``1 / gamma^2``
    (sharelora_theory.md §3 item 5) [I].

    Parameters
    ----------
    logits : array_like
        True logits ``theta*^T x_i`` of the comparisons (any shape, at least one entry).

    Returns
    -------
    float
        ``gamma_F`` in ``(0, 1/4]``.
    """
    return float(np.mean(sigmoid_derivative(logits)))


@sourced(Source(_ZHU, "Lemma 3.1 (choice of lambda below the lemma)", "[P]", False, "", **_ZHU_AT))
def bt_mle_lambda(n: Any, d: Any, *, gamma: Any, B: Any, delta: Any = 0.05) -> float | np.ndarray:
    """Regularisation that balances the two terms of Lemma 3.1.

    ``lambda = (d + log(1/delta)) / (gamma^2 B^2 n)``, giving the rate
    ``sqrt(2 (d + log(1/delta)) / (gamma^2 n))`` in :func:`bt_mle_error_bound`.

    Source: Zhu, Jordan & Jiao 2023, remark after Lemma 3.1 [P] (as in the notes §2.1).

    Parameters
    ----------
    n : float or array_like
        Number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    gamma : float or array_like
        Curvature, > 0 (see :func:`bt_curvature`).
    B : float or array_like
        Parameter norm bound, > 0.
    delta : float or array_like
        Failure probability in (0, 1).

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    d = check_dimension("d", d)
    gamma = check_positive("gamma", gamma)
    B = check_positive("B", B)
    delta = check_delta("delta", delta)
    return scalar_or_array((d + np.log(1.0 / delta)) / (gamma**2 * B**2 * n))


@sourced(Source(_ZHU, "Lemma 3.1 (MLE concentration)", "[P]", False, _C_NOTE, **_ZHU_AT))
def bt_mle_error_bound(
    n: Any,
    d: Any,
    *,
    gamma: Any,
    delta: Any = 0.05,
    lam: Any = 0.0,
    B: Any = None,
    C: Any = DEFAULT_C,
) -> float | np.ndarray:
    """High-probability bound on the BT-MLE error in the ``Sigma_D + lambda I`` norm.

    W.p. >= 1 - delta,
    ``||theta_hat - theta*||_{Sigma_D + lambda I} <= C sqrt((d + log(1/delta)) / (gamma^2 n)
    + lambda B^2)``.

    Source: Zhu, Jordan & Jiao 2023, Lemma 3.1 [P]. The form is from the literature; ``C`` is
    not given in the notes (placeholder default 1.0). ``VERIFIED = False``.

    Parameters
    ----------
    n : float or array_like
        Number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    gamma : float or array_like
        Curvature lower bound, > 0 (:func:`bt_curvature`, or :func:`effective_curvature` for a
        Fisher-based comparison).
    delta : float or array_like
        Failure probability in (0, 1).
    lam : float or array_like
        Ridge ``lambda`` >= 0 of the norm ``Sigma_D + lambda I``.
    B : float or array_like, optional
        Parameter norm bound > 0; required when ``lam > 0``.
    C : float or array_like
        Universal constant > 0 (unverified placeholder by default).

    Returns
    -------
    float or numpy.ndarray
        The bound (broadcast over array arguments).
    """
    n = check_at_least_one("n", n)
    d = check_dimension("d", d)
    gamma = check_positive("gamma", gamma)
    delta = check_delta("delta", delta)
    lam = check_nonnegative("lam", lam)
    C = check_positive("C", C)
    if B is None:
        if np.any(lam > 0):
            raise ValueError("B must be given (in (0, inf)) when lam > 0")
        bias = 0.0
    else:
        B = check_positive("B", B)
        bias = lam * B**2
    return scalar_or_array(C * np.sqrt((d + np.log(1.0 / delta)) / (gamma**2 * n) + bias))


def coverage_coefficient(sigma_d: Any, direction: Any, lam: float = 0.0) -> float:
    """Coverage term ``||(Sigma_D + lambda I)^{-1/2} v||_2 = sqrt(v^T (Sigma_D + lambda I)^{-1} v)``.

    With ``v = E_{s~rho}[phi(s, pi*(s)) - v_ref]`` this is the factor multiplying the estimation
    bound in Zhu et al. Thm 3.2 (and, with ``lambda = 0`` and no reference, ``Lambda`` of their
    Thm 3.10).

    Parameters
    ----------
    sigma_d : array_like, shape (d, d)
        Symmetric positive semi-definite data covariance ``Sigma_D``.
    direction : array_like, shape (d,)
        The vector ``v``.
    lam : float
        Ridge >= 0. ``Sigma_D + lam I`` must be positive definite.

    Returns
    -------
    float
    """
    lam_arr = check_nonnegative("lam", lam)
    S = as_float_array("sigma_d", sigma_d)
    v = as_float_array("direction", direction)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"sigma_d must be a square (d, d) matrix, got shape {S.shape}")
    if v.shape != (S.shape[0],):
        raise ValueError(f"direction must have shape ({S.shape[0]},), got {v.shape}")
    if not np.allclose(S, S.T, atol=1e-10 * max(1.0, np.abs(S).max())):
        raise ValueError("sigma_d must be symmetric")
    w, U = np.linalg.eigh(S + float(lam_arr) * np.eye(S.shape[0]))
    if w.min() <= 1e-12 * max(1.0, w.max()):
        raise ValueError(
            "sigma_d + lam*I must be positive definite (lam must be in (0, inf) when sigma_d is "
            "singular)"
        )
    proj = U.T @ v
    return float(np.sqrt(np.sum(proj**2 / w)))


@sourced(Source(_ZHU, "Theorem 3.2 (pessimistic MLE)", "[P]", False, _C_NOTE, **_ZHU_AT))
def pessimistic_suboptimality_bound(
    n: Any,
    d: Any,
    *,
    gamma: Any,
    coverage: Any,
    delta: Any = 0.05,
    lam: Any = 0.0,
    B: Any = None,
    C: Any = DEFAULT_C,
) -> float | np.ndarray:
    """Suboptimality bound of the pessimistic-MLE policy.

    W.p. >= 1 - delta, ``SubOpt(pi_PE) <= C sqrt((d + log(1/delta)) / (gamma^2 n) + lambda B^2)
    * ||(Sigma_D + lambda I)^{-1/2} E_{s~rho}[phi(s, pi*(s)) - v]||_2``.

    Source: Zhu, Jordan & Jiao 2023, Theorem 3.2 [P]; ``C`` unverified placeholder.

    Parameters
    ----------
    n, d, gamma, delta, lam, B, C
        As in :func:`bt_mle_error_bound`.
    coverage : float or array_like
        The coverage norm >= 0 (see :func:`coverage_coefficient`).

    Returns
    -------
    float or numpy.ndarray
    """
    coverage = check_nonnegative("coverage", coverage)
    err = bt_mle_error_bound(n, d, gamma=gamma, delta=delta, lam=lam, B=B, C=C)
    return scalar_or_array(np.asarray(err) * coverage)


@sourced(
    Source(
        _ZHU,
        "Theorem 3.10 (minimax lower bound)",
        "[P]",
        False,
        _C_NOTE + "; holds only for n large relative to d*Lambda^2 (threshold not in the notes); "
        "estimation analogue: Shah et al. 2016 (E||w_hat - w*||_L^2 >= c d/n)",
        **_ZHU_AT,
    )
)
def minimax_lower_bound(
    n: Any, d: Any, *, Lambda: Any = 1.0, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """Minimax lower bound ``C * Lambda * sqrt(d / n)``.

    For instances with coverage ``||Sigma_D^{-1/2} E_{s~rho}[phi(s, pi*(s))]||_2 <= Lambda``,
    ``inf_pi sup SubOpt(pi) >= C Lambda sqrt(d/n)`` (n large enough relative to ``d Lambda^2``),
    so pessimistic MLE is minimax-rate optimal. With ``Lambda = 1`` this is the ``sqrt(d/n)``
    estimation-scale rate (Shah et al. 2016 give ``c d/n`` for the squared Laplacian semi-norm).

    Source: Zhu, Jordan & Jiao 2023, Theorem 3.10 [P]; ``C`` unverified placeholder.

    Parameters
    ----------
    n : float or array_like
        Number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    Lambda : float or array_like
        Coverage bound > 0.
    C : float or array_like
        Universal constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    d = check_dimension("d", d)
    Lambda = check_positive("Lambda", Lambda)
    C = check_positive("C", C)
    return scalar_or_array(C * Lambda * np.sqrt(d / n))


@sourced(
    Source(
        "Zhu, Jordan & Jiao 2023 (arXiv 2301.11270) Lemma 3.1 with ||v||_2 <= ||v||_M / "
        "sqrt(lambda_min(M)); lower bound: Shah et al. 2016 (arXiv 1505.01462)",
        "l2 rate of the BT-MLE: sqrt(d / (gamma^2 n lambda_min(Sigma_D + lambda I)))",
        "[D]",
        False,
        "Lemma 3.1 bounds the Sigma_D + lambda I norm, not l2; the step to l2 is exact but needs "
        "a well-conditioned Sigma_D (lambda_min bounded away from 0); Shah et al.'s matching "
        "d/n lower bound is on the Laplacian semi-norm (form as reported, not read); " + _C_NOTE,
        url="https://arxiv.org/abs/2301.11270",
        looked_in="shared/research/sharelora_theory.md §2.1 and §2.5; arXiv abstract pages of "
                  "2301.11270 and 1505.01462 (no l2 statement in the abstracts)",
    )
)
def bt_mle_l2_rate(
    n: Any, d: Any, *, gamma: Any, lambda_min: Any = 1.0, delta: Any = 0.05, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """``l2`` error rate of the BT-MLE: ``C sqrt((d + log(1/delta)) / (gamma^2 n lambda_min))``.

    Lemma 3.1's bound (:func:`bt_mle_error_bound` at ``lam = 0``) divided by
    ``sqrt(lambda_min(Sigma_D))``: for any ``v``, ``||v||_2 <= ||v||_M / sqrt(lambda_min(M))``.
    Its exponent in ``n`` (-1/2) is what fig1 tests; the lower bound of the same order is Shah
    et al. 2016's (Laplacian semi-norm).

    Parameters
    ----------
    n : float or array_like
        Number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    gamma : float or array_like
        Curvature lower bound in (0, 1/4].
    lambda_min : float or array_like
        Smallest eigenvalue of ``Sigma_D`` (> 0; ``(1/n) sum x x^T``).
    delta : float
        Failure probability in (0, 1).
    C : float or array_like
        Universal constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    lambda_min = check_positive("lambda_min", lambda_min)
    err = bt_mle_error_bound(n, d, gamma=gamma, delta=delta, C=C)
    return scalar_or_array(np.asarray(err) / np.sqrt(lambda_min))
