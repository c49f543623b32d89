r"""Max-min (egalitarian) KL-regularised policies: the exact dual solver with its certificate,
MaxMin-RLHF's Algorithm 1, the pointwise-min objective and a cvxpy cross-check.

Source: MaxMin-RLHF, Chakraborty et al., arXiv 2402.08925 (notes: shared/research/maxmin.md,
cited "MM §k"); SharedRep-RLHF notes (sharedrep.md §2.4).  [D] = derived here.

    pi* = argmax_pi min_u F_u(pi),   F_u(pi) = E_x[E_pi r_u - beta KL(pi || pi_ref)]      (MM §4.1)

Dual (MM §4.6 [D]): G(q) = beta E_x log E_{pi_ref} exp(sum_u q_u r_u / beta), q in Delta^U, is
convex; pi* is the Gibbs policy of r_{q*}, q* = argmin G; G(q) - min_u F_u(pi_q) >= 0 certifies.

beta -> 0 (:mod:`~simulator.policy.maxmin_lp`, [D]): V(beta) -> V0 = max_pi min_u E_x E_pi r_u (an
LP) with V0 - beta KL(pi0 || pi_ref) <= V(beta) <= V0, and pi_beta -> pi0, the minimum-KL point
of the LP's optimal face.  Where the regularised dual is out of float64 reach (spread^2 / beta
overflows, or spread / beta > 1e8 with the limit certified in advance), the exact solver returns
that limit, certified by the LP's dual (``MaxMinResult.beta_limit``).

Every max-min entry point takes the same solver controls, declared once in :class:`MaxMinOptions`
(pass ``options=MaxMinOptions(...)``, or any of its fields as keywords, or both: keywords win).
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import rel_entr

from simulator.arms import FiniteArmEnv
from simulator.validation import (
    InvalidParameterError,
    check_bool,
    check_choice,
    check_int,
    check_real,
)

from .gibbs import gibbs_and_log_partition
from .maxmin_lp import kl_bound, lp_dual_value, lp_limit
from .utilities import normalize_rewards, utilities_unchecked
from .validation import (
    check_beta,
    check_distribution,
    check_env,
    check_normalize,
    check_rewards,
    check_thetas,
)

__all__ = [
    "OBJECTIVES",
    "MaxMinOptions",
    "MaxMinResult",
    "dual_value",
    "maxmin_cvxpy",
    "maxmin_from_rewards",
    "maxmin_limit",
    "maxmin_policy",
    "pointwise_min_policy",
]

OBJECTIVES = ("exact", "pointwise", "algorithm1")


# ============================================================================ the options
@dataclass(frozen=True)
class MaxMinOptions:
    """Solver controls of the max-min entry points (`maxmin_policy`, `maxmin_from_rewards`).

    normalize : "ref_center" (default) or None — the reward convention (package docstring,
        MM §4.4).
    tol : certificate tolerance in (0, inf), absolute, reward units.  exact: stop when the
        certified duality gap is <= tol; algorithm1: ``converged`` means gap <= tol.
    max_iter : exact solver, iteration cap (int >= 0).
    method : exact solver, "auto" (exponentiated gradient + active-set Newton polish) or "eg"
        (exponentiated gradient only).  For cvxpy use `maxmin_cvxpy`.
    n_iter : Algorithm 1, number of steps (int >= 1).
    step_size : Algorithm 1, "fw" (lam_t = 2 / (t + 2), Frank–Wolfe on the dual) or a constant
        float in (0, 1].
    warn : exact solver, emit a RuntimeWarning when it stops uncertified.

    The fields are validated by the solver that uses them (as before the options existed), so
    an option irrelevant to the chosen objective is never checked.
    """

    normalize: str | None = "ref_center"
    tol: float = 1e-8
    max_iter: int = 20_000
    method: str = "auto"
    n_iter: int = 200
    step_size: str | float = "fw"
    warn: bool = True

    def replace(self, **changes) -> MaxMinOptions:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(MaxMinOptions))


def _options(options, overrides: dict) -> MaxMinOptions:
    """``options`` (default MaxMinOptions()) with the keyword ``overrides`` applied."""
    if options is None:
        options = MaxMinOptions()
    elif not isinstance(options, MaxMinOptions):
        raise InvalidParameterError(
            f"options must be a MaxMinOptions or None; got {type(options).__name__}")
    unknown = sorted(set(overrides) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}; the max-min options are "
                        f"{list(_OPTION_NAMES)}")
    return dataclasses.replace(options, **overrides) if overrides else options


def _declare_option_keywords(fn):
    """Show the MaxMinOptions fields as keyword-only parameters in ``fn``'s signature (help())."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
               for f in dataclasses.fields(MaxMinOptions)]
    fn.__signature__ = sig.replace(parameters=params)
    return fn


