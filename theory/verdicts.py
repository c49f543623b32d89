"""Three-way verdicts ("holds" / "does not hold" / "inconclusive") from a measured interval.

All rules take a confidence interval ``[ci_low, ci_high]`` for the measured quantity (e.g. from
:func:`theory.fitting.fit_loglog_slope` or :func:`theory.fitting.bootstrap_ci`) and never look at the
point estimate alone. A missing interval (NaN in either end) is always ``"inconclusive"``.

Rule for a predicted value (exponent, ratio) — equivalence testing
------------------------------------------------------------------
A prediction is a value ``p`` together with a tolerance band ``[p - t, p + t]``,
``t = atol + rtol * |p|``: the smallest discrepancy that would matter scientifically (e.g. an
exponent off by 0.1; finite-n corrections and log factors hidden in ``O~`` are below it).

* **holds** if the whole CI lies inside the band: the data exclude every meaningful departure
  (this is the two one-sided tests (TOST) equivalence decision; with a 95 % CI each one-sided test
  is at level 2.5 %, i.e. conservative).
* **does not hold** if the CI and the band are disjoint: the data exclude every value within
  tolerance of the prediction.
* **inconclusive** otherwise — the CI straddles an edge of the band, i.e. it is too wide to decide
  (more seeds, a wider or longer ``x`` grid) or the departure is borderline.

Outside the regime of validity
------------------------------
A rate is a statement under a condition (``n >> d``, ``epsilon`` small, a phase of Niu et al.):
a measurement taken where the condition fails tests nothing. Claims carry their condition
(:class:`theory.claims.Claim` ``regime``); a measurement whose points lie outside it is reported
as **outside regime**, with the value and CI still shown and the plain rule's verdict in the note,
instead of "does not hold".

Simply asking "is ``p`` inside the CI" is not used: it rewards imprecision (a very wide CI would
"confirm" anything) and punishes precision (with many seeds a tiny, irrelevant finite-n bias would
"refute" the rate).

Rules for inequalities
----------------------
* ``measured <= bound`` (:func:`verdict_upper_bound`): holds if ``ci_high <= bound``; does not
  hold if ``ci_low > bound``; else inconclusive.
* ``measured >= bound`` (:func:`verdict_lower_bound`): holds if ``ci_low >= bound``; does not
  hold if ``ci_high < bound``; else inconclusive.
* ``A < B`` (:func:`verdict_less_than`), given a CI of the **paired** difference ``A - B`` over the
  same seeds: holds if ``ci_high < 0``; does not hold if ``ci_low >= 0``; else inconclusive.
  (Overlap of two separate CIs is not a test; use the paired difference.)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DEFAULT_EXPONENT_TOL",
    "DOES_NOT_HOLD",
    "HOLDS",
    "INCONCLUSIVE",
    "OUTSIDE_REGIME",
    "VERDICTS",
    "verdict_exponent",
    "verdict_less_than",
    "verdict_lower_bound",
    "verdict_upper_bound",
    "verdict_value",
]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
OUTSIDE_REGIME = "outside regime"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, OUTSIDE_REGIME)

DEFAULT_EXPONENT_TOL = 0.1
"""Default tolerance on an exponent: an error of 0.1 in a slope of -1/2 or -1 is the smallest
departure we treat as meaningful over a 1-2 decade sweep (log factors such as ``log n`` change
the local slope by ~1/log(n) ~ 0.1-0.15 at n ~ 1e3 and would otherwise 'refute' rates that hide
them in ``O~``)."""


def _interval(ci_low: Any, ci_high: Any) -> tuple[float, float] | None:
    try:
        lo, hi = float(ci_low), float(ci_high)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"ci_low and ci_high must be numbers, got {ci_low!r}, {ci_high!r}"
        ) from exc
    if math.isnan(lo) or math.isnan(hi):
        return None
    if lo > hi:
        raise ValueError(f"ci_low must be <= ci_high, got [{lo}, {hi}]")
    return lo, hi


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def verdict_value(
    predicted: Any, ci_low: Any, ci_high: Any, *, atol: float = 0.0, rtol: float = 0.0
) -> str:
    """Equivalence verdict for a predicted value (see the module docstring).

    Parameters
    ----------
    predicted : float
        Predicted value ``p`` (finite).
    ci_low, ci_high : float
        Confidence interval of the measured value (NaN -> ``"inconclusive"``).
    atol, rtol : float
        Tolerance half-width ``t = atol + rtol * |p|``, both >= 0. With ``t = 0`` the claim can only
        "hold" for a degenerate CI ``[p, p]``.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    p = _finite("predicted", predicted)
    atol = _finite("atol", atol)
    rtol = _finite("rtol", rtol)
    if atol < 0:
        raise ValueError(f"atol must be in [0, inf), got {atol}")
    if rtol < 0:
        raise ValueError(f"rtol must be in [0, inf), got {rtol}")
    iv = _interval(ci_low, ci_high)
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv
    t = atol + rtol * abs(p)
    band_lo, band_hi = p - t, p + t
    if band_lo <= lo and hi <= band_hi:
        return HOLDS
    if hi < band_lo or lo > band_hi:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def verdict_exponent(
    predicted: Any, ci_low: Any, ci_high: Any, *, tol: float = DEFAULT_EXPONENT_TOL
) -> str:
    """Verdict on a predicted exponent: :func:`verdict_value` with absolute tolerance ``tol``.

    Parameters
    ----------
    predicted : float
        Predicted exponent (e.g. -0.5 for ``sqrt(1/n)``, -1 for a squared error).
    ci_low, ci_high : float
        CI of the fitted slope (:class:`theory.fitting.SlopeFit`).
    tol : float
        Absolute tolerance >= 0 (default :data:`DEFAULT_EXPONENT_TOL` = 0.1).

    Returns
    -------
    str
    """
    return verdict_value(predicted, ci_low, ci_high, atol=tol, rtol=0.0)


