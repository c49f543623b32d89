"""Input checks shared by the bound functions.

Every check accepts a scalar or an array (bounds are vectorised over numpy arrays so that figure
scripts can evaluate them on a grid) and raises ``ValueError`` naming the parameter and the
allowed range when any element is outside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_at_least_one",
    "check_delta",
    "check_dimension",
    "check_nonnegative",
    "check_positive",
    "check_proportion",
    "check_rank",
    "check_unit_interval_closed",
    "scalar_or_array",
]


def as_float_array(name: str, value: Any) -> np.ndarray:
    """Convert ``value`` to a float array; reject booleans, non-numbers and non-finite entries."""
    if isinstance(value, (bool, np.bool_)):
        # ValueError on purpose: every bad parameter value raises ValueError (house rule).
        raise ValueError(f"{name} must be a number, got a bool ({value!r})")  # noqa: TRY004
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


def _fail(name: str, allowed: str, arr: np.ndarray, bad: np.ndarray) -> None:
    example = arr[bad].flat[0] if arr.ndim else float(arr)
    raise ValueError(f"{name} must be in {allowed}, got {example!r}")


def check_at_least_one(name: str, value: Any) -> np.ndarray:
    """Real number(s) >= 1 (e.g. a sample size ``n``; non-integer grids are allowed)."""
    arr = as_float_array(name, value)
    bad = arr < 1
    if np.any(bad):
        _fail(name, "[1, inf)", arr, bad)
    return arr


def check_dimension(name: str, value: Any) -> np.ndarray:
    """Integer-valued number(s) >= 1 (a dimension, rank, or count of users/groups)."""
    arr = as_float_array(name, value)
    bad = (arr < 1) | (arr != np.round(arr))
    if np.any(bad):
        _fail(name, "the integers >= 1", arr, bad)
    return arr


def check_rank(
    k: Any, d: Any, k_name: str = "k", d_name: str = "d"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer ranks with ``1 <= k <= d`` (broadcast elementwise)."""
    k_arr = check_dimension(k_name, k)
    d_arr = check_dimension(d_name, d)
    kb, db = np.broadcast_arrays(k_arr, d_arr)
    bad = kb > db
    if np.any(bad):
        raise ValueError(
            f"{k_name} must be in [1, {d_name}], got {k_name}={kb[bad].flat[0]!r} > "
            f"{d_name}={db[bad].flat[0]!r}"
        )
    return k_arr, d_arr


def check_proportion(name: str, value: Any) -> np.ndarray:
    """Proportion(s) in (0, 1] (e.g. a group share ``eta``)."""
    arr = as_float_array(name, value)
    bad = (arr <= 0) | (arr > 1)
    if np.any(bad):
        _fail(name, "(0, 1]", arr, bad)
    return arr


def check_unit_interval_closed(name: str, value: Any) -> np.ndarray:
    """Number(s) in [0, 1] (e.g. a total-variation distance)."""
    arr = as_float_array(name, value)
    bad = (arr < 0) | (arr > 1)
    if np.any(bad):
        _fail(name, "[0, 1]", arr, bad)
    return arr


def check_delta(name: str, value: Any) -> np.ndarray:
    """Failure probability in the open interval (0, 1)."""
    arr = as_float_array(name, value)
    bad = (arr <= 0) | (arr >= 1)
    if np.any(bad):
        _fail(name, "(0, 1)", arr, bad)
    return arr


def check_positive(name: str, value: Any) -> np.ndarray:
    """Strictly positive real number(s)."""
    arr = as_float_array(name, value)
    bad = arr <= 0
    if np.any(bad):
        _fail(name, "(0, inf)", arr, bad)
    return arr


def check_nonnegative(name: str, value: Any) -> np.ndarray:
    """Non-negative real number(s)."""
    arr = as_float_array(name, value)
    bad = arr < 0
    if np.any(bad):
        _fail(name, "[0, inf)", arr, bad)
    return arr


def scalar_or_array(result: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d results, the array otherwise."""
    result = np.asarray(result, dtype=float)
    return float(result) if result.ndim == 0 else result
