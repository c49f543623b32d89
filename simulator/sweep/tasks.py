"""The built-in tasks of the sweep engine: the library's pipeline (:mod:`simulator.experiment`)
as cells.

* ``estimation`` — build a population (``Population.from_regime``), sample ``n`` comparisons,
  fit the named estimators and compute the named metrics (registry:
  :mod:`simulator.sweep.registry`); columns ``<estimator>.<metric>``.
* ``experiment`` — the whole pipeline, :class:`simulator.experiment.Experiment`: a design, ``n``
  comparisons, estimators, policies on a finite-arm environment, evaluation under the true
  rewards; columns ``<estimator>.<metric>`` (per-group lists: ``err_l2``, ``test_accuracy``,
  ``test_log_loss``), ``<estimator>.<policy>.<metric>`` (per-group lists ``utility``, ``gap``,
  ``win_rate``; numbers ``subopt``, ``certified``) and ``v_star``.

Both take their streams from the cell's seed by name (:func:`simulator.seeding.named_child`):
the population from ``"population"`` (unless the table fixes ``seed`` for the whole sweep), the
environment from ``"env"``, the comparisons from ``"data"``, held-out ones from ``"test"``, and an
estimator that takes ``seed`` / ``random_state`` (and has none in the spec) from
``"estimator/<label>"``. The estimators', metrics' and policies' tables do not enter the seed
(``seed_ignore``): cells that differ only in them share their data.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import experiment as X
from ..validation import InvalidParameterError
from .errors import SpecError
from .registry import get_metric, register_metric
from .spec import canonical_json

__all__ = ["estimation", "experiment"]


# ------------------------------------------------------------------------------ metrics
def _errors(est, pop, data):
    th = np.asarray(est.theta_, dtype=np.float64)
    truth = pop.theta
    if th.shape != truth.shape:
        raise ValueError(f"estimate has shape {th.shape}, the population's theta {truth.shape}")
    return np.linalg.norm(th - truth, axis=1)


@register_metric("l2_error")
def l2_error(est, pop, data):
    """Per-group ``||theta_hat_u - theta_u||``."""
    return _errors(est, pop, data).tolist()


@register_metric("mean_error")
def mean_error(est, pop, data):
    return float(_errors(est, pop, data).mean())


@register_metric("weighted_error")
def weighted_error(est, pop, data):
    """Error averaged with the population's proportions."""
    return float(_errors(est, pop, data) @ pop.proportions)


@register_metric("minority_error")
def minority_error(est, pop, data):
    return float(_errors(est, pop, data)[pop.minority])


@register_metric("max_error")
def max_error(est, pop, data):
    return float(_errors(est, pop, data).max())


@register_metric("converged")
def converged(est, pop, data):
    return bool(np.all(getattr(est, "converged_", True)))


@register_metric("n_iter")
def n_iter(est, pop, data):
    return int(np.sum(getattr(est, "n_iter_", 0)))


# ----------------------------------------------------------------------------- checking
_VALID_CACHE: dict[str, None] = {}


def _spec_error(key: str, exc: Exception) -> SpecError:
    """``exc`` as a SpecError under ``key``; a message that starts with its own dotted key under
    the same table (``"estimators.p.lamda: unknown ..."``) keeps that key."""
    msg = str(exc)
    head, sep, rest = msg.partition(":")
    if sep and head.split(".")[0] == key.split(".")[0] and " " not in head:
        return SpecError(head, rest.strip())
    return SpecError(key, msg)


def _check_keys(params: dict, allowed, required, task: str):
    for k in params:
        if k not in allowed:
            raise SpecError(k, f"unknown parameter for task {task!r} (allowed: "
                               f"{', '.join(allowed)})")
    for k in required:
        if k not in params:
            raise SpecError(k, f"required by task {task!r}")


