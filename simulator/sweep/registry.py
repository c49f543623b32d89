"""The registries of the sweep engine: tasks (what a cell computes) and metrics (what the
``estimation`` task reports), looked up by name or by ``"package.module:attribute"`` path.

A task is ``fn(params: dict, seed: numpy.random.SeedSequence) -> dict`` returning metrics
(numbers, strings, booleans or small lists); ``params`` is the cell's nested parameter dict. A
task may carry three optional attributes:

* ``fn.validate(params)`` — raise :class:`~simulator.sweep.errors.SpecError` (naming the key) or
  ``ValueError`` for parameters it cannot run; called for every cell before anything runs.
* ``fn.seed_ignore`` — parameter names (dotted) that do not enter the cell's seed by default
  (e.g. the estimators' hyperparameters: cells that differ only in them share their data).
* ``fn.check(params, seed)`` — a deeper check for ``sweep --dry-run``
  (:func:`simulator.sweep.check.check_spec`): build what the cell builds, without the expensive
  part, and raise ``SpecError`` / ``ValueError`` / ``TypeError`` if it cannot run.

The process-pool and Dask workers import a task by its name, so a task must live in an
importable module: the built-in ones (:mod:`simulator.sweep.tasks`: ``estimation``,
``experiment``) are known here by path and imported on first use, so this module imports no
task code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import SpecError

__all__ = ["BUILTIN_TASKS", "METRICS", "Task", "get_metric", "get_task", "register_metric",
           "register_task"]

# name -> "module:function" of the tasks that ship with the package
BUILTIN_TASKS = {"estimation": "simulator.sweep.tasks:estimation",
                 "experiment": "simulator.sweep.tasks:experiment"}


@dataclass(frozen=True)
class Task:
    name: str
    fn: Callable
    validate: Callable | None = None
    seed_ignore: tuple = ()
    check: Callable | None = None
    wants_replicate: bool = False

    def __call__(self, params, seed, replicate: int = 0):
        # the replicate index is passed only to tasks that ask for it (``fn.wants_replicate``):
        # e.g. to measure something once per grid point; every draw still flows from ``seed``
        if self.wants_replicate:
            return self.fn(params, seed, replicate)
        return self.fn(params, seed)


_TASKS: dict[str, Task] = {}
_RESOLVED: dict[str, Task] = {}


def _as_task(name: str, fn: Callable, validate=None, seed_ignore=(), check=None) -> Task:
    return Task(name, fn, validate if validate is not None else getattr(fn, "validate", None),
                tuple(seed_ignore or getattr(fn, "seed_ignore", ())),
                check if check is not None else getattr(fn, "check", None),
                bool(getattr(fn, "wants_replicate", False)))


def register_task(name: str, fn: Callable, *, validate: Callable | None = None,
                  seed_ignore=(), check: Callable | None = None) -> Task:
    """Register ``fn`` under ``name`` (only visible to workers that import the registering module:
    for the process pool and Dask prefer naming tasks by ``"module:function"``)."""
    if not name or ":" in name:
        raise ValueError(f"task names must be non-empty and contain no ':'; got {name!r}")
    if name in BUILTIN_TASKS:
        raise ValueError(f"task name {name!r} is a built-in task; choose another")
    t = _as_task(name, fn, validate, seed_ignore, check)
    _TASKS[name] = t
    return t


def import_path(ref: str, what: str):
    """The object named by ``"package.module:attribute[.attribute]"``."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} path must look like 'package.module:name'; got {ref!r}")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def get_task(ref) -> Task:
    """A :class:`Task` from a registered or built-in name or a ``"module:function"`` path."""
    if isinstance(ref, Task):
        return ref
    if ref in _TASKS:
        return _TASKS[ref]
    if ref in _RESOLVED:
        return _RESOLVED[ref]
    path = BUILTIN_TASKS.get(ref, ref)
    if isinstance(path, str) and ":" in path:
        obj = import_path(path, "task")
        if isinstance(obj, Task):
            t = obj
        elif callable(obj):
            t = _as_task(ref, obj)
        else:
            raise SpecError("sweep.task", f"{ref!r} is not callable")
        _RESOLVED[ref] = t
        return t
    raise SpecError("sweep.task", f"unknown task {ref!r}; built in: {sorted(BUILTIN_TASKS)}, "
                                  f"registered: {sorted(_TASKS)} (or give "
                                  "'package.module:function')")


# ------------------------------------------------------------------------------ metrics
# A metric is fn(estimator, population, data) -> number or small list; the built-in ones are
# registered by simulator.sweep.tasks (imported on first lookup, like the built-in tasks).
METRICS: dict[str, Callable] = {}


def register_metric(name: str, fn: Callable | None = None):
    """Register a metric ``fn(estimator, population, data)``; usable as a decorator."""
    def deco(f):
        METRICS[name] = f
        return f
    return deco(fn) if fn is not None else deco


def get_metric(name: str) -> Callable:
    """A metric by name: the registry (:func:`register_metric`, the built-in ones of
    :mod:`simulator.sweep.tasks`), or ``"module:function"``."""
    if name not in METRICS and ":" not in name:
        importlib.import_module("simulator.sweep.tasks")  # registers the built-in metrics
    if name in METRICS:
        return METRICS[name]
    if ":" in name:
        try:
            return import_path(name, "metric")
        except Exception as exc:
            raise SpecError("metrics", f"cannot load metric {name!r}: {exc}") from None
    raise SpecError("metrics", f"unknown metric {name!r}; known: {sorted(METRICS)} "
                               "(or give 'package.module:function')")
