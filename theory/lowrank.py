"""Shared low-rank personalisation (P-ShareLoRA linear case): predicted average per-user errors.

Source: ``shared/research/sharelora_theory.md`` §1.4, §2.2, §2.5 ("working minimax heuristic")
and §3 item 4. **The rates are a parameter-counting reconstruction [I]**, not the theorem of
P-ShareLoRA (Liu, Wang, Li, Shen & Yang, AISTATS 2025, arXiv 2503.19201), whose statement was not
available; the structure matches Park et al. 2024 (arXiv 2405.00254) [P/I]. All functions are
``VERIFIED = False``.

Symbols (the note's): ``n`` comparisons **per user**, ``N`` users, ``d`` feature dimension, ``k``
rank of the deviation ``Theta - theta0 1^T = B W`` (``B in R^{d x k}``), ``gamma`` the effective
curvature ``gamma_F = E[sigma'(theta*^T x)]`` (Zhu et al.'s worst-case ``gamma`` is a pessimistic
stand-in). The error is the **squared** ``Sigma``-norm error averaged over users,
``(1/N) sum_i ||theta_hat_i - theta_i*||_Sigma^2``, so the predicted slope in ``n`` is ``-1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import (
    check_at_least_one,
    check_dimension,
    check_positive,
    check_rank,
    scalar_or_array,
)
from .bt_mle import DEFAULT_C
from .provenance import Source, sourced

__all__ = [
    "COUNTING_PHASE_DEPTH",
    "PARAMETER_COUNTING",
    "PENALISED",
    "PHASES",
    "independent_avg_error",
    "independent_to_oracle_ratio",
    "lowrank_degrees_of_freedom",
    "oracle_subspace_avg_error",
    "shared_lowrank_avg_error",
    "shared_to_oracle_ratio",
    "sharelora_param_counts",
    "sharelora_rank_threshold",
    "shared_subspace_phase",
    "shared_subspace_phase_boundary",
    "shared_subspace_two_phase_rate",
    "subspace_sin_theta_rate",
]

PARAMETER_COUNTING = "parameter counting"
PENALISED = "penalised"
PHASES = (PARAMETER_COUNTING, PENALISED)
"""The two phases of Niu et al.'s abstract, as :func:`shared_subspace_phase` names them."""

COUNTING_PHASE_DEPTH = 16.0
"""``n >= 16 n*``: deep enough in the parameter-counting phase that the two-phase rate's local
slope in ``n`` is within 0.1 of ``-1/2`` (:func:`shared_subspace_phase_boundary`)."""

_NOTES = "research notes (sharelora_theory.md)"
_NOTES_LOOKED = "shared/research/sharelora_theory.md (a reconstruction: no paper states it)"
_C_NOTE = "C is a placeholder (default 1.0): rate only"