def verdict_upper_bound(ci_low: Any, ci_high: Any, bound: Any) -> str:
    """Verdict on ``measured <= bound``.

    Parameters
    ----------
    ci_low, ci_high : float
        CI of the measured quantity (NaN -> ``"inconclusive"``).
    bound : float
        The bound (finite).

    Returns
    -------
    str
        ``"holds"`` if ``ci_high <= bound``, ``"does not hold"`` if ``ci_low > bound``,
        ``"inconclusive"`` otherwise.
    """
    b = _finite("bound", bound)
    iv = _interval(ci_low, ci_high)
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv
    if hi <= b:
        return HOLDS
    if lo > b:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def verdict_lower_bound(ci_low: Any, ci_high: Any, bound: Any) -> str:
    """Verdict on ``measured >= bound``.

    Parameters
    ----------
    ci_low, ci_high : float
        CI of the measured quantity (NaN -> ``"inconclusive"``).
    bound : float
        The bound (finite).

    Returns
    -------
    str
        ``"holds"`` if ``ci_low >= bound``, ``"does not hold"`` if ``ci_high < bound``,
        ``"inconclusive"`` otherwise.
    """
    b = _finite("bound", bound)
    iv = _interval(ci_low, ci_high)
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv
    if lo >= b:
        return HOLDS
    if hi < b:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def verdict_less_than(diff_ci_low: Any, diff_ci_high: Any) -> str:
    """Verdict on ``A < B`` from a CI of the paired difference ``A - B``.

    Parameters
    ----------
    diff_ci_low, diff_ci_high : float
        CI of ``A - B`` computed over the same seeds (e.g.
        ``theory.fitting.bootstrap_ci(a_by_seed - b_by_seed)``).

    Returns
    -------
    str
        ``"holds"`` if ``diff_ci_high < 0``, ``"does not hold"`` if ``diff_ci_low >= 0``,
        ``"inconclusive"`` otherwise.
    """
    iv = _interval(diff_ci_low, diff_ci_high)
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv
    if hi < 0:
        return HOLDS
    if lo >= 0:
        return DOES_NOT_HOLD
    return INCONCLUSIVE
