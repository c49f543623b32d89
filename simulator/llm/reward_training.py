"""Reward-model training: BT fits of the heads, EM over latent users, held-out accuracy.

* ``pooled``    one head on all pairs (the single-reward RLHF baseline; the papers' "uniform");
* ``separate``  head u fitted on group u's pairs only (separate reward models, as in both
                official code bases; the papers' "maxmin");
* ``sharedrep`` all groups jointly, each pair routed to its group's output, tanh in the loss.

With a frozen backbone the pooled features are computed once and the heads are fitted on the
cache (seconds on a CPU).  With LoRA the backbone runs in every step.

EM (``latent_groups``) follows MaxMin-RLHF Algorithm 2 / the SharedRep clustering branch: hard
E-step over users, ``argmax_u sum_{pairs of h} log sigmoid(f(r_u(chosen)) - f(r_u(rejected)))``
(chosen vs rejected: the official clustering code compares response_0 with response_1 and so
ignores the labels, a bug fixed here), warm-started M-steps, a fixed number of iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .reward_losses import bt_loss, pair_log_likelihood, route
from .seeding import rng, torch_generator


@dataclass
class FitConfig:
    """Optimiser settings of one BT fit (AdamW, linear decay to 0 like the HF Trainer)."""

    lr: float = 5e-4
    epochs: int = 3
    batch_size: int = 16
    weight_decay: float = 0.0
    use_tanh: bool = False


def fit_bt(params, batch_rewards, n: int, group_id: torch.Tensor, cfg: FitConfig,
           seed: int, stream: str = "fit") -> list:
    """Minimise the group-routed BT loss by mini-batch AdamW.

    Parameters
    ----------
    params : iterable of Parameter
    batch_rewards : callable
        ``idx (LongTensor) -> (r_chosen, r_rejected)``, each (b, U).
    n : int
        Number of pairs.
    group_id : Tensor (n,)
    cfg : FitConfig
    seed : int
        Seeds the shuffling.

    Returns
    -------
    list of float
        Mean training loss of each epoch.
    """
    params = [p for p in params if p.requires_grad]
    if n == 0 or not params:
        return []
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))
    gen = torch_generator(seed, stream)
    history = []
    for _ in range(cfg.epochs):
        perm, total = torch.randperm(n, generator=gen), 0.0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            rc, rr = batch_rewards(idx)
            loss = bt_loss(rc, rr, group_id[idx].to(rc.device), cfg.use_tanh)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append(total / n)
    return history


def fit_head(head, fc: torch.Tensor, fr: torch.Tensor, group_id: torch.Tensor,
             cfg: FitConfig, seed: int) -> dict:
    """Fit a reward head on cached features according to its method.

    Parameters
    ----------
    head : PooledHead, SeparateHeads or SharedRepHead
    fc, fr : Tensor (n, d)
        Features of chosen and rejected texts.
    group_id : Tensor (n,)
    cfg : FitConfig
    seed : int

    Returns
    -------
    dict
        ``{"loss": [...]}`` (per epoch) or, for separate heads, ``{"loss_group_u": [...]}`` per
        group.
    """
    dev = next(head.parameters()).device
    dtype = next(head.parameters()).dtype
    fc, fr = fc.to(dev, dtype), fr.to(dev, dtype)
    group_id = group_id.long()
    if head.method == "separate":
        out = {}
        for u, lin in enumerate(head.heads):
            idx = torch.nonzero(group_id == u).flatten()
            sub_c, sub_r = fc[idx.to(dev)], fr[idx.to(dev)]
            zeros = torch.zeros(len(idx), dtype=torch.long)
            out[f"loss_group_{u}"] = fit_bt(
                lin.parameters(), lambda b, c=sub_c, r=sub_r, m=lin: (m(c[b]), m(r[b])),
                len(idx), zeros, cfg, seed, f"fit-{head.stream}-{u}")
        return out
    return {"loss": fit_bt(head.parameters(), lambda b: (head(fc[b]), head(fr[b])), len(fc),
                           group_id, cfg, seed, f"fit-{head.stream}")}


def fit_end_to_end(rm, chosen: list, rejected: list, group_id: torch.Tensor, cfg: FitConfig,
                   seed: int) -> dict:
    """Fit head and trainable backbone parameters (LoRA) with full forward passes.

    Separate heads are fitted jointly here (routing keeps their gradients separate; the LoRA
    adapter is shared, which is the multi-head LoRA variant).
    """
    def batch_rewards(idx):
        ec, er = rm.tokenize([chosen[i] for i in idx]), rm.tokenize([rejected[i] for i in idx])
        return rm(ec["input_ids"], ec["attention_mask"]), rm(er["input_ids"], er["attention_mask"])

    rm.train()
    hist = fit_bt(rm.parameters(), batch_rewards, len(chosen), group_id.long(), cfg, seed,
                  f"fit-e2e-{rm.head.stream}")
    rm.eval()
    return {"loss": hist}


@torch.no_grad()
def pair_accuracy(head, fc, fr, group_id) -> dict:
    """Held-out accuracy per group: fraction with r_u(chosen) > r_u(rejected) for the pair's
    own group u.  Returns ``{group id: accuracy}`` (NaN-free: groups with no pairs omitted)."""
    if len(fc) == 0:
        return {}
    dev, dt = next(head.parameters()).device, next(head.parameters()).dtype
    rc, rr = head(fc.to(dev, dt)), head(fr.to(dev, dt))
    gid = group_id.long().to(dev)
    correct = (route(rc, gid) > route(rr, gid)).float()
    return {int(u): float(correct[gid == u].mean()) for u in gid.unique().tolist()}


def em_fit(head, fc, fr, user_id: np.ndarray, cfg: FitConfig, iterations: int, seed: int,
           init: str = "round_robin", true_group_of_user: np.ndarray | None = None) -> dict:
    """Hard EM over users with latent groups (MaxMin-RLHF Algorithm 2).

    Parameters
    ----------
    head : SeparateHeads or SharedRepHead with U outputs (U clusters)
    fc, fr : Tensor (n, d)
        Cached features of chosen / rejected texts.
    user_id : array (n,)
        User of each pair (0..H-1).
    cfg : FitConfig
        Settings of each M-step (``epochs`` = epochs per M-step).
    iterations : int
    seed : int
    init : {"round_robin", "random"}
        Initial clusters: user h -> h mod U (the official code) or uniform at random.
    true_group_of_user : array (H,), optional
        For reporting the purity of the clustering after every iteration.

    Returns
    -------
    dict
        ``cluster_of_user`` (H,), ``history`` (per iteration: loss, purity, cluster sizes).
    """
    U = head.n_groups
    user_id = np.asarray(user_id)
    H = int(user_id.max()) + 1
    if init == "round_robin":
        cluster = np.arange(H) % U
    elif init == "random":
        cluster = rng(seed, "em-init").integers(U, size=H)
    else:
        raise ValueError(f"bad config value reward.em_init={init!r}; allowed: "
                         "['round_robin', 'random']")
    dev, dt = next(head.parameters()).device, next(head.parameters()).dtype
    uid = torch.as_tensor(user_id)
    history = []
    for it in range(iterations):
        losses = fit_head(head, fc, fr, torch.as_tensor(cluster[user_id]), cfg, seed + it)
        with torch.no_grad():
            ll = pair_log_likelihood(head(fc.to(dev, dt)), head(fr.to(dev, dt)), cfg.use_tanh)
            per_user = torch.zeros(H, U, dtype=ll.dtype).index_add_(0, uid, ll.cpu())
        cluster = per_user.argmax(dim=1).numpy()   # ties -> lowest cluster index
        rec = {"iteration": it, "loss": losses,
               "sizes": np.bincount(cluster, minlength=U).tolist()}
        if true_group_of_user is not None:
            rec["purity"] = cluster_purity(cluster, np.asarray(true_group_of_user))
        history.append(rec)
    # final M-step on the final assignment
    fit_head(head, fc, fr, torch.as_tensor(cluster[user_id]), cfg, seed + iterations)
    return {"cluster_of_user": cluster, "history": history}


def cluster_purity(cluster: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of users whose cluster's majority true group equals their own group."""
    total = 0
    for c in np.unique(cluster):
        total += np.bincount(truth[cluster == c]).max()
    return float(total / len(truth))