def _population_kwargs(regime):
    from ..population import Population

    ctor = getattr(Population, regime)
    sig = inspect.signature(ctor).parameters.values()
    names = {p.name for p in sig if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if any(p.kind == p.VAR_KEYWORD for p in sig):
        names |= {p.name for p in inspect.signature(Population.__init__).parameters.values()
                  if p.kind == p.KEYWORD_ONLY and p.name not in ("name", "info")}
    return names


def _validate_design(table, key: str):
    """A regime table: known regime, known arguments, a population that builds."""
    if not isinstance(table, dict):
        raise SpecError(key, "must be a table (regime = ..., parameters)")
    ckey = key + ":" + canonical_json(table)
    if ckey in _VALID_CACHE:
        return
    from ..population import REGIMES

    regime = table.get("regime")
    if regime not in REGIMES:
        raise SpecError(f"{key}.regime", f"must be one of {list(REGIMES)}; got {regime!r}")
    allowed = _population_kwargs(regime)
    for k in table:
        if k != "regime" and k not in allowed:
            raise SpecError(f"{key}.{k}", f"unknown parameter for regime {regime!r} "
                                          f"(allowed: {sorted(allowed | {'regime'})})")
    seed = table.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SpecError(f"{key}.seed", f"must be an integer >= 0; got {seed!r}")
    try:
        X.build_design({**table, "seed": seed})
    except (ValueError, TypeError) as exc:
        first = str(exc).split(" ", 1)[0]
        raise SpecError(f"{key}.{first}" if first in table else key, str(exc)) from None
    _VALID_CACHE[ckey] = None


def _validate_estimators(ests):
    if not isinstance(ests, dict) or not ests:
        raise SpecError("estimators", "must name at least one estimator ([estimators.NAME])")
    ckey = "est:" + canonical_json(ests)
    if ckey in _VALID_CACHE:
        return
    for label, cfg in ests.items():
        key = f"estimators.{label}"
        if cfg is not None and not isinstance(cfg, dict):
            raise SpecError(key, "must be a table of hyperparameters")
        if cfg is not None and "class" in cfg and not isinstance(cfg["class"], str):
            raise SpecError(f"{key}.class", "must be an estimator name")
        try:
            est = X.estimator_from_table(label, cfg)
            if hasattr(est, "_validate_params"):
                est._validate_params()
        except (ValueError, TypeError) as exc:
            raise _spec_error(key, exc) from None
    _VALID_CACHE[ckey] = None


def _check_n(params):
    n = params["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpecError("n", f"must be an integer >= 1; got {n!r}")
    gs = params.get("group_sampling", "random")
    if gs not in ("random", "fixed"):
        raise SpecError("group_sampling", f"must be 'random' or 'fixed'; got {gs!r}")


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


def _check_against_data(estimators: dict, data, seed):
    """Construct every estimator and run its own validation against ``data``; no fitting."""
    for label, cfg in estimators.items():
        try:
            _run_validators(X.estimator_from_table(label, cfg, seed), data)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"estimators.{label}", str(exc)) from None


# --------------------------------------------------------------------------- estimation
_EST_KEYS = ("population", "n", "group_sampling", "estimators", "metrics")


def _validate_estimation(params: dict):
    _check_keys(params, _EST_KEYS, ("population", "n", "estimators", "metrics"), "estimation")
    _check_n(params)
    _validate_design(params["population"], "population")
    _validate_estimators(params["estimators"])
    metrics = params["metrics"]
    if (not isinstance(metrics, list) or not metrics
            or not all(isinstance(m, str) for m in metrics)):
        raise SpecError("metrics", "must be a non-empty list of metric names")
    if len(set(metrics)) != len(metrics):
        raise SpecError("metrics", "names must be unique")
    for m in metrics:
        get_metric(m)


def _estimation_draw(params, seed):
    pop = X.build_design(params["population"], X.named_child(seed, "population"))
    draw = X.draw_data(pop, params["n"], X.named_child(seed, "data"),
                       group_sampling=params.get("group_sampling", "random"))
    return pop, draw


def estimation(params: dict, seed: np.random.SeedSequence) -> dict:
    """Population -> n comparisons -> each estimator -> metrics ``{"<label>.<metric>": value}``
    (streams: module docstring)."""
    pop, draw = _estimation_draw(params, seed)
    metrics = [(m, get_metric(m)) for m in params["metrics"]]
    out = {}
    for label, (est, _) in X.fit_estimators(params["estimators"], draw, seed).items():
        for m, fn in metrics:
            out[f"{label}.{m}"] = fn(est, pop, draw.data)
    return out


def _check_estimation(params: dict, seed: np.random.SeedSequence):
    """``sweep --dry-run``: build the cell's population and data, construct every estimator and
    run its validation against the data (``k <= d``, enough users for the clusters ...)."""
    try:
        _, draw = _estimation_draw(params, seed)
    except (ValueError, TypeError) as exc:
        raise SpecError("population", str(exc)) from None
    _check_against_data(params["estimators"], draw.data, seed)


estimation.validate = _validate_estimation
estimation.check = _check_estimation
estimation.seed_ignore = ("estimators", "metrics")


# --------------------------------------------------------------------------- experiment
_EXP_KEYS = ("design", "n", "n_test", "env", "beta", "estimators", "policies",
             "group_sampling", "on_env", "gold")


def _experiment(params: dict) -> X.Experiment:
    env = params.get("env")
    try:
        return X.Experiment(params["design"], n=params["n"], estimators=params["estimators"],
                            policies=params.get("policies", {}),
                            env=tuple(env) if isinstance(env, list) else env,
                            beta=params.get("beta", 1.0), n_test=params.get("n_test", 0),
                            group_sampling=params.get("group_sampling", "random"),
                            on_env=params.get("on_env", True), gold=params.get("gold", "same"))
    except InvalidParameterError as exc:
        raise _spec_error("policies", exc) from None


def _validate_experiment(params: dict):
    _check_keys(params, _EXP_KEYS, ("design", "n", "estimators"), "experiment")
    _check_n(params)
    _validate_design(params["design"], "design")
    _validate_estimators(params["estimators"])
    env = params.get("env")
    if env is not None and not (isinstance(env, list) and len(env) == 2
                                and all(isinstance(v, int) and not isinstance(v, bool)
                                        for v in env)):
        raise SpecError("env", f"must be [n_contexts, n_actions] (integers); got {env!r}")
    if params.get("policies") and env is None:
        raise SpecError("env", "policies need an environment: env = [n_contexts, n_actions]")
    _experiment(params)


def _table_to_metrics(result) -> dict:
    """The tidy table as the sweep's columns (per-group lists; module docstring)."""
    t = result.table
    out = {"v_star": float(result.v_star)}
    est_cols = [c for c in ("err_l2", "test_accuracy", "test_log_loss") if c in t]
    for label, sub in t.groupby("estimator", sort=False):
        first = sub[sub["policy"] == sub["policy"].iloc[0]].sort_values("group")
        for c in est_cols:
            out[f"{label}.{c}"] = first[c].astype(float).tolist()
        out[f"{label}.converged"] = bool(first["converged"].all())
        for plabel, ps in sub.groupby("policy", sort=False):
            if plabel == "none":
                continue
            ps = ps.sort_values("group")
            for c in ("utility", "gap", "win_rate"):
                out[f"{label}.{plabel}.{c}"] = ps[c].astype(float).tolist()
            out[f"{label}.{plabel}.subopt"] = float(ps["subopt"].iloc[0])
            out[f"{label}.{plabel}.certified"] = bool(ps["certified"].iloc[0])
    return out


def experiment(params: dict, seed: np.random.SeedSequence) -> dict:
    """One run of :class:`simulator.experiment.Experiment` (columns: module docstring)."""
    return _table_to_metrics(_experiment(params).run(seed))


def _check_experiment(params: dict, seed: np.random.SeedSequence):
    """``sweep --dry-run``: the design, the environment and the data of the cell, every
    estimator validated against the data; no fitting."""
    exp = _experiment(params)
    try:
        design = X.build_design(exp.design, X.named_child(seed, "population"))
        env = X.build_env(design, exp.env, X.named_child(seed, "env"))
        draw = X.draw_data(design, exp.n, X.named_child(seed, "data"), env=env,
                           on_env=exp.on_env, group_sampling=exp.group_sampling,
                           n_test=exp.n_test, test_seed=X.named_child(seed, "test"))
    except (ValueError, TypeError) as exc:
        raise SpecError("design", str(exc)) from None
    _check_against_data(params["estimators"], draw.data, seed)


experiment.validate = _validate_experiment
experiment.check = _check_experiment
experiment.seed_ignore = ("estimators", "policies", "gold")
