r"""Fairness metrics for policies on a finite-arm environment, evaluated under the TRUE rewards.

Sources: MaxMin-RLHF, arXiv 2402.08925 (notes maxmin.md, "MM §k"): utilities F_u (§1), alignment
gap (Theorem 1, §2.4), diversity (Definition 1, §2.2), max-min objective (§4.1);
SharedRep-RLHF notes (sharedrep.md §4): win rate against the gold policy.  [D] = derived here.

All functions are exact (sums over the finite arms, no sampling).  ``thetas`` are (U, d) group
parameters — pass the TRUE ones to measure what each group actually gets from a policy fitted on
estimated rewards.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from simulator.arms import FiniteArmEnv
from simulator.policy import (
    MaxMinResult,
    gibbs_and_log_partition,
    group_utilities,
    maxmin_policy,
)
from simulator.policy.validation import (
    check_beta,
    check_distribution,
    check_env,
    check_rewards,
    check_thetas,
)
from simulator.validation import (
    InvalidParameterError,
    check_array,
    check_bool,
    check_choice,
    check_real,
)

__all__ = [
    "TIES",
    "alignment_gaps",
    "diversity_epsilon",
    "gold_policy",
    "group_utilities",
    "maxmin_suboptimality",
    "maxmin_value",
    "min_group_utility",
    "paired_win_rate",
    "preference_tv",
    "win_rate",
]

TIES = ("half", "loss")


def min_group_utility(env: FiniteArmEnv, pi, thetas, beta, normalize="ref_center") -> float:
    """min_u F_u(pi), the egalitarian (MaxMin) objective of MM §4.1 evaluated at pi."""
    return float(np.min(group_utilities(env, pi, thetas, beta, normalize)))


def alignment_gaps(env: FiniteArmEnv, pi, thetas, beta, method="kl") -> np.ndarray:
    r"""Alignment gap of every group u (MM Theorem 1, §2.4):

        Align-Gap_u(pi) = F_u(pi*_u) - F_u(pi),   pi*_u = argmax_pi F_u(pi) ∝ pi_ref exp(r_u / beta).

    ``method="kl"`` (default) uses the exact identity [D, MM §2.4]
        F_u(pi*_u) - F_u(pi) = beta E_{x~rho} KL(pi(.|x) || pi*_u(.|x)),
    which holds for every pi << pi_ref and has no cancellation; ``method="direct"`` subtracts the
    two utilities.  Independent of the reward normalisation (a per-group constant cancels).
    Returns (U,), >= 0.
    """
    env = check_env(env)
    b = check_beta(beta)
    th = check_thetas(env, thetas)
    p = env.check_policy(pi, "pi")
    check_choice(method, "method", ("kl", "direct"))
    r = env.rewards(th)
    pistar, logz = gibbs_and_log_partition(env, r, b)  # (U, M, A), (U, M)
    if method == "kl":
        # In log space: log pi*_u = log pi_ref + r_u / beta - log Z_u stays finite where pi*_u
        # underflows to 0 (small beta), so the KL does not turn into inf.
        with np.errstate(divide="ignore"):
            log_ref = np.log(env.pi_ref)
        log_star = log_ref[None] + r / b - logz[..., None]
        pos = p > 0
        logp = np.log(np.where(pos, p, 1.0))
        terms = np.where(pos[None], p[None] * (logp[None] - np.where(pos[None], log_star, 0.0)),
                         0.0)
        kl = np.maximum(terms.sum(axis=-1), 0.0)  # (U, M)
        return b * (kl @ env.rho)
    f_star = np.array([group_utilities(env, pistar[u], th[u:u + 1], b, None)[0]
                       for u in range(th.shape[0])])
    return f_star - group_utilities(env, p, th, b, None)


def maxmin_value(env: FiniteArmEnv, thetas, beta, normalize="ref_center", tol=1e-8) -> float:
    """V* = max_pi min_u F_u(pi) (exact dual solver; certified to within ``tol``)."""
    return maxmin_policy(env, thetas, beta, "exact", normalize=normalize, tol=tol).value


def maxmin_suboptimality(env: FiniteArmEnv, pi_hat, thetas, beta, normalize="ref_center",
                         tol=1e-8, reference=None) -> float:
    r"""MaxMin suboptimality under the true rewards (sharedrep.md §7.1 metric):

        SubOpt(pi_hat) = max_pi min_u F_u(pi) - min_u F_u(pi_hat)   (>= -tol).

    V* comes from the exact solver (lower end of its certified bracket, so the result is exact
    to within ``tol``); pass ``reference`` (a `MaxMinResult` for the same env / thetas / beta /
    normalize) to reuse a solve.  Depends on the normalisation convention (MM §4.4).
    """
    if reference is None:
        reference = maxmin_policy(env, thetas, beta, "exact", normalize=normalize, tol=tol)
    elif not isinstance(reference, MaxMinResult):
        raise InvalidParameterError(f"reference must be a MaxMinResult (of maxmin_policy) or "
                                    f"None; got {type(reference).__name__}")
    return float(reference.value - min_group_utility(env, pi_hat, thetas, beta, normalize))


# ============================================================================ diversity
def _pref_probs(env: FiniteArmEnv, r: np.ndarray, label: str, temperature: float) -> np.ndarray:
    """P(a1 preferred over a0 | x) for every ordered pair: (U, M, A0, A1)."""
    diff = (r[:, :, None, :] - r[:, :, :, None]) / temperature  # r(a1) - r(a0): [u, x, a0, a1]
    if label == "bt":
        return expit(diff)
    return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))


def preference_tv(env: FiniteArmEnv, thetas, policy=None, label="bt",
                  temperature=1.0) -> np.ndarray:
    r"""Pairwise total-variation distances between the groups' preference distributions (MM
    Definition 1 "Diversity(i, j) = TV(p*_i, p*_j)", §2.2), exactly:

        TV(p_i, p_j) = E_{x~rho, (a0, a1)} | P_i(a1 > a0 | x) - P_j(a1 > a0 | x) |       [D, MM §2.2]

    where both groups share the query law — (a0, a1) two draws without replacement from
    ``policy`` (default pi_ref), exactly as `FiniteArmEnv.sample_comparisons` — and differ only in
    the label: ``label="bt"``: P_u = sigma((r_u(a1) - r_u(a0)) / temperature) (the population's
    label model; y = 1 means a1 preferred); ``"deterministic"``: 1{r_u(a1) > r_u(a0)} (ties 1/2;
    the population gives ties to a0 — a null set for continuous features).  Returns (U, U), symmetric, zero diagonal, entries in [0, 1].
    """
    env = check_env(env)
    th = check_thetas(env, thetas)
    check_choice(label, "label", ("bt", "deterministic"))
    temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
    w = env.pair_probabilities(policy) * env.rho[:, None, None]  # (M, A, A), sums to <= 1
    w = w / w.sum()
    p = _pref_probs(env, env.rewards(th), label, temperature).reshape(th.shape[0], -1)
    wf = w.reshape(-1)
    return np.abs(p[:, None, :] - p[None, :, :]) @ wf


def diversity_epsilon(env: FiniteArmEnv, thetas, proportions=None, policy=None, label="bt",
                      temperature=1.0):
    r"""Sub-population diversity epsilon_u of every group u (MM Definition 1 / Lemma 1, §2.2–2.3):

        epsilon_u = TV(p_u, p_{-u}),   p_{-u} = sum_{k != u} eta_k p_k / (1 - eta_u)      [D]

    the TV distance between group u's preference distribution and the mixture of the OTHER groups
    (proportions eta, default uniform).  For two groups this is TV(p_1, p_2) (= ``preference_tv``),
    the only case the paper's experiments use; the paper's |U| > 2 definition could not be
    verified (MM §8 item 1), and this choice makes TV(p*, p_u) = (1 - eta_u) epsilon_u exact for
    the pooled mixture p*, the quantity Lemma 1's bound is built from.  Returns (U,) (zeros for
    U = 1).
    """
    env = check_env(env)
    th = check_thetas(env, thetas)
    n_groups = th.shape[0]
    check_choice(label, "label", ("bt", "deterministic"))
    temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
    eta = (np.full(n_groups, 1.0 / n_groups) if proportions is None
           else check_distribution(proportions, n_groups, "proportions"))
    if n_groups == 1:
        return np.zeros(1)
    w = env.pair_probabilities(policy) * env.rho[:, None, None]
    wf = (w / w.sum()).reshape(-1)
    p = _pref_probs(env, env.rewards(th), label, temperature).reshape(n_groups, -1)
    out = np.empty(n_groups)
    for u in range(n_groups):
        rest = 1.0 - eta[u]
        if rest <= 0:
            out[u] = 0.0
            continue
        mix = (eta @ p - eta[u] * p[u]) / rest
        out[u] = float(np.abs(p[u] - mix) @ wf)
    return out


# ============================================================================ win rate
def gold_policy(env: FiniteArmEnv, thetas, beta, objective="exact", normalize="ref_center"):
    """The gold policy of the win-rate metric: the policy trained on the TRUE rewards.

    For the max-min setting (default) the exact max-min policy; ``objective="pointwise"`` gives
    the SharedRep paper's gold (PPO on the true pointwise min of the group scores,
    sharedrep.md §4).  Returns (M, A).
    """
    return maxmin_policy(env, thetas, beta, objective, normalize=normalize).pi


def paired_win_rate(scores, baseline_scores, ties="half", atol=0.0) -> float:
    """The win rate of sampled pairs: the mean over items of 1 when ``scores`` beats
    ``baseline_scores``, ``c`` when they tie (within ``atol``), 0 otherwise, with the tie rule of
    :func:`win_rate` (``ties="half"``: c = 1/2, the default; ``"loss"``: c = 0, the papers'
    "strictly higher"). The LLM evaluation's win rate against the gold policy's responses.
    NaN for no items."""
    # NaN scores are allowed (they never win: every comparison with NaN is False)
    a = check_array(scores, "scores", finite=False)
    b = check_array(baseline_scores, "baseline_scores", finite=False)
    if a.shape != b.shape:
        raise InvalidParameterError(f"win rate needs paired scores and baseline_scores, got "
                                    f"shapes {a.shape} and {b.shape}")
    check_choice(ties, "ties", TIES)
    atol = check_real(atol, "atol", low=0.0)
    if a.size == 0:
        return float("nan")
    c = 0.5 if ties == "half" else 0.0
    diff = a - b
    return float(np.mean(np.where(diff > atol, 1.0, np.where(diff >= -atol, c, 0.0))))


def win_rate(env: FiniteArmEnv, pi_hat, pi_gold, thetas=None, ties="half", atol=0.0,
             per_context=False, *, rewards=None):
    r"""SharedRep-RLHF win rate against the gold policy (sharedrep.md §4), exactly:

        WR_u = E_{x~rho} [ P_{a~pi_hat(.|x), a'~pi_gold(.|x)} ( s_u(x, a) > s_u(x, a') )
                           + c * P( s_u(x, a) = s_u(x, a') ) ],   s_u = <theta_u, phi> (true score)

    with a and a' independent.  Ties: ``ties="half"`` (default, c = 1/2: a policy identical to the
    gold one scores exactly 0.5, which is the natural reference on a finite arm set where ties
    — the same arm drawn twice — have positive probability); ``ties="loss"`` (c = 0) is the
    paper's "strictly higher" definition.  Scores within ``atol`` count as ties.

    pi_hat, pi_gold : (M, A) policies (e.g. ``gold_policy(env, thetas_true, beta)``).
    thetas : (U, d) TRUE group parameters; group u's win rate uses group u's score.
    rewards : (U, M, A), keyword only
        The true scores themselves, in place of ``thetas`` (rewards that are not linear in the
        features, e.g. trait scores of real responses); give exactly one of the two.
    Returns (U,) (or (U, M) per context if ``per_context``).
    """
    env = check_env(env)
    if (thetas is None) == (rewards is None):
        raise InvalidParameterError("win_rate needs exactly one of thetas (U, d) and rewards "
                                    "(U, M, A)")
    ph = env.check_policy(pi_hat, "pi_hat")
    pg = env.check_policy(pi_gold, "pi_gold")
    check_choice(ties, "ties", TIES)
    atol = check_real(atol, "atol", low=0.0)
    per_context = check_bool(per_context, "per_context")
    s = env.rewards(check_thetas(env, thetas)) if rewards is None else check_rewards(
        env, rewards, 3)  # (U, M, A)
    diff = s[:, :, :, None] - s[:, :, None, :]  # [u, x, a (pi_hat), a' (gold)]
    c = 0.5 if ties == "half" else 0.0
    score = np.where(diff > atol, 1.0, np.where(diff >= -atol, c, 0.0))
    per_x = np.einsum("uxab,xa,xb->ux", score, ph, pg)
    return per_x if per_context else per_x @ env.rho
