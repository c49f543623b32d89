"""Task functions: what one cell computes.

A task is ``fn(params: dict, seed: numpy.random.SeedSequence) -> dict`` returning metrics
(numbers, strings, booleans or small lists). ``params`` is the cell's nested parameter dict.
A task may carry two optional attributes:

* ``fn.validate(params)`` — raise :class:`~simulator.sweep.spec.SpecError` (naming the key) or
  ``ValueError`` for parameters it cannot run; called for every cell before anything runs.
* ``fn.seed_ignore`` — parameter names (dotted) that do not enter the cell's seed by default
  (e.g. the estimators' hyperparameters: cells that differ only in them share their data).
* ``fn.check(params, seed)`` — a deeper check for ``sweep --dry-run``
  (:func:`simulator.sweep.check.check_spec`): build what the cell builds, without the expensive
  part, and raise ``SpecError`` / ``ValueError`` / ``TypeError`` if it cannot run (``estimation``
  builds the population and the data, constructs every estimator and runs its own validation
  against the data, without fitting).

Specs name a task by its registered name (``estimation``, ``toy``) or by dotted path
``"package.module:function"``; the process-pool and Dask workers import it by that name, so a
task must live in an importable module.

Built-in tasks:

* ``estimation`` — build a population (``Population.from_regime``), sample ``n`` comparisons,
  fit the named estimators and compute the named metrics; columns ``<estimator>.<metric>``.
* ``toy`` — cheap draws from the cell's seed; for tests and for trying the machinery.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .spec import SpecError, canonical_json

__all__ = ["Task", "register_task", "get_task", "register_metric", "get_metric", "METRICS",
           "estimation", "toy"]


@dataclass(frozen=True)
class Task:
    name: str
    fn: Callable
    validate: Callable | None = None
    seed_ignore: tuple = ()
    check: Callable | None = None

    def __call__(self, params, seed):
        return self.fn(params, seed)


_TASKS: dict[str, Task] = {}


def register_task(name: str, fn: Callable, *, validate: Callable | None = None,
                  seed_ignore=(), check: Callable | None = None) -> Task:
    """Register ``fn`` under ``name`` (only visible to workers that import the registering module:
    for the process pool and Dask prefer naming tasks by ``"module:function"``)."""
    if not name or ":" in name:
        raise ValueError(f"task names must be non-empty and contain no ':'; got {name!r}")
    t = Task(name, fn, validate if validate is not None else getattr(fn, "validate", None),
             tuple(seed_ignore or getattr(fn, "seed_ignore", ())),
             check if check is not None else getattr(fn, "check", None))
    _TASKS[name] = t
    return t


def _import_path(ref: str, what: str):
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} path must look like 'package.module:name'; got {ref!r}")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_RESOLVED: dict[str, Task] = {}


def get_task(ref) -> Task:
    """A :class:`Task` from a registered name or a ``"module:function"`` path."""
    if isinstance(ref, Task):
        return ref
    if ref in _TASKS:
        return _TASKS[ref]
    if ref in _RESOLVED:
        return _RESOLVED[ref]
    if isinstance(ref, str) and ":" in ref:
        obj = _import_path(ref, "task")
        if isinstance(obj, Task):
            t = obj
        elif callable(obj):
            t = Task(ref, obj, getattr(obj, "validate", None),
                     tuple(getattr(obj, "seed_ignore", ())), getattr(obj, "check", None))
        else:
            raise SpecError("sweep.task", f"{ref!r} is not callable")
        _RESOLVED[ref] = t
        return t
    raise SpecError("sweep.task", f"unknown task {ref!r}; registered: {sorted(_TASKS)} "
                                  "(or give 'package.module:function')")


# ------------------------------------------------------------------------------ metrics
# A metric is fn(estimator, population, data) -> number or small list.
METRICS: dict[str, Callable] = {}


def register_metric(name: str, fn: Callable | None = None):
    """Register a metric ``fn(estimator, population, data)``; usable as a decorator."""
    def deco(f):
        METRICS[name] = f
        return f
    return deco(fn) if fn is not None else deco


def _errors(est, pop, data):
    th = np.asarray(est.theta_, dtype=np.float64)
    truth = pop.theta
    if th.shape != truth.shape:
        raise ValueError(f"estimate has shape {th.shape}, the population's theta {truth.shape}")
    return np.linalg.norm(th - truth, axis=1)


register_metric("l2_error", lambda est, pop, data: _errors(est, pop, data).tolist())
register_metric("mean_error", lambda est, pop, data: float(_errors(est, pop, data).mean()))
register_metric("weighted_error",
                lambda est, pop, data: float(_errors(est, pop, data) @ pop.proportions))
register_metric("minority_error",
                lambda est, pop, data: float(_errors(est, pop, data)[pop.minority]))
register_metric("max_error", lambda est, pop, data: float(_errors(est, pop, data).max()))
register_metric("converged", lambda est, pop, data: bool(np.all(getattr(est, "converged_", True))))
register_metric("n_iter", lambda est, pop, data: int(np.sum(getattr(est, "n_iter_", 0))))


def get_metric(name: str) -> Callable:
    """A metric by name: the registry (:func:`register_metric`), or ``"module:function"``."""
    if name in METRICS:
        return METRICS[name]
    if ":" in name:
        try:
            return _import_path(name, "metric")
        except Exception as exc:
            raise SpecError("metrics", f"cannot load metric {name!r}: {exc}") from None
    raise SpecError("metrics", f"unknown metric {name!r}; known: {sorted(METRICS)} "
                               "(or give 'package.module:function')")


# --------------------------------------------------------------------------- estimation
_EST_KEYS = ("population", "n", "group_sampling", "estimators", "metrics")
_SEED_ARGS = ("seed", "random_state")


def _population_kwargs(regime):
    from ..population import Population

    ctor = getattr(Population, regime)
    names = {p.name for p in inspect.signature(ctor).parameters.values()
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(ctor).parameters.values()):
        names |= {p.name for p in inspect.signature(Population.__init__).parameters.values()
                  if p.kind == p.KEYWORD_ONLY and p.name not in ("name", "info")}
    return names


def _estimator_class(name: str, key: str):
    if ":" in name:
        try:
            cls = _import_path(name, "estimator")
        except Exception as exc:
            raise SpecError(key, f"cannot load estimator {name!r}: {exc}") from None
    else:
        from .. import estimators as E

        cls = getattr(E, name, None)
        if not (inspect.isclass(cls) and hasattr(cls, "fit")):
            known = sorted(n for n in getattr(E, "__all__", dir(E))
                           if inspect.isclass(getattr(E, n, None))
                           and issubclass(getattr(E, n), E.PreferenceEstimator)
                           and getattr(E, n) is not E.PreferenceEstimator)
            raise SpecError(key, f"unknown estimator {name!r}; known: {known}")
    if not (inspect.isclass(cls) and hasattr(cls, "fit")):
        raise SpecError(key, f"{name!r} is not an estimator class")
    return cls


def _hyper_names(cls):
    if hasattr(cls, "_param_names"):
        return set(cls._param_names())
    return {p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _estimator_specs(estimators):
    """[(label, class, hyperparameters)] from the ``estimators`` table."""
    out = []
    for label, cfg in estimators.items():
        key = f"estimators.{label}"
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise SpecError(key, "must be a table of hyperparameters")
        cfg = dict(cfg)
        clsname = cfg.pop("class", label)
        if not isinstance(clsname, str):
            raise SpecError(f"{key}.class", "must be an estimator name")
        cls = _estimator_class(clsname, key)
        out.append((label, cls, cfg))
    return out


_VALID_CACHE: dict[str, None] = {}


def _validate_estimation(params: dict):
    for k in params:
        if k not in _EST_KEYS:
            raise SpecError(k, f"unknown parameter for task 'estimation' (allowed: "
                               f"{', '.join(_EST_KEYS)})")
    for k in ("population", "n", "estimators", "metrics"):
        if k not in params:
            raise SpecError(k, "required by task 'estimation'")
    n = params["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpecError("n", f"must be an integer >= 1; got {n!r}")
    gs = params.get("group_sampling", "random")
    if gs not in ("random", "fixed"):
        raise SpecError("group_sampling", f"must be 'random' or 'fixed'; got {gs!r}")

    pop = params["population"]
    if not isinstance(pop, dict):
        raise SpecError("population", "must be a table (regime = ..., parameters)")
    ckey = "pop:" + canonical_json(pop)
    if ckey not in _VALID_CACHE:
        from ..population import REGIMES, Population

        regime = pop.get("regime")
        if regime not in REGIMES:
            raise SpecError("population.regime", f"must be one of {list(REGIMES)}; got {regime!r}")
        allowed = _population_kwargs(regime)
        for k in pop:
            if k != "regime" and k not in allowed:
                raise SpecError(f"population.{k}", f"unknown parameter for regime {regime!r} "
                                                   f"(allowed: {sorted(allowed | {'regime'})})")
        seed = pop.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SpecError("population.seed", f"must be an integer >= 0; got {seed!r}")
        kw = {k: v for k, v in pop.items() if k not in ("regime", "seed")}
        try:
            Population.from_regime(regime, seed=seed, **kw)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            first = msg.split(" ", 1)[0]
            raise SpecError(f"population.{first}" if first in kw else "population", msg) from None
        _VALID_CACHE[ckey] = None

    ests = params["estimators"]
    if not isinstance(ests, dict) or not ests:
        raise SpecError("estimators", "must name at least one estimator ([estimators.NAME])")
    ckey = "est:" + canonical_json(ests)
    if ckey not in _VALID_CACHE:
        for label, cls, hyper in _estimator_specs(ests):
            valid = _hyper_names(cls)
            for h in hyper:
                if h not in valid:
                    raise SpecError(f"estimators.{label}.{h}",
                                    f"unknown hyperparameter of {cls.__name__} "
                                    f"(valid: {sorted(valid)})")
            try:
                est = cls(**hyper)
                if hasattr(est, "_validate_params"):
                    est._validate_params()
            except (ValueError, TypeError) as exc:
                raise SpecError(f"estimators.{label}", str(exc)) from None
        _VALID_CACHE[ckey] = None

    metrics = params["metrics"]
    if (not isinstance(metrics, list) or not metrics
            or not all(isinstance(m, str) for m in metrics)):
        raise SpecError("metrics", "must be a non-empty list of metric names")
    if len(set(metrics)) != len(metrics):
        raise SpecError("metrics", "names must be unique")
    for m in metrics:
        get_metric(m)


def _subseed(seed: np.random.SeedSequence, *words) -> np.random.SeedSequence:
    """A child of ``seed`` keyed by words (stable: does not depend on how many children exist)."""
    import hashlib

    keys = tuple(int.from_bytes(hashlib.sha256(str(w).encode()).digest()[:8], "little")
                 for w in words)
    return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + keys)


def _population_and_data(params: dict, seed: np.random.SeedSequence):
    """The cell's population and its ``n`` comparisons (streams: see :func:`estimation`)."""
    from ..population import Population

    pop_cfg = dict(params["population"])
    regime = pop_cfg.pop("regime")
    pop_seed = pop_cfg.pop("seed", None)
    pop = Population.from_regime(
        regime, seed=_subseed(seed, "population") if pop_seed is None else pop_seed, **pop_cfg)
    data = pop.sample(params["n"], seed=_subseed(seed, "data"),
                      group_sampling=params.get("group_sampling", "random"))
    return pop, data


