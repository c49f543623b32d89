"""From per-group rewards R (n, U) to the scalar RL reward.

* :class:`GroupNormaliser`  per-group z-scores with statistics from reference generations.
  BT rewards are identified only up to a per-group shift (and scale), so comparing groups
  (min, argmin) needs a convention; this is it (MaxMin-RLHF §4.4 caveat, SharedRep bias note).
* :func:`pointwise_min`     r(x, y) = min_u R_u(x, y)  (what both official codes optimise).
* :func:`algorithm1_select` MaxMin-RLHF Algorithm 1: the group with the lowest batch-mean reward
  is the active group; its reward is used for the whole batch.  Ties -> lowest group index.
* :class:`GroupRewardFunction` glues a group-reward source (learned heads or gold traits), the
  normaliser and the aggregation into one callable for PPO and GRPO.
"""

from __future__ import annotations

import numpy as np


class GroupNormaliser:
    """z-score each group's reward: ``(R - mean_u) / std_u``.

    Parameters
    ----------
    mean, std : array (U,)
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, float)
        self.std = np.where(np.asarray(std, float) > 1e-8, np.asarray(std, float), 1.0)

    @classmethod
    def fit(cls, reference: np.ndarray) -> GroupNormaliser:
        """Statistics from reference rewards (n, U), e.g. the SFT policy's generations."""
        reference = np.asarray(reference, float)
        return cls(reference.mean(0), reference.std(0))

    @classmethod
    def identity(cls, n_groups: int) -> GroupNormaliser:
        return cls(np.zeros(n_groups), np.ones(n_groups))

    def __call__(self, R: np.ndarray) -> np.ndarray:
        return (np.asarray(R, float) - self.mean) / self.std

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


def pointwise_min(R: np.ndarray) -> np.ndarray:
    """(n, U) -> (n,): min over groups for each sample."""
    return np.asarray(R, float).min(axis=1)


def algorithm1_select(R: np.ndarray) -> tuple:
    """MaxMin-RLHF Algorithm 1 on one batch.

    Returns
    -------
    rewards : np.ndarray (n,)
        The active group's rewards.
    group : int
        ``argmin_u mean_i R[i, u]`` (ties -> lowest index).
    """
    R = np.asarray(R, float)
    group = int(np.argmin(R.mean(axis=0)))
    return R[:, group], group


def aggregate(R: np.ndarray, mode: str) -> tuple:
    """Scalar rewards (n,) and the active group (``-1`` for the pointwise min)."""
    if mode == "pointwise_min":
        return pointwise_min(R), -1
    if mode == "algorithm1":
        return algorithm1_select(R)
    raise ValueError(f"bad config value rl.aggregation={mode!r}; allowed: "
                     "['pointwise_min', 'algorithm1']")


class GroupRewardFunction:
    """Callable ``(prompts, completions, rows=None) -> np.ndarray`` of scalar rewards.

    Parameters
    ----------
    source : callable
        ``(prompts, completions, rows) -> (n, U)`` group rewards.
    normaliser : GroupNormaliser
    aggregation : {"pointwise_min", "algorithm1"}

    Attributes
    ----------
    log : list of dict
        Per call: group means (normalised) and the active group.
    """

    def __init__(self, source, normaliser: GroupNormaliser, aggregation: str = "pointwise_min"):
        self.source, self.normaliser, self.aggregation = source, normaliser, aggregation
        self.log = []

    def group_rewards(self, prompts, completions, rows=None) -> np.ndarray:
        return self.normaliser(self.source(list(prompts), list(completions), rows))

    def __call__(self, prompts, completions, rows=None) -> np.ndarray:
        R = self.group_rewards(prompts, completions, rows)
        r, g = aggregate(R, self.aggregation)
        self.log.append({"group_means": R.mean(0).tolist(), "active_group": g})
        return r


def reward_model_source(rm, batch_size: int = 32):
    """Group-reward source from a :class:`~simulator.llm.reward_model.GroupRewardModel`."""
    def source(prompts, completions, rows=None):
        texts = [p + c for p, c in zip(prompts, completions)]
        return rm.rewards(texts, batch_size).float().cpu().numpy()
    return source


def gold_source(panel, groups):
    """Group-reward source from the true trait scores (the paper's gold reward)."""
    from .traits import group_scores

    def source(prompts, completions, rows=None):
        return group_scores(panel.score(prompts, completions, rows), groups).T
    return source
