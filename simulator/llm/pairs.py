"""Preference pairs from two scored responses per prompt.

Follows the SharedRep-RLHF data step (``create_chosen_rejected``):

* group scores are convex combinations of traits, ``score_u = sum_i lambda_i^u tau_i``;
* each pair is assigned to the minority group 0 with probability ``p`` independently
  (other groups share ``1 - p`` equally); with synthetic users the group is the user's group;
* deterministic labels: the response with the higher group score is chosen, **ties go to
  response_0** (the paper's rule); or BT-noise labels, response_1 chosen with probability
  ``sigmoid((s_1 - s_0) / T)``.

Group 0 is always the minority.
"""

from __future__ import annotations

import numpy as np

from .seeding import rng


def assign_groups(n: int, p: float, n_groups: int, seed: int) -> np.ndarray:
    """Group id of each of ``n`` pairs: 0 with probability ``p``, else uniform on 1..U-1."""
    g = rng(seed, "pair-groups")
    probs = np.array([p] + [(1.0 - p) / (n_groups - 1)] * (n_groups - 1))
    return g.choice(n_groups, size=n, p=probs)


def assign_users(n: int, p: float, n_users: int, n_groups: int, seed: int) -> tuple:
    """Synthetic users (MaxMin-RLHF / SharedRep clustering branch).

    After a seeded shuffle, pairs go round-robin to ``n_users`` users; the first
    ``max(1, floor(n_users * p))`` users form the minority (group 0), the others are spread
    round-robin over groups 1..U-1.

    Returns
    -------
    user_of_pair : np.ndarray of int, shape (n,)
    group_of_user : np.ndarray of int, shape (n_users,)
    """
    g = rng(seed, "pair-users")
    order = g.permutation(n)
    user_of_pair = np.empty(n, dtype=int)
    user_of_pair[order] = np.arange(n) % n_users
    n_min = max(1, int(np.floor(n_users * p)))
    group_of_user = np.empty(n_users, dtype=int)
    group_of_user[:n_min] = 0
    group_of_user[n_min:] = 1 + np.arange(n_users - n_min) % (n_groups - 1)
    return user_of_pair, group_of_user


def label_pairs(s0: np.ndarray, s1: np.ndarray, mode: str = "deterministic",
                temperature: float = 0.1, seed: int = 0) -> np.ndarray:
    """Index (0 or 1) of the chosen response of each pair.

    ``deterministic``: 1 iff ``s1 > s0`` strictly (ties -> response_0).
    ``bt``: 1 with probability ``sigmoid((s1 - s0) / temperature)``.
    """
    s0, s1 = np.asarray(s0, float), np.asarray(s1, float)
    if mode == "deterministic":
        return (s1 > s0).astype(int)
    if mode == "bt":
        prob = 1.0 / (1.0 + np.exp(-(s1 - s0) / temperature))
        return (rng(seed, "bt-labels").random(len(s0)) < prob).astype(int)
    raise ValueError(f"bad config value pairs.label_mode={mode!r}; allowed: ['deterministic', 'bt']")


def build_pairs(scored: list, groups, p: float, seed: int, label_mode: str = "deterministic",
                bt_temperature: float = 0.1, n_users: int = 0,
                eval_fraction: float = 0.0) -> list:
    """Pair records for minority proportion ``p``.

    Parameters
    ----------
    scored : list of dict
        Records of the ``score`` stage: ``prompt``, ``response_0``, ``response_1``,
        ``traits_0`` and ``traits_1`` (dicts trait -> score).
    groups : list of GroupConfig
        Group 0 = minority.
    p : float
    seed : int
    label_mode, bt_temperature : see :func:`label_pairs`
    n_users : int
        0: i.i.d. group per pair; > 0: synthetic users, see :func:`assign_users`.
    eval_fraction : float
        Seeded held-out fraction, marked ``split = "eval"``.

    Returns
    -------
    list of dict
        ``prompt, chosen, rejected, chosen_index, group_id, user_id, split`` and the group
        scores ``score_0``/``score_1`` of the labelling group.
    """
    from .traits import group_scores

    n, U = len(scored), len(groups)
    if U < 2:
        raise ValueError("need at least two groups")
    t0 = {k: np.array([r["traits_0"][k] for r in scored]) for k in scored[0]["traits_0"]}
    t1 = {k: np.array([r["traits_1"][k] for r in scored]) for k in scored[0]["traits_1"]}
    S0, S1 = group_scores(t0, groups), group_scores(t1, groups)  # (U, n)
    if n_users > 0:
        user, group_of_user = assign_users(n, p, n_users, U, seed)
        gid = group_of_user[user]
    else:
        gid = assign_groups(n, p, U, seed)
        user = np.full(n, -1)
    s0, s1 = S0[gid, np.arange(n)], S1[gid, np.arange(n)]
    chosen = label_pairs(s0, s1, label_mode, bt_temperature, seed)
    is_eval = rng(seed, "pair-split").random(n) < eval_fraction
    out = []
    for i, r in enumerate(scored):
        resp = (r["response_0"], r["response_1"])
        out.append({
            "prompt_id": r.get("prompt_id", i), "prompt": r["prompt"],
            "chosen": resp[chosen[i]], "rejected": resp[1 - chosen[i]],
            "chosen_index": int(chosen[i]), "group_id": int(gid[i]), "user_id": int(user[i]),
            "score_0": float(s0[i]), "score_1": float(s1[i]),
            "split": "eval" if is_eval[i] else "train",
        })
    return out
