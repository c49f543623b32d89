r"""The beta -> 0 limit of the exact max-min policy: a linear program and a minimum-KL selection.

Source: MaxMin-RLHF, arXiv 2402.08925 (notes shared/research/maxmin.md, "MM §k"), objective
MM §4.1; everything below is [D] (derived here, not in the paper).

    F_u^beta(pi) = E_x[E_pi r_u - beta KL(pi || pi_ref)],   V(beta) = max_pi min_u F_u^beta(pi),
    V0 = max_{pi << pi_ref} min_u E_x E_pi r_u                                    (the LP)

[D] Limits and bounds, for every beta > 0:

1. V0 - beta KL(pi0 || pi_ref) <= V(beta) <= V0 for every LP optimum pi0: the right side because
   the KL term is >= 0; the left because pi0 is a feasible policy whose every F_u^beta is
   E r_u(pi0) - beta KL(pi0) >= V0 - beta KL(pi0).  Hence V(beta) is non-increasing in beta and
   V(beta) -> V0 as beta -> 0 at rate O(beta).  KL(pi || pi_ref) <= K_max = E_x max_{a in
   supp pi_ref(.|x)} log(1 / pi_ref(a|x)) for every pi on the support, so the bound is known
   before solving.
2. Weak duality of the LP: for every q in the simplex, D0(q) = E_x max_{a in supp} r_q(x, a),
   r_q = sum_u q_u r_u, bounds V0 (hence V(beta)) from above, and D0(q) >= G_beta(q) = beta E_x
   log E_{pi_ref} exp(r_q / beta) (the regularised dual of :mod:`~simulator.policy.maxmin`).
3. Which LP optimum: the regularised solutions pi_beta converge, as beta -> 0, to the unique
   minimiser of KL(pi || pi_ref) over the LP's optimal face.  Proof: for pi0 that minimiser,
   min_u E r_u(pi_beta) - beta KL(pi_beta) >= V0 - beta KL(pi0) and min_u E r_u(pi_beta) <= V0
   give KL(pi_beta) <= KL(pi0); a limit point is LP-optimal (continuity) with KL <= KL(pi0)
   (lower semicontinuity), so it is pi0 (KL is strictly convex on the convex face).

Computation.  Stage 1: the LP by HiGHS' dual simplex (rewards scaled to max |r| = 1; the LP's
solution set is scale invariant), giving V0 and the group weights q (the LP's dual, the
constraint marginals).  Stage 2: the minimum-KL point of the optimal face, through its dual

    max_{lam >= 0}  (V0 - eps) sum_u lam_u - E_x log sum_{a in S_x} pi_ref(a|x) exp(sum_u lam_u r_u(x, a))

whose maximiser gives pi(a|x) ∝ pi_ref(a|x) exp(lam . r(x, a)) on S_x, the actions that are
optimal for r_q (complementary slackness: every LP optimum lives there; S only speeds the
solve, the constraints alone keep the point on the face), maximised by projected Newton
(Hessian E_x Cov_{pi_lam}(r_u, r_v)) with Armijo backtracking.  The face's value constraint is
relaxed by eps (1e-10 of max |r|, or less for a tighter tol) so that the dual is attained;
the point is the minimum-KL point of that relaxed face.  If stage 2 does not reach the face
(to 2 eps), the LP's vertex solution is returned instead (``method`` says which).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.special import logsumexp

from simulator.arms import FiniteArmEnv

from .validation import log_ref

__all__ = ["kl_bound", "lp_limit", "lp_dual_value"]


def kl_bound(env: FiniteArmEnv) -> float:
    """K_max = E_x max_{a in supp pi_ref(.|x)} log(1 / pi_ref(a|x)) >= KL(pi || pi_ref) for
    every policy pi on pi_ref's support [D]."""
    lref = log_ref(env)
    worst = np.max(np.where(np.isfinite(lref), -lref, -np.inf), axis=1)
    return float(env.rho @ worst)


def lp_dual_value(env: FiniteArmEnv, r: np.ndarray, q: np.ndarray) -> float:
    """D0(q) = E_x max_{a in supp pi_ref(.|x)} sum_u q_u r_u(x, a): an upper bound on the LP
    value V0 and on every regularised max-min value V(beta) (module docstring, item 2) [D]."""
    rq = np.einsum("u,uma->ma", q, r)
    return float(env.rho @ np.max(np.where(env.pi_ref > 0, rq, -np.inf), axis=1))


