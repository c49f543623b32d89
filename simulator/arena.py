"""The arena (issue 14): our estimators and the field's peers on one planted truth.

``python -m simulator bench arena [--quick]`` (explicit-only: minutes at the default size).
Four protocols, each a function of ``(params, seed)`` returning a flat dict
``{"<method>.<metric>": value}`` (one replicate; fig9 runs the same functions as its sweep
cells), summarised over seeds as mean +- a 95% t-interval:

1. :func:`groups_minority` — U = 5 groups, k = 2 traits (``Population.shared``, simplex
   weights), group 0 a minority of proportion ``minority`` (``minority_proportions``); held-out
   accuracy overall and of the worst group, reward error, fit seconds.
2. :func:`many_users` — ``Population.dirichlet``: every user a group, ``n_per`` comparisons
   each, Dirichlet(alpha) weights; seen users' held-out accuracy, and new users'
   (``Population.new_users``) held-out accuracy after ``shots`` comparisons each
   (``fit_new_users`` with the trait matrix frozen; ``OracleB`` with the true ``B`` the
   reference).
3. :func:`latent_groups` — ``Population.shared`` with several users per group and the group
   labels hidden (every user handed to the estimators as its own group): EM must find the
   clusters, VPL / LoRe / PAL-B fit one unit per user; held-out accuracy per user.
4. :func:`policy_level` — protocol 1's population on a finite-arm environment
   (``arm_env``), judged by ``evaluate`` under the true rewards. Every reward estimator's
   ``theta_`` goes through the three max-min rules of ``make_policy`` for group rewards:
   ``"exact"`` (MaxMin-RLHF's objective, keys ``<method>.subopt`` and
   ``<method>.minority_win``), ``"algorithm1"`` (its Algorithm 1, 200 Frank-Wolfe steps;
   ``..._algorithm1``) and ``"pointwise"`` (the pointwise min of the official code bases;
   ``..._pointwise``): the max-min suboptimality ``V* - min_u F_u(pi)`` and the minority's win
   rate against the exact max-min policy of the truth. PAL-A's reward
   ``-||M phi - a_u||^2`` is not linear in ``phi``: its per-group arm rewards (``PALA.reward``
   on the environment's feature table) go through the same three rules by
   ``maxmin_from_rewards`` (what ``make_policy`` calls on ``env.rewards(theta)``). ``truth``
   is the planted ``theta`` through the three rules (the exact rule's suboptimality is 0 up to
   the solver's tolerance; the other two show each rule's own loss). DPO and GR-DPO
   (``simulator.reward_free``) are reward-free: only their own policy.

Every protocol reports ``<method>.fit_s`` (seconds of one fit) and ``<method>.fit_mb`` (peak
MiB allocated during the fit, :mod:`tracemalloc`). ``fit_mb`` is measured on a second, identical
fit (a deep copy of the unfitted estimator, same seed): tracemalloc slows allocation-heavy Python
2-4x (measured: LoRe 0.04 s -> 0.18 s at the quick size), which would distort ``fit_s``; the
traced fit's numbers are identical to the untraced one's (tested). tracemalloc counts the
allocations of Python objects and of numpy arrays; it does NOT count torch's own CPU allocator
(VPL's tensors, the torch kernels) nor numba's runtime allocator (arrays created inside the
numba kernels), so ``fit_mb`` is a lower bound for those fits. Within
``memory_traced(False)`` nothing is traced (``fit_mb`` NaN, one fit each): fig9 traces replicate
0 of each setting only.

Ours: ``SeparateMLE``, ``PooledMLE``, ``SharedRep``, ``EMMixture``, ``SharedLoRA``; peers:
``LoRe``, ``PALB``, ``PALA``, ``VPL``, DPO / GR-DPO; reference: ``OracleB`` (true ``B``), the planted
truth. PAL-A (peer) scores both responses' features (``fit(data, env=env)``): in protocol 4 those
of the environment; in protocols 1-3, which draw only differences ``X``, each comparison becomes
a context with two responses ``(Z -/+ X) / 2`` (:func:`item_pairs`: the same ``X`` and labels).
Every random draw flows from the run seed through ``SeedSequence`` children keyed by name
(:func:`simulator.seeding.named_child`).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import time
import tracemalloc

import numpy as np

OURS = ("SeparateMLE", "PooledMLE", "SharedRep", "SharedRep+pull", "SharedLoRA", "EMMixture")
PEERS = ("LoRe", "PALB", "PALA", "VPL", "DPO", "GR-DPO")
SIZES = {  # quick: ~3 minutes on 2 cores for the four protocols at 3 seeds in bench arena
    # (measured 194 s; every fit runs twice: timed, then traced for fit_mb)
    "tiny": dict(seeds=2, d=4, n_group=60, n_users=12, n_per=20, n_new=8, shots=(5,),
                 users_per_group=3, env=(6, 3), vpl_iter=30, test=50),
    "quick": dict(seeds=3, d=8, n_group=300, n_users=100, n_per=20, n_new=50,
                  shots=(5, 10, 20), users_per_group=10, env=(12, 5), vpl_iter=500, test=400),
    "full": dict(seeds=10, d=32, n_group=2000, n_users=1000, n_per=20, n_new=200,
                 shots=(5, 10, 20, 50), users_per_group=20, env=(50, 8), vpl_iter=3000,
                 test=1000),
}
MINORITIES = {"tiny": (0.1,), "quick": (0.05, 0.3), "full": (0.01, 0.05, 0.1, 0.3, 0.5)}
ALPHAS = (0.1, 1.0)
K, U, BETA = 2, 5, 1.0
RULES = ("exact", "algorithm1", "pointwise")  # make_policy's max-min rules for group rewards


def _seeds(seed, *words):
    """Integer seeds of the named children of ``seed`` (one per word)."""
    from .experiment import named_child

    return [int(named_child(seed, w).generate_state(1, np.uint64)[0] >> np.uint64(1))
            for w in words]


def estimators(k, n_units, vpl_iter, seed, unit="group"):
    """Unfitted estimators by method name (ours and the peers), hyperparameters at defaults."""
    from . import estimators as E

    return {"SeparateMLE": E.SeparateMLE(lam=1.0), "PooledMLE": E.PooledMLE(lam=1.0),
            "SharedRep": E.SharedRep(k, seed=seed),
            # LoRe's idea folded in (issue 14): a ridge on B growing with the units, lam = 1
            "SharedRep+pull": E.SharedRep(k, lam=1.0, vertex_lam="auto", seed=seed),
            "SharedLoRA": E.SharedLoRA(k=k, unit="group", fit_base=False, seed=seed),
            "LoRe": E.LoRe(k, seed=seed, unit=unit), "PALB": E.PALB(k, seed=seed, unit=unit),
            "VPL": E.VPL(latent_dim=k, max_iter=vpl_iter, seed=seed, unit=unit)}


def unit_accuracy(theta_units, unit_ids, test):
    """(overall, worst-group) held-out accuracy of per-unit rewards (a zero margin: half)."""
    return margin_accuracy(np.einsum("ij,ij->i", test.X, theta_units[unit_ids]), test)


def margin_accuracy(margin, test):
    """(overall, worst-group) held-out accuracy of per-comparison margins ``log P(y=1)/P(y=0)``
    (a zero margin counts half); groups are ``test.group``."""
    t = (2.0 * test.y - 1.0) * np.asarray(margin, dtype=float)
    acc = np.where(t > 0, 1.0, np.where(t == 0, 0.5, 0.0))
    per_group = np.bincount(test.group, acc) / np.maximum(np.bincount(test.group), 1)
    return float(acc.mean()), float(per_group[np.bincount(test.group) > 0].min())


def item_pairs(datasets, seed):
    """``(env, datasets)``: every comparison of ``datasets`` as one context of an environment
    with two responses, and the datasets with their ``context`` / ``actions``.

    PAL-A's ideal-point margin needs both responses' features, protocols 1-3 draw only their
    difference ``X``. ``phi(a0) = (Z - X) / 2``, ``phi(a1) = (Z + X) / 2`` with ``Z ~ N(0, I)``
    independent of ``X`` give back ``phi(a1) - phi(a0) = X``, so every label and every other
    method's data are unchanged; for ``X ~ N(0, I)`` the two responses are independent
    ``N(0, I/2)``. One environment holds all the datasets (train, test, shots), so PAL-A scores
    held-out pairs with the feature table of its fit.
    """
    from dataclasses import replace

    from .arms import FiniteArmEnv

    X = np.concatenate([d.X for d in datasets])
    Z = np.random.default_rng(seed).standard_normal(X.shape)
    env = FiniteArmEnv(np.stack([(Z - X) / 2.0, (Z + X) / 2.0], axis=1))
    out, start = [], 0
    for d in datasets:
        n = d.X.shape[0]
        out.append(replace(d, context=np.arange(start, start + n),
                           actions=np.tile(np.array([0, 1]), (n, 1))))
        start += n
    return env, out


def peak_mb(fn):
    """``(fn(), peak MiB)``: the peak of what tracemalloc sees allocated while ``fn`` runs.

    Counts Python objects and numpy arrays; not torch's CPU allocator nor numba's runtime
    (module docstring). Nests: when tracing is already on, the peak is reset and measured above
    the memory traced when ``fn`` starts, and tracing is left on.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return out, (peak - base) / 2.0 ** 20