def _seeded_hyper(label: str, cls, hyper: dict, seed: np.random.SeedSequence) -> dict:
    """``hyper`` plus the estimator's own seed (child "estimator/<label>") when it takes one and
    the spec gives none."""
    hyper = dict(hyper)
    names = _hyper_names(cls)
    for s in _SEED_ARGS:
        if s in names and s not in hyper:
            ss = _subseed(seed, "estimator", label)
            hyper[s] = int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
            break
    return hyper


def estimation(params: dict, seed: np.random.SeedSequence) -> dict:
    """Population -> n comparisons -> each estimator -> metrics ``{"<label>.<metric>": value}``.

    Streams: the population from the child "population" of the cell seed (unless
    ``population.seed`` fixes it for the whole sweep), the comparisons from the child "data", and
    an estimator that takes ``seed`` / ``random_state`` (and has none in the spec) from the
    child "estimator/<label>".
    """
    pop, data = _population_and_data(params, seed)
    metrics = [(m, get_metric(m)) for m in params["metrics"]]
    out = {}
    for label, cls, hyper in _estimator_specs(params["estimators"]):
        est = cls(**_seeded_hyper(label, cls, hyper, seed)).fit(data)
        for m, fn in metrics:
            out[f"{label}.{m}"] = fn(est, pop, data)
    return out


