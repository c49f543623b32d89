"""One validation layer: declared constraints per parameter, strict types, named errors.

In the spirit of scikit-learn's ``_parameter_constraints``: every public function and class of
the data layer (:mod:`~simulator.population`, :mod:`~simulator.data`, :mod:`~simulator.arms`,
:mod:`~simulator.metrics`) and every estimator's hyperparameters are checked here, so that a bad
argument fails the same way everywhere:

* **Types are strict.** No silent coercion: ``2.5`` is not an integer (not 2), ``"3"`` is not a
  number (not 3), ``True`` is neither, a complex array is not a real one (not truncated to its
  real part), a string array is not a numeric one. numpy scalars (``np.int64``, ``np.float32``)
  are accepted where their Python counterparts are.
* **Every message names the parameter** with its own name, the allowed values and what was
  given: ``"signal must be a finite number >= 0; got nan"``.
* **One exception type**, :class:`InvalidParameterError`, which is both a ``ValueError`` and a
  ``TypeError`` (as scikit-learn's), so callers may catch either.

Scalar checks return the value as a Python ``int`` / ``float`` / ``bool`` / the chosen option;
array checks return a float64 (or int64 for ids) array. Declarative tables map parameter names
to constraints (:class:`Int`, :class:`Real`, :class:`Choice`, :class:`Bool`, :class:`Str`,
:class:`Seed`, :class:`Custom`) and are applied by :func:`validate_params` (estimators declare
theirs as ``_parameter_constraints``; :meth:`~simulator.estimators.base.PreferenceEstimator.
_validate_params` applies it at the start of ``fit``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "InvalidParameterError",
    "check_int",
    "check_real",
    "check_bool",
    "check_str",
    "check_choice",
    "check_seed",
    "check_array",
    "check_ids",
    "check_probabilities",
    "validate_params",
    "Int",
    "Real",
    "Bool",
    "Str",
    "Choice",
    "Seed",
    "Custom",
]

#: Largest id accepted by :func:`check_ids` (ids are stored as int64).
MAX_ID = 2**62


class InvalidParameterError(ValueError, TypeError):
    """A bad argument: a ``ValueError`` and a ``TypeError`` at once (scikit-learn's convention),
    whose message names the parameter, what it must be and what it got."""


def _fmt(value) -> str:
    """``repr`` of a bad value, shortened for arrays and long containers."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def _range_text(low, high, low_open, high_open, fmt=str) -> str:
    if low is not None and high is not None:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        return f" in {lo}{fmt(low)}, {fmt(high)}{hi}"
    if low is not None:
        return f" {'>' if low_open else '>='} {fmt(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {fmt(high)}"
    return ""


def _real_fmt(v) -> str:
    if isinstance(v, float) and v == math.pi:
        return "pi"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------- scalars
def check_int(value, name: str, *, low: int | None = None, high: int | None = None,
              allow_none: bool = False):
    """An integer (``int`` or numpy integer, not ``bool``, not a float such as ``2.0``) in
    ``[low, high]``; returns it as ``int`` (``None`` passes when ``allow_none``).

    Raises
    ------
    InvalidParameterError
        ``"{name} must be an integer >= {low}; got {value!r}"`` (or the range given).
    """
    if value is None and allow_none:
        return None
    if not _is_int(value) or (low is not None and value < low) or (
            high is not None and value > high):
        rng = _range_text(low, high, False, False)
        none = " or None" if allow_none else ""
        raise InvalidParameterError(f"{name} must be an integer{rng}{none}; got {_fmt(value)}")
    return int(value)


def check_real(value, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, finite: bool = True,
               allow_none: bool = False):
    """A real number (Python or numpy int / float; not ``bool``, ``str`` or complex) in the
    interval given by ``low`` / ``high`` (open ends with ``low_open`` / ``high_open``), finite
    unless ``finite=False`` (NaN is refused always); returns it as ``float``.

    Raises
    ------
    InvalidParameterError
        ``"{name} must be a finite number > 0; got nan"`` (or the range given).
    """
    if value is None and allow_none:
        return None
    ok = _is_real(value)
    if ok:
        v = float(value)
        ok = not math.isnan(v) and (not finite or math.isfinite(v))
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        kind = "a finite number" if finite else "a number"
        rng = _range_text(low, high, low_open, high_open, _real_fmt)
        none = " or None" if allow_none else ""
        raise InvalidParameterError(f"{name} must be {kind}{rng}{none}; got {_fmt(value)}")
    return v


def check_bool(value, name: str) -> bool:
    """``True`` or ``False`` (Python or numpy bool; not 0 / 1 or a string)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False; got {_fmt(value)}")
    return bool(value)


def check_str(value, name: str, *, allow_none: bool = False):
    """A string (``None`` passes when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        none = " or None" if allow_none else ""
        raise InvalidParameterError(f"{name} must be a string{none}; got {_fmt(value)}")
    return value


def check_choice(value, name: str, choices):
    """One of ``choices`` (compared by type and value, so ``1`` is not ``True`` and an array
    never matches); returns the matching option."""
    for c in choices:
        if c is None:
            if value is None:
                return None
            continue
        if isinstance(value, type(c)) and not isinstance(value, np.ndarray):
            try:
                if bool(value == c):
                    return c
            except (TypeError, ValueError):  # pragma: no cover (exotic __eq__)
                pass
    raise InvalidParameterError(f"{name} must be one of {tuple(choices)}; got {_fmt(value)}")


def check_seed(value, name: str = "seed"):
    """A seed as :func:`simulator.seeding.as_seed_sequence` takes it (int >= 0, SeedSequence or
    Generator), checked without drawing from it; returns it unchanged."""
    if isinstance(value, (np.random.SeedSequence, np.random.Generator)):
        return value
    if _is_int(value):
        if value < 0:
            raise InvalidParameterError(f"{name} must be a non-negative integer; got {value}")
        return value
    raise InvalidParameterError(
        f"{name} must be a non-negative int, a numpy.random.SeedSequence or a "
        f"numpy.random.Generator (None is not allowed); got {_fmt(value)}")


# --------------------------------------------------------------------------- arrays
def _as_numeric(value, name: str, *, allow_bool: bool) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise InvalidParameterError(f"{name} must be a numeric array; got {_fmt(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists, objects numpy refuses
        raise InvalidParameterError(f"{name} must be a numeric array; got {_fmt(value)} "
                                    f"({exc})") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise InvalidParameterError(f"{name} must be real-valued; got a complex array "
                                    f"(dtype {arr.dtype}); pass its real part explicitly")
    if kind == "b" and not allow_bool:
        raise InvalidParameterError(f"{name} must be a real-valued array; got dtype bool")
    if kind not in "biuf":
        raise InvalidParameterError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    return arr


def check_array(value, name: str, *, ndim: int | tuple[int, ...] | None = None,
                shape: tuple | None = None, finite: bool = True, nonneg: bool = False,
                positive: bool = False, min_rows: int | None = None,
                copy: bool = False) -> np.ndarray:
    """A real-valued array as float64 (a C-contiguous copy only when needed, or with ``copy``).

    Parameters
    ----------
    value : array-like
        Numbers (int or float; not complex, bool, strings or objects).
    name : str
        The parameter's name, used in every message.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any length (``(None, d)``).
    finite : bool, default True
        Refuse NaN and infinite entries (the message counts them).
    nonneg, positive : bool
        Entries ``>= 0`` / ``> 0``.
    min_rows : int, optional
        At least this many entries along axis 0.
    """
    arr = _as_numeric(value, name, allow_bool=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{k}-D" for k in allowed)
            raise InvalidParameterError(f"{name} must be a {want} array; got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a
                                         for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + \
                ("," if len(shape) == 1 else "") + ")"
            raise InvalidParameterError(f"{name} must have shape {want}; got {arr.shape}")
    if min_rows is not None and (arr.ndim == 0 or arr.shape[0] < min_rows):
        raise InvalidParameterError(f"{name} must have at least {min_rows} row(s); got shape "
                                    f"{arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True) if copy else \
        np.ascontiguousarray(arr, dtype=np.float64)
    # a finite sum proves every entry finite (a NaN or an inf would make it NaN or inf) and costs
    # one pass without a boolean temporary; only a non-finite sum (bad entries, or finite ones
    # large enough to overflow it) needs the entry-wise test
    if finite and not np.isfinite(arr.sum()) and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InvalidParameterError(f"{name} must be finite; it has {bad} NaN or infinite "
                                    f"entries")
    if positive and np.any(arr <= 0):
        raise InvalidParameterError(f"{name} must have entries > 0; min is {arr.min()!r}")
    if nonneg and np.any(arr < 0):
        raise InvalidParameterError(f"{name} must have entries >= 0; min is {arr.min()!r}")
    return arr


def check_ids(value, name: str, *, n: int | None = None, upper: int | None = None,
              upper_name: str | None = None, what: str = "ids") -> np.ndarray:
    """Non-negative integer ids (1-D) as int64.

    Integer arrays pass; float arrays pass only when every entry is an integer no larger than
    :data:`MAX_ID` (a parquet or pandas round-trip may give floats), so ``1e20`` is reported as
    out of range instead of wrapping around in int64. Booleans, strings, complex numbers and
    objects are refused.

    Parameters
    ----------
    n : int, optional
        Required length.
    upper : int, optional
        Ids must lie in ``[0, upper)``; ``upper_name`` names the bound in the message.
    """
    arr = _as_numeric(value, f"{name} {what}", allow_bool=True)
    if arr.dtype.kind == "b":
        raise InvalidParameterError(f"{name} {what} must be integers; got dtype bool")
    if arr.ndim != 1 or (n is not None and arr.shape != (n,)):
        want = f"({n},)" if n is not None else "(n,)"
        raise InvalidParameterError(f"{name} must have shape {want}; got {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InvalidParameterError(f"{name} {what} must be integers; got non-integer or "
                                        f"non-finite values")
        lo, hi = float(arr.min()), float(arr.max())
    else:
        lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise InvalidParameterError(f"{name} {what} must be >= 0; got min {_num(lo)}")
    cap = MAX_ID if upper is None else upper
    if hi >= cap:
        if upper is None:
            raise InvalidParameterError(f"{name} {what} are out of range: max {_num(hi)} "
                                        f"exceeds 2^62")
        bound = upper_name or "upper"
        raise InvalidParameterError(f"{name} {what} must lie in [0, {bound}) = [0, {upper}); "
                                    f"found id {_num(hi)}")
    return arr.astype(np.int64)


def _num(v) -> str:
    return str(int(v)) if float(v) == int(v) and abs(v) < 1e16 else f"{v:.6g}"


def check_probabilities(value, name: str, *, size: int | None = None,
                        positive: bool = True, atol: float = 1e-8) -> np.ndarray:
    """A probability vector (1-D, finite, entries > 0 or >= 0, summing to 1 within ``atol``),
    renormalised to sum to 1 exactly."""
    p = check_array(value, name, finite=False).ravel()
    if p.size < 1:
        raise InvalidParameterError(f"{name} must contain at least one entry")
    if size is not None and p.size != size:
        raise InvalidParameterError(f"{name} must have {size} entries; got {p.size}")
    bound = "positive (in (0, 1])" if positive else "non-negative"
    if not np.all(np.isfinite(p)):
        raise InvalidParameterError(f"{name} must be finite; got {p.tolist()}")
    if np.any(p <= 0) if positive else np.any(p < 0):
        raise InvalidParameterError(f"{name} must all be {bound}; got {p.tolist()}")
    if abs(p.sum() - 1.0) > atol:
        raise InvalidParameterError(f"{name} must sum to 1; they sum to {p.sum():.12g}")
    return p / p.sum()


# --------------------------------------------------------------------------- declarative tables
@dataclass(frozen=True)
class Int:
    """Constraint: :func:`check_int`."""

    low: int | None = None
    high: int | None = None
    none: bool = False

    def __call__(self, value, name):
        return check_int(value, name, low=self.low, high=self.high, allow_none=self.none)


@dataclass(frozen=True)
class Real:
    """Constraint: :func:`check_real`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False
    finite: bool = True

    def __call__(self, value, name):
        return check_real(value, name, low=self.low, high=self.high, low_open=self.low_open,
                          high_open=self.high_open, finite=self.finite, allow_none=self.none)


@dataclass(frozen=True)
class Bool:
    """Constraint: :func:`check_bool`."""

    def __call__(self, value, name):
        return check_bool(value, name)


@dataclass(frozen=True)
class Str:
    """Constraint: :func:`check_str`."""

    none: bool = False

    def __call__(self, value, name):
        return check_str(value, name, allow_none=self.none)


@dataclass(frozen=True)
class Choice:
    """Constraint: :func:`check_choice` over ``options``."""

    options: tuple

    def __call__(self, value, name):
        return check_choice(value, name, self.options)


@dataclass(frozen=True)
class Seed:
    """Constraint: :func:`check_seed`."""

    def __call__(self, value, name):
        return check_seed(value, name)


@dataclass(frozen=True)
class Custom:
    """Constraint: any ``fn(value, name) -> value`` that raises a named error."""

    fn: Callable

    def __call__(self, value, name):
        return self.fn(value, name)


def validate_params(params: dict, constraints: dict) -> dict:
    """Apply a table ``{name: constraint}`` to ``params`` (in the table's order); returns the
    validated values of the names in the table. Names missing from ``params`` are skipped."""
    out = {}
    for name, constraint in constraints.items():
        if name in params:
            out[name] = constraint(params[name], name)
    return out