_TRACE_MEMORY = contextvars.ContextVar("arena_trace_memory", default=True)


@contextlib.contextmanager
def memory_traced(on: bool):
    """Within the block, fits are measured for ``fit_mb`` only if ``on`` (else ``fit_mb`` is
    NaN and every fit runs once): fig9 traces one replicate per setting, since a fit's memory
    depends on its sizes, not its seed."""
    token = _TRACE_MEMORY.set(bool(on))
    try:
        yield
    finally:
        _TRACE_MEMORY.reset(token)


def _measured(fn):
    """``(fn(), seconds, peak MiB)``: ``fn`` timed untraced, then run again under tracemalloc
    (which would inflate the time 2-4x); ``fn`` must be deterministic and build its own
    state, and the first run's result is returned. Inside ``memory_traced(False)`` the peak is
    NaN and ``fn`` runs once (tracing is on by default)."""
    t = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t
    mb = peak_mb(fn)[1] if _TRACE_MEMORY.get() else float("nan")
    return out, secs, mb


def _fit(est, data, **fit_params):
    """``(fitted est, fit seconds, fit peak MiB)``; the memory from a fit of a deep copy of the
    unfitted ``est`` (the same seed, so the same fit)."""
    # the copy only serves the traced second fit: none when memory is not traced
    runs = iter((est, copy.deepcopy(est) if _TRACE_MEMORY.get() else None))
    return _measured(lambda: next(runs).fit(data, **fit_params))