# Methods an estimator may define that check its hyperparameters (against the data) without
# fitting; each is called with the arguments it names among ``data`` and ``d``.
_VALIDATORS = ("_validate_params", "_validate", "_design")


def _run_validators(est, data):
    bind = {"data": data, "d": data.d}
    for name in _VALIDATORS:
        fn = getattr(est, name, None)
        if not callable(fn):
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # pragma: no cover (builtins)
            continue
        kwargs, runnable = {}, True
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name in bind and p.kind != p.POSITIONAL_ONLY:
                kwargs[p.name] = bind[p.name]
            elif p.default is p.empty:
                runnable = False
                break
        if runnable:
            fn(**kwargs)


def _check_estimation(params: dict, seed: np.random.SeedSequence):
    """``sweep --dry-run``: build the cell's population and data, construct every estimator and
    run its validation against the data (``k <= d``, enough users for the clusters ...); no
    fitting."""
    try:
        pop, data = _population_and_data(params, seed)
    except (ValueError, TypeError) as exc:
        raise SpecError("population", str(exc)) from None
    for label, cls, hyper in _estimator_specs(params["estimators"]):
        try:
            est = cls(**_seeded_hyper(label, cls, hyper, seed))
            _run_validators(est, data)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"estimators.{label}", str(exc)) from None


