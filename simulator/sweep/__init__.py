"""Parameter sweeps: declarative grids, order-independent seeds, resumable parquet results,
serial / process-pool / Dask execution with identical numbers.

>>> from simulator.sweep import run_sweep, load
>>> df = run_sweep("examples/sweeps/minority_n.toml", "results/minority_n")   # doctest: +SKIP
>>> df = load("results/minority_n")                                          # doctest: +SKIP

See :mod:`simulator.sweep.spec` for the spec format, :mod:`simulator.sweep.registry` for tasks
and metrics, :mod:`simulator.sweep.tasks` for the built-in tasks (the pipeline of
:mod:`simulator.experiment`), :mod:`simulator.sweep.store` for the shards and their checksums,
:mod:`simulator.sweep.check` for ``--dry-run``, :mod:`simulator.sweep.select` for part of a grid
(``--where``) and :mod:`simulator.sweep.errors` for user errors. Attributes are imported lazily so that ``python -m simulator --help`` stays fast.
"""

from __future__ import annotations

import importlib

__all__ = ["run_sweep", "run_cell", "load", "load_spec", "SweepSpec", "Cell", "SpecError",
           "SweepError", "UserError", "check_spec", "register_task", "register_metric",
           "get_task", "get_metric", "Task"]

_WHERE = {
    "run_sweep": "runner", "run_cell": "runner",
    "load": "store", "SweepError": "store", "UserError": "errors", "check_spec": "check",
    "load_spec": "spec", "SweepSpec": "spec", "Cell": "spec", "SpecError": "errors",
    "register_task": "registry", "register_metric": "registry", "get_task": "registry",
    "get_metric": "registry", "Task": "registry",
}


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
