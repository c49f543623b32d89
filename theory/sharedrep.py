"""Group-structured rates: separate per-group MLE (MaxMin-style) vs SharedRep.

Source: ``shared/research/sharedrep.md`` §3.2 (b)-(c). **Both rates are reconstructions [I] from
the standard literature** (Zhu et al. 2023 Lemma 3.1 applied per group; Park et al. 2024, Du et al.
2021, Tripuraneni et al. 2021 for the shared representation). They are NOT the theorems of
SharedRep-RLHF (Mukherjee, Bullo & Gündüz 2025, arXiv 2509.03672), whose statements were not
available; all functions here are ``VERIFIED = False``.

Symbols: ``n`` total comparisons, ``eta_min`` minority proportion (``n_min = eta_min n``),
``d`` feature dimension, ``k`` number of shared traits (``K`` in the paper), ``U`` number of
groups, ``gamma`` BT curvature, ``delta`` failure probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import (
    check_at_least_one,
    check_delta,
    check_dimension,
    check_positive,
    check_proportion,
    check_rank,
    scalar_or_array,
)
from .bt_mle import DEFAULT_C
from .provenance import Source, register, sourced

__all__ = [
    "SHAREDREP_EXPERIMENTS",
    "separate_mle_rate",
    "sharedrep_class_saturates",
    "sharedrep_crossover_eta",
    "sharedrep_rate",
]

_NOTES = "research notes (sharedrep.md)"
_NOTES_LOOKED = "shared/research/sharedrep.md (a reconstruction: no paper states it)"


SHAREDREP_EXPERIMENTS = register("theory.sharedrep.SHAREDREP_EXPERIMENTS", Source(
    "Mukherjee, Bullo & Gunduz 2025, SharedRep-RLHF (arXiv 2509.03672)",
    "experiments (abstract): a shared representation beats MaxMin-RLHF's per-group rewards when "
    "the minority is small ('a gain of up to 20% in win rate')", "[P]", False,
    "an empirical claim on LLM tasks, read in the abstract; fig10 tests its direction with "
    "frozen-encoder linear heads", url="https://arxiv.org/abs/2509.03672",
    looked_in="arXiv abstract and abstract aggregators (shared/research/sharedrep.md §1)"))
"""SharedRep-RLHF's experimental claim (what fig10's real-feature rows test)."""


def _log_term(delta: Any, n_groups: Any) -> np.ndarray | float:
    if delta is None:
        return 0.0
    delta = check_delta("delta", delta)
    U = check_dimension("n_groups", n_groups)
    return np.log(U / delta)


@sourced(
    Source(
        _NOTES,
        "§3.2(b): Zhu et al. Lemma 3.1 applied to one group with n_min = eta_min n",
        "[I]",
        False,
        "expected form of SharedRep-RLHF's negative result on MaxMin, not the paper's statement; "
        "C is a placeholder",
        looked_in=_NOTES_LOOKED,
    )
)
def separate_mle_rate(
    n: Any,
    d: Any,
    eta_min: Any,
    *,
    gamma: Any = 1.0,
    delta: Any = None,
    n_groups: Any = 1,
    C: Any = DEFAULT_C,
) -> float | np.ndarray:
    """Minority error of a per-group MLE that only uses the minority's ``n_min = eta_min n`` data.

    ``C * sqrt((d + log(U/delta)) / (gamma^2 eta_min n))``; with ``delta=None`` the log term is
    dropped and the rate is ``C sqrt(d / (gamma^2 n_min))`` (= ``sqrt(d / n_min)`` at the
    defaults).

    Source: sharedrep.md §3.2(b), reconstructed [I] from Zhu, Jordan & Jiao 2023 Lemma 3.1 with a
    union bound over the ``U`` groups. Not verified.

    Parameters
    ----------
    n : float or array_like
        Total number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    eta_min : float or array_like
        Minority proportion in (0, 1].
    gamma : float or array_like
        BT curvature > 0 (default 1: rate only).
    delta : float or array_like, optional
        Failure probability in (0, 1); ``None`` drops the ``log(U/delta)`` term.
    n_groups : int
        Number of groups ``U`` >= 1 (only used with ``delta``).
    C : float or array_like
        Constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    d = check_dimension("d", d)
    eta = check_proportion("eta_min", eta_min)
    gamma = check_positive("gamma", gamma)
    C = check_positive("C", C)
    log_term = _log_term(delta, n_groups)
    return scalar_or_array(C * np.sqrt((d + log_term) / (gamma**2 * eta * n)))


