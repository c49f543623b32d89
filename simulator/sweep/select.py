"""Part of a grid: the cells whose axis values (and replicate) are among those asked for.

A long sweep can be split by grid point across sittings or machines without changing a number:
``run_sweep(spec, out, where={"N": 10000})`` (``--where N=10000`` on the command line) runs only
the matching cells, in the same folder, under the same manifest; each cell keeps its id and seed,
which depend on its parameters only (:mod:`simulator.sweep.spec`). A later run without ``where``
(``--resume``) skips them and computes the rest.

``where`` maps an axis name (a dotted parameter path of ``[axes]`` or of a ``[[zip]]`` table) or
``"replicate"`` to one value or a list of values. Values are compared with the grid's own: a
string from the command line matches a number of equal value (``"1"`` matches ``1.0``), a
boolean written ``true`` / ``false``, or a table / list written as its canonical JSON.
"""

from __future__ import annotations

import math
import numbers

from .errors import SpecError, UserError
from .spec import canonical_json

__all__ = ["parse_where", "check_where", "select_cells", "describe_where"]

REPLICATE = "replicate"


def parse_where(items) -> dict:
    """``["N=10000", "alpha=0.1,1"]`` -> ``{"N": ["10000"], "alpha": ["0.1", "1"]}``.

    A name given twice keeps the values of both. Values stay strings; :func:`check_where`
    matches them against the grid.
    """
    out: dict[str, list] = {}
    for item in items or ():
        name, sep, values = str(item).partition("=")
        name = name.strip()
        parts = [v.strip() for v in _split(values)]
        if not sep or not name or not parts:
            raise UserError(f"--where {item!r}: expected NAME=VALUE[,VALUE...]",
                            hint="e.g. --where N=10000 or --where replicate=0,1")
        out.setdefault(name, []).extend(parts)
    return out


def _split(text: str) -> list[str]:
    """Split on the commas outside brackets and braces (a JSON table or list is one value)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _axis_values(spec) -> dict:
    """Axis name -> its distinct values in grid order (zip columns included)."""
    values = {name: list(v) for name, v in spec.axes.items()}
    for z in spec.zips:
        for name, column in z.items():
            seen = {}
            for v in column:
                seen.setdefault(canonical_json(v), v)
            values[name] = list(seen.values())
    return values


def _matches(given, value) -> bool:
    """Whether ``given`` (a grid value, or a string from the command line) names ``value``."""
    if isinstance(given, str) and not isinstance(value, str):
        if isinstance(value, bool):
            return given.strip().lower() == str(value).lower()
        if isinstance(value, numbers.Real):
            try:
                g = float(given)
            except ValueError:
                return False
            return g == float(value) or (math.isnan(g) and math.isnan(float(value)))
        return given.strip() == canonical_json(value)
    if isinstance(value, bool) or isinstance(given, bool):
        return isinstance(value, bool) and isinstance(given, bool) and given == value
    if isinstance(given, numbers.Real) and isinstance(value, numbers.Real):
        return float(given) == float(value)
    return canonical_json(given) == canonical_json(value)


def check_where(spec, where) -> dict:
    """Validate ``where`` against ``spec``: name -> the list of grid values it selects.

    Raises :class:`SpecError` naming the parameter and what is allowed: an unknown axis, a
    value that is not on the grid, a replicate out of range.
    """
    if where is None:
        return {}
    if not isinstance(where, dict):
        raise SpecError("where", f"must be a dict of axis name -> value(s); "
                                 f"got {type(where).__name__}")
    axes = _axis_values(spec)
    out = {}
    for name, given in where.items():
        wanted = list(given) if isinstance(given, (list, tuple, set)) else [given]
        if not wanted:
            raise SpecError(f"where.{name}", "needs at least one value")
        if name == REPLICATE:
            allowed = list(range(spec.replicates))
        elif name in axes:
            allowed = axes[name]
        else:
            names = sorted(axes) + [REPLICATE]
            raise SpecError(f"where.{name}", f"is not an axis of this grid; choose from "
                                             f"{names}")
        picked = []
        for g in wanted:
            hits = [v for v in allowed if _matches(g, v)]
            if not hits:
                shown = ", ".join(repr(v) for v in allowed[:20])
                more = f" (and {len(allowed) - 20} more)" if len(allowed) > 20 else ""
                raise SpecError(f"where.{name}", f"{g!r} is not one of the grid's values "
                                                 f"[{shown}]{more}")
            picked.extend(h for h in hits
                          if canonical_json(h) not in {canonical_json(p) for p in picked})
        out[name] = picked
    return out


def select_cells(spec, cells, where) -> list:
    """The cells of ``cells`` that ``where`` selects (all of them when ``where`` is empty);
    :class:`SpecError` when it selects none."""
    chosen = check_where(spec, where)
    if not chosen:
        return list(cells)
    keys = {name: {canonical_json(v) for v in vals} for name, vals in chosen.items()}

    def keep(cell) -> bool:
        for name, allowed in keys.items():
            value = cell.replicate if name == REPLICATE else cell.axis_values.get(name)
            if canonical_json(value) not in allowed:
                return False
        return True

    picked = [c for c in cells if keep(c)]
    if not picked:
        raise SpecError("where", f"{describe_where(chosen)} selects no cell of this grid "
                                 "(zipped axes take their values together)")
    return picked


def describe_where(where) -> str:
    """``N=10000 alpha=0.1,1`` (the command-line form)."""
    return " ".join(f"{name}=" + ",".join(v if isinstance(v, str) else canonical_json(v)
                                          for v in (vals if isinstance(vals, (list, tuple))
                                                    else [vals]))
                    for name, vals in (where or {}).items())
