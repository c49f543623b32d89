"""Where an asymptotic rate may be judged: the sample size at which a fit's ``1/n`` rate is its
local slope, and the Bradley–Terry curvature that sets it.

A rate such as ``E||theta_hat - theta*||^2 ~ p / (gamma n)`` is the first term of an expansion.
Two corrections move the measured log-log slope away from it at finite ``n``:

* the next order of the M-estimator's expansion, of relative size ``~ p / (gamma n)`` (``p``
  parameters, ``gamma n`` the Fisher information per direction; the logistic MLE's error grows
  without bound as ``p / n`` approaches a constant, Sur & Candès 2019);
* a ridge ``lam`` on the summed objective, which shrinks a fit by ``gamma n / (gamma n + lam)``
  and changes the variance's local slope by ``2 r / (1 + r)``, ``r = lam / (gamma n)``.

With ``r = max(p, 2 lam) / (gamma n)`` the local slope differs from the asymptotic one by about
``r / (1 + r)``; :data:`ASYMPTOTIC_C` = 10 (``r <= 0.1``) keeps that below the 0.1 tolerance the
figures put on an exponent (:data:`theory.verdicts.DEFAULT_EXPONENT_TOL`). The constant of the
next-order term is not known, so the boundary is a scale, not a sharp threshold: it is tagged a
derived approximation, and chosen before looking at any figure's verdicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import check_nonnegative, check_positive, scalar_or_array
from .provenance import Source, sourced

__all__ = ["ASYMPTOTIC_C", "MAX_CURVATURE", "asymptotic_min_n", "gaussian_bt_curvature"]

ASYMPTOTIC_C = 10.0
"""``gamma n >= ASYMPTOTIC_C max(p, 2 lam)``: the relative correction is at most 1/10."""

MAX_CURVATURE = 0.25
"""``sigma'(z) <= 1/4``: the largest curvature a BT comparison can have (at ``z = 0``). Used
where a figure has no measured ``gamma``: a cell outside the regime at ``gamma = 1/4`` is outside
at any ``gamma``; one inside may still be outside at its true, smaller ``gamma``."""

_REGIME_NOTE = ("the next-order constant is unknown: the boundary is a scale chosen so that the "
                "correction to the exponent stays below the 0.1 tolerance, not a theorem")


@sourced(
    Source(
        "derived for the simulator",
        "second-order expansion of an M-estimator's error and ridge shrinkage",
        "[D]",
        False,
        _REGIME_NOTE,
        kind="derived approximation",
        looked_in="theory/regimes.py module docstring (local expansion); Sur & Candes 2019 for "
                  "the p/n blow-up of the logistic MLE",
    )
)
def asymptotic_min_n(
    p: Any, *, gamma: Any = MAX_CURVATURE, lam: Any = 0.0, c: Any = ASYMPTOTIC_C
) -> float | np.ndarray:
    """Smallest sample size of one fit at which its asymptotic ``1/n`` rate may be judged.

    ``n_min = c max(p, 2 lam) / gamma``: below it the next-order term (relative size
    ``p / (gamma n)``) or the ridge's shrinkage (``2 lam / (gamma n)``) moves the local log-log
    slope by more than about ``1 / c`` (module docstring).

    Parameters
    ----------
    p : float or array_like
        Parameters the fit estimates (``d`` for a per-group MLE, ``k`` with a known basis), > 0.
    gamma : float or array_like
        Curvature ``E[sigma'(theta^T x)]`` of the comparisons, in (0, 1/4] (default 1/4, the
        largest, which gives the smallest ``n_min``).
    lam : float or array_like
        Ridge on the summed objective, >= 0.
    c : float or array_like
        Ratio of the first-order to the next-order term asked for, > 0 (default 10).

    Returns
    -------
    float or numpy.ndarray
        ``n_min`` (comparisons of that one fit).
    """
    p = check_positive("p", p)
    gamma = check_positive("gamma", gamma)
    if np.any(gamma > MAX_CURVATURE):
        raise ValueError(f"gamma must be in (0, {MAX_CURVATURE}] (sigma' <= 1/4); got {gamma}")
    lam = check_nonnegative("lam", lam)
    c = check_positive("c", c)
    return scalar_or_array(c * np.maximum(p, 2.0 * lam) / gamma)


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(80)


@sourced(
    Source(
        "derived for the simulator",
        "gamma = E[sigma'(||theta|| s Z)], Z ~ N(0, 1), for Gaussian comparison features",
        "[D]",
        False,
        "exact for x ~ N(0, s^2 I): theta^T x ~ N(0, s^2 ||theta||^2); Gauss-Hermite quadrature "
        "(80 nodes)",
        looked_in="exact identity (rotation invariance of N(0, I))",
    )
)
def gaussian_bt_curvature(theta_norm: Any, *, scale: Any = 1.0,
                          temperature: Any = 1.0) -> float | np.ndarray:
    """Mean BT curvature ``E[sigma'(theta^T x / T)]`` for ``x ~ N(0, scale^2 I)``.

    Depends on ``theta`` through ``||theta|| scale / T`` only; ``1/4`` at ``theta = 0``.

    Parameters
    ----------
    theta_norm : float or array_like
        ``||theta||_2``, >= 0.
    scale : float or array_like
        Feature scale ``s`` (``x = s N(0, I)``), > 0.
    temperature : float or array_like
        BT temperature ``T``, > 0.

    Returns
    -------
    float or numpy.ndarray
        The curvature, in (0, 1/4].
    """
    norm = check_nonnegative("theta_norm", theta_norm)
    s = check_positive("scale", scale) / check_positive("temperature", temperature)
    z = (norm * s)[..., None] * _GH_NODES
    sig = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    vals = (sig * (1.0 - sig)) @ _GH_WEIGHTS / np.sqrt(2.0 * np.pi)
    return scalar_or_array(np.minimum(vals, MAX_CURVATURE))  # quadrature rounds 1/4 up at 0
