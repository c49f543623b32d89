r"""The pipeline every experiment runs: a design -> data -> estimators -> policies -> evaluation
under the true rewards, as one tidy table with a row per (estimator, policy, group).

>>> from simulator import Population
>>> from simulator.experiment import Experiment
>>> from simulator.estimators import SeparateMLE, SharedRep
>>> pop = Population.minority_trait(8, minority=0.1, seed=0)
>>> exp = Experiment(pop, n=1500, estimators={"separate": SeparateMLE(lam=1.0),
...                                           "sharedrep": SharedRep(2, lam=1.0)},
...                  policies=["exact", "pointwise"], env=(12, 5), beta=0.5, n_test=500)
>>> table = exp.run(seed=1).table        # doctest: +SKIP

Stages
------
Each stage is a public function that draws from the seed it is given, so that a figure (or a
researcher's own script) can run one with its own streams and leave the rest to the library:

1. :func:`build_design` — a :class:`~simulator.population.Population`, a
   :class:`~simulator.designs.FixedDesign` (given comparisons on a finite-arm environment), or a
   regime table ``{"regime": "shared", "d": 16, ...}`` built with ``Population.from_regime``.
2. :func:`draw_data` — the comparisons (``Population.sample``; ``FixedDesign.sample``, aggregated
   with its counts as ``sample_weight``), optionally on the evaluation environment.
3. :func:`fit_estimators` — every estimator, cloned from its hyperparameters (the instances
   given are never fitted in place), with ``sample_weight`` where the design has one.
4. :func:`make_policy` — a policy rule applied to an estimate ``theta_hat`` (U, d):
   ``"exact"`` / ``"algorithm1"`` / ``"pointwise"`` (:func:`simulator.policy.maxmin_policy`),
   ``"gibbs"`` (the single-reward policy of the proportion-weighted mean reward
   ``theta_bar = sum_u eta_u theta_hat_u``), ``"utilitarian"``
   (:func:`simulator.policy.utilitarian_policy`; equal to ``"gibbs"`` for linear rewards) and
   ``"pessimistic"`` (Zhu, Jordan & Jiao's pessimistic MLE on ``theta_bar`` with Sigma_D from the
   data, sample weights included; its ``reference`` is required, like the function's).
5. :func:`evaluate` — under the TRUE parameters of the design: per group the reward error
   ``||theta_hat_u - theta_u||``, held-out accuracy and log-loss (when ``n_test`` comparisons
   are drawn), the utility ``F_u(pi)``, the alignment gap ``F_u(pi*_u) - F_u(pi)``, the win rate
   against the gold policy; per policy the MaxMin suboptimality ``V* - min_u F_u(pi)``.

Gold policy: the same rule applied to the true parameters (``gold="same"``, the SharedRep
paper's metric: for ``"pointwise"`` the true pointwise-min policy), or the exact max-min policy
of the true parameters for every rule (``gold="exact"``).

Streams of :meth:`Experiment.run`: children of the run seed by name (:func:`named_child`):
``"population"`` (a regime table without its own ``seed``), ``"env"``, ``"data"``, ``"test"`` and
``"estimator/<label>"`` (for a table-specified estimator that takes ``seed`` / ``random_state``
and has none; :func:`fit_estimators` derives it from the seed it is given). The names are those
the sweep's ``estimation`` task has always used, so its numbers did not move.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np

from .arms import FiniteArmEnv
from .designs import FixedDesign
from .population import Population
from .seeding import as_seed_sequence, named_child
from .validation import InvalidParameterError, check_choice, check_int, check_real

__all__ = ["POLICY_RULES", "Draw", "Experiment", "ExperimentResult", "build_design",
           "draw_data", "evaluate", "estimator_from_table", "fit_estimators", "group_estimate",
           "make_policy", "named_child", "policy_table"]

POLICY_RULES = ("exact", "algorithm1", "pointwise", "gibbs", "utilitarian", "pessimistic")
GOLD = ("same", "exact")
_SEED_ARGS = ("seed", "random_state")


# ------------------------------------------------------------------------------- design
def build_design(design, seed=None):
    """A :class:`Population` or :class:`FixedDesign` from ``design`` (either of them, or a regime
    table ``{"regime": name, **constructor arguments}``; its population seed is ``design["seed"]``
    when given, else ``seed``)."""
    if isinstance(design, (Population, FixedDesign)):
        return design
    if not isinstance(design, dict):
        raise InvalidParameterError(f"design must be a Population, a FixedDesign or a regime "
                                    f"table {{'regime': ..., ...}}; got {type(design).__name__}")
    cfg = dict(design)
    if "regime" not in cfg:
        raise InvalidParameterError("design: a regime table needs 'regime' (a name of "
                                    "Population.from_regime)")
    regime = cfg.pop("regime")
    pop_seed = cfg.pop("seed", None)
    if pop_seed is None:
        if seed is None:
            raise InvalidParameterError("design: a regime table without 'seed' needs a seed")
        pop_seed = seed
    return Population.from_regime(regime, seed=pop_seed, **cfg)


def _truth(design):
    """(theta (U, d), proportions (U,)) of a design."""
    if isinstance(design, Population):
        return design.theta, np.asarray(design.proportions, dtype=np.float64)
    share = np.bincount(design.group, weights=design.counts, minlength=design.n_groups)
    return design.theta, share / share.sum()


def build_env(design, env, seed) -> FiniteArmEnv | None:
    """The evaluation environment: ``env`` itself, ``(n_contexts, n_actions)`` arms drawn from the
    population from ``seed`` (``Population.arm_env``), a FixedDesign's own, or None."""
    if isinstance(design, FixedDesign):
        if env is not None and env is not design.env:
            raise InvalidParameterError("env: a FixedDesign brings its own environment; leave "
                                        "env unset")
        return design.env
    if env is None or isinstance(env, FiniteArmEnv):
        return env
    if isinstance(env, (tuple, list)) and len(env) == 2:
        return design.arm_env(env[0], env[1], seed)
    raise InvalidParameterError(f"env must be a FiniteArmEnv, a pair (n_contexts, n_actions) or "
                                f"None; got {env!r}")


