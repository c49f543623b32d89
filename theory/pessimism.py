"""Greedy MLE on a coverage-deficient bandit: the limit of its failure probability (fig8's design).

Design (``figures/fig8_pessimism.py``): arms ``phi(a0) = 0``, ``phi(a1) = e_1``, ``phi(a2) = e_2``;
``n - m`` comparisons (a0, a1) and a fixed number ``m`` of comparisons (a0, a2), whatever ``n``;
``theta* = (theta_1, theta_2)`` with ``theta_1 > theta_2 > 0`` (a1 best); the MLE is constrained to
``||theta||_2 <= B`` (Zhu, Jordan & Jiao's ``Theta_B`` without ``<1, theta> = 0``).

As ``n -> inf``, ``theta_hat_1 -> theta_1`` while ``theta_hat_2`` keeps depending on the ``m``
uncovered labels only [D]: with ``k ~ Binomial(m, sigma(theta_2))`` wins of a2, ``theta_hat_2 =
clip(logit(k / m), -r, r)``, ``r = sqrt(B^2 - theta_1^2)`` (``+-r`` for ``k = m`` / ``k = 0``: the
likelihood pushes to the boundary). Greedy plays a2 iff ``theta_hat_2 > theta_1``, so its
suboptimality does not vanish (the phenomenon of Zhu et al. Theorem 3.9):

    lim_n E SubOpt(greedy) = (theta_1 - theta_2) * P(theta_hat_2 > theta_1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, logit
from scipy.stats import binom

from ._validate import check_positive
from .provenance import Source, sourced

__all__ = ["greedy_failure_limit"]


@sourced(
    Source(
        "research notes",
        "derived for fig8's design; the phenomenon of Zhu, Jordan & Jiao 2023 Theorem 3.9",
        "[D]",
        False,
        "exact n -> inf limit for this design (the covered coordinate is pinned to theta_1); "
        "not a theorem of the paper",
        looked_in="derived for fig8 (theory/pessimism.py docstring); tested against the n -> inf fit",
    )
)
def greedy_failure_limit(theta_1: Any, theta_2: Any, m: int, B: Any) -> tuple[float, float]:
    """``(P(greedy plays a2), E SubOpt(greedy))`` in the limit ``n -> inf`` (module docstring).

    Parameters
    ----------
    theta_1, theta_2 : float
        True rewards of the covered and the uncovered arm, ``theta_1 > theta_2 > 0``.
    m : int
        Number of comparisons of the uncovered arm, >= 1.
    B : float
        Norm bound of the constrained MLE, ``B > theta_1``.

    Returns
    -------
    (float, float)
    """
    t1, t2 = float(theta_1), float(theta_2)
    B = float(check_positive("B", B))
    if not t1 > t2 > 0:
        raise ValueError(f"need theta_1 > theta_2 > 0; got {t1!r}, {t2!r}")
    if B <= t1:
        raise ValueError(f"B must exceed theta_1 = {t1!r}; got {B!r}")
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"m must be an int >= 1; got {m!r}")
    m = int(m)
    r = np.sqrt(B**2 - t1**2)
    k = np.arange(m + 1)
    with np.errstate(divide="ignore"):
        th2 = np.clip(logit(k / m), -r, r)
    p = float(np.sum(binom.pmf(k, m, expit(t2)) * (th2 > t1)))
    return p, p * (t1 - t2)