@sourced(
    Source(
        _NOTES,
        "§3.2(c): shared part sqrt(dk/n) + group part sqrt(k/n_min)",
        "[I]",
        False,
        "RECONSTRUCTED from Park et al. 2024 / Du et al. 2021 / Tripuraneni et al. 2021; the "
        "paper's rate (diversity factor, sqrt(U), log K, logs) is unknown; C is a placeholder",
        looked_in=_NOTES_LOOKED,
    )
)
def sharedrep_rate(
    n: Any,
    d: Any,
    k: Any,
    eta_min: Any,
    *,
    gamma: Any = 1.0,
    delta: Any = None,
    n_groups: Any = 1,
    C: Any = DEFAULT_C,
) -> float | np.ndarray:
    """Reconstructed SharedRep minority-error rate ``sqrt(dk/n) + sqrt(k/n_min)``.

    ``C * [ sqrt((d k + log(1/delta)) / (gamma^2 n)) + sqrt((k + log(U/delta)) / (gamma^2 eta_min n)) ]``;
    with ``delta=None`` the log terms are dropped. The minority pays ``sqrt(k / n_min)`` for its
    ``k``-dim head plus the representation error ``sqrt(dk/n)`` paid by the whole population.

    Source: sharedrep.md §3.2(c) — a **reconstruction [I], not SharedRep-RLHF's theorem**
    (possible extra factors: ``1/sigma_k(W*)`` diversity, ``sqrt(U)``, ``log K`` for the simplex,
    log factors). Not verified.

    Parameters
    ----------
    n : float or array_like
        Total number of comparisons, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Number of shared traits, integer in [1, d].
    eta_min : float or array_like
        Minority proportion in (0, 1].
    gamma, delta, n_groups, C
        As in :func:`separate_mle_rate`.

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    k, d = check_rank(k, d)
    eta = check_proportion("eta_min", eta_min)
    gamma = check_positive("gamma", gamma)
    C = check_positive("C", C)
    if delta is None:
        log_shared, log_group = 0.0, 0.0
    else:
        log_group = _log_term(delta, n_groups)
        log_shared = np.log(1.0 / check_delta("delta", delta))
    shared = np.sqrt((d * k + log_shared) / (gamma**2 * n))
    group = np.sqrt((k + log_group) / (gamma**2 * eta * n))
    return scalar_or_array(C * (shared + group))


@sourced(
    Source(
        _NOTES,
        "§3.2(c) vs (b): equality of the two reconstructed rates",
        "[I]",
        False,
        "exact algebra on reconstructed rates (no log terms, equal C and gamma)",
        looked_in=_NOTES_LOOKED,
    )
)
def sharedrep_crossover_eta(d: Any, k: Any) -> float | np.ndarray:
    """Minority share below which the reconstructed SharedRep rate beats separate MLE.

    With equal ``C`` and ``gamma`` and no log terms, ``sharedrep_rate <= separate_mle_rate`` iff
    ``sqrt(d k eta) + sqrt(k) <= sqrt(d)``, i.e.

    ``eta_min <= eta* = (1/sqrt(k) - 1/sqrt(d))^2``,

    independent of ``n`` (``eta* ~ 1/k`` for ``d >> k``; ``eta* = 0`` when ``k = d``). Exact
    algebra on the two reconstructed rates [I]; it inherits their unverified status.

    Parameters
    ----------
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Number of shared traits, integer in [1, d].

    Returns
    -------
    float or numpy.ndarray
        ``eta*`` in ``[0, 1)``.
    """
    k, d = check_rank(k, d)
    return scalar_or_array((1.0 / np.sqrt(k) - 1.0 / np.sqrt(d)) ** 2)


@sourced(
    Source(
        "derived for the simulator",
        "model-class identity: for k >= U, {(B w_1, ..., B w_U)} = (R^d)^U",
        "[D]",
        False,
        "exact: take B = Theta (d x U) and W = I_U (on the simplex too); the SharedRep MLE is "
        "then the per-group MLE up to the ridges, so SharedRep cannot gain over Separate",
        kind="derived identity",
        looked_in="exact algebra (a rank-k factorisation of a d x U matrix with U <= k)",
    )
)
def sharedrep_class_saturates(k: Any, n_groups: Any) -> bool | np.ndarray:
    """Whether SharedRep's model class with ``k`` traits holds every ``U``-tuple of parameters.

    True iff ``k >= U``: ``Theta = B W`` with ``B = Theta``, ``W = I_U`` reaches any ``Theta``
    (d x U), so the fit equals the separate per-group fit up to the ridges.

    Parameters
    ----------
    k : int or array_like
        Traits, integer >= 1.
    n_groups : int or array_like
        Groups ``U``, integer >= 1.

    Returns
    -------
    bool or numpy.ndarray of bool
    """
    k = check_dimension("k", k)
    U = check_dimension("n_groups", n_groups)
    out = k >= U
    return bool(out) if out.ndim == 0 else out