# ============================================================================ the dual of MaxMin
def _dual_oracle(env: FiniteArmEnv, r: np.ndarray, beta: float, q: np.ndarray):
    r"""G(q) = beta E_x log E_{pi_ref} exp(r_q / beta), r_q = sum_u q_u r_u, its gradient
    dG/dq_u = E_x E_{pi_q} r_u (group u's expected reward under pi_q), and pi_q.   (MM §4.6 [D])"""
    rq = np.einsum("u,uma->ma", q, r)
    pi, logz = gibbs_and_log_partition(env, rq, beta)
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
    check_env(env)
    b = check_beta(beta)
    r = normalize_rewards(env, check_rewards(env, rewards, 3), normalize)
    qq = check_distribution(q, r.shape[0], "q")
    return _dual_oracle(env, r, b, qq)[0]


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
    method : how ``pi`` was computed ("auto" / "eg": the dual solver; "lp+min_kl" / "lp_vertex":
        the beta -> 0 limit, see ``beta_limit``; "closed_form"; "cvxpy:..."; Algorithm 1's step).
    beta_limit : True when ``pi`` is the beta -> 0 limit policy (:func:`maxmin_limit`, module
        :mod:`~simulator.policy.maxmin_lp`) and not a solution of the regularised dual: the
        exact solver returns it where the regularised dual is out of float64 reach.  Then
        ``weights`` are the LP's dual weights, ``dual_value`` is the LP dual bound
        D0(q) = E_x max_{a in supp} sum_u q_u r_u(x, a) >= max_pi min_u F_u(pi) [D], and
        ``duality_gap = dual_value - value`` certifies pi for the regularised objective at
        ``beta`` exactly as the dual solver's gap does.
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
    beta_limit: bool = False

    @property
    def active_groups(self) -> np.ndarray:
        """Indices u with weights_u > 1e-8 (the groups the max-min solution trades off)."""
        return np.flatnonzero(self.weights > 1e-8)


def _result(env, r, beta, pi, q, objective, normalize, **extra) -> MaxMinResult:
    utils = utilities_unchecked(env, pi, r, beta)
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
    if not eta * 1e-12 > 0:  # spread^2 / beta overflows float64: no step size is representable
        raise ValueError(
            f"maxmin_policy(exact): the reward spread {spread:.3g} is too large for beta = "
            f"{beta:.3g} (spread^2 / beta overflows float64); rescale the rewards and beta "
            "together (the max-min policy is unchanged by r -> r / s, beta -> beta / s)")
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



# ============================================================================ the beta -> 0 limit
_STIFF = 1e8
"""spread / beta above which the regularised dual counts as stiff: measured on a random 6 x 5
environment with 3 groups (spread 4.9), the dual solver certifies tol = 1e-8 in 5
iterations down to beta = 1e-10 (spread / beta ~ 5e10) and fails (20,000 iterations, 4-5 s,
gap 5e-3) from beta = 1e-12 (~5e12) on; the limit is taken from 1e8 on only where it is
certified in advance, so in the overlap both are within tol."""


def _limit_regime(env, r, beta, tol):
    """(out_of_reach, use_limit) for the exact solver (:func:`maxmin_from_rewards`).

    out_of_reach: spread^2 / beta overflows float64 (no step size of the dual solver is
    representable).  use_limit: out of reach, or the dual is stiff (spread / beta > _STIFF) and
    the limit policy is certified in advance: beta K_max <= (tol + round-off) / 2, by
    V0 - beta KL(pi0) <= V(beta) <= V0 (:mod:`~simulator.policy.maxmin_lp`, item 1) [D].
    """
    spread = float(np.max(np.ptp(r, axis=-1))) if r.size else 0.0
    out_of_reach = not (beta / max(spread * spread, 1e-300) * 1e-12 > 0)
    stiff = spread > _STIFF * beta
    certifiable = beta * kl_bound(env) <= 0.5 * (tol + _roundoff(0.0, r))
    return out_of_reach, out_of_reach or (stiff and certifiable)


def _limit_result(env, r, beta, tol, normalize) -> MaxMinResult | None:
    """The beta -> 0 limit policy as a `MaxMinResult`, certified at ``beta``: value =
    min_u F_u(pi) (with the KL term at beta), dual_value = D0(q) (LP weak duality), gap =
    dual_value - value; converged when gap <= tol + round-off of the rewards' magnitude (an
    absolute tol below float64's resolution of the rewards cannot be certified).  None if the
    LP solver fails."""
    out = lp_limit(env, r, tol)
    if out is None:
        return None
    pi, q, _v0, nit, method = out
    utils = utilities_unchecked(env, pi, r, beta)
    value = float(utils.min())
    dual = lp_dual_value(env, r, q)
    gap = max(dual - value, 0.0)
    return MaxMinResult(
        pi=pi, weights=q, duality_gap=float(gap), utilities=utils, value=value,
        dual_value=dual, objective="exact", objective_value=value, normalize=normalize,
        beta=float(beta), n_iter=nit, converged=bool(gap <= tol + _roundoff(dual, r)),
        gap_history=np.array([gap]), value_history=np.array([value]), method=method,
        beta_limit=True)


def _warn_limit(res: MaxMinResult, tol: float) -> None:
    warnings.warn(f"maxmin_policy(exact): the beta -> 0 limit policy's certified duality gap "
                  f"{res.duality_gap:.3g} > tol={tol:g} ({res.method})", RuntimeWarning,
                  stacklevel=4)


def maxmin_limit(env: FiniteArmEnv, thetas=None, beta=0.0, *, rewards=None,
                 normalize="ref_center", tol=1e-8) -> MaxMinResult:
    r"""The beta -> 0 limit of the exact max-min policy, evaluated at ``beta`` (module
    :mod:`~simulator.policy.maxmin_lp` for the derivation, all [D]):

        pi0 = argmin { KL(pi || pi_ref) : pi an optimum of max_{pi << pi_ref} min_u E_x E_pi r_u },

    the limit of the regularised solutions pi_beta; its LP value V0 satisfies
    V0 - beta KL(pi0 || pi_ref) <= V(beta) = max_pi min_u F_u^beta(pi) <= V0.

    Give ``thetas`` (U, d) or ``rewards`` (U, M, A).  ``beta`` in [0, inf): the KL coefficient at
    which the utilities, ``value`` and the certificate are evaluated (0, the default: the LP
    itself, ``value`` = V0 up to the certified gap).  Returns a `MaxMinResult` with
    ``beta_limit=True``; ``converged`` when its gap (LP dual bound minus value) <= tol.
    """
    check_env(env)
    b = check_real(beta, "beta", low=0.0)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if (thetas is None) == (rewards is None):
        raise InvalidParameterError("give exactly one of thetas (U, d) or rewards (U, M, A)")
    raw = env.rewards(check_thetas(env, thetas)) if rewards is None else check_rewards(
        env, rewards, 3)
    r = normalize_rewards(env, raw, normalize)
    res = _limit_result(env, r, b, tol, normalize)
    if res is None:
        raise RuntimeError("maxmin_limit: the LP solver (HiGHS) failed")
    return res


# ============================================================================ entry points
@_declare_option_keywords
def maxmin_from_rewards(
    env: FiniteArmEnv,
    rewards,
    beta,
    objective="exact",
    *,
    options: MaxMinOptions | None = None,
    **overrides,
) -> MaxMinResult:
    """`maxmin_policy` for arbitrary reward arrays (U, M, A) (e.g. non-linear rewards).

    Solver controls: ``options`` (a :class:`MaxMinOptions`) and/or its fields as keywords.
    """
    opts = _options(options, overrides)
    normalize, tol = opts.normalize, opts.tol
    check_env(env)
    b = check_beta(beta)
    check_choice(objective, "objective", OBJECTIVES)
    check_normalize(normalize)
    r = normalize_rewards(env, check_rewards(env, rewards, 3), normalize)
    tol = check_real(tol, "tol", low=0.0, low_open=True)

    if objective == "exact":
        method = opts.method
        if not (isinstance(method, str) and method in ("auto", "eg")):
            raise InvalidParameterError(f"method must be 'auto' or 'eg' (use maxmin_cvxpy for "
                                        f"cvxpy); got {method!r}")
        max_iter = check_int(opts.max_iter, "max_iter", low=0)
        warn = check_bool(opts.warn, "warn")
        out_of_reach, use_limit = _limit_regime(env, r, b, tol)
        if use_limit:  # the regularised dual is out of float64 reach: its beta -> 0 limit
            lim = _limit_result(env, r, b, tol, normalize)
            if lim is not None and (lim.converged or out_of_reach):
                if not lim.converged and warn:
                    _warn_limit(lim, tol)
                return lim
        q, _G, _g, pi, gap, it, gaps, values = _solve_exact(env, r, b, float(tol), max_iter, method)
        converged = gap <= tol
        if not converged and float(np.max(np.ptp(r, axis=-1))) > _STIFF * b:
            # a stiff dual the solver did not certify: the limit policy may be certified closer
            lim = _limit_result(env, r, b, tol, normalize)
            if lim is not None and lim.duality_gap < gap:
                if not lim.converged and warn:
                    _warn_limit(lim, tol)
                return lim
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

    return _algorithm1(env, r, b, normalize, opts.n_iter, opts.step_size, float(tol))


@_declare_option_keywords
def maxmin_policy(
    env: FiniteArmEnv,
    thetas,
    beta,
    objective="exact",
    *,
    options: MaxMinOptions | None = None,
    **overrides,
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
      Cross-check: `maxmin_cvxpy`.  Extreme reward / beta ratios (spread^2 / beta overflows
      float64, or spread / beta > 1e8 where the limit is certified in advance,
      beta K_max <= tol / 2): the beta -> 0 limit policy (`maxmin_limit`: the LP optimum
      closest to pi_ref in KL, the limit of pi_beta) with its LP-dual certificate,
      ``beta_limit=True``; likewise when the dual solver stops uncertified on a stiff dual
      and the limit is certified closer.  Its ``converged`` allows, besides tol, the float64
      round-off of the rewards' magnitude (256 eps max |r|).

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
    options : :class:`MaxMinOptions`, optional — the solver controls, declared once for every
        max-min entry point: normalize ("ref_center" (default) or None, MM §4.4), tol, max_iter,
        method (exact solver), n_iter, step_size (Algorithm 1), warn (RuntimeWarning if the
        exact solver stops uncertified).
    **overrides : any field of :class:`MaxMinOptions` as a keyword (``normalize=None``,
        ``tol=1e-10``, ...); applied on top of ``options``.

    Returns a `MaxMinResult` (``.pi``, ``.weights``, ``.duality_gap``, ``.utilities``, ...).
    """
    opts = _options(options, overrides)
    check_env(env)
    th = check_thetas(env, thetas)
    return maxmin_from_rewards(env, env.rewards(th), beta, objective, options=opts)


def _pointwise(env, r, beta, normalize) -> MaxMinResult:
    rmin = r.min(axis=0)
    pi, logz = gibbs_and_log_partition(env, rmin, beta)
    who = np.argmin(r, axis=0)  # (M, A), first minimiser
    weights = np.array([float(env.rho @ np.sum(pi * (who == u), axis=1)) for u in range(r.shape[0])])
    weights = weights / weights.sum()
    obj = beta * float(env.rho @ logz)  # = E_x[E_pi min_u r - beta KL] at the Gibbs optimum
    return _result(env, r, beta, pi, weights, "pointwise", normalize, objective_value=obj,
                   method="closed_form")


def _algorithm1(env, r, beta, normalize, n_iter, step_size, tol) -> MaxMinResult:
    n_iter = check_int(n_iter, "n_iter", low=1)
    if isinstance(step_size, str) and step_size == "fw":
        lam_of = lambda t: 2.0 / (t + 2.0)
    else:
        try:
            lam_const = check_real(step_size, "step_size", low=0.0, high=1.0, low_open=True)
        except InvalidParameterError:
            raise InvalidParameterError(f"step_size must be 'fw' or a number in (0, 1]; got "
                                        f"{step_size!r}") from None
        lam_of = lambda t: lam_const
    n_groups = r.shape[0]
    w = np.zeros(n_groups)
    trace = np.empty(n_iter, dtype=np.int64)
    gaps = np.empty(n_iter + 1)
    values = np.empty(n_iter + 1)

    def state(w):
        pi, _ = gibbs_and_log_partition(env, np.einsum("u,uma->ma", w, r), beta)
        utils = utilities_unchecked(env, pi, r, beta)
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

    check_env(env)
    b = check_beta(beta)
    if (thetas is None) == (rewards is None):
        raise InvalidParameterError("give exactly one of thetas (U, d) or rewards (U, M, A)")
    raw = env.rewards(check_thetas(env, thetas)) if rewards is None else check_rewards(
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
        _dual_oracle(env, r, b, q)[0] - float(utilities_unchecked(env, pi, r, b).min()), 0.0),
        n_iter=0, converged=prob.status == "optimal", method=f"cvxpy:{solver}")


# ============================================================================ pointwise shortcut
def pointwise_min_policy(env: FiniteArmEnv, thetas, beta, normalize="ref_center") -> np.ndarray:
    """pi ∝ pi_ref exp(min_u r_u / beta): the exact maximiser of E[min_u r_u] - beta KL
    (MM §4.3, sharedrep.md §2.4).  Shortcut for ``maxmin_policy(..., objective="pointwise").pi``."""
    return maxmin_policy(env, thetas, beta, "pointwise", normalize=normalize).pi


