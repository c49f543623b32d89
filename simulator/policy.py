r"""KL-regularised policies on a finite-arm environment: Gibbs (single reward), exact MaxMin,
MaxMin-RLHF's Algorithm 1, the pointwise-min objective, utilitarian and pessimistic (LCB) policies.

Sources: MaxMin-RLHF, Chakraborty et al., arXiv 2402.08925 (notes: shared/research/maxmin.md,
cited "MM §k"); SharedRep-RLHF notes (sharedrep.md §2.4); Zhu, Jordan & Jiao, "Principled
Reinforcement Learning with Human Feedback from Pairwise or K-wise Comparisons", ICML 2023.
Items marked [D] are derived here (not stated in the papers).

Notation (papers' symbols)
--------------------------
x ~ rho contexts, a actions, pi_ref reference policy, beta > 0 KL coefficient, groups u in U with
rewards r_u(x, a) (linear: r_u = <theta_u, phi(x, a)>), weights q in the simplex Delta^U.

    F_u(pi) = E_{x~rho}[ E_{a~pi(.|x)} r_u(x, a) - beta KL(pi(.|x) || pi_ref(.|x)) ]   (MM §1, §4.1)

Reward normalisation (MM §4.4) [D]
----------------------------------
Bradley–Terry identifies r_u only up to an additive constant per group (per context, for
prompt-dependent offsets), and anything that compares groups (min_u F_u, argmin_u, min_u r_u)
depends on it.  Convention used everywhere a min over groups is taken: ``normalize="ref_center"``
(default) replaces r_u(x, a) by r_u(x, a) - E_{a'~pi_ref(.|x)} r_u(x, a'), i.e. every group's
reward has mean zero under pi_ref in every context.  Consequences: F_u(pi_ref) = 0 for all u;
results are invariant to per-group and per-group-per-context additive shifts of the rewards.
``normalize=None`` uses the rewards as given.  Single-reward Gibbs policies are invariant to
per-context shifts anyway, so `gibbs_policy` takes no ``normalize`` argument.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import rel_entr

from simulator.arms import FiniteArmEnv

__all__ = [
    "NORMALIZATIONS",
    "OBJECTIVES",
    "FiniteArmEnv",
    "MaxMinResult",
    "dual_value",
    "gibbs_from_rewards",
    "gibbs_policy",
    "group_utilities",
    "kl_to_ref",
    "lcb_rewards",
    "log_partition",
    "maxmin_cvxpy",
    "maxmin_from_rewards",
    "maxmin_policy",
    "normalize_rewards",
    "pessimistic_policy",
    "pointwise_min_policy",
    "utilitarian_policy",
    "utilities_from_rewards",
]

NORMALIZATIONS = ("ref_center", None)
OBJECTIVES = ("exact", "pointwise", "algorithm1")


# ============================================================================ validation helpers
def _check_env(env) -> FiniteArmEnv:
    if not isinstance(env, FiniteArmEnv):
        raise ValueError(f"env must be a FiniteArmEnv; got {type(env).__name__}")  # noqa: TRY004
    return env


def _check_beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise ValueError(f"beta must be a real number in (0, inf); got {beta!r}")  # noqa: TRY004
    b = float(beta)
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"beta must be in (0, inf); got {beta!r}")
    return b


def _check_normalize(normalize):
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}")
    return normalize


def _check_thetas(env: FiniteArmEnv, thetas) -> np.ndarray:
    th = np.asarray(thetas, dtype=np.float64)
    if th.ndim != 2 or th.shape[1] != env.d or th.shape[0] < 1:
        raise ValueError(
            f"thetas must have shape (U, d) with U >= 1 and d = {env.d}; got {th.shape}"
        )
    if not np.all(np.isfinite(th)):
        raise ValueError("thetas must be finite (no NaN/inf)")
    return th


def _check_theta(env: FiniteArmEnv, theta) -> np.ndarray:
    th = np.asarray(theta, dtype=np.float64)
    if th.shape != (env.d,):
        raise ValueError(f"theta must have shape (d,) = ({env.d},); got {th.shape}")
    if not np.all(np.isfinite(th)):
        raise ValueError("theta must be finite (no NaN/inf)")
    return th


def _check_rewards(env: FiniteArmEnv, rewards, ndim: int) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    m, a = env.n_contexts, env.n_actions
    want = "(M, A)" if ndim == 2 else "(U, M, A)"
    if r.ndim != ndim or r.shape[-2:] != (m, a) or (ndim == 3 and r.shape[0] < 1):
        raise ValueError(f"rewards must have shape {want} with M={m}, A={a}; got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite (no NaN/inf)")
    return r


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _log_ref(env: FiniteArmEnv) -> np.ndarray:
    ref = env.pi_ref
    out = np.full(ref.shape, -np.inf)
    np.log(ref, out=out, where=ref > 0)
    return out


# ============================================================================ basic quantities
def normalize_rewards(env: FiniteArmEnv, rewards, normalize="ref_center") -> np.ndarray:
    """Apply the reward convention (MM §4.4 [D]) to rewards of shape (..., M, A).

    ``"ref_center"``: r(x, a) - E_{a'~pi_ref(.|x)} r(x, a'), per group and per context.
    ``None``: unchanged (a float64 copy).
    """
    _check_env(env)
    _check_normalize(normalize)
    r = np.array(rewards, dtype=np.float64, copy=True)
    if r.ndim < 2 or r.shape[-2:] != (env.n_contexts, env.n_actions):
        raise ValueError(
            f"rewards must have shape (..., M, A) with M={env.n_contexts}, A={env.n_actions}; "
            f"got {r.shape}"
        )
    if normalize == "ref_center":
        r -= np.sum(r * env.pi_ref, axis=-1, keepdims=True)
    return r


def _gibbs_and_logz(env: FiniteArmEnv, r: np.ndarray, beta: float):
    """pi ∝ pi_ref exp(r / beta) and log Z(x) = log E_{pi_ref} exp(r / beta); r (..., M, A)."""
    logits = _log_ref(env) + r / beta
    mx = np.max(logits, axis=-1, keepdims=True)  # finite: pi_ref has a positive entry per row
    w = np.exp(logits - mx)
    s = np.sum(w, axis=-1, keepdims=True)
    pi = w / s
    logz = (mx + np.log(s))[..., 0]
    return pi, logz


def gibbs_from_rewards(env: FiniteArmEnv, rewards, beta) -> np.ndarray:
    r"""Exact maximiser of E_x[E_pi r - beta KL(pi || pi_ref)] for one reward array (M, A):

        pi_r(a | x) = pi_ref(a | x) exp(r(x, a) / beta) / Z(x)          (MM §1, closed form)

    computed per context with a max-shifted log-sum-exp.  Also accepts a batch (..., M, A).
    """
    _check_env(env)
    b = _check_beta(beta)
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim < 2 or r.shape[-2:] != (env.n_contexts, env.n_actions):
        raise ValueError(
            f"rewards must have shape (M, A) (or (..., M, A)) with M={env.n_contexts}, "
            f"A={env.n_actions}; got {r.shape}"
        )
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite (no NaN/inf)")
    return _gibbs_and_logz(env, r, b)[0]


def gibbs_policy(env: FiniteArmEnv, theta, beta) -> np.ndarray:
    r"""Single-reward KL-regularised RLHF policy for r(x, a) = <theta, phi(x, a)>:

        pi(a | x) ∝ pi_ref(a | x) exp(theta^T phi(x, a) / beta)        (MM §1, standard closed form)

    theta: (d,).  Returns (M, A).  Invariant to per-context additive reward shifts.
    """
    _check_env(env)
    b = _check_beta(beta)
    th = _check_theta(env, theta)
    return _gibbs_and_logz(env, env.rewards(th), b)[0]


def log_partition(env: FiniteArmEnv, rewards, beta) -> np.ndarray:
    """log Z(x) = log E_{a~pi_ref(.|x)} exp(r(x, a) / beta), shape (..., M), stable."""
    _check_env(env)
    b = _check_beta(beta)
    r = np.asarray(rewards, dtype=np.float64)
    return _gibbs_and_logz(env, r, b)[1]


def _kl_rows(env: FiniteArmEnv, pi: np.ndarray) -> np.ndarray:
    """KL(pi(.|x) || pi_ref(.|x)) per context (inf where pi puts mass outside supp pi_ref)."""
    return np.sum(rel_entr(pi, env.pi_ref), axis=-1)


def kl_to_ref(env: FiniteArmEnv, pi) -> float:
    """E_{x~rho} KL(pi(.|x) || pi_ref(.|x))."""
    _check_env(env)
    p = env.check_policy(pi, "pi")
    return float(env.rho @ _kl_rows(env, p))


def _utilities(env: FiniteArmEnv, pi: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    expected = np.einsum("...ma,ma->...m", r, pi) @ env.rho
    return expected - beta * float(env.rho @ _kl_rows(env, pi))


def utilities_from_rewards(env: FiniteArmEnv, pi, rewards, beta, normalize="ref_center"):
    r"""F_u(pi) = E_{x~rho}[ E_{a~pi} r_u(x, a) - beta KL(pi(.|x) || pi_ref(.|x)) ]   (MM §1).

    rewards: (U, M, A) -> (U,) array;  (M, A) -> float.  ``normalize`` as in the module doc.
    """
    _check_env(env)
    b = _check_beta(beta)
    _check_normalize(normalize)
    p = env.check_policy(pi, "pi")
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim not in (2, 3):
        raise ValueError(f"rewards must have shape (M, A) or (U, M, A); got {r.shape}")
    r = _check_rewards(env, r, r.ndim)
    r = normalize_rewards(env, r, normalize)
    out = _utilities(env, p, r, b)
    return float(out) if r.ndim == 2 else out


def group_utilities(env: FiniteArmEnv, pi, thetas, beta, normalize="ref_center") -> np.ndarray:
    r"""Per-group utilities F_u(pi), u = 1..U, for linear rewards r_u = <theta_u, phi>  (MM §1).

    thetas: (U, d) (any estimator's ``theta_``).  Returns (U,).  With the default
    ``normalize="ref_center"``, F_u(pi_ref) = 0 and F_u(pi) = E_x[E_pi r_u - E_{pi_ref} r_u]
    - beta E_x KL(pi || pi_ref).
    """
    _check_env(env)
    th = _check_thetas(env, thetas)
    return utilities_from_rewards(env, pi, env.rewards(th), beta, normalize)


# ============================================================================ the dual of MaxMin
def _dual_oracle(env: FiniteArmEnv, r: np.ndarray, beta: float, q: np.ndarray):
    r"""G(q) = beta E_x log E_{pi_ref} exp(r_q / beta), r_q = sum_u q_u r_u, its gradient
    dG/dq_u = E_x E_{pi_q} r_u (group u's expected reward under pi_q), and pi_q.   (MM §4.6 [D])"""
    rq = np.einsum("u,uma->ma", q, r)
    pi, logz = _gibbs_and_logz(env, rq, beta)
    g = np.einsum("uma,ma->um", r, pi) @ env.rho
    return beta * float(env.rho @ logz), g, pi


def _dual_hessian(env: FiniteArmEnv, r: np.ndarray, beta: float, pi: np.ndarray) -> np.ndarray:
    r"""Hessian of G: (1/beta) E_x Cov_{a~pi_q(.|x)}(r_u(x, a), r_v(x, a))   (U, U)   [D]."""
    rc = r - np.einsum("uma,ma->um", r, pi)[:, :, None]
    return np.einsum("uma,vma,ma,m->uv", rc, rc, pi, env.rho) / beta


def _gap(q: np.ndarray, g: np.ndarray) -> float:
    """G(q) - min_u F_u(pi_q) = sum_u q_u g_u - min_u g_u (the KL terms cancel): >= 0."""
    return float(q @ (g - g.min()))


def dual_value(env: FiniteArmEnv, rewards, beta, q, normalize="ref_center") -> float:
    r"""G(q) = beta E_x log E_{pi_ref} exp(sum_u q_u r_u / beta) for q in the simplex.

    Weak duality (MM §4.5–4.6 [D]): for every policy pi and every q in Delta^U,
    min_u F_u(pi) <= max_pi sum_u q_u F_u(pi) = G(q); hence G(q) upper-bounds the MaxMin value.
    """
    _check_env(env)
    b = _check_beta(beta)
    r = normalize_rewards(env, _check_rewards(env, rewards, 3), normalize)
    qq = _check_simplex(q, r.shape[0], "q")
    return _dual_oracle(env, r, b, qq)[0]


def _check_simplex(q, n: int, name: str) -> np.ndarray:
    qq = np.asarray(q, dtype=np.float64)
    if qq.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {qq.shape}")
    if not np.all(np.isfinite(qq)) or np.any(qq < 0) or abs(qq.sum() - 1.0) > 1e-8:
        raise ValueError(f"{name} must be a probability vector (non-negative, sums to 1)")
    return qq / qq.sum()


# ============================================================================ results
@dataclass(frozen=True)
class MaxMinResult:
    """Result of `maxmin_policy`.

    pi : (M, A) policy.
    weights : (U,) group weights q in the simplex.  exact: the dual optimum q*; algorithm1: the
        normalised accumulated step weights (pi_T is exactly the Gibbs policy of r_q);
        pointwise: the pi-mass on which each group attains the pointwise min.
    duality_gap : G(weights) - min_u F_u(pi) >= 0, a certified upper bound on the MaxMin
        suboptimality max_pi' min_u F_u(pi') - min_u F_u(pi) (weak duality).  For "exact" this is
        the convergence certificate (<= tol when ``converged``).
    utilities : (U,) F_u(pi) under the (normalised) rewards used.
    value : min_u F_u(pi).
    dual_value : G(weights) (an upper bound on the MaxMin value).
    objective_value : the value of the objective the method maximises (exact / algorithm1: the
        max-min value min_u F_u(pi); pointwise: E_x[E_pi min_u r_u - beta KL(pi || pi_ref)]).
    n_iter, converged : solver iterations and whether the stopping rule was met (for algorithm1
        ``converged`` means the certificate fell below ``tol``; it runs ``n_iter`` steps anyway).
    trace : algorithm1 only: (n_iter,) int array, the active (lowest-utility) group u_t per step.
    gap_history, value_history : per-iteration certificate and min_u F_u(pi_t).
    """

    pi: np.ndarray
    weights: np.ndarray
    duality_gap: float
    utilities: np.ndarray
    value: float
    dual_value: float
    objective: str
    objective_value: float
    normalize: str | None
    beta: float
    n_iter: int = 0
    converged: bool = True
    trace: np.ndarray | None = None
    gap_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    value_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = ""

    @property
    def active_groups(self) -> np.ndarray:
        """Indices u with weights_u > 1e-8 (the groups the max-min solution trades off)."""
        return np.flatnonzero(self.weights > 1e-8)


def _result(env, r, beta, pi, q, objective, normalize, **extra) -> MaxMinResult:
    utils = _utilities(env, pi, r, beta)
    g_dual = _dual_oracle(env, r, beta, q)[0]
    value = float(utils.min())
    obj_value = extra.pop("objective_value", value)
    gap = max(g_dual - value, 0.0)
    if objective == "exact":
        # for pi = pi_q the gap has the cancellation-free form q.(g - min g)
        gap = extra.pop("gap")
    return MaxMinResult(
        pi=pi, weights=q, duality_gap=float(gap), utilities=utils, value=value,
        dual_value=float(g_dual), objective=objective, objective_value=float(obj_value),
        normalize=normalize, beta=beta, **extra,
    )


# ============================================================================ exact MaxMin solver
def _roundoff(G: float, r: np.ndarray) -> float:
    """Slack for comparisons of G values: a few hundred ulps of the magnitudes involved."""
    return 256 * np.finfo(float).eps * (abs(G) + float(np.max(np.abs(r), initial=0.0)) + 1.0)


def _sum_zero_basis(k: int) -> np.ndarray:
    """(k, k-1) orthonormal basis of {v in R^k : sum v = 0} (Householder-free, via QR)."""
    basis = np.linalg.qr(np.eye(k) - 1.0 / k, mode="reduced")[0][:, : k - 1]
    return basis


def _newton_face(env, r, beta, q, tol, max_steps=60):
    """Active-set Newton polish of min_q G(q) on the face {q_u = 0 for u not in S} [D].

    Newton direction of G restricted to the face and to sum_u q_u = 1 (reduced Hessian in the
    sum-zero subspace, pseudo-inverse if singular), clipped to the simplex (a coordinate that hits
    0 leaves S), Armijo backtracking on G with a round-off slack.  Returns
    (q, G, g, pi, gap, steps).  The caller accepts the result only if the gap certifies.
    """
    q = q.copy()
    G, g, pi = _dual_oracle(env, r, beta, q)
    S = q > 0
    steps = 0
    for steps in range(1, max_steps + 1):
        gap = _gap(q, g)
        if gap <= tol:
            return q, G, g, pi, gap, steps
        idx = np.flatnonzero(S)
        if idx.size == 1:
            break
        H = _dual_hessian(env, r, beta, pi)[np.ix_(idx, idx)]
        k = idx.size
        # reduced Newton step in the sum-zero subspace: dq = Z y, Z orthonormal basis of 1^perp
        # (using Z^T g removes the large common component of g exactly, which keeps the slope
        # g.dq accurate near the optimum); pseudo-inverse for singular faces (duplicate groups)
        Z = _sum_zero_basis(k)
        gz = Z.T @ g[idx]
        with np.errstate(all="ignore"):
            y = -np.linalg.lstsq(Z.T @ H @ Z, gz, rcond=1e-13)[0]
            dq_s = Z @ y
            slope = float(gz @ y)
        if not np.all(np.isfinite(dq_s)):
            break
        if not np.isfinite(slope) or slope >= 0:
            break
        neg = dq_s < 0
        ratios = np.where(neg, q[idx] / np.where(neg, -dq_s, 1.0), np.inf)
        block = int(np.argmin(ratios))
        t_max = float(ratios[block])
        t = min(1.0, t_max)
        accepted = False
        slack = _roundoff(G, r)
        for _ in range(40):
            q_new = q.copy()
            q_new[idx] = np.maximum(q[idx] + t * dq_s, 0.0)
            if t == t_max:
                q_new[idx[block]] = 0.0
            q_new /= q_new.sum()
            G_new, g_new, pi_new = _dual_oracle(env, r, beta, q_new)
            if G_new <= G + 1e-4 * t * slope + slack:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        q, G, g, pi = q_new, G_new, g_new, pi_new
        S = q > 0
    return q, G, g, pi, _gap(q, g), steps


def _slsqp(env, r, beta, q0) -> np.ndarray:
    """SLSQP on min_{q in Delta^U} G(q) with the exact gradient (used as a polish start)."""
    from scipy.optimize import minimize

    n_groups = r.shape[0]
    scale = 1.0 / max(float(np.max(np.abs(r))), 1e-300)  # O(1) objective for SLSQP's tolerances

    def fun(q):
        qq = np.clip(q, 0.0, None)
        qq = qq / qq.sum() if qq.sum() > 0 else np.full(n_groups, 1.0 / n_groups)
        G, g, _ = _dual_oracle(env, r, beta, qq)
        return G * scale, g * scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            fun, q0, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * n_groups,
            constraints=[{"type": "eq", "fun": lambda q: np.sum(q) - 1.0,
                          "jac": lambda q: np.ones_like(q)}],
            options={"ftol": 1e-16, "maxiter": 500},
        )
    q = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, None)
    q[q < 1e-12] = 0.0
    if not np.all(np.isfinite(q)) or q.sum() <= 0:
        return np.asarray(q0, dtype=np.float64)
    return q / q.sum()


