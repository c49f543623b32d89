"""Fixed designs: a given set of comparisons on a finite-arm environment, labelled under true
parameters.

``Population.sample`` draws i.i.d. action pairs from ``pi_ref``; a textbook experiment often needs
the opposite: *these* pairs, *this* many times each (a coverage-deficient design, an optimal
design, the pairs of a real data set), with labels drawn from the Bradley-Terry model of a known
``theta``. :class:`FixedDesign` holds such a design:

* ``pairs[j] = (context, a, b)``: comparison j shows actions ``a`` and ``b`` in ``context``;
  ``counts[j]`` times; labelled by group ``group[j]`` with parameters ``theta[group[j]]``;
* ``P(a preferred to b) = sigmoid(<theta_g, phi(x, a) - phi(x, b)>)`` (the BT model of
  :mod:`simulator.estimators.bt`);
* :meth:`FixedDesign.sample` draws the labels from a seed: per pair the number of wins of ``a`` is
  ``Binomial(counts[j], p_j)``; returned either aggregated (two rows per pair, the counts as
  ``sample_weight``, pairs with a zero count dropped; the fits are those of the expanded data to
  the solver's tolerance) or expanded (one row per comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arms import FiniteArmEnv
from .data import PreferenceData
from .seeding import as_generator

__all__ = ["FixedDesign", "LabelledDesign"]


@dataclass(frozen=True)
class LabelledDesign:
    """The result of :meth:`FixedDesign.sample`: ``data`` and, when aggregated, the
    ``sample_weight`` to pass to ``fit`` (``None`` for expanded data); ``wins[j]`` is how often
    action ``a`` of pair j won."""

    data: PreferenceData
    sample_weight: np.ndarray | None
    wins: np.ndarray


class FixedDesign:
    """Given comparisons on an environment, labelled by BT under true parameters.

    Parameters
    ----------
    env : FiniteArmEnv
        The contexts, actions and features ``phi(x, a)``.
    pairs : array (P, 3) of int
        ``(context, a, b)`` per comparison type, ``a != b``.
    theta : array (U, d) or (d,)
        True parameters of the groups (a single vector is one group).
    counts : array (P,) of int >= 0, optional
        How many times each pair is compared (default 1).
    group : array (P,) of int, optional
        The group labelling each pair (default 0).
    """

    def __init__(self, env, pairs, theta, counts=None, group=None):
        if not isinstance(env, FiniteArmEnv):
            raise TypeError(f"env must be a FiniteArmEnv; got {type(env).__name__}")
        pr = np.asarray(pairs)
        if pr.ndim != 2 or pr.shape[1] != 3 or pr.shape[0] < 1 \
                or not np.issubdtype(pr.dtype, np.integer):
            raise ValueError(f"pairs must be an integer array of shape (P >= 1, 3) of (context, "
                             f"a, b); got shape {pr.shape} and dtype {pr.dtype}")
        M, A = env.n_contexts, env.n_actions
        if pr[:, 0].min() < 0 or pr[:, 0].max() >= M:
            raise ValueError(f"pairs: context ids must lie in [0, {M})")
        if pr[:, 1:].min() < 0 or pr[:, 1:].max() >= A:
            raise ValueError(f"pairs: action ids must lie in [0, {A})")
        if np.any(pr[:, 1] == pr[:, 2]):
            raise ValueError("pairs: the two actions of a comparison must differ (a != b)")
        th = np.asarray(theta, dtype=np.float64)
        th = th[None, :] if th.ndim == 1 else th
        if th.ndim != 2 or th.shape[1] != env.d or th.shape[0] < 1:
            raise ValueError(f"theta must have shape (U, d) or (d,) with d = {env.d}; got "
                             f"{np.shape(theta)}")
        if not np.all(np.isfinite(th)):
            raise ValueError("theta must be finite")
        P = pr.shape[0]
        c = np.ones(P, dtype=np.int64) if counts is None else np.asarray(counts)
        if c.shape != (P,) or not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
            raise ValueError(f"counts must be non-negative integers of shape ({P},)")
        if c.sum() < 1:
            raise ValueError("counts must contain at least one comparison")
        g = np.zeros(P, dtype=np.int64) if group is None else np.asarray(group)
        if g.shape != (P,) or not np.issubdtype(g.dtype, np.integer) or g.min() < 0 \
                or g.max() >= th.shape[0]:
            raise ValueError(f"group must be integer ids in [0, {th.shape[0]}) of shape ({P},)")
        self.env, self.pairs, self.theta = env, pr.astype(np.int64), th
        self.counts, self.group = c.astype(np.int64), g.astype(np.int64)

    @property
    def n_groups(self) -> int:
        return self.theta.shape[0]

    def features(self) -> np.ndarray:
        """``phi(x, a) - phi(x, b)`` per pair, (P, d)."""
        F = self.env.features
        x, a, b = self.pairs.T
        return F[x, a] - F[x, b]

    def probabilities(self) -> np.ndarray:
        """``P(a preferred to b)`` per pair under its group's ``theta``, (P,)."""
        z = np.einsum("pd,pd->p", self.features(), self.theta[self.group])
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def sample(self, seed, *, aggregate: bool = True) -> LabelledDesign:
        """Labels from ``seed`` (module docstring); ``aggregate`` chooses the data layout."""
        rng = as_generator(seed)
        wins = rng.binomial(self.counts, self.probabilities())
        X, x = self.features(), self.pairs[:, 0]
        actions = self.pairs[:, 1:]
        if aggregate:
            # rows "a won" (y = 1, weight wins) and "b won" (y = 0, weight losses)
            w = np.concatenate([wins, self.counts - wins]).astype(np.float64)
            keep = w > 0
            rep = np.concatenate([np.arange(len(x)), np.arange(len(x))])[keep]
            y = np.concatenate([np.ones(len(x)), np.zeros(len(x))])[keep].astype(np.int8)
            sw = w[keep]
        else:
            rep = np.repeat(np.arange(len(x)), self.counts)
            # within each pair the first `wins` comparisons are a's wins (labels are exchangeable)
            first = np.concatenate([np.arange(c) for c in self.counts])
            y = (first < np.repeat(wins, self.counts)).astype(np.int8)
            sw = None
        data = PreferenceData(X=X[rep], y=y, group=self.group[rep], n_groups=self.n_groups,
                              context=x[rep], actions=actions[rep],
                              meta={"design": "fixed", "aggregated": bool(aggregate)})
        return LabelledDesign(data=data, sample_weight=sw, wins=wins)
