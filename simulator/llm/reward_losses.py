"""Bradley-Terry loss routed by group.

For a pair labelled by group u the loss is ``-log sigmoid(f(r_u(chosen)) - f(r_u(rejected)))``
with ``f = tanh`` (SharedRep) or the identity (pooled, separate), averaged over pairs.  Only group u's
output enters, so head u gets gradient from group u's pairs only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def route(rewards: torch.Tensor, group_id: torch.Tensor) -> torch.Tensor:
    """Pick each row's group column: (n, U), (n,) -> (n,).  A single-output head (U = 1)
    serves every group."""
    if rewards.shape[-1] == 1:
        return rewards[:, 0]
    return rewards.gather(1, group_id.long().view(-1, 1)).squeeze(1)


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, group_id: torch.Tensor,
            use_tanh: bool = False, margin: torch.Tensor | None = None,
            reduction: str = "mean") -> torch.Tensor:
    """Group-routed BT negative log-likelihood.

    Parameters
    ----------
    r_chosen, r_rejected : Tensor, shape (n, U)
    group_id : Tensor, shape (n,)
    use_tanh : bool
        Squash rewards with tanh inside the loss (the SharedRep official setting).
    margin : Tensor, optional
        Subtracted from the difference, as in TRL's RewardTrainer.
    reduction : {"mean", "sum", "none"}
    """
    rc, rr = route(r_chosen, group_id), route(r_rejected, group_id)
    if use_tanh:
        rc, rr = torch.tanh(rc), torch.tanh(rr)
    diff = rc - rr
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def pair_log_likelihood(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                        use_tanh: bool = False) -> torch.Tensor:
    """log sigmoid(f(r_u(chosen)) - f(r_u(rejected))) for every group u: (n, U) -> (n, U).

    The EM E-step sums this over a user's pairs.
    """
    if use_tanh:
        r_chosen, r_rejected = torch.tanh(r_chosen), torch.tanh(r_rejected)
    return F.logsigmoid(r_chosen - r_rejected)