def _solve_lp(env: FiniteArmEnv, rs: np.ndarray):
    """Stage 1: max_{pi << pi_ref} min_u E_x E_pi rs_u by HiGHS' dual simplex.

    Variables: pi(x, a) on the support and t; returns (pi (M, A), q (U,), V0, iterations)
    or None if HiGHS fails."""
    n_groups, m, a = rs.shape
    supp = (env.pi_ref > 0).ravel()
    idx = np.flatnonzero(supp)
    n = idx.size
    coef = rs.reshape(n_groups, -1)[:, idx] * np.repeat(env.rho, a)[idx]  # (U, n)
    # min -t  s.t.  t - sum_{x,a} rho_x pi(x,a) r_u(x,a) <= 0  (all u),  sum_a pi(x, a) = 1
    c = np.zeros(n + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-coef, np.ones((n_groups, 1))])
    a_eq = sp.csr_matrix((np.ones(n), (idx // a, np.arange(n))), shape=(m, n + 1))
    bounds = [(0.0, None)] * n + [(None, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n_groups), A_eq=a_eq, b_eq=np.ones(m),
                      bounds=bounds, method="highs-ds",
                      options={"primal_feasibility_tolerance": 1e-10,
                               "dual_feasibility_tolerance": 1e-10})
    if res.status != 0 or res.x is None:
        return None
    pi = np.zeros(m * a)
    pi[idx] = np.clip(res.x[:n], 0.0, None)
    pi = pi.reshape(m, a)
    pi /= pi.sum(axis=1, keepdims=True)
    q = np.clip(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0, None)
    q = q / q.sum() if q.sum() > 0 else np.full(n_groups, 1.0 / n_groups)
    return pi, q, float(-res.fun), int(res.nit)


def _min_kl_on_face(env: FiniteArmEnv, rs: np.ndarray, q: np.ndarray, v0: float, eps: float):
    """Stage 2: the minimum-KL-to-pi_ref policy with min_u E rs_u(pi) >= v0 - eps, on the
    actions optimal for rs_q (module docstring).  Returns pi (M, A) or None."""
    n_groups = rs.shape[0]
    lref = log_ref(env)
    rq = np.einsum("u,uma->ma", q, rs)
    rq_sup = np.where(np.isfinite(lref), rq, -np.inf)
    on_face = rq_sup >= np.max(rq_sup, axis=1, keepdims=True) - 1e-9  # rewards scaled to 1
    lr = np.where(on_face, lref, -np.inf)
    target = v0 - eps

    def state(lam):
        logits = lr + np.einsum("u,uma->ma", lam, rs)
        lse = logsumexp(logits, axis=1, keepdims=True)
        pi = np.exp(logits - lse)
        lin = np.einsum("uma,ma->um", rs, pi) @ env.rho
        # the negated dual (convex) and its gradient E_x E_pi rs_u - target
        return float(env.rho @ lse[:, 0]) - target * float(lam.sum()), lin - target, pi

    # projected Newton on lam >= 0 (Bertsekas' two-metric form): Newton on the free
    # coordinates, Hessian E_x Cov_{pi_lam}(rs_u, rs_v), Armijo backtracking
    lam = np.zeros(n_groups)
    f, g, pi = state(lam)
    for _ in range(200):
        proj = np.where(lam > 0, g, np.minimum(g, 0.0))
        if float(np.max(np.abs(proj))) <= 0.25 * eps:
            break
        free = (lam > 0) | (g < 0)
        rc = rs - np.einsum("uma,ma->um", rs, pi)[:, :, None]
        hess = np.einsum("uma,vma,ma,m->uv", rc, rc, pi, env.rho)[np.ix_(free, free)]
        step = np.zeros(n_groups)
        step[free] = -np.linalg.lstsq(hess, g[free], rcond=1e-14)[0]
        slope = float(g @ step)
        if not (np.isfinite(slope) and slope < 0):
            step, slope = -proj, -float(proj @ proj)  # steepest descent on the projected gradient
        t, accepted = 1.0, False
        for _ in range(60):
            lam_new = np.maximum(lam + t * step, 0.0)
            f_new, g_new, pi_new = state(lam_new)
            if f_new <= f + 1e-4 * float(g @ (lam_new - lam)) + 1e-15 * (abs(f) + 1.0):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        lam, f, g, pi = lam_new, f_new, g_new, pi_new
    if not (np.all(np.isfinite(pi)) and float(g.min()) >= -eps):  # min_u E rs_u >= v0 - 2 eps
        return None
    return pi


def lp_limit(env: FiniteArmEnv, r: np.ndarray, tol: float):
    r"""The beta -> 0 limit of the max-min policy for rewards r (U, M, A) as given (normalised
    by the caller; not validated).

    Returns ``(pi, q, v0, n_iter, method)``: the policy (the minimum-KL point of the LP's
    optimal face, or the LP vertex when stage 2 fails: ``method`` "lp+min_kl" or "lp_vertex"),
    the LP's dual weights q, the LP value V0 = max_pi min_u E_x E_pi r_u (in r's units) and the
    simplex iterations; ``None`` if the LP solver fails.  ``tol`` (absolute, r's units) sets the
    face relaxation eps = min(1e-10, tol / 4) of max |r|.
    """
    scale = float(np.max(np.abs(r), initial=0.0))
    if scale == 0.0:  # every policy is optimal: the minimum-KL one is pi_ref
        return env.pi_ref.copy(), np.full(r.shape[0], 1.0 / r.shape[0]), 0.0, 0, "lp+min_kl"
    rs = r / scale
    lp = _solve_lp(env, rs)
    if lp is None:
        return None
    pi_lp, q, v0s, nit = lp
    eps = max(min(1e-10, 0.25 * tol / scale), 1e-15)
    pi = _min_kl_on_face(env, rs, q, v0s, eps)
    method = "lp+min_kl"
    if pi is None:
        pi, method = pi_lp, "lp_vertex"
    return pi, q, v0s * scale, nit, method