def align_clusters(cluster_of_user: np.ndarray, truth: np.ndarray, n_groups: int) -> np.ndarray:
    """Permutation ``perm[c] = group`` matching clusters to true groups by majority vote
    (ties: lowest group), so that group 0 (minority) keeps its meaning downstream."""
    perm = np.arange(n_groups)
    for c in range(n_groups):
        m = truth[cluster_of_user == c]
        if len(m):
            perm[c] = int(np.bincount(m, minlength=n_groups).argmax())
    return perm


def train_reward_model(rm, pairs: list, method_cfg: FitConfig, seed: int,
                       latent_groups: bool = False, em_iterations: int = 10,
                       em_init: str = "round_robin", em_epochs: int = 2,
                       end_to_end: bool = False) -> dict:
    """Train ``rm.head`` (and LoRA adapters when ``end_to_end``) on pair records.

    Parameters
    ----------
    rm : GroupRewardModel
    pairs : list of dict
        Records of the ``pairs`` stage (``split`` train/eval, ``group_id``, ``user_id``).
    method_cfg : FitConfig
    seed : int
    latent_groups : bool
        Learn groups by EM over ``user_id`` (requires users and cached features).

    Returns
    -------
    dict
        Training losses, held-out accuracy per group, EM history if any.
    """
    train = [r for r in pairs if r.get("split", "train") == "train"]
    held = [r for r in pairs if r.get("split") == "eval"]
    text = lambda rs, key: [r["prompt"] + r[key] for r in rs]
    gid = torch.tensor([r["group_id"] for r in train])
    report = {"method": rm.head.method, "n_train": len(train), "n_eval": len(held)}
    if end_to_end:
        if latent_groups:
            raise ValueError("bad config value reward.latent_groups=true with LoRA; allowed: "
                             "false (EM runs on cached features of a frozen backbone)")
        report.update(fit_end_to_end(rm, text(train, "chosen"), text(train, "rejected"), gid,
                                     method_cfg, seed))
    else:
        fc, fr = rm.encode(text(train, "chosen")), rm.encode(text(train, "rejected"))
        if latent_groups and rm.head.method != "pooled":
            users = np.array([r["user_id"] for r in train])
            if (users < 0).any():
                raise ValueError("bad config value pairs.n_users=0 with reward.latent_groups=true;"
                                 " allowed: n_users > 0")
            H = int(users.max()) + 1
            truth = np.zeros(H, dtype=int)
            truth[users] = gid.numpy()
            em_cfg = FitConfig(method_cfg.lr, em_epochs, method_cfg.batch_size,
                               method_cfg.weight_decay, method_cfg.use_tanh)
            em = em_fit(rm.head, fc, fr, users, em_cfg, em_iterations, seed, em_init, truth)
            perm = align_clusters(em["cluster_of_user"], truth, rm.head.n_groups)
            _permute_outputs(rm.head, perm)
            report["em"] = {"history": em["history"], "cluster_to_group": perm.tolist()}
        else:
            report.update(fit_head(rm.head, fc, fr, gid, method_cfg, seed))
    if held:
        hc, hr = rm.encode(text(held, "chosen")), rm.encode(text(held, "rejected"))
        report["eval_accuracy"] = pair_accuracy(rm.head, hc, hr,
                                                torch.tensor([r["group_id"] for r in held]))
    return report


@torch.no_grad()
def _permute_outputs(head, perm: np.ndarray) -> None:
    """Reorder head outputs so that output ``perm[c]`` holds cluster ``c``.  If two clusters map
    to the same group (degenerate EM) the order is left unchanged."""
    if len(set(perm.tolist())) != len(perm):
        return
    inv = np.argsort(perm)  # new output g takes old cluster inv[g]
    if head.method == "separate":
        ws = [head.heads[int(c)].weight.clone() for c in inv]
        for g, w in enumerate(ws):
            head.heads[g].weight.copy_(w)
    elif head.method == "sharedrep":
        head.groups.weight.copy_(head.groups.weight[torch.as_tensor(inv)].clone())