@dataclass(frozen=True)
class Draw:
    """Data of one run: the training comparisons, their ``sample_weight`` (None unless the
    design aggregates) and the held-out comparisons (None when ``n_test`` is 0)."""

    data: object
    sample_weight: np.ndarray | None = None
    test: object | None = None


def draw_data(design, n, seed, *, env=None, on_env: bool = True, group_sampling="random",
              n_test: int = 0, test_seed=None) -> Draw:
    """The training comparisons (from ``seed``) and ``n_test`` held-out ones (from
    ``test_seed``).

    A Population draws ``n`` comparisons (on ``env`` when one is given and ``on_env``); a
    FixedDesign labels its own pairs (``n`` must be None) and its held-out set is a second
    labelling of the same pairs, expanded.
    """
    if isinstance(design, FixedDesign):
        if n is not None:
            raise InvalidParameterError("n: a FixedDesign fixes its own comparisons (counts); "
                                        "leave n unset")
        _need_test_seed(n_test, test_seed)
        lab = design.sample(seed)
        test = design.sample(test_seed, aggregate=False).data if n_test else None
        return Draw(lab.data, lab.sample_weight, test)
    n = check_int(n, "n", low=1)
    n_test = check_int(n_test, "n_test", low=0)
    _need_test_seed(n_test, test_seed)
    where = env if on_env else None
    data = design.sample(n, seed=seed, env=where, group_sampling=group_sampling)
    test = (design.sample(n_test, seed=test_seed, env=where,
                          group_sampling=group_sampling) if n_test else None)
    return Draw(data, None, test)


def _need_test_seed(n_test, test_seed):
    if n_test and test_seed is None:
        raise InvalidParameterError("test_seed: held-out comparisons (n_test > 0) need their own "
                                    "seed")


# ---------------------------------------------------------------------------- estimators
def estimator_from_table(label: str, cfg, seed=None):
    """An unfitted estimator from a spec table ``{"class": name, **hyperparameters}`` (``class``
    defaults to ``label``; a name of :mod:`simulator.estimators` or ``"module:Class"``). When the
    class takes ``seed`` / ``random_state`` and the table gives none, it gets one from the child
    ``"estimator/<label>"`` of ``seed``."""
    cfg = {} if cfg is None else dict(cfg)
    cls = estimator_class(cfg.pop("class", label), f"estimators.{label}")
    names = hyperparameter_names(cls)
    unknown = sorted(set(cfg) - names)
    if unknown:
        raise InvalidParameterError(f"estimators.{label}.{unknown[0]}: unknown hyperparameter "
                                    f"of {cls.__name__} (valid: {sorted(names)})")
    for s in _SEED_ARGS:
        if s in names and s not in cfg and seed is not None:
            ss = named_child(seed, "estimator", label)
            cfg[s] = int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
            break
    return cls(**cfg)


