"""From per-group rewards R (n, U) to the scalar RL reward.

* :class:`GroupNormaliser`  per-group z-scores with statistics from reference generations.
  BT rewards are identified only up to a per-group shift (and scale), so comparing groups
  (min, argmin) needs a convention; this is it (MaxMin-RLHF §4.4 caveat, SharedRep bias note).
* :func:`pointwise_min`     r(x, y) = min_u R_u(x, y)  (what both official codes optimise).
* :func:`algorithm1_select` MaxMin-RLHF Algorithm 1: the group with the lowest batch-mean reward
  is the active group; its reward is used for the whole batch.  Ties -> lowest group index.
  The selection is the simulator's Algorithm 1 (:func:`simulator.policy.maxmin_from_rewards`,
  ``objective="algorithm1"``), not a second implementation of it.
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
    r"""MaxMin-RLHF Algorithm 1 on one batch (Chakraborty et al. 2024, Algorithm 1; MM §4.2).

    Algorithm 1 takes, at iteration t, the active group u_t = argmin_u F_u(pi_t) and updates
    the policy on r_{u_t}.  On an RL batch of n samples y_i ~ pi_t the estimate of F_u(pi_t)
    (the KL term is the same for every group and drops out of the argmin) is the batch mean
    (1/n) sum_i R[i, u].  That is exactly step 0 of the simulator's Algorithm 1
    (:func:`simulator.policy.maxmin_from_rewards`, ``objective="algorithm1"``) on the
    one-context environment whose A = n actions are the samples, with pi_ref uniform (the
    empirical pi_t) and rewards used as given (``normalize=None``): its ``trace[0]`` is u_t.
    Ties within round-off go to the lowest group index there.

    Parameters
    ----------
    R : array (n, U)
        Group rewards of the batch (after the per-group normalisation), n >= 1, finite.

    Returns
    -------
    rewards : np.ndarray (n,)
        The active group's rewards.
    group : int
        ``argmin_u mean_i R[i, u]`` (ties -> lowest index).
    """
    from ..arms import FiniteArmEnv
    from ..policy import maxmin_from_rewards

    R = np.asarray(R, float)
    if R.ndim != 2 or R.shape[0] < 1 or R.shape[1] < 1:
        raise ValueError(f"R must have shape (n >= 1 samples, U >= 1 groups); got {R.shape}")
    # the environment needs A >= 2 actions: a batch of one sample is its own duplicate (same mean)
    samples = R if R.shape[0] >= 2 else np.repeat(R, 2, axis=0)
    env = FiniteArmEnv(np.zeros((1, samples.shape[0], 1)))
    result = maxmin_from_rewards(env, samples.T[:, None, :], 1.0, "algorithm1", normalize=None,
                                 n_iter=1)
    group = int(result.trace[0])
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