def groups_minority(params, seed) -> dict:
    """Protocol 1 (module docstring): one replicate."""
    from .estimators import OracleB
    from .population import Population, minority_proportions

    s_pop, s_tr, s_te, s_est = _seeds(seed, "population", "data", "test", "estimator")
    pop = Population.shared(params["d"], K, minority_proportions(params["minority"], U),
                            seed=s_pop)
    train = pop.sample(params["n_group"] * U, seed=s_tr)
    test = pop.sample(params["test"] * U, seed=s_te, group_sampling="fixed")
    ests = estimators(K, U, params["vpl_iter"], s_est)
    ests.pop("SharedLoRA")  # a nuclear-norm model of many units; 5 groups are SharedRep's case
    ests["OracleB"] = OracleB(pop.B)
    out = {}
    for name, est in ests.items():
        est, secs, mb = _fit(est, train)
        acc, worst = unit_accuracy(est.theta_, test.group, test)
        err = np.linalg.norm(est.theta_ - pop.theta, axis=1)
        out.update({f"{name}.accuracy": acc, f"{name}.worst_accuracy": worst,
                    f"{name}.minority_err": float(err[0]), f"{name}.fit_s": secs,
                    f"{name}.fit_mb": mb})
    out.update(_pala_held_out(train, test, K, s_est, seed))
    out["truth.accuracy"], out["truth.worst_accuracy"] = unit_accuracy(pop.theta, test.group,
                                                                       test)
    return out