@sourced(
    Source(
        _NOTES,
        "§2.5 working minimax heuristic: (1/gamma_F) k (d + N) / (N n)",
        "[I]",
        False,
        "RECONSTRUCTED by parameter counting (Park et al. 2024 structure); not P-ShareLoRA's "
        "theorem; " + _C_NOTE,
        looked_in=_NOTES_LOOKED,
    )
)
def shared_lowrank_avg_error(
    n: Any, d: Any, k: Any, N: Any, *, gamma: Any = 1.0, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """Average per-user squared error of the shared low-rank MLE: ``C (k/n + d k/(N n)) / gamma``.

    ``= C k (d + N) / (gamma N n)``: a ``k``-dim head per user (``k/n``) plus the shared basis
    (``d k`` parameters estimated from all ``N n`` comparisons). The exact degree-of-freedom count
    ``k (d + N - k)`` (:func:`lowrank_degrees_of_freedom`) differs by the ``-k^2`` rotation term,
    which the note drops.

    Source: sharelora_theory.md §2.5 / §2.2 [I] (reconstruction; not verified).

    Parameters
    ----------
    n : float or array_like
        Comparisons per user, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Rank, integer in [1, d].
    N : int or array_like
        Number of users, integer >= 1.
    gamma : float or array_like
        Effective curvature > 0 (default 1: rate only).
    C : float or array_like
        Constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    k, d = check_rank(k, d)
    N = check_dimension("N", N)
    gamma = check_positive("gamma", gamma)
    C = check_positive("C", C)
    return scalar_or_array(C * (k / n + d * k / (N * n)) / gamma)


@sourced(Source(_NOTES, "§2.5 / §3 item 4: oracle-B floor k/(gamma_F n)", "[I]", False, _C_NOTE,
                looked_in=_NOTES_LOOKED))
def oracle_subspace_avg_error(
    n: Any, k: Any, *, gamma: Any = 1.0, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """Average per-user squared error with the true subspace known: ``C k / (gamma n)``.

    Source: sharelora_theory.md §2.5 [I] (the floor of the shared estimator).

    Parameters
    ----------
    n : float or array_like
        Comparisons per user, >= 1.
    k : int or array_like
        Rank, integer >= 1.
    gamma, C
        As in :func:`shared_lowrank_avg_error`.

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    k = check_dimension("k", k)
    gamma = check_positive("gamma", gamma)
    C = check_positive("C", C)
    return scalar_or_array(C * k / (gamma * n))


@sourced(Source(_NOTES, "§2.5: independent per-user MLE d/(gamma_F n)", "[I]", False, _C_NOTE,
                looked_in=_NOTES_LOOKED))
def independent_avg_error(
    n: Any, d: Any, *, gamma: Any = 1.0, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """Average per-user squared error of independent per-user MLE: ``C d / (gamma n)``.

    Asymptotic (``n >> d``) rate; the notes' simulation (§4) shows per-user MAP still below its
    ``1/n`` asymptote at ``n = 16 d``.

    Source: sharelora_theory.md §2.5 [I].

    Parameters
    ----------
    n : float or array_like
        Comparisons per user, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    gamma, C
        As in :func:`shared_lowrank_avg_error`.

    Returns
    -------
    float or numpy.ndarray
    """
    n = check_at_least_one("n", n)
    d = check_dimension("d", d)
    gamma = check_positive("gamma", gamma)
    C = check_positive("C", C)
    return scalar_or_array(C * d / (gamma * n))


@sourced(
    Source(
        _NOTES,
        "§3 item 4: shared/oracle ratio -> 1 + d/N",
        "[I]",
        False,
        "ratio of the two reconstructed rates; C and gamma cancel; the notes' simulation (§4 [S]) "
        "saw 1.26-1.35 at d/N = 0.4 and 1.06-1.10 at d/N = 0.1",
        looked_in=_NOTES_LOOKED,
    )
)
def shared_to_oracle_ratio(d: Any, N: Any) -> float | np.ndarray:
    """Predicted ratio shared-low-rank error / oracle-subspace error: ``1 + d / N``.

    Source: sharelora_theory.md §3 item 4 [I].

    Parameters
    ----------
    d : int or array_like
        Feature dimension, integer >= 1.
    N : int or array_like
        Number of users, integer >= 1.

    Returns
    -------
    float or numpy.ndarray
    """
    d = check_dimension("d", d)
    N = check_dimension("N", N)
    return scalar_or_array(1.0 + d / N)


@sourced(
    Source(
        _NOTES,
        "§3 item 4: indep/oracle ratio ~ d/k",
        "[I]",
        False,
        "modulo Fisher anisotropy: the notes' simulation (§4 [S]) saw ~6.5 at d/k = 10",
        looked_in=_NOTES_LOOKED,
    )
)
def independent_to_oracle_ratio(d: Any, k: Any) -> float | np.ndarray:
    """Predicted ratio independent-per-user error / oracle-subspace error: ``d / k``.

    Source: sharelora_theory.md §3 item 4 [I]; Fisher information is lower along ``theta_i``
    than orthogonal to it, so the measured ratio sits below ``d/k``.

    Parameters
    ----------
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Rank, integer in [1, d].

    Returns
    -------
    float or numpy.ndarray
    """
    k, d = check_rank(k, d)
    return scalar_or_array(d / k)


@sourced(Source(_NOTES, "§2.5: k (d + N - k) degrees of freedom", "[I]", False, "exact count",
                kind="derived identity", looked_in="exact count of a rank-k d x N matrix"))
def lowrank_degrees_of_freedom(d: Any, k: Any, N: Any) -> float | np.ndarray:
    """Degrees of freedom of a rank-``k`` ``d x N`` matrix: ``k (d + N - k)``.

    Parameters
    ----------
    d : int or array_like
        Rows (feature dimension), integer >= 1.
    k : int or array_like
        Rank, integer in [1, min(d, N)].
    N : int or array_like
        Columns (users), integer >= 1.

    Returns
    -------
    float or numpy.ndarray
    """
    k, d = check_rank(k, d)
    k, N = check_rank(k, N, d_name="N")
    return scalar_or_array(k * (d + N - k))


@sourced(
    Source(
        "Tripuraneni, Jin & Jordan 2021 (arXiv 2002.11684)",
        "method-of-moments subspace bound",
        "[P]",
        False,
        "O~(.) hides polylog factors and a constant; valid for n_total >~ polylog * kappa_bar d k / nu; "
        "C is a placeholder",
        url="https://arxiv.org/abs/2002.11684",
        looked_in="shared/research/sharelora_theory.md §2.3 (form as reported; the theorem body "
                  "was not read)",
    )
)
def subspace_sin_theta_rate(
    n_total: Any, d: Any, k: Any, *, nu: Any = 1.0, kappa_bar: Any = 1.0, C: Any = DEFAULT_C
) -> float | np.ndarray:
    """Subspace recovery rate ``sin theta(B_hat, B*) <~ C sqrt(kappa_bar d k / (nu n_total))``.

    Depends on the total sample ``n_total = N n`` only (the notes' §4 simulation saw equal
    ``sin theta`` at equal ``N n``).

    Source: Tripuraneni, Jin & Jordan 2021 [P] via sharelora_theory.md §2.4; not verified.

    Parameters
    ----------
    n_total : float or array_like
        Total comparisons ``N n``, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Rank, integer in [1, d].
    nu : float or array_like
        Task diversity ``sigma_k(A^T A / N)`` > 0.
    kappa_bar : float or array_like
        ``tr(A^T A / N) / (k nu)`` > 0.
    C : float or array_like
        Constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    n_total = check_at_least_one("n_total", n_total)
    k, d = check_rank(k, d)
    nu = check_positive("nu", nu)
    kappa_bar = check_positive("kappa_bar", kappa_bar)
    C = check_positive("C", C)
    return scalar_or_array(C * np.sqrt(kappa_bar * d * k / (nu * n_total)))


@sourced(
    Source(
        _NOTES,
        "§1.2 parameter counts (bracketing-number proxy, §1.4)",
        "[I]",
        False,
        "log N_[] ~ #params * log(1/eps) is a heuristic",
        looked_in=_NOTES_LOOKED,
    )
)
def sharelora_param_counts(d1: Any, d2: Any, k: Any, N: Any, r: Any = None) -> dict[str, int]:
    """Parameter counts of full fine-tuning, per-user LoRA and P-ShareLoRA.

    ``full_ft = N d1 d2``; ``lora = N r (d1 + d2)`` (only if ``r`` is given);
    ``sharelora = d1 k + N k d2``.

    Source: sharelora_theory.md §1.2 [I].

    Parameters
    ----------
    d1, d2 : int
        Shape of the adapted matrix, integers >= 1.
    k : int
        Shared rank, integer in [1, d1].
    N : int
        Number of users, integer >= 1.
    r : int, optional
        Per-user LoRA rank, integer in [1, min(d1, d2)].

    Returns
    -------
    dict
        Keys ``"full_ft"``, ``"sharelora"`` and (with ``r``) ``"lora"``.
    """
    k_a, d1_a = check_rank(k, d1, d_name="d1")
    d2_a = check_dimension("d2", d2)
    N_a = check_dimension("N", N)
    for name, a in (("d1", d1_a), ("d2", d2_a), ("k", k_a), ("N", N_a)):
        if a.ndim:
            raise ValueError(f"{name} must be a scalar integer >= 1")
    d1i, d2i, ki, Ni = int(d1_a), int(d2_a), int(k_a), int(N_a)
    out = {"full_ft": Ni * d1i * d2i, "sharelora": d1i * ki + Ni * ki * d2i}
    if r is not None:
        r_a, _ = check_rank(r, min(d1i, d2i), k_name="r", d_name="min(d1, d2)")
        if r_a.ndim:
            raise ValueError("r must be a scalar integer >= 1")
        out["lora"] = Ni * int(r_a) * (d1i + d2i)
    return out


@sourced(
    Source(
        _NOTES,
        "§1.4: ShareLoRA beats full FT iff k < N d1 d2 / (d1 + N d2)",
        "[I]",
        False,
        "the paper's exact d1-vs-k condition is unknown (garbled in the summary)",
        looked_in=_NOTES_LOOKED,
    )
)
def sharelora_rank_threshold(d1: Any, d2: Any, N: Any) -> float | np.ndarray:
    """Largest rank for which P-ShareLoRA has fewer parameters than full FT: ``N d1 d2 / (d1 + N d2)``.

    Source: sharelora_theory.md §1.4 [I] (``~ d1`` for large ``N``).

    Parameters
    ----------
    d1, d2 : int or array_like
        Shape of the adapted matrix, integers >= 1.
    N : int or array_like
        Number of users, integer >= 1.

    Returns
    -------
    float or numpy.ndarray
    """
    d1 = check_dimension("d1", d1)
    d2 = check_dimension("d2", d2)
    N = check_dimension("N", N)
    return scalar_or_array(N * d1 * d2 / (d1 + N * d2))


_NIU = "Niu, Su, Xu & Yang 2024 (arXiv 2409.04919)"
_NIU_URL = "https://arxiv.org/abs/2409.04919"
_NIU_LOOKED = ("arXiv abstract (v1-v3) and the HTML v3 front matter (stored pages): the two phases "
               "are named there ('a standard parameter-counting regime and a penalized regime when "
               "the number of clients is large or local datasets are small'), no formula; the "
               "theorem body was not reachable")
_NIU_NOTE = ("RECONSTRUCTED for the two-replica spectral estimator the abstract describes "
             "(Davis-Kahan on the mean of the replicas' outer products); the form, not the "
             "paper's theorem; " + _C_NOTE)


def _two_phase_terms(n, d, k, N, nu, kappa_bar, gamma):
    """Validated inputs -> (parameter-counting term, penalised term) of the reconstruction."""
    n = check_at_least_one("n", n)
    k, d = check_rank(k, d)
    N = check_dimension("N", N)
    nu = check_positive("nu", nu)
    kappa_bar = check_positive("kappa_bar", kappa_bar)
    gamma = check_positive("gamma", gamma)
    counting = np.sqrt(kappa_bar * d * k / (nu * gamma * N * n))
    penalised = (np.sqrt(d / N) + d / N) / (nu * gamma * n)
    return counting, penalised


@sourced(Source(_NIU, "two-phase subspace rate (named in the abstract; form reconstructed)", "[I]",
                False, _NIU_NOTE, kind="reconstruction", url=_NIU_URL, looked_in=_NIU_LOOKED))
def shared_subspace_two_phase_rate(
    n: Any, d: Any, k: Any, N: Any, *, nu: Any = 1.0, kappa_bar: Any = 1.0, gamma: Any = 1.0,
    C: Any = DEFAULT_C,
) -> float | np.ndarray:
    """Subspace error with both phases: ``C [sqrt(kappa_bar d k / (nu gamma N n))
    + (sqrt(d/N) + d/N) / (nu gamma n)]``.

    Reconstruction (not the paper's statement; Niu et al. name the phases but their formula was
    not available). Each user's data is split into two replicas whose local estimates are
    ``theta_i + xi_i`` and ``theta_i + xi_i'``, with ``Cov xi ~ I / (gamma n)``; the estimator is
    the top-``k`` eigenspace of ``M_hat = (1/N) sum_i (theta_i + xi_i)(theta_i + xi_i')^T``, whose
    mean ``(1/N) sum_i theta_i theta_i^T`` has ``k``-th eigenvalue ``nu`` and trace
    ``k nu kappa_bar``. By Davis-Kahan ``sin theta <= ||M_hat - M|| / nu``, and the deviation has

    * a signal x noise part ``||(1/N) sum_i theta_i xi_i^T|| ~ sqrt(k nu kappa_bar d / (gamma N n))``:
      the **parameter-counting** term ``sqrt(kappa_bar d k / (nu gamma N n))``, the rate of
      :func:`subspace_sin_theta_rate` (``d k`` parameters from ``N n`` comparisons);
    * a noise x noise part ``||(1/N) sum_i xi_i xi_i'^T|| ~ (sqrt(d/N) + d/N) / (gamma n)``: the
      **penalised** term, which falls like ``1/n`` rather than ``1/sqrt(n)`` and, at a fixed total
      ``N n``, grows with ``N`` (``sqrt(d N) / (N n)``): large when local data are small or, for
      a given budget, when the users are many, as the abstract says.

    The penalised term dominates below :func:`shared_subspace_phase_boundary`.

    Parameters
    ----------
    n : float or array_like
        Comparisons per user, >= 1.
    d : int or array_like
        Feature dimension, integer >= 1.
    k : int or array_like
        Rank, integer in [1, d].
    N : int or array_like
        Number of users, integer >= 1.
    nu, kappa_bar : float or array_like
        Task diversity (:func:`subspace_sin_theta_rate`), > 0.
    gamma : float or array_like
        Mean curvature of the comparisons, > 0 (default 1: rate only).
    C : float or array_like
        Constant > 0 (placeholder).

    Returns
    -------
    float or numpy.ndarray
    """
    counting, penalised = _two_phase_terms(n, d, k, N, nu, kappa_bar, gamma)
    return scalar_or_array(check_positive("C", C) * (counting + penalised))


@sourced(Source(_NIU, "phase boundary of the reconstructed two-phase rate", "[I]", False,
                "where the two terms of shared_subspace_two_phase_rate are equal (a "
                "reconstruction); the constant C cancels",
                kind="reconstruction", url=_NIU_URL, looked_in=_NIU_LOOKED))
def shared_subspace_phase_boundary(
    d: Any, k: Any, N: Any, *, nu: Any = 1.0, kappa_bar: Any = 1.0, gamma: Any = 1.0,
) -> float | np.ndarray:
    """Comparisons per user ``n*`` where the penalised term equals the parameter-counting term.

    ``n* = (1 + sqrt(d/N))^2 / (nu gamma kappa_bar k)``; the ratio penalised / counting is
    ``sqrt(n* / n)``, so the local slope of the two-phase rate in ``n`` is
    ``-(1/2 + r) / (1 + r)`` with ``r = sqrt(n*/n)``: ``-1/2`` deep in the counting phase
    (``n >> n*``), ``-1`` deep in the penalised one. It stays within 0.1 of ``-1/2`` for
    ``n >= 16 n*`` (``r <= 1/4``).

    Parameters
    ----------
    d, k, N, nu, kappa_bar, gamma
        As in :func:`shared_subspace_two_phase_rate`.

    Returns
    -------
    float or numpy.ndarray
    """
    counting, penalised = _two_phase_terms(1.0, d, k, N, nu, kappa_bar, gamma)
    return scalar_or_array((penalised / counting) ** 2)


@sourced(Source(_NIU, "phase of a grid point under the reconstructed two-phase rate", "[I]",
                False, "parameter counting where n >= n*, penalised below it (a reconstruction)",
                kind="reconstruction", url=_NIU_URL, looked_in=_NIU_LOOKED))
def shared_subspace_phase(
    n: Any, d: Any, k: Any, N: Any, *, nu: Any = 1.0, kappa_bar: Any = 1.0, gamma: Any = 1.0,
) -> str | np.ndarray:
    """``"parameter counting"`` where ``n >= n*`` (:func:`shared_subspace_phase_boundary`),
    ``"penalised"`` below it.

    Parameters
    ----------
    n : float or array_like
        Comparisons per user, >= 1.
    d, k, N, nu, kappa_bar, gamma
        As in :func:`shared_subspace_two_phase_rate`.

    Returns
    -------
    str or numpy.ndarray of str
        One of :data:`PHASES` per point.
    """
    n = check_at_least_one("n", n)
    n_star = shared_subspace_phase_boundary(d, k, N, nu=nu, kappa_bar=kappa_bar, gamma=gamma)
    phase = np.where(n >= n_star, PARAMETER_COUNTING, PENALISED)
    return str(phase) if phase.ndim == 0 else phase
