"""The reward stage of the three papers on real dialogue features, on a CPU.

A :class:`RealDesign` holds the HH-RLHF pairs of :mod:`simulator.llm.hh_features` as feature
differences ``X = phi(x, y_1) - phi(x, y_0)`` of a frozen encoder and every group's labels of
every pair. One *cell* (:func:`run_cell`) fixes the minority proportion ``p`` and a seed:

* a seeded test split (``test_fraction`` of the pairs) is labelled by **every** group, so each
  group's held-out accuracy is measured on the same pairs;
* each training pair is labelled by one group, drawn with probabilities ``(p, (1 - p) / (U - 1),
  ...)`` (group 0 is the minority, as in the SharedRep data step), and dealt to synthetic users of
  ``user_size`` pairs within its group (the EM mixture clusters users, its groups are hidden);
* every method fits the training pairs and is scored per group on the test pairs: accuracy (the
  fraction ranked as the group labels them) and mean log-loss (BT negative log-likelihood);
* the policy-level consequence (:func:`policy_scores`): a finite-arm environment with one
  context per held-out pair and its two responses as the actions; the policies of
  :data:`POLICY_OBJECTIVES` (exact max-min, MaxMin-RLHF's Algorithm 1, the pointwise min; beta =
  1, uniform reference) computed from each method's rewards, and each group's win rate (ties
  half) against the gold policy, the same objective on the true rewards (the groups' scores,
  :func:`~simulator.llm.hh_features.group_scores`).

Methods (:data:`METHODS`): the simulator's certified solvers ``pooled`` and ``separate``
(MaxMin-RLHF's per-group heads; both ``lam="cv"``), ``sharedrep-k`` (``SharedRep(k)``, its
defaults), ``em`` (``EMMixture`` over the users, groups hidden; each group is scored by the cluster
that holds most of its training users), ``sharedlora`` (``SharedLoRA(k=2)``, its defaults); and
the official way, the LLM module's heads trained by AdamW on the same features
(:func:`simulator.llm.reward_training.fit_head`, lr 5e-4, 3 epochs, batch 16):
``official-uniform``, ``official-maxmin``, ``official-sharedrep-k``.

:func:`linear_ceiling` is the reference row: per group, the best linear reward fitted on that
group's labels of all training pairs (every training pair labelled by that group, so ``1 / p``
times the minority's data), the most a linear head on these features can reach on the test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..data import PreferenceData
from .hh_features import (
    DEFAULT_ENCODER,
    DEFAULT_GROUPS,
    HHPairs,
    embed_texts,
    group_labels,
    group_scores,
    load_hh_pairs,
    shared_hh_path,
    trait_scores,
)

__all__ = ["METHODS", "POLICY_OBJECTIVES", "RealDesign", "linear_ceiling", "policy_env",
           "policy_scores", "run_cell", "split_cell"]

DEFAULT_MAX_LENGTH = 128  # tokens kept from the end of each dialogue (the final turns differ)


@dataclass(frozen=True)
class RealDesign:
    """Feature differences ``X = phi1 - phi0`` (n, d), every group's labels (U, n) and true
    scores of both responses (``scores0``, ``scores1``: (U, n), :func:`group_scores`)."""

    X: np.ndarray
    labels: np.ndarray
    groups: tuple
    info: dict
    phi0: np.ndarray | None = None
    phi1: np.ndarray | None = None
    scores0: np.ndarray | None = None
    scores1: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @classmethod
    def from_source(cls, source=None, *, n: int | None = None, groups=DEFAULT_GROUPS,
                    encoder: str = DEFAULT_ENCODER, max_length: int = DEFAULT_MAX_LENGTH,
                    order_seed: int = 0, label_seed: int = 0, device: str = "cpu",
                    cache: bool = True, d: int | None = None) -> RealDesign:
        """Load pairs (``source``: a file or hub id; default the project's HH-RLHF copy),
        embed both dialogues of every pair, score traits and label by every group.

        ``d``: keep the top ``d`` principal components of the response embeddings (fitted on
        all responses of both sides, no labels involved); ``None`` keeps the encoder's width.
        """
        if source is None:
            source = shared_hh_path()
            if source is None:
                raise FileNotFoundError("no HH-RLHF file: ../shared/data/hh-rlhf is absent; pass "
                                        "source= (a .jsonl[.gz] file or 'Anthropic/hh-rlhf')")
        pairs = HHPairs.from_rows(load_hh_pairs(source, n=n), order_seed=order_seed)
        t = time.perf_counter()
        emb = embed_texts(list(pairs.texts0) + list(pairs.texts1), encoder=encoder,
                          max_length=max_length, device=device, cache=cache)
        embed_s = time.perf_counter() - t
        if d is not None:
            if not 1 <= int(d) <= emb.shape[1]:
                raise ValueError(f"d must lie in [1, {emb.shape[1]}] (the encoder's width); "
                                 f"got {d}")
            centred = emb - emb.mean(axis=0)
            _u, _s, Vt = np.linalg.svd(centred, full_matrices=False)
            emb = centred @ Vt[: int(d)].T
        phi0, phi1 = emb[:pairs.n], emb[pairs.n:]
        tr0, tr1 = trait_scores(pairs.texts0), trait_scores(pairs.texts1)
        labels = group_labels(groups, pairs.human, tr0, tr1, seed=label_seed)
        S0, S1 = group_scores(groups, pairs.human, tr0, tr1)
        return cls(X=phi1 - phi0, labels=labels, groups=tuple(groups), phi0=phi0, phi1=phi1,
                   scores0=S0, scores1=S1,
                   info={"source": str(source), "encoder": encoder, "max_length": max_length,
                         "n_pairs": pairs.n, "embed_s": embed_s,
                         "group_names": [g.name for g in groups]})


def split_cell(design: RealDesign, p: float, seed, *, test_fraction: float = 0.3,
               user_size: int = 20):
    """(train, test, train_rows) for minority proportion ``p``: ``train`` a
    :class:`PreferenceData` (one group per pair, users of ``user_size`` pairs within each group),
    ``test`` one with every test pair once per group (``group = u`` rows carry group u's
    labels), ``train_rows`` the design rows of ``train`` in order."""
    U = design.labels.shape[0]
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1); got {p}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    s_split, s_group, s_user = (np.random.default_rng(s) for s in ss.spawn(3))
    n = design.n
    test = np.zeros(n, dtype=bool)
    test[s_split.permutation(n)[: int(round(test_fraction * n))]] = True
    tr = np.flatnonzero(~test)
    te = np.flatnonzero(test)
    probs = np.array([p] + [(1.0 - p) / (U - 1)] * (U - 1))
    g = s_group.choice(U, size=tr.size, p=probs)
    for u in range(U):  # every group keeps at least two training pairs (a fit needs data)
        if np.sum(g == u) < 2:
            g[s_group.choice(np.flatnonzero(g != u), 2 - int(np.sum(g == u)), replace=False)] = u
    user = np.empty(tr.size, dtype=np.int64)
    user_group, base = [], 0
    for u in range(U):
        rows = np.flatnonzero(g == u)
        rows = rows[s_user.permutation(rows.size)]
        n_users = max(1, int(np.ceil(rows.size / user_size)))
        user[rows] = base + np.arange(rows.size) % n_users
        user_group += [u] * n_users
        base += n_users
    train = PreferenceData(X=design.X[tr], y=design.labels[g, tr], group=g, user=user,
                           n_groups=U, n_users=base, user_group=np.array(user_group),
                           meta={"p": p})
    test_data = PreferenceData(X=np.tile(design.X[te], (U, 1)),
                               y=np.concatenate([design.labels[u, te] for u in range(U)]),
                               group=np.repeat(np.arange(U), te.size), n_groups=U)
    return train, test_data, tr


def _scores(theta, test: PreferenceData):
    """Per-group accuracy and mean log-loss of rewards ``theta`` (U, d) on ``test``."""
    z = np.einsum("ij,ij->i", test.X, theta[test.group])
    s = 2.0 * test.y - 1.0
    correct = (z > 0) == (test.y == 1)
    loss = np.logaddexp(0.0, -s * z)
    U = theta.shape[0]
    acc = np.array([correct[test.group == u].mean() for u in range(U)])
    ll = np.array([loss[test.group == u].mean() for u in range(U)])
    return acc, ll


def _official_theta(method, train: PreferenceData, k: int, seed: int):
    """The LLM module's head trained the official way; its per-group linear rewards (U, d)."""
    import torch

    from .reward_heads import make_head
    from .reward_training import FitConfig, fit_head
    from .seeding import torch_generator

    U, d = train.n_groups, train.d
    head = make_head(method, d, U, k=k, generator=torch_generator(seed, f"head-{method}"))
    head = head.double()
    # chosen / rejected features: the preferred side's phi minus the other's is +-X; with
    # phi(x, y_1) - phi(x, y_0) = X only differences matter, so (X/2, -X/2) stand for the pair
    sgn = (2.0 * train.y - 1.0)[:, None]
    fc = torch.as_tensor(0.5 * sgn * train.X)
    fr = torch.as_tensor(-0.5 * sgn * train.X)
    fit_head(head, fc, fr, torch.as_tensor(train.group), FitConfig(), seed)
    with torch.no_grad():
        eye = torch.eye(d, dtype=torch.float64)
        R = head(eye) - head(torch.zeros((1, d), dtype=torch.float64))  # (d, U or 1): linear part
    R = R.numpy()
    return np.tile(R[:, 0], (U, 1)) if R.shape[1] == 1 else R.T.copy()


def _fit(method: str, train: PreferenceData, seed: int):
    """theta (U, d) and the fit's ``converged`` flag for one method name."""
    from ..estimators import EMMixture, PooledMLE, SeparateMLE, SharedLoRA, SharedRep

    U = train.n_groups
    if method == "pooled":
        est = PooledMLE(lam="cv", seed=seed).fit(train)
        return est.theta_, bool(est.converged_)
    if method == "separate":
        est = SeparateMLE(lam="cv", seed=seed).fit(train)
        return est.theta_, bool(est.converged_)
    if method.startswith("sharedrep-"):
        est = SharedRep(int(method.split("-")[1]), seed=seed).fit(train)
        return est.theta_, bool(est.converged_)
    if method == "sharedlora":
        est = SharedLoRA(k=2, seed=seed).fit(train)
        return est.theta_, bool(est.converged_)
    if method == "em":
        hidden = PreferenceData(X=train.X, y=train.y, user=train.user, n_users=train.n_users)
        est = EMMixture(n_clusters=U, seed=seed).fit(hidden)
        # each true group is scored by the cluster holding most of its training users
        cl = est.assignments_
        theta = np.stack([est.theta_[np.bincount(cl[train.user_group == u],
                                                 minlength=U).argmax()] for u in range(U)])
        return theta, bool(est.converged_)
    if method.startswith("official-"):
        name = method.split("-")[1]
        k = int(method.split("-")[2]) if name == "sharedrep" else 2
        return _official_theta(name, train, k, seed), True
    raise ValueError(f"unknown method {method!r}; allowed: {list(METHODS)}")


METHODS = ("pooled", "separate", "sharedrep-2", "sharedrep-4", "sharedrep-8", "em",
           "sharedlora", "official-uniform", "official-maxmin", "official-sharedrep-2",
           "official-sharedrep-4", "official-sharedrep-8")


def linear_ceiling(train: PreferenceData, design_labels_train, seed=0) -> np.ndarray:
    """Per group: a ``PooledMLE(lam="cv")`` fit on that group's labels of ALL training pairs
    (``design_labels_train`` (U, n_train)); the rewards (U, d)."""
    from ..estimators import PooledMLE

    return np.stack([PooledMLE(lam="cv", seed=seed).fit(
        PreferenceData(X=train.X, y=labels)).coef_ for labels in design_labels_train])


POLICY_OBJECTIVES = ("exact", "algorithm1", "pointwise")


def policy_env(design: RealDesign, rows):
    """The finite-arm environment of the held-out pairs ``rows``: one context per pair, its two
    responses the actions (features ``phi0``, ``phi1``), uniform ``rho`` and ``pi_ref``; and the
    true rewards (U, M, 2), the groups' scores of the responses (:func:`group_scores`)."""
    from ..arms import FiniteArmEnv

    env = FiniteArmEnv(np.stack([design.phi0[rows], design.phi1[rows]], axis=1))
    truth = np.stack([design.scores0[:, rows], design.scores1[:, rows]], axis=2)
    return env, truth


def policy_scores(env, truth, theta, beta: float = 1.0):
    """Per objective of :data:`POLICY_OBJECTIVES`: the policy computed from the estimated rewards
    ``env.rewards(theta)`` and each group's win rate (ties half) against the gold policy, the
    same objective on the true rewards. Returns ``{objective: (U,) win rates}``."""
    from ..fairness import win_rate
    from ..policy import maxmin_from_rewards

    est = env.rewards(np.asarray(theta, dtype=np.float64))
    out = {}
    for obj in POLICY_OBJECTIVES:
        pi_hat = maxmin_from_rewards(env, est, beta, obj, warn=False).pi
        pi_gold = maxmin_from_rewards(env, truth, beta, obj, warn=False).pi
        out[obj] = win_rate(env, pi_hat, pi_gold, rewards=truth)
    return out


def run_cell(design: RealDesign, p: float, seed: int, *, methods=METHODS,
             test_fraction: float = 0.3, user_size: int = 20, policy: bool = True,
             beta: float = 1.0) -> list[dict]:
    """Tidy rows ``{method, group, group_name, p, seed, accuracy, logloss, seconds,
    converged, n_train_group}`` for one (p, seed) cell (module docstring); with ``policy``
    also ``winrate_<objective>`` per row (:func:`policy_scores` on the held-out pairs)."""
    ss = np.random.SeedSequence([int(seed), 0x5245])
    s_split, s_fit = ss.spawn(2)
    train, test, tr_rows = split_cell(design, p, s_split, test_fraction=test_fraction,
                                      user_size=user_size)
    fit_seed = int(s_fit.generate_state(1)[0])
    names = [g.name for g in design.groups]
    counts = train.group_counts()
    rows = []

    te_rows = np.setdiff1d(np.arange(design.n), tr_rows)
    env = truth = None
    if policy and design.phi0 is not None:
        env, truth = policy_env(design, te_rows)

    def emit(method, theta, secs, conv):
        acc, ll = _scores(theta, test)
        wins = policy_scores(env, truth, theta, beta) if env is not None else {}
        for u in range(len(names)):
            row = dict(method=method, group=u, group_name=names[u], p=float(p), seed=int(seed),
                       accuracy=float(acc[u]), logloss=float(ll[u]), seconds=float(secs),
                       converged=bool(conv), n_train_group=int(counts[u]))
            row.update({f"winrate_{obj}": float(w[u]) for obj, w in wins.items()})
            rows.append(row)

    for m in methods:
        t = time.perf_counter()
        theta, conv = _fit(m, train, fit_seed)
        emit(m, theta, time.perf_counter() - t, conv)
    # the ceiling: every training pair relabelled by each group
    t = time.perf_counter()
    theta = linear_ceiling(train, design.labels[:, tr_rows], seed=fit_seed)
    emit("linear ceiling (all labels)", theta, time.perf_counter() - t, True)
    return rows