def _pala_held_out(train, test, k, s_est, seed, *, units=None):
    """PAL-A fitted on ``train`` as item pairs (:func:`item_pairs`): its held-out accuracy and
    worst-group accuracy on ``test``, each test pair scored with its unit ``units`` (default its
    group), judged by ``test.group``."""
    from dataclasses import replace

    from .estimators import PALA

    (s_items,) = _seeds(seed, "items")
    env, (tr, te) = item_pairs([train, test], s_items)
    pala, secs, mb = _fit(PALA(k, seed=s_est), tr, env=env)
    scored = te if units is None else replace(te, group=units, n_groups=train.n_groups,
                                              user_group=None)
    acc, worst = margin_accuracy(pala.margin(scored), te)
    return {"PALA.accuracy": acc, "PALA.worst_accuracy": worst, "PALA.fit_s": secs,
            "PALA.fit_mb": mb}


def many_users(params, seed) -> dict:
    """Protocol 2 (module docstring): one replicate."""
    from .estimators import OracleB
    from .population import Population

    s_pop, s_tr, s_te, s_new, s_est, *s_shot = _seeds(
        seed, "population", "data", "test", "new", "estimator",
        *[f"shots{m}" for m in params["shots"]] + ["new_test"])
    N, m = params["n_users"], params["n_per"]
    pop = Population.dirichlet(params["d"], K + 1, N, seed=s_pop, alpha=params["alpha"])
    train = pop.sample(N * m, seed=s_tr, group_sampling="fixed")
    test = pop.sample(N * params["test"] // 10, seed=s_te, group_sampling="fixed")
    new = pop.new_users(params["n_new"], seed=s_new)
    new_test = new.sample(params["n_new"] * params["test"] // 10, seed=s_shot[-1],
                          group_sampling="fixed")
    ests = estimators(K + 1, N, params["vpl_iter"], s_est)
    for drop in ("PooledMLE", "SeparateMLE"):  # 20 comparisons in d dims: not this protocol's
        ests.pop(drop)
    ests["OracleB"] = OracleB(pop.B)
    out = {}
    shots = [(mm, new.sample(params["n_new"] * mm, seed=s, group_sampling="fixed"))
             for mm, s in zip(params["shots"], s_shot)]
    for name, est in ests.items():
        est, secs, mb = _fit(est, train)
        out[f"{name}.accuracy"], _ = unit_accuracy(est.theta_, test.group, test)
        out[f"{name}.fit_s"], out[f"{name}.fit_mb"] = secs, mb
        for mm, few in shots:
            theta = (OracleB(pop.B).fit(few).theta_ if name == "OracleB" else
                     est.fit_new_users(few).theta if hasattr(est, "fit_new_users") else None)
            if theta is not None:
                out[f"{name}.new_accuracy_{mm}"], _ = unit_accuracy(theta, new_test.group,
                                                                    new_test)
    out.update(_pala_many_users(train, test, shots, new_test, K + 1, s_est, seed))
    out["truth.accuracy"], _ = unit_accuracy(pop.theta, test.group, test)
    return out


def _pala_many_users(train, test, shots, new_test, k, s_est, seed):
    """Protocol 2's PAL-A: seen users' held-out accuracy and new users' after each shot count
    (:meth:`PALA.fit_new_users` with the prototypes and M frozen)."""
    from .estimators import PALA

    (s_items,) = _seeds(seed, "items")
    env, (tr, te, nt, *few) = item_pairs([train, test, new_test] + [f for _, f in shots],
                                         s_items)
    pala, secs, mb = _fit(PALA(k, seed=s_est), tr, env=env)
    out = {"PALA.accuracy": margin_accuracy(pala.margin(te), te)[0], "PALA.fit_s": secs,
           "PALA.fit_mb": mb}
    for (mm, _), f in zip(shots, few):
        out[f"PALA.new_accuracy_{mm}"] = margin_accuracy(pala.fit_new_users(f).margin(nt), nt)[0]
    return out


def latent_groups(params, seed) -> dict:
    """Protocol 3 (module docstring): one replicate; the estimators see users, not groups."""
    from dataclasses import replace

    from .estimators import EMMixture
    from .population import Population, minority_proportions

    s_pop, s_tr, s_te, s_est = _seeds(seed, "population", "data", "test", "estimator")
    pop = Population.shared(params["d"], K, minority_proportions(params["minority"], U),
                            seed=s_pop, users_per_group=params["users_per_group"])
    n_users = pop.n_users
    # every user labels some pairs (shared out evenly within a group): a per-user unit with no
    # data has no fit (found by the full-size run: a 1% minority over 20 users left some empty)
    train = pop.sample(params["n_group"] * U, seed=s_tr, user_sampling="fixed")
    test = pop.sample(params["test"] * U, seed=s_te, group_sampling="fixed")
    hidden = replace(train, group=train.user.copy(), n_groups=n_users, user_group=None)
    ests = estimators(K, n_users, params["vpl_iter"], s_est, unit="group")
    for drop in ("PooledMLE", "SharedLoRA"):
        ests.pop(drop)
    ests["EMMixture"] = EMMixture(U, seed=s_est)
    out = {}
    for name, est in ests.items():
        est, secs, mb = _fit(est, hidden if name != "EMMixture" else train)
        th = est.theta_[est.assignments_] if name == "EMMixture" else est.theta_
        out[f"{name}.accuracy"], out[f"{name}.worst_accuracy"] = unit_accuracy(th, test.user,
                                                                               test)
        out[f"{name}.fit_s"], out[f"{name}.fit_mb"] = secs, mb
    # PAL-A sees users as its units too: it scores test pairs by user, judged by true group
    out.update(_pala_held_out(hidden, test, K, s_est, seed, units=test.user.copy()))
    out["truth.accuracy"], out["truth.worst_accuracy"] = unit_accuracy(
        pop.theta[pop.user_group], test.user, test)
    return out


def _rule_metrics(env, theta, pi_of_rule, gold):
    """``{"subopt", "minority_win"}`` keys of the three rules, the exact rule's unsuffixed."""
    from .experiment import evaluate

    out = {}
    for rule in RULES:
        ev = evaluate(env, theta, BETA, pi_of_rule(rule), gold.pi, gold.value)
        tail = "" if rule == "exact" else f"_{rule}"
        out[f"subopt{tail}"] = ev["subopt"]
        out[f"minority_win{tail}"] = float(ev["win_rate"][0])
    return out


def arm_rewards(est, env):
    """Per-group arm rewards ``(U, M, A)`` of a fitted estimator with ``reward(Phi, group)``
    (PAL-A's ``-||M phi - a_u||^2``, not linear in ``phi``) on ``env``'s feature table."""
    M, A, d = env.features.shape
    phi = env.features.reshape(M * A, d)
    n_units = est.theta_.shape[0]
    return np.stack([est.reward(phi, np.full(M * A, u)).reshape(M, A) for u in range(n_units)])


def policy_level(params, seed) -> dict:
    """Protocol 4 (module docstring): one replicate."""
    from .estimators import PALA
    from .experiment import draw_data, evaluate, make_policy
    from .policy import maxmin_from_rewards, maxmin_policy
    from .population import Population, minority_proportions
    from .reward_free import dpo_policy, gr_dpo_policy

    s_pop, s_env, s_tr, s_est = _seeds(seed, "population", "env", "data", "estimator")
    pop = Population.shared(params["d"], K, minority_proportions(params["minority"], U),
                            seed=s_pop)
    env = pop.arm_env(*params["env"], s_env)
    draw = draw_data(pop, params["n_group"] * U, s_tr, env=env)
    theta = pop.theta
    gold = maxmin_policy(env, theta, BETA, "exact", warn=False)
    ests = estimators(K, U, params["vpl_iter"], s_est)
    ests.pop("SharedLoRA")
    out = {}

    def linear(th):  # make_policy's rule on linear rewards theta (U, d)
        return lambda rule: make_policy(env, th, BETA, rule, proportions=pop.proportions)[0]

    for name, est in ests.items():
        est, secs, mb = _fit(est, draw.data)
        out.update({f"{name}.{k}": v
                    for k, v in _rule_metrics(env, theta, linear(est.theta_), gold).items()})
        out[f"{name}.fit_s"], out[f"{name}.fit_mb"] = secs, mb
    # PAL-A: fitted on the same comparisons with the environment (both responses' features)
    pala, secs, mb = _fit(PALA(K, seed=s_est), draw.data, env=env)
    r_pala = arm_rewards(pala, env)
    out.update({f"PALA.{k}": v for k, v in _rule_metrics(
        env, theta, lambda rule: maxmin_from_rewards(env, r_pala, BETA, rule, warn=False).pi,
        gold).items()})
    out["PALA.fit_s"], out["PALA.fit_mb"] = secs, mb
    for name, fn in (("DPO", dpo_policy), ("GR-DPO", gr_dpo_policy)):
        res, secs, mb = _measured(lambda fn=fn: fn(env, draw.data, BETA, lam=1e-3))
        ev = evaluate(env, theta, BETA, res.pi, gold.pi, gold.value)
        out.update({f"{name}.subopt": ev["subopt"],
                    f"{name}.minority_win": float(ev["win_rate"][0]),
                    f"{name}.fit_s": secs, f"{name}.fit_mb": mb})
    out.update({f"truth.{k}": v for k, v in _rule_metrics(env, theta, linear(theta),
                                                          gold).items()})
    return out


PROTOCOLS = {"groups_minority": groups_minority, "many_users": many_users,
             "latent_groups": latent_groups, "policy_level": policy_level}


def protocol_grid(size):
    """``[(protocol, params)]`` of one size: the settings each protocol is run at."""
    base = {k: v for k, v in SIZES[size].items() if k != "seeds"}
    grid = []
    for mino in MINORITIES[size]:
        grid.append(("groups_minority", {**base, "minority": mino}))
    for alpha in ALPHAS:
        grid.append(("many_users", {**base, "alpha": alpha}))
    grid.append(("latent_groups", {**base, "minority": MINORITIES[size][0]}))
    grid.append(("policy_level", {**base, "minority": MINORITIES[size][0]}))
    return grid


def t_interval(values, level=0.95):
    """(mean, half-width of the ``level`` t-interval); half-width NaN with one value."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)


def replicate_dicts(cells):
    """Replicate dicts ``{"<method>.<metric>": value}`` (non-null only) from a sweep's rows of one
    setting, in replicate order: the input of :func:`summarise` and :func:`best_gap`."""
    sub = cells.sort_values("replicate")
    cols = [c for c in sub.columns if "." in c]
    return [{c: float(r[c]) for c in cols if r[c] == r[c]} for _, r in sub.iterrows()]


def summarise(reps):
    """Rows ``{method, metric: "mean +- ci", ...}`` from replicate dicts of one setting."""
    methods = sorted({k.split(".", 1)[0] for r in reps for k in r},
                     key=lambda m: (m not in OURS, m in ("OracleB", "truth"), m))
    metrics = sorted({k.split(".", 1)[1] for r in reps for k in r})
    rows = []
    for m in methods:
        row = {"method": m, "side": "ours" if m in OURS else (
            "reference" if m in ("OracleB", "truth") else "peer")}
        for met in metrics:
            vals = [r.get(f"{m}.{met}") for r in reps]
            if any(v is not None for v in vals):
                row[met], row[f"{met}_ci"] = t_interval(vals)
        rows.append(row)
    return rows


def best_gap(reps, metric="accuracy"):
    """Per replicate: our best ``metric`` minus the best peer's (None where either is absent)."""
    gaps = []
    for r in reps:
        ours = [r[f"{m}.{metric}"] for m in OURS if f"{m}.{metric}" in r]
        peers = [r[f"{m}.{metric}"] for m in PEERS if f"{m}.{metric}" in r]
        gaps.append(max(ours) - max(peers) if ours and peers else None)
    return gaps