def _solve_exact(env, r, beta, tol, max_iter, method, q0=None):
    """min_{q in Delta^U} G(q) by exponentiated gradient (mirror descent with the entropy on the
    simplex, backtracking step size) + periodic active-set Newton polish (method="auto");
    stops when the certified gap sum_u q_u g_u - min_u g_u <= tol.   (MM §4.6 [D])"""
    n_groups = r.shape[0]
    if q0 is None:
        logq = np.full(n_groups, -np.log(n_groups))
    else:
        logq = np.log(np.maximum(q0, 1e-300))
        logq -= np.logaddexp.reduce(logq)
    q = np.exp(logq)
    G, g, pi = _dual_oracle(env, r, beta, q)
    gap = _gap(q, g)
    gaps, values = [gap], [G - gap]
    # step size: G is L-smooth w.r.t. ||.||_1 with L <= max spread^2 / beta; start at 1/L
    spread = float(np.max(np.ptp(r, axis=-1))) if r.size else 0.0
    eta = beta / max(spread * spread, 1e-300)
    eta = min(eta, 1e12)
    eta_min = eta * 1e-12
    next_polish = 5
    it = 0
    while gap > tol and it < max_iter:
        it += 1
        if method == "auto" and n_groups > 1 and it >= next_polish:
            next_polish = it + max(10, it // 2)
            done = False
            # (a) Newton on the face suggested by the EG iterate
            S = (q >= 1e-6 * q.max()) | (g <= q @ g)
            q_try = np.where(S, q, 0.0)
            q_try /= q_try.sum()
            cand = [_newton_face(env, r, beta, q_try, tol)]
            # (b) SLSQP on the simplex (quasi-Newton with active set), then Newton on its face
            if cand[0][4] > tol:
                q_sl = _slsqp(env, r, beta, q)
                cand.append(_newton_face(env, r, beta, q_sl, tol))
            for qp, Gp, gp, pip, gapp, _ in cand:
                if gapp <= tol:
                    q, G, g, pi, gap = qp, Gp, gp, pip, gapp
                    done = True
                    break
            if done:
                gaps.append(gap)
                values.append(G - gap)
                break
            best = min(cand, key=lambda c: c[1])
            if best[1] < G - _roundoff(G, r):  # restart EG from the better point (kept interior)
                q = 0.999999 * best[0] + 1e-6 / n_groups
                logq = np.log(q)
                G, g, pi = _dual_oracle(env, r, beta, q)
        # one mirror-descent (exponentiated-gradient) step with backtracking on the descent
        # lemma in KL geometry: G(q+) <= G(q) + <g, q+ - q> + KL(q+ || q) / eta
        gc = g - g.min()
        for _ in range(60):
            logq_new = logq - eta * gc
            logq_new -= np.logaddexp.reduce(logq_new)
            q_new = np.exp(logq_new)
            G_new, g_new, pi_new = _dual_oracle(env, r, beta, q_new)
            kl = float(np.sum(rel_entr(q_new, q)))
            if G_new <= G + float(gc @ (q_new - q)) + kl / eta + _roundoff(G, r):
                break
            if eta < eta_min:  # round-off regime: take the step anyway (the gap decides)
                break
            eta *= 0.5
        logq, q, G, g, pi = logq_new, q_new, G_new, g_new, pi_new
        gap = _gap(q, g)
        gaps.append(gap)
        values.append(G - gap)
        eta *= 1.5
    return q, G, g, pi, gap, it, np.array(gaps), np.array(values)


def maxmin_from_rewards(
    env: FiniteArmEnv,
    rewards,
    beta,
    objective="exact",
    *,
    normalize="ref_center",
    tol=1e-8,
    max_iter=20_000,
    method="auto",
    n_iter=200,
    step_size="fw",
    warn=True,
) -> MaxMinResult:
    """`maxmin_policy` for arbitrary reward arrays (U, M, A) (e.g. non-linear rewards)."""
    _check_env(env)
    b = _check_beta(beta)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    _check_normalize(normalize)
    r = normalize_rewards(env, _check_rewards(env, rewards, 3), normalize)
    if not (isinstance(tol, numbers.Real) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a real number in (0, inf); got {tol!r}")

    if objective == "exact":
        if method not in ("auto", "eg"):
            raise ValueError(f"method must be 'auto' or 'eg' (use maxmin_cvxpy for cvxpy); "
                             f"got {method!r}")
        max_iter = _check_positive_int(max_iter, "max_iter", minimum=0)
        q, _G, _g, pi, gap, it, gaps, values = _solve_exact(env, r, b, float(tol), max_iter, method)
        converged = gap <= tol
        if not converged and warn:
            warnings.warn(
                f"maxmin_policy(exact): certified duality gap {gap:.3g} > tol={tol:g} after "
                f"{it} iterations (increase max_iter or tol)", RuntimeWarning, stacklevel=3,
            )
        return _result(env, r, b, pi, q, "exact", normalize, gap=gap, n_iter=it,
                       converged=bool(converged), gap_history=gaps, value_history=values,
                       method=method)

    if objective == "pointwise":
        return _pointwise(env, r, b, normalize)

    return _algorithm1(env, r, b, normalize, n_iter, step_size, float(tol))


def maxmin_policy(
    env: FiniteArmEnv,
    thetas,
    beta,
    objective="exact",
    *,
    normalize="ref_center",
    tol=1e-8,
    max_iter=20_000,
    method="auto",
    n_iter=200,
    step_size="fw",
    warn=True,
) -> MaxMinResult:
    r"""Max-min (egalitarian) KL-regularised policy for groups with rewards r_u = <theta_u, phi>.

    objective="exact" — MaxMin-RLHF's objective (arXiv 2402.08925, Section 4; MM §4.1):

        pi* = argmax_pi min_u F_u(pi),  F_u(pi) = E_x[E_pi r_u - beta KL(pi || pi_ref)].

      Solved through the dual (MM §4.6 [D]): for q in Delta^U the Gibbs policy
      pi_q ∝ pi_ref exp(r_q / beta), r_q = sum_u q_u r_u, maximises sum_u q_u F_u with value
      G(q) = beta E_x log E_{pi_ref} exp(r_q / beta) (convex, dG/dq_u = E_x E_{pi_q} r_u); by the
      minimax theorem pi* = pi_{q*}, q* = argmin_{Delta^U} G.  Exponentiated gradient with a
      backtracking step plus an active-set Newton polish (``method="auto"``; ``"eg"`` = EG only).
      Stopping rule: the certified gap G(q) - min_u F_u(pi_q) = sum_u q_u g_u - min_u g_u <= tol
      (absolute, reward units); it brackets the optimum value V*: value <= V* <= value + gap.
      Cross-check: `maxmin_cvxpy`.

    objective="algorithm1" — MaxMin-RLHF Algorithm 1 (MM §4.2), idealised: at step t, the active
      group u_t = argmin_u F_u(pi_t) (ties within round-off: lowest index), then one exact KL-regularised
      mirror-ascent ("natural policy gradient") step on F_{u_t}:
        pi_{t+1} = argmax_pi  F_{u_t}(pi) - (1/eta_t) E_x KL(pi || pi_t)
      i.e. log pi_{t+1} = (1 - lam_t) log pi_t + lam_t log pi*_{u_t} + const,
      lam_t = eta_t beta / (1 + eta_t beta), from pi_0 = pi_ref.  [D] Then pi_t = pi_{w_t} with
      w_{t+1} = (1 - lam_t) w_t + lam_t e_{u_t}; with ``step_size="fw"`` (lam_t = 2/(t+2)) this is
      exactly Frank–Wolfe on the dual G (its linear minimisation oracle picks argmin_u dG/dq_u =
      the lowest-utility group), so min_u F_u(pi_t) -> V* at rate O(1/t).  A float
      ``step_size`` in (0, 1] is a constant lam (the PPO-like constant learning rate): it reaches
      only a neighbourhood of pi* and the active group keeps alternating.  The paper's PPO step is
      replaced by this exact policy step.  Runs exactly ``n_iter`` steps; ``trace`` holds u_t.

    objective="pointwise" — what both official code bases optimise (MM §4.3; sharedrep.md §2.4):
        max_pi E_x[E_pi min_u r_u - beta KL(pi || pi_ref)],  exact solution pi ∝ pi_ref exp(min_u r_u / beta).
      Its max-min value satisfies min_u F_u(pi_pw) <= V* (tested).

    Parameters
    ----------
    thetas : (U, d) group reward parameters (true or any estimator's ``theta_``).
    beta : KL coefficient in (0, inf).
    normalize : "ref_center" (default) or None — see the module docstring (MM §4.4).
    tol, max_iter, method : exact solver controls.  n_iter, step_size : Algorithm 1 controls.
    warn : emit a RuntimeWarning if the exact solver stops uncertified.

    Returns a `MaxMinResult` (``.pi``, ``.weights``, ``.duality_gap``, ``.utilities``, ...).
    """
    _check_env(env)
    th = _check_thetas(env, thetas)
    return maxmin_from_rewards(
        env, env.rewards(th), beta, objective, normalize=normalize, tol=tol, max_iter=max_iter,
        method=method, n_iter=n_iter, step_size=step_size, warn=warn,
    )


def _pointwise(env, r, beta, normalize) -> MaxMinResult:
    rmin = r.min(axis=0)
    pi, logz = _gibbs_and_logz(env, rmin, beta)
    who = np.argmin(r, axis=0)  # (M, A), first minimiser
    weights = np.array([float(env.rho @ np.sum(pi * (who == u), axis=1)) for u in range(r.shape[0])])
    weights = weights / weights.sum()
    obj = beta * float(env.rho @ logz)  # = E_x[E_pi min_u r - beta KL] at the Gibbs optimum
    return _result(env, r, beta, pi, weights, "pointwise", normalize, objective_value=obj,
                   method="closed_form")


def _algorithm1(env, r, beta, normalize, n_iter, step_size, tol) -> MaxMinResult:
    n_iter = _check_positive_int(n_iter, "n_iter", minimum=1)
    if isinstance(step_size, str):
        if step_size != "fw":
            raise ValueError(f"step_size must be 'fw' or a float in (0, 1]; got {step_size!r}")
        lam_of = lambda t: 2.0 / (t + 2.0)
    else:
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Real) or not (
            0 < float(step_size) <= 1
        ):
            raise ValueError(f"step_size must be 'fw' or a float in (0, 1]; got {step_size!r}")
        lam_const = float(step_size)
        lam_of = lambda t: lam_const
    n_groups = r.shape[0]
    w = np.zeros(n_groups)
    trace = np.empty(n_iter, dtype=np.int64)
    gaps = np.empty(n_iter + 1)
    values = np.empty(n_iter + 1)

    def state(w):
        pi, _ = _gibbs_and_logz(env, np.einsum("u,uma->ma", w, r), beta)
        utils = _utilities(env, pi, r, beta)
        q = w / w.sum() if w.sum() > 0 else np.full(n_groups, 1.0 / n_groups)
        gap = max(_dual_oracle(env, r, beta, q)[0] - float(utils.min()), 0.0)
        return pi, utils, q, gap

    # ties within round-off go to the lowest index (under "ref_center" every F_u(pi_ref) = 0, so
    # the first step is an exact tie that round-off must not decide)
    tie = 64 * np.finfo(float).eps * (float(np.max(np.abs(r), initial=0.0)) + 1.0)
    for t in range(n_iter):
        pi, utils, q, gap = state(w)
        u_t = int(np.flatnonzero(utils <= utils.min() + tie)[0])
        trace[t] = u_t
        gaps[t], values[t] = gap, float(utils.min())
        lam = lam_of(t)
        w = (1.0 - lam) * w
        w[u_t] += lam
    pi, utils, q, gap = state(w)
    gaps[n_iter], values[n_iter] = gap, float(utils.min())
    return _result(env, r, beta, pi, q, "algorithm1", normalize, n_iter=n_iter,
                   converged=bool(gap <= tol), trace=trace, gap_history=gaps,
                   value_history=values, method=f"step_size={step_size}")


# ============================================================================ cvxpy cross-check
def maxmin_cvxpy(env: FiniteArmEnv, thetas=None, beta=1.0, *, rewards=None,
                 normalize="ref_center", solver=None, **solver_kwargs) -> MaxMinResult:
    r"""Primal max-min as an exponential-cone program (cross-check of the exact solver):

        maximise t  s.t.  sum_x rho_x [ sum_a pi(a|x) r_u(x,a) - beta sum_a rel_entr(pi(a|x), pi_ref(a|x)) ] >= t  for all u,
                          pi(.|x) in the simplex.

    The constraint duals are the weights q (MM §4.5: min_u F_u = min_q sum_u q_u F_u).  Give
    either ``thetas`` (U, d) or ``rewards`` (U, M, A).  Default solver: Clarabel if installed.
    ``duality_gap`` is G(q) - min_u F_u(pi) evaluated exactly in numpy (not the solver's).
    """
    import cvxpy as cp

    _check_env(env)
    b = _check_beta(beta)
    if (thetas is None) == (rewards is None):
        raise ValueError("give exactly one of thetas (U, d) or rewards (U, M, A)")
    raw = env.rewards(_check_thetas(env, thetas)) if rewards is None else _check_rewards(
        env, rewards, 3)
    r = normalize_rewards(env, raw, normalize)
    n_groups, m, a = r.shape
    ref = env.pi_ref
    support = ref > 0
    P = cp.Variable((m, a), nonneg=True)
    t = cp.Variable()
    rho_col = env.rho[:, None] * np.ones((1, a))
    kl = cp.sum(cp.multiply(rho_col, cp.rel_entr(P, np.where(support, ref, 1.0))))
    cons = [cp.sum(P, axis=1) == 1]
    if not np.all(support):
        cons.append(P[~support] == 0)
    util_cons = [cp.sum(cp.multiply(env.rho[:, None] * r[u], P)) - b * kl >= t
                 for u in range(n_groups)]
    prob = cp.Problem(cp.Maximize(t), cons + util_cons)
    if solver is None and "CLARABEL" in cp.installed_solvers():
        solver = "CLARABEL"
    prob.solve(solver=solver, **solver_kwargs)
    if P.value is None:
        raise RuntimeError(f"cvxpy failed: status {prob.status}")
    pi = np.clip(np.asarray(P.value, dtype=np.float64), 0.0, None)
    pi = np.where(support, pi, 0.0)
    pi /= pi.sum(axis=1, keepdims=True)
    q = np.array([max(float(np.squeeze(c.dual_value)), 0.0) for c in util_cons])
    q = q / q.sum() if q.sum() > 0 else np.full(n_groups, 1.0 / n_groups)
    return _result(env, r, b, pi, q, "exact", normalize, gap=max(
        _dual_oracle(env, r, b, q)[0] - float(_utilities(env, pi, r, b).min()), 0.0),
        n_iter=0, converged=prob.status == "optimal", method=f"cvxpy:{solver}")


# ============================================================================ other policies
def pointwise_min_policy(env: FiniteArmEnv, thetas, beta, normalize="ref_center") -> np.ndarray:
    """pi ∝ pi_ref exp(min_u r_u / beta): the exact maximiser of E[min_u r_u] - beta KL
    (MM §4.3, sharedrep.md §2.4).  Shortcut for ``maxmin_policy(..., objective="pointwise").pi``."""
    return maxmin_policy(env, thetas, beta, "pointwise", normalize=normalize).pi


def utilitarian_policy(env: FiniteArmEnv, thetas, beta, proportions=None) -> np.ndarray:
    r"""Utilitarian policy: argmax_pi sum_u eta_u F_u(pi) = Gibbs policy of r_eta = sum_u eta_u r_u,
    i.e. single-reward RLHF with the proportion-weighted reward (MM §2.1 population, eta(u)).

    proportions eta: (U,) on the simplex (default uniform).  Independent of the normalisation
    (the weights sum to 1, so per-context shifts cancel in the Gibbs form).  Note: the pooled
    Bradley–Terry MLE on mixed data is NOT exactly sum_u eta_u theta_u (BT is non-linear; MM
    Lemma 1); for "single-reward RLHF as trained" use ``gibbs_policy(env, pooled.theta_, beta)``.
    """
    _check_env(env)
    b = _check_beta(beta)
    th = _check_thetas(env, thetas)
    n_groups = th.shape[0]
    eta = (np.full(n_groups, 1.0 / n_groups) if proportions is None
           else _check_simplex(proportions, n_groups, "proportions"))
    return _gibbs_and_logz(env, env.rewards(eta @ th), b)[0]


def lcb_rewards(env: FiniteArmEnv, theta, X, alpha=1.0, lam=1e-3) -> np.ndarray:
    r"""Pessimistic (lower-confidence-bound) reward, per (x, a)   [reconstructed, Zhu et al. 2023]:

        r_LCB(x, a) = theta^T phi(x, a) - alpha || phi(x, a) - E_{a'~pi_ref(.|x)} phi(x, a') ||_{(Sigma_D + lam I)^{-1}},
        Sigma_D = (1/n) sum_i X_i X_i^T,   X_i = phi(x_i, a1_i) - phi(x_i, a0_i).

    Zhu, Jordan & Jiao (ICML 2023) take min over theta' in the confidence ellipsoid
    ||theta' - theta||_{Sigma_D + lam I} <= alpha of theta'^T (phi(x, a) - v), with a reference
    feature v; here the min is taken per (x, a) (closed form above) with v(x) = E_{pi_ref} phi(x, .),
    a slightly more pessimistic, per-action variant whose KL-regularised optimum is a Gibbs policy.
    alpha = 0 recovers theta^T phi.  Returns (M, A).
    """
    _check_env(env)
    th = _check_theta(env, theta)
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[1] != env.d or Xa.shape[0] < 1:
        raise ValueError(f"X must have shape (n, d) with n >= 1, d = {env.d}; got {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X must be finite (no NaN/inf)")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (
        np.isfinite(alpha) and alpha >= 0
    ):
        raise ValueError(f"alpha must be a real number in [0, inf); got {alpha!r}")
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not (
        np.isfinite(lam) and lam > 0
    ):
        raise ValueError(f"lam must be a real number in (0, inf); got {lam!r}")
    sigma = Xa.T @ Xa / Xa.shape[0] + float(lam) * np.eye(env.d)
    phi = env.features
    z = phi - np.einsum("ma,mad->md", env.pi_ref, phi)[:, None, :]
    chol = np.linalg.cholesky(sigma)
    y = np.linalg.solve(chol, z.reshape(-1, env.d).T)  # L^{-1} z
    bonus = np.sqrt(np.sum(y * y, axis=0)).reshape(env.n_contexts, env.n_actions)
    return phi @ th - float(alpha) * bonus


def pessimistic_policy(env: FiniteArmEnv, theta, beta, X, alpha=1.0, lam=1e-3) -> np.ndarray:
    r"""KL-regularised pessimistic policy: pi ∝ pi_ref exp(r_LCB / beta) with r_LCB from
    `lcb_rewards` (Zhu, Jordan & Jiao 2023 style, per-action LCB; reconstructed).

    alpha = 0 gives ``gibbs_policy(env, theta, beta)``.  [D] d/d alpha E_pi[bonus] =
    -Var_pi(bonus) / beta <= 0: larger alpha moves mass toward actions whose feature deviation is
    well covered by the data (small bonus).
    """
    b = _check_beta(beta)
    return _gibbs_and_logz(env, lcb_rewards(env, theta, X, alpha, lam), b)[0]
