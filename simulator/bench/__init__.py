"""Benchmarks: ``python -m simulator bench NAME``; each prints our time beside its peers'.

Speed is measured here, never in timed tests. Each benchmark is a function
``run(quick: bool, seed: int) -> list[dict]`` registered in :data:`BENCHMARKS`; rows carry the
times, ratios and the targets with whether each is met.

Benchmarks registered with ``explicit=True`` (``reproduce``, ``coldstart``: minutes; ``fewshot``)
run only when named, never under ``all``. Each benchmark loads or compiles its numba kernels before timing and reports that
first-call time separately (``compile_s``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

__all__ = ["BENCHMARKS", "run_benchmarks", "register"]

BENCHMARKS: dict = {}
EXPLICIT: set = set()  # run only when named (not part of "all")


def register(name, explicit: bool = False):
    def deco(fn):
        BENCHMARKS[name] = fn
        if explicit:
            EXPLICIT.add(name)
        return fn
    return deco


_MODULES = ("mle", "batched", "sharedrep", "em", "policy", "reproduce", "many_users", "coldstart",
            "fewshot", "arena")


def _load_all():
    # Each module registers itself on import.
    import importlib

    for name in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


def run_benchmarks(names, quick: bool = False, seed: int = 0, json_path=None, out=print):
    """Run the named benchmarks ("all" for every one), print a table each, return all rows."""
    _load_all()
    if "all" in names:
        names = [n for n in BENCHMARKS if n not in EXPLICIT] + [
            n for n in names if n != "all" and n in EXPLICIT]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)} or 'all'")
    results = {}
    for name in names:
        t0 = time.perf_counter()
        rows = BENCHMARKS[name](quick=quick, seed=seed, out=out)
        out(f"[{name}] finished in {time.perf_counter() - t0:.1f} s\n")
        results[name] = rows
    if json_path is not None:
        Path(json_path).write_text(json.dumps(_jsonable(results), indent=2, allow_nan=False))
    return results


def _jsonable(obj):
    """Plain JSON types: numpy scalars and arrays unwrapped, NaN / inf written as null."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def best_of(fn, repeats):
    """(shortest wall time of ``repeats`` calls of ``fn``, the last call's result)."""
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def print_targets(targets, out=print):
    """Print ``[(text, ok)]`` as ``target: TEXT: met / NOT met``; returns ``{text: ok}``."""
    for text, ok in targets:
        out(f"  target: {text}: {'met' if ok else 'NOT met'}")
    return {text: bool(ok) for text, ok in targets}


def format_table(rows, columns) -> str:
    """Plain fixed-width table of ``rows`` (dicts) over ``columns`` [(key, header, fmt)]."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("" if r.get(k) is None else fmt.format(r[k])) for k, _, fmt in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells)