estimation.validate = _validate_estimation
estimation.check = _check_estimation
estimation.seed_ignore = ("estimators", "metrics")
register_task("estimation", estimation)


# ---------------------------------------------------------------------------------- toy
_TOY_KEYS = ("x", "n", "sleep", "fail", "crash", "label", "nested")
TOY_LOG_ENV = "PLURALRLHF_SWEEP_TOY_LOG"


def _validate_toy(params: dict):
    for k in params:
        if k not in _TOY_KEYS:
            raise SpecError(k, "unknown parameter for task 'toy' "
                               f"(allowed: {', '.join(_TOY_KEYS)})")
    x = params.get("x", 0.0)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise SpecError("x", f"must be a number; got {x!r}")
    n = params.get("n", 8)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpecError("n", f"must be an integer >= 1; got {n!r}")
    s = params.get("sleep", 0.0)
    if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
        raise SpecError("sleep", f"must be a number >= 0; got {s!r}")


def toy(params: dict, seed: np.random.SeedSequence) -> dict:
    """Cheap stand-in for a real cell: ``n`` normal draws shifted by ``x``.

    ``sleep`` seconds of wall time, ``fail = true`` raises, ``crash = true`` kills the worker
    process (raises in the main process instead); when the environment variable
    ``PLURALRLHF_SWEEP_TOY_LOG`` names a file, each computation appends its seed's spawn key to
    it (tests count computations that way).
    """
    x = float(params.get("x", 0.0))
    n = int(params.get("n", 8))
    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    if params.get("fail"):
        raise RuntimeError(f"toy failure requested (x={x!r})")
    if params.get("crash"):
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            os._exit(70)
        raise RuntimeError("toy crash requested (not in a worker process: raised instead)")
    rng = np.random.Generator(np.random.PCG64(seed))
    z = rng.standard_normal((n, 3))
    out = {"mean": float(z.mean() + x), "sd": float(z.std()), "trace": float(np.trace(z.T @ z)),
           "draws": z[:3, 0].tolist(), "n_draws": n}
    log = os.environ.get(TOY_LOG_ENV)
    if log:
        line = ("{}\n".format(",".join(str(k) for k in seed.spawn_key))).encode()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return out


toy.validate = _validate_toy
register_task("toy", toy)
