r"""Reward-free policies on a finite-arm environment: DPO, IPO, GR-DPO and GR-IPO.

Sources: Rafailov et al. 2023 (DPO), Azar et al. 2023 (IPO, "A General Theoretical Paradigm to
Understand Learning from Human Preferences"), and Ramesh et al. 2024, "Group Robust Preference
Optimization in Reward-free RLHF" (NeurIPS 2024; GR-DPO / GR-IPO, their Algorithm 1: mirror
descent for the group weights alternating with a gradient step on the policy; their analysis of
the log-linear policy class). Equation numbers of the papers were not checked; every objective is
stated here in full. [D] = derived here.

Policy class
------------
Log-linear in the environment's features (Ramesh et al.'s log-linear class):

.. math::

    \pi_\omega(a | x) = \pi_{ref}(a | x) \exp(\langle\omega, \phi(x, a)\rangle) / Z_\omega(x),
    \qquad h_\omega(x, a) = \log\frac{\pi_\omega(a|x)}{\pi_{ref}(a|x)}
                          = \langle\omega, \phi(x, a)\rangle - \log Z_\omega(x).

Why this class [D]: the KL-regularised optimum of a linear reward ``r = <theta, phi>``,
``argmax_pi E[r] - beta KL(pi || pi_ref)``, is ``pi_ref exp(r / beta) / Z``
(:func:`simulator.policy.gibbs_policy`), i.e. ``pi_omega`` with ``omega = theta / beta``: the
class contains every policy a reward-based pipeline with linear rewards can return, so the two
pipelines are judged on the same footing. For a comparison of ``a_w`` (preferred) against
``a_l`` in context ``x`` the normaliser cancels:

.. math::

    t_i = h_\omega(x, a_w) - h_\omega(x, a_l) = \langle\omega, s_i\rangle,
    \qquad s_i = (2 y_i - 1)\,(\phi(x_i, a_{1,i}) - \phi(x_i, a_{0,i})) = (2 y_i - 1) X_i .

Losses (:func:`pair_loss`, the one place they are written)
----------------------------------------------------------
* DPO: ``l(t) = -log sigmoid(beta t)``;
* IPO: ``l(t) = (t - 1 / (2 beta))^2``.

Both are convex in ``omega`` (a convex function of a linear map), smooth, with
``l'' <= beta^2 / 4`` (DPO) and ``l'' = 2`` (IPO). So DPO on this class is Bradley-Terry
logistic regression with ``theta = beta omega`` [D]: with plentiful data from one group whose
labels follow BT with ``theta``, ``omega -> theta / beta``.

Objectives
----------
With ``L_g(omega) = sum_{i in g} c_i l(t_i) / sum_{i in g} c_i + lam / 2 ||omega||^2`` (group
``g``'s mean loss, weights ``c_i`` optional):

* pooled (plain DPO / IPO): ``min_omega`` of the mean over all comparisons, by scipy's L-BFGS-B
  with the exact gradient (``grad_norm`` certifies the optimum);
* group robust (GR-DPO / GR-IPO; Ramesh et al.):
  ``min_omega max_g L_g(omega) = min_omega max_{q in Delta^G} sum_g q_g L_g(omega)``,
  by the deterministic full-batch form of their Algorithm 1 (:func:`_group_robust`):

  .. math::

      q_t \propto q_{t-1} \odot \exp(\eta_q L(\omega_{t-1})), \qquad
      \omega_t = \omega_{t-1} - \eta_\omega \sum_g q_{t,g} \nabla L_g(\omega_{t-1}),

  from ``q_0`` uniform and ``omega_0 = 0``, with ``eta_omega = 1 / M`` and ``M`` the smoothness
  bound ``l''_max max_g lambda_max(X_g^T C_g X_g / c_g) + lam`` (so the step is stable for
  every q), ``eta_q`` a hyperparameter (``ETA_Q``). Their Algorithm 1 samples one group's
  mini-batch per step and scales by the group sizes; full batch, the exact group losses replace
  that estimate, and the loop is deterministic.

Certificate of the group-robust solve: weak duality gives, for any ``q``,
``D(q) = min_omega sum_g q_g L_g(omega) <= min_omega max_g L_g(omega) <= max_g L_g(omega_hat)``;
``duality_gap = max_g L_g(omega_hat) - D(q_bar)`` (``D`` solved by L-BFGS-B; ``q_bar`` the
average of the iterates' weights, or the last one when that bounds higher) bounds how far
``omega_hat`` is from the min-max value. ``weights_gap = max_g L_g - sum_g q_g L_g`` at the
returned point is reported too. The loop stops once ``duality_gap <= tol`` (checked every
``CHECK_EVERY`` steps) or after ``n_iter`` steps; ``omega_hat`` is the last or the averaged
iterate, whichever has the smaller ``max_g L_g`` (the certificate holds for the one returned).

The returned policy is an array ``pi[x, a]`` like every reward-based pipeline's, so
:func:`simulator.fairness.maxmin_suboptimality` and :func:`~simulator.fairness.win_rate` judge it
under the true rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from simulator.arms import FiniteArmEnv
from simulator.data import PreferenceData
from simulator.policy import gibbs_policy
from simulator.policy.validation import check_beta, check_env
from simulator.validation import (
    InvalidParameterError,
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_real,
)

__all__ = ["LOSSES", "ETA_Q", "CHECK_EVERY", "RewardFreeResult", "pair_loss", "group_losses",
           "comparison_features", "preference_optimization", "dpo_policy", "ipo_policy",
           "gr_dpo_policy", "gr_ipo_policy"]

LOSSES = ("dpo", "ipo")
#: Default step of the exponentiated-gradient update of the group weights. The losses are O(1)
#: (log 2 at omega = 0 for DPO); on figure 3's setting (U = 5, d = 32, n = 3000) the loop met a
#: 1e-6 duality gap in 600 steps with 2.0, 1,800 with 0.5 and 8,000 with 0.1 (eta = 0.01),
#: with no oscillation of q; the certificate, not the step, decides convergence.
ETA_Q = 2.0
#: Steps between two evaluations of the duality-gap certificate in the group-robust loop.
CHECK_EVERY = 200


# ------------------------------------------------------------------------- the math, once
def pair_loss(t, beta: float, loss: str):
    """Loss ``l(t)`` of the margins ``t = h(a_w) - h(a_l)`` and its derivative ``l'(t)``.

    DPO: ``-log sigmoid(beta t)``; IPO: ``(t - 1 / (2 beta))^2`` (module docstring).
    """
    t = np.asarray(t, dtype=np.float64)
    if loss == "dpo":
        bt = beta * t
        value = np.logaddexp(0.0, -bt)
        deriv = -beta * 0.5 * (1.0 - np.tanh(0.5 * bt))  # -beta sigmoid(-beta t)
        return value, deriv
    if loss == "ipo":
        r = t - 0.5 / beta
        return r * r, 2.0 * r
    raise InvalidParameterError(f"loss must be one of {LOSSES}; got {loss!r}")


def _curvature_bound(beta, loss):
    return beta * beta / 4.0 if loss == "dpo" else 2.0


def group_losses(omega, S, group, weights, n_groups: int, beta: float, loss: str,
                 lam: float = 0.0):
    """Each group's mean loss ``L_g(omega)`` (G,) and its gradient (G, d).

    ``S`` (n, d) are the signed differences ``s_i``, ``group`` (n,) their groups, ``weights``
    (n,) the ``c_i``; ``lam / 2 ||omega||^2`` is added to every ``L_g``.
    """
    omega = np.asarray(omega, dtype=np.float64)
    val, der = pair_loss(S @ omega, beta, loss)
    tot = np.bincount(group, weights=weights, minlength=n_groups)
    L = np.bincount(group, weights=weights * val, minlength=n_groups) / tot
    onehot = np.zeros((n_groups, group.size))
    onehot[group, np.arange(group.size)] = 1.0
    G = onehot @ ((weights * der)[:, None] * S) / tot[:, None]
    if lam:
        L = L + 0.5 * lam * float(omega @ omega)
        G = G + lam * omega[None, :]
    return L, G


# ------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class RewardFreeResult:
    """A reward-free policy and its certificate.

    Attributes
    ----------
    pi : array (M, A)
        ``pi_omega`` on the environment.
    omega : array (d,)
    loss : {"dpo", "ipo"}
    robust : bool
        Group-robust (GR-) or pooled.
    beta : float
    group_losses : array (G,)
        ``L_g(omega)``.
    weights : array (G,)
        Group weights ``q`` of the last step (robust), or each group's share of the total
        comparison weight (pooled: the weights the pooled objective gives the groups).
    objective : float
        The minimised objective at ``omega``: ``max_g L_g`` (robust) or the pooled mean loss.
    duality_gap : float
        Robust: ``max_g L_g(omega) - D(q)`` (>= 0, module docstring); pooled: 0.
    weights_gap : float
        ``max_g L_g(omega) - sum_g q_g L_g(omega)`` (robust; 0 for pooled).
    grad_norm : float
        Pooled: norm of the gradient at ``omega``; robust: that of ``sum_g q_g L_g``.
    n_iter : int
    converged : bool
        Pooled: L-BFGS-B met ``tol`` on the gradient; robust: ``duality_gap <= tol``.
    """

    pi: np.ndarray
    omega: np.ndarray
    loss: str
    robust: bool
    beta: float
    group_losses: np.ndarray
    weights: np.ndarray
    objective: float
    duality_gap: float
    weights_gap: float
    grad_norm: float
    n_iter: int
    converged: bool

    @property
    def worst_group(self) -> int:
        """The group with the largest loss at ``omega``."""
        return int(np.argmax(self.group_losses))


# ------------------------------------------------------------------------- inputs
def comparison_features(env: FiniteArmEnv, data: PreferenceData) -> np.ndarray:
    """``phi(x_i, a1_i) - phi(x_i, a0_i)`` of each comparison of ``data`` on ``env`` (n, d).

    ``data`` must record ``context`` and ``actions`` (data drawn with ``env``, e.g.
    ``Population.sample(n, seed, env=env)``), in range for ``env``, on actions ``pi_ref``
    plays, and its ``X`` must be these differences (to 1e-9 relative).
    """
    env = check_env(env)
    if not isinstance(data, PreferenceData):
        raise InvalidParameterError(f"data must be a PreferenceData; got {type(data).__name__}")
    if data.context is None or data.actions is None:
        raise InvalidParameterError("data must record context and actions (draw it with "
                                    "env=...): a reward-free policy is trained on the arms")
    if data.d != env.d:
        raise InvalidParameterError(f"data has d = {data.d} features, env has d = {env.d}")
    if data.context.max() >= env.n_contexts:
        raise InvalidParameterError(f"data.context must lie in [0, {env.n_contexts}); found "
                                    f"{int(data.context.max())}")
    if data.actions.max() >= env.n_actions:
        raise InvalidParameterError(f"data.actions must lie in [0, {env.n_actions}); found "
                                    f"{int(data.actions.max())}")
    c, a0, a1 = data.context, data.actions[:, 0], data.actions[:, 1]
    if np.any(env.pi_ref[c, a0] <= 0) or np.any(env.pi_ref[c, a1] <= 0):
        raise InvalidParameterError("data compares an action pi_ref never plays (pi_ref = 0): "
                                    "log pi / pi_ref is undefined there")
    X = env.features[c, a1] - env.features[c, a0]
    scale = max(1.0, float(np.abs(X).max()))
    if not np.allclose(X, data.X, rtol=1e-9, atol=1e-9 * scale):
        raise InvalidParameterError("data.X is not phi(x, a1) - phi(x, a0) on env: the data "
                                    "were not drawn on this environment")
    return X


# ------------------------------------------------------------------------- solvers
def _pooled(S, w, beta, loss, lam, tol, max_iter):
    tot = w.sum()

    def fun(om):
        val, der = pair_loss(S @ om, beta, loss)
        f = float(w @ val) / tot + 0.5 * lam * float(om @ om)
        g = (S.T @ (w * der)) / tot + lam * om
        return f, g

    res = minimize(fun, np.zeros(S.shape[1]), jac=True, method="L-BFGS-B",
                   # L-BFGS-B's gtol bounds the sup norm; tol / sqrt(d) bounds the 2-norm by tol
                   options={"maxiter": max_iter, "gtol": tol / np.sqrt(S.shape[1]), "ftol": 0.0,
                            "maxcor": 30})
    f, g = fun(res.x)
    gn = float(np.linalg.norm(g))
    return res.x, f, gn, int(res.nit), gn <= tol


def _dual_value(q, S, group, w, G, beta, loss, lam, omega0, tol):
    """``D(q) = min_omega sum_g q_g L_g(omega)`` by L-BFGS-B (a lower bound of the min-max)."""

    def fun(om):
        L, Gr = group_losses(om, S, group, w, G, beta, loss, lam)
        return float(q @ L), q @ Gr

    res = minimize(fun, omega0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": min(tol, 1e-10) * 1e-2, "ftol": 0.0})
    return float(fun(res.x)[0]), res.x


def _group_robust(S, group, w, G, beta, loss, lam, eta_q, n_iter, tol):
    """Full-batch mirror descent (q) / gradient descent (omega); Ramesh et al., Algorithm 1."""
    d = S.shape[1]
    M = 0.0
    for g in range(G):
        rows = group == g
        Sg, wg = S[rows], w[rows]
        M = max(M, float(np.linalg.eigvalsh((Sg * wg[:, None]).T @ Sg / wg.sum())[-1]))
    step = 1.0 / (_curvature_bound(beta, loss) * M + lam)  # eta_omega = 1 / smoothness
    omega = np.zeros(d)
    logq = np.full(G, -np.log(G))
    q_sum = np.zeros(G)
    om_sum = np.zeros(d)
    best = None
    t = 0
    for t in range(1, n_iter + 1):
        L, Gr = group_losses(omega, S, group, w, G, beta, loss, lam)
        logq = logq + eta_q * L  # exponentiated gradient ascent on q, in log space
        logq -= logq.max()
        q = np.exp(logq)
        q /= q.sum()
        omega = omega - step * (q @ Gr)
        q_sum += q
        om_sum += omega
        if t % CHECK_EVERY == 0 or t == n_iter:
            best = _certify(omega, om_sum / t, q, q_sum / t, S, group, w, G, beta, loss, lam,
                            tol)
            if best[3] <= tol:
                break
    return best + (t,)


def _certify(om_last, om_avg, q_last, q_avg, S, group, w, G, beta, loss, lam, tol):
    """(omega, q, L, duality gap) for the better of the last and averaged iterates."""
    cands = []
    for om in (om_last, om_avg):
        L, _ = group_losses(om, S, group, w, G, beta, loss, lam)
        cands.append((float(L.max()), om, L))
    upper, om, L = min(cands, key=lambda c: c[0])
    lower = -np.inf
    for q in (q_avg, q_last):
        lower = max(lower, _dual_value(q, S, group, w, G, beta, loss, lam, om, tol)[0])
    q = q_last
    return om, q, L, max(upper - lower, 0.0)


def preference_optimization(env: FiniteArmEnv, data: PreferenceData, beta, *, loss="dpo",
                            robust=False, lam=0.0, eta_q=ETA_Q, n_iter=20_000, tol=None,
                            sample_weight=None) -> RewardFreeResult:
    r"""Fit a log-linear policy on ``env`` to preference data without a reward (module docstring).

    Parameters
    ----------
    env : FiniteArmEnv
    data : PreferenceData
        Comparisons drawn on ``env`` (``context`` and ``actions`` recorded); ``data.group`` the
        groups of the robust objective (every group needs a comparison when ``robust``).
    beta : float
        KL coefficient ``beta > 0`` of DPO / IPO.
    loss : {"dpo", "ipo"}
    robust : bool, default False
        Group robust (GR-DPO / GR-IPO): ``min_omega max_g L_g(omega)``; else the pooled mean.
    lam : float, default 0
        Ridge ``lam / 2 ||omega||^2`` (>= 0). Without it the DPO optimum is infinite when a
        group's comparisons are separable.
    eta_q : float, default :data:`ETA_Q`
        Step of the group weights' exponentiated-gradient update (robust only; > 0).
    n_iter : int, default 20000
        Steps of the robust loop (robust) / L-BFGS-B iterations (pooled).
    tol : float, optional
        Pooled: gradient norm (default 1e-9); robust: duality gap (default 1e-6).
    sample_weight : array (n,), optional
        Non-negative weights ``c_i`` of the comparisons (each group's total must be > 0).

    Returns
    -------
    RewardFreeResult
    """
    env = check_env(env)
    b = check_beta(beta)
    loss = check_choice(loss, "loss", LOSSES)
    robust = check_bool(robust, "robust")
    lam = check_real(lam, "lam", low=0.0)
    eta_q = check_real(eta_q, "eta_q", low=0.0, low_open=True)
    n_iter = check_int(n_iter, "n_iter", low=1)
    tol = check_real(tol, "tol", low=0.0, low_open=True, allow_none=True)
    X = comparison_features(env, data)
    S = X * (2.0 * data.y - 1.0)[:, None]
    if sample_weight is None:
        w = np.ones(data.n)
    else:
        w = check_array(sample_weight, "sample_weight", shape=(data.n,), nonneg=True)
    G = data.n_groups
    tot = np.bincount(data.group, weights=w, minlength=G)
    if robust:
        empty = np.flatnonzero(tot <= 0)
        if empty.size:
            raise ValueError(f"group-robust preference optimisation needs data for every group; "
                             f"group(s) {empty.tolist()} have no (weighted) comparisons "
                             f"(n_groups = {G})")
        tol = 1e-6 if tol is None else tol
        omega, q, L, gap, it = _group_robust(S, data.group, w, G, b, loss, lam, eta_q, n_iter,
                                             tol)
        _, Gr = group_losses(omega, S, data.group, w, G, b, loss, lam)
        return RewardFreeResult(
            pi=gibbs_policy(env, b * omega, b), omega=omega, loss=loss, robust=True, beta=b,
            group_losses=L, weights=q, objective=float(L.max()), duality_gap=float(gap),
            weights_gap=float(L.max() - q @ L), grad_norm=float(np.linalg.norm(q @ Gr)),
            n_iter=int(it), converged=bool(gap <= tol))
    if w.sum() <= 0:
        raise InvalidParameterError("sample_weight must have a positive sum")
    tol = 1e-9 if tol is None else tol
    omega, f, gn, it, conv = _pooled(S, w, b, loss, lam, tol, n_iter)
    L = _losses_nonempty(omega, S, data.group, w, G, b, loss, lam, tot)
    share = tot / tot.sum()
    return RewardFreeResult(
        pi=gibbs_policy(env, b * omega, b), omega=omega, loss=loss, robust=False, beta=b,
        group_losses=L, weights=share, objective=f, duality_gap=0.0, weights_gap=0.0,
        grad_norm=gn, n_iter=it, converged=bool(conv))


def _losses_nonempty(omega, S, group, w, G, beta, loss, lam, tot):
    """Group losses with NaN for the groups that have no comparisons (pooled fits allow them)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        L, _ = group_losses(omega, S, group, w, G, beta, loss, lam)
    return np.where(tot > 0, L, np.nan)


def dpo_policy(env, data, beta, **kwargs) -> RewardFreeResult:
    """Plain DPO on the pooled data (:func:`preference_optimization`, ``loss="dpo"``)."""
    return preference_optimization(env, data, beta, loss="dpo", robust=False, **kwargs)


def ipo_policy(env, data, beta, **kwargs) -> RewardFreeResult:
    """Plain IPO on the pooled data (``loss="ipo"``)."""
    return preference_optimization(env, data, beta, loss="ipo", robust=False, **kwargs)


def gr_dpo_policy(env, data, beta, **kwargs) -> RewardFreeResult:
    """GR-DPO (Ramesh et al. 2024): the worst group's DPO loss, adaptive group weights."""
    return preference_optimization(env, data, beta, loss="dpo", robust=True, **kwargs)


def gr_ipo_policy(env, data, beta, **kwargs) -> RewardFreeResult:
    """GR-IPO (Ramesh et al. 2024): the worst group's IPO loss, adaptive group weights."""
    return preference_optimization(env, data, beta, loss="ipo", robust=True, **kwargs)