def estimator_class(name, key: str = "estimator"):
    """An estimator class by name (:mod:`simulator.estimators`) or ``"module:Class"``."""
    import importlib

    from . import estimators as E

    if not isinstance(name, str):
        raise InvalidParameterError(f"{key}: must name an estimator class; got {name!r}")
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except Exception as exc:
            raise InvalidParameterError(f"{key}: cannot load estimator {name!r}: {exc}") from None
    else:
        cls = getattr(E, name, None)
    if not (inspect.isclass(cls) and hasattr(cls, "fit")):
        known = sorted(n for n in E.__all__ if inspect.isclass(getattr(E, n))
                       and issubclass(getattr(E, n), E.PreferenceEstimator)
                       and getattr(E, n) is not E.PreferenceEstimator)
        raise InvalidParameterError(f"{key}: unknown estimator {name!r}; known: {known}")
    return cls


def hyperparameter_names(cls) -> set:
    """The names ``cls.__init__`` takes (the estimator contract's hyperparameters)."""
    if hasattr(cls, "_param_names"):
        return set(cls._param_names())
    return {p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _clone(est):
    if hasattr(est, "get_params"):
        return type(est)(**est.get_params(deep=False))
    raise InvalidParameterError(f"estimators: {type(est).__name__} has no get_params (not an "
                                "estimator of simulator.estimators' contract)")


def fit_estimators(estimators: dict, draw: Draw, seed=None) -> dict:
    """``{label: (fitted estimator, fit seconds)}``: each estimator (an instance, cloned, or a
    spec table for :func:`estimator_from_table`) fitted to ``draw.data``."""
    if not isinstance(estimators, dict) or not estimators:
        raise InvalidParameterError("estimators must be a non-empty mapping label -> estimator")
    out = {}
    for label, spec in estimators.items():
        est = (estimator_from_table(label, spec, seed) if spec is None or isinstance(spec, dict)
               else _clone(spec))
        kw = {} if draw.sample_weight is None else {"sample_weight": draw.sample_weight}
        t0 = time.perf_counter()
        est.fit(draw.data, **kw)
        out[label] = (est, time.perf_counter() - t0)
    return out


def group_estimate(est, n_groups: int, user_group=None) -> np.ndarray:
    """The estimate per group, (U, d): ``theta_`` itself, or (``unit="user"`` fits) the mean of
    the users' rows within each group, or (mixtures such as :class:`EMMixture`, whose rows are
    clusters) the mean over each group's users of their assigned cluster's row."""
    th = np.asarray(getattr(est, "theta_", est), dtype=np.float64)
    if th.ndim == 1:
        th = np.broadcast_to(th, (n_groups, th.shape[0]))
    assignments = getattr(est, "assignments_", None)
    if assignments is not None:
        # cluster labels are exchangeable: taking row g for group g, as below, silently matched
        # clusters to groups by their index
        th = th[np.asarray(assignments)]
        if user_group is None and th.shape[0] == n_groups:
            return th  # one user per group, user h in group h
    elif th.shape[0] == n_groups:
        return th
    if user_group is not None and th.shape[0] == len(user_group):
        cnt = np.bincount(user_group, minlength=n_groups)[:, None]
        return np.stack([th[user_group == g].sum(0) for g in range(n_groups)]) / cnt
    raise InvalidParameterError(f"estimate has {th.shape[0]} rows; the design has {n_groups} "
                                "groups")


# ------------------------------------------------------------------------------ policies
def _rule(spec):
    """(rule name, options dict) of a policy spec (a rule name or ``{"rule": name, ...}``)."""
    if isinstance(spec, str):
        return check_choice(spec, "policies", POLICY_RULES), {}
    if isinstance(spec, dict):
        opts = dict(spec)
        rule = check_choice(opts.pop("rule", None), "policies.rule", POLICY_RULES)
        return rule, opts
    raise InvalidParameterError(f"policies: each policy is a rule name {POLICY_RULES} or a table "
                                f"{{'rule': ..., options}}; got {spec!r}")


def policy_table(policies) -> dict:
    """``label -> spec`` from a list (labels: the rule names; a table's ``label`` entry, else its
    rule) or a mapping; every spec checked."""
    if isinstance(policies, dict):
        table = dict(policies)
    elif isinstance(policies, (list, tuple)):
        table = {}
        for spec in policies:
            rule, opts = _rule(spec)
            label = opts.pop("label", rule) if isinstance(spec, dict) else rule
            if label in table:
                raise InvalidParameterError(f"policies: label {label!r} appears twice")
            table[label] = {"rule": rule, **opts} if isinstance(spec, dict) else spec
    else:
        raise InvalidParameterError(f"policies must be a list or a mapping; got "
                                    f"{type(policies).__name__}")
    for spec in table.values():
        _rule(spec)
    return table


def make_policy(env, theta_hat, beta, spec, *, proportions=None, data=None, sample_weight=None):
    """``(pi (M, A), certified)`` of policy rule ``spec`` applied to ``theta_hat`` (U, d) on
    ``env`` (module docstring for the rules; options of a table spec go to the policy function:
    the max-min options, or pessimistic_mle_policy's ``reference``, ``C``, ``delta``, ...)."""
    from . import policy as P

    rule, opts = _rule(spec)
    th = np.atleast_2d(np.asarray(theta_hat, dtype=np.float64))
    eta = (np.full(th.shape[0], 1.0 / th.shape[0]) if proportions is None
           else np.asarray(proportions, dtype=np.float64))
    if rule in ("exact", "algorithm1", "pointwise"):
        res = P.maxmin_policy(env, th, beta, rule, **{"warn": False, **opts})
        return res.pi, bool(res.converged)
    if rule == "gibbs":
        return P.gibbs_policy(env, eta @ th, beta), True
    if rule == "utilitarian":
        return P.utilitarian_policy(env, th, beta, proportions=eta), True
    if data is None:
        raise InvalidParameterError("policies: 'pessimistic' needs the training data (Sigma_D)")
    if "reference" not in opts:
        raise InvalidParameterError("policies: 'pessimistic' needs a reference (a (d,) vector "
                                    "v, an (M, A) policy or 'pi_ref'; Zhu, Jordan & Jiao §3)")
    tol = float(opts.get("tol", 1e-6))  # the function's default certificate tolerance
    res = P.pessimistic_mle_policy(env, eta @ th, data, beta=opts.pop("beta", beta),
                                   sample_weight=sample_weight, **{"warn": False, **opts})
    return res.pi, bool(res.duality_gap <= tol)


# ---------------------------------------------------------------------------- evaluation
def evaluate(env, theta, beta, pi, gold_pi, v_star, *, normalize="ref_center") -> dict:
    """Per-group policy metrics of ``pi`` under the TRUE ``theta`` (U, d): ``utility`` F_u(pi),
    ``gap`` F_u(pi*_u) - F_u(pi), ``win_rate`` against ``gold_pi``; and ``subopt``
    ``v_star - min_u F_u(pi)`` (one number)."""
    from . import fairness as F
    from .policy import group_utilities

    u = group_utilities(env, pi, theta, beta, normalize)
    return {"utility": u, "gap": F.alignment_gaps(env, pi, theta, beta),
            "win_rate": F.win_rate(env, pi, gold_pi, thetas=theta),
            "subopt": float(v_star - u.min())}


def estimation_metrics(theta_g, theta, test) -> dict:
    """Per-group estimation metrics: ``err_l2`` and (with held-out data) ``test_accuracy``,
    ``test_log_loss``."""
    out = {"err_l2": np.linalg.norm(theta_g - theta, axis=1)}
    if test is not None:
        from .metrics import heldout_metrics

        h = heldout_metrics(theta_g, test)
        out.update(test_accuracy=h["accuracy"], test_log_loss=h["log_loss"])
    return out


# ---------------------------------------------------------------------------- the pipeline
@dataclass
class ExperimentResult:
    """One run: ``table`` (tidy, a row per (estimator, policy, group); ``policy`` is ``"none"``
    when no policy is asked for), and what produced it (design, env, draw, fitted estimators,
    policies ``{(estimator, policy): pi}``, gold policies, ``v_star``)."""

    table: object
    design: object
    env: FiniteArmEnv | None
    draw: Draw
    fitted: dict
    policies: dict = field(default_factory=dict)
    gold: dict = field(default_factory=dict)
    v_star: float = float("nan")


class Experiment:
    """Design -> data -> estimators -> policies -> evaluation (module docstring).

    Parameters
    ----------
    design : Population, FixedDesign or regime table
        What generates the comparisons and holds the true parameters.
    n : int, optional
        Training comparisons of a Population (a FixedDesign brings its own).
    estimators : dict
        ``label -> estimator`` (an instance of :mod:`simulator.estimators`' contract; cloned) or
        ``label -> {"class": name, **hyperparameters}``.
    policies : list or dict, optional
        Rule names (:data:`POLICY_RULES`), or ``label -> rule name / {"rule": name, options}``.
    env : FiniteArmEnv or (n_contexts, n_actions), optional
        The environment policies act on (needed with policies); a FixedDesign brings its own.
    beta : float
        KL coefficient of every policy, in (0, inf).
    n_test : int
        Held-out comparisons for accuracy and log-loss (0: none).
    group_sampling : {"random", "fixed"}
        How a Population assigns comparisons to groups (``Population.sample``).
    on_env : bool
        Draw a Population's comparisons on ``env`` (contexts from rho, actions from pi_ref) when
        there is one; False keeps the population's own feature law.
    gold : {"same", "exact"}
        The win rate's gold policy (module docstring).
    normalize : {"ref_center", None}
        Reward normalisation of the utilities (:mod:`simulator.policy`).
    """

    def __init__(self, design, *, n=None, estimators, policies=(), env=None, beta=1.0,
                 n_test=0, group_sampling="random", on_env=True, gold="same",
                 normalize="ref_center"):
        self.design, self.n, self.estimators = design, n, estimators
        self.policies = policy_table(policies)
        self.env, self.beta, self.n_test = env, beta, n_test
        self.group_sampling, self.on_env = group_sampling, on_env
        self.gold = check_choice(gold, "gold", GOLD)
        self.normalize = normalize

    def run(self, seed) -> ExperimentResult:
        """One run from ``seed`` (an int or a SeedSequence; streams in the module docstring)."""
        seed = as_seed_sequence(seed)
        design = build_design(self.design, named_child(seed, "population"))
        env = build_env(design, self.env, named_child(seed, "env"))
        if self.policies and env is None:
            raise InvalidParameterError("env: policies need an environment (a FiniteArmEnv or "
                                        "(n_contexts, n_actions))")
        beta = check_real(self.beta, "beta", low=0.0, low_open=True) if self.policies else None
        draw = draw_data(design, self.n, named_child(seed, "data"), env=env,
                         on_env=self.on_env, group_sampling=self.group_sampling,
                         n_test=self.n_test, test_seed=named_child(seed, "test"))
        fitted = fit_estimators(self.estimators, draw, seed)
        return self._evaluate(design, env, beta, draw, fitted)

    def _gold(self, env, theta, eta, beta):
        """V* and each policy's gold: the rule on the true parameters (``gold="same"``; the
        pessimistic rule's gold is the exact optimum: pessimism is a correction for estimation
        error, the truth has none) or the exact max-min policy."""
        from .policy import maxmin_policy

        exact = maxmin_policy(env, theta, beta, "exact", normalize=self.normalize, warn=False)
        gold = {}
        for label, spec in self.policies.items():
            rule, _ = _rule(spec)
            if self.gold == "same" and rule not in ("exact", "pessimistic"):
                gold[label] = make_policy(env, theta, beta, spec, proportions=eta)[0]
            else:
                gold[label] = exact.pi
        return exact.value, gold

    def _evaluate(self, design, env, beta, draw, fitted) -> ExperimentResult:
        import pandas as pd

        theta, eta = _truth(design)
        user_group = getattr(draw.data, "user_group", None)
        v_star, gold = (self._gold(env, theta, eta, beta) if self.policies
                        else (float("nan"), {}))
        rows, pols = [], {}
        for label, (est, seconds) in fitted.items():
            th_g = group_estimate(est, theta.shape[0], user_group)
            base = {"estimator": label, "converged": bool(np.all(getattr(est, "converged_", True))),
                    "fit_seconds": seconds}
            em = estimation_metrics(th_g, theta, draw.test)
            per_policy = {"none": ({}, True)} if not self.policies else {}
            for plabel, spec in self.policies.items():
                pi, ok = make_policy(env, th_g, beta, spec, proportions=eta, data=draw.data,
                                     sample_weight=draw.sample_weight)
                pols[(label, plabel)] = pi
                per_policy[plabel] = (evaluate(env, theta, beta, pi, gold[plabel], v_star,
                                               normalize=self.normalize), ok)
            for plabel, (pm, ok) in per_policy.items():
                for g in range(theta.shape[0]):
                    row = {**base, "policy": plabel, "group": g, "proportion": eta[g],
                           **{k: v[g] for k, v in em.items()}}
                    if pm:
                        row.update(certified=ok, subopt=pm["subopt"],
                                   **{k: pm[k][g] for k in ("utility", "gap", "win_rate")})
                    rows.append(row)
        return ExperimentResult(pd.DataFrame(rows), design, env, draw, fitted, pols, gold, v_star)

