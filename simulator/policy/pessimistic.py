r"""Pessimistic (lower-confidence-bound) policies: Zhu, Jordan & Jiao's pessimistic MLE.

Source: B. Zhu, M. I. Jordan, J. Jiao, "Principled Reinforcement Learning with Human Feedback
from Pairwise or K-wise Comparisons", ICML 2023, arXiv 2301.11270, Section 3 "Learning from
Pairwise Comparison" ("ZJJ").  The notes (shared/research/sharelora_theory.md §2.1, sharedrep.md
§3.2(a)) had no theorem body: the *forms* below are [P] (reliable shape) and the result names
(Lemma 3.1, Theorem 3.2, Theorem 3.9) are those of the notes; the universal constant C, the
exponent L B in gamma, the choice of lam and the display/equation numbers were NOT checked against
the paper and are marked [unverified].  Items marked [D] are derived here.

Setting (the paper's symbols)
-----------------------------
Comparisons x_i = phi(s_i, a_i^1) - phi(s_i, a_i^0), i = 1..n, BT labels, theta* in
Theta_B = {<1, theta> = 0, ||theta||_2 <= B}.

    Sigma_D = (1/n) sum_i x_i x_i^T                                          (ZJJ §3)
    gamma   = 1 / (2 + exp(-L B) + exp(L B))                                 (ZJJ Lemma 3.1)
    f(n, d, delta, lam) = C sqrt( (d + log(1/delta)) / (gamma^2 n) + lam B^2 ) (ZJJ Lemma 3.1:
              ||theta_hat - theta*||_{Sigma_D + lam I} <= f  w.p. >= 1 - delta)
    Theta(theta_hat, lam) = {theta : ||theta - theta_hat||_{Sigma_D + lam I} <= f}   (ZJJ §3)
    J_hat(pi) = min_{theta in Theta(theta_hat, lam)} E_{s~rho}[ theta^T (phi(s, pi(s)) - v) ]
    pi_PE     = argmax_pi J_hat(pi)                                          (ZJJ §3, pessimistic MLE)
    SubOpt(pi_PE) <= C sqrt(...) ||(Sigma_D + lam I)^{-1/2} E_{s~rho}[phi(s, pi*(s)) - v]||_2   (ZJJ Thm 3.2)

[D] On the event of Lemma 3.1 the standard argument gives SubOpt <= 2 f ||...||: the factor 2
is absorbed in the paper's C.

v is a reference vector the paper leaves free (e.g. the mean feature of a reference policy); it
changes pi_PE whenever Theta is not a point (tests/policy/test_pessimism.py has an instance).

Weights.  With sample weights w_i read as counts (an aggregated design: w_i copies of row i),
Sigma_D = sum_i w_i x_i x_i^T / sum_i w_i and n = sum_i w_i — exactly Sigma_D and n of the data
with the rows repeated.

Closed form [D].  With z(pi) = E_{s~rho} E_{a~pi(.|s)} phi(s, a) - v,

    J_hat(pi) = theta_hat^T z - f ||z||_{(Sigma_D + lam I)^{-1}},
    worst case theta_w = theta_hat - f (Sigma_D + lam I)^{-1} z / ||z||_{(Sigma_D + lam I)^{-1}}.

Theta here is the ellipsoid alone; the paper intersects it with Theta_B.  Dropping Theta_B
enlarges the set, so J_hat here is <= the paper's (more pessimistic); Theorem 3.2's argument only
uses theta_hat, theta* in Theta, so the bound is unchanged [D].

KL regularisation [D] (not in the paper; ``beta > 0``): J_hat_beta(pi) = J_hat(pi)
- beta E_{s~rho} KL(pi(.|s) || pi_ref(.|s)).  ``beta = 0`` is the paper's objective.

Policy classes.  ``"stochastic"``: pi(.|s) in the simplex; J_hat_beta is concave, solved as one
conic program (cvxpy, Clarabel); the class contains the deterministic policies, so Theorem 3.2
holds for its maximiser [D].  ``"deterministic"``: pi: S -> A (the paper's class), ``beta = 0``
only, exact enumeration of the A^M policies.

Certificate [D].  For every theta in Theta, max_pi J_hat_beta(pi) <= D(theta) with
D(theta) = E_rho[beta log E_{pi_ref} exp(theta^T phi / beta)] - theta^T v (beta > 0) or
E_rho[max_a theta^T phi(s, a)] - theta^T v (beta = 0).  ``duality_gap = D(theta') -
J_hat_beta(pi)``, evaluated in numpy, bounds the suboptimality of the returned policy in
J_hat_beta; theta' is the worst case theta_w of pi, or (when that is loose, e.g. z(pi) = 0) the
solution of min_{theta in Theta} D(theta).

The older per-action variant (`lcb_rewards`, `pessimistic_policy` without ``reference``) fixes
v(x) = E_{pi_ref(.|x)} phi(x, .) and takes the min per (x, a).  Kept bit-identical because tests
rely on it; on symmetric designs it gives every action the same bonus (on ZJJ's 4-action instance
with uniform pi_ref it IS the greedy policy), so it is not the paper's pessimism.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np

from simulator.arms import FiniteArmEnv
from simulator.validation import (
    InvalidParameterError,
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_real,
)

from .gibbs import gibbs_and_log_partition
from .utilities import kl_rows
from .validation import (
    check_beta,
    check_env,
    check_theta,
)

__all__ = [
    "POLICY_CLASSES",
    "ConfidenceSet",
    "PessimisticResult",
    "bt_curvature",
    "confidence_radius",
    "confidence_set",
    "data_covariance",
    "lcb_rewards",
    "pessimistic_mle_policy",
    "pessimistic_policy",
    "pessimistic_value",
    "reference_vector",
]

POLICY_CLASSES = ("stochastic", "deterministic")

CONSTANTS_VERIFIED = False
"""C, the exponent L*B in gamma and the balanced lam were not checked against the paper text."""


# ============================================================================ data and constants
def _check_comparisons(X, d: int | None = None, name: str = "X") -> np.ndarray:
    Xa = check_array(getattr(X, "X", X), name, finite=False)  # a PreferenceData or an array
    if Xa.ndim != 2 or Xa.shape[0] < 1 or (d is not None and Xa.shape[1] != d):
        want = f"(n, d) with n >= 1, d = {d}" if d is not None else "(n, d) with n >= 1"
        raise InvalidParameterError(f"{name} must have shape {want}; got {Xa.shape}")
    return check_array(Xa, name)  # finiteness, named


def _check_weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = check_array(sample_weight, "sample_weight", shape=(n,), nonneg=True)
    if not w.sum() > 0:
        raise InvalidParameterError(f"sample_weight must have a positive sum (weights >= 0, "
                                    f"shape ({n},)); got sum {w.sum()!r}")
    return w


def data_covariance(X, sample_weight=None) -> np.ndarray:
    r"""Sigma_D = sum_i w_i x_i x_i^T / sum_i w_i (ZJJ §3 with w_i = 1: (1/n) sum_i x_i x_i^T).

    X : (n, d) comparison features (or a PreferenceData: its ``X``).  sample_weight : (n,)
    non-negative weights read as counts; integer weights give exactly Sigma_D of the data with
    row i repeated w_i times.  Returns (d, d).
    """
    Xa = _check_comparisons(X)
    w = _check_weights(sample_weight, Xa.shape[0])
    if w is None:
        return Xa.T @ Xa / Xa.shape[0]
    return (Xa * w[:, None]).T @ Xa / w.sum()


def bt_curvature(L, B) -> float:
    r"""gamma = 1 / (2 + exp(-L B) + exp(L B)) = sigma'(L B)   (ZJJ Lemma 3.1 [P]).

    The smallest BT curvature over logits |theta^T x| <= L B.  Convention here: L bounds the
    norm of the comparison features ||x_i|| = ||phi(s, a^1) - phi(s, a^0)||, which makes the
    expression exact.  [unverified] The paper states ||phi(s, a)|| <= L; under that reading the
    logit can reach 2 L B (pass ``L`` = 2 x the feature bound to get sigma'(2 L B)).
    """
    m = check_real(L, "L", low=0.0, low_open=True) * check_real(B, "B", low=0.0,
                                                                 low_open=True)
    e = np.exp(-m)
    return float(e / (1.0 + e) ** 2)


def confidence_radius(n, d, *, gamma, delta=0.05, lam=0.0, B=None, C=1.0) -> float:
    r"""f(n, d, delta, lam) = C sqrt( (d + log(1/delta)) / (gamma^2 n) + lam B^2 )   (ZJJ Lemma 3.1).

    The radius of the confidence set in the Sigma_D + lam I norm.  [unverified] C: the universal
    constant is not given in the notes; the default 1.0 is a placeholder (it gives the rate, not
    the paper's level).  ``B`` is required when ``lam > 0``.
    """
    n = check_real(n, "n", low=0.0, low_open=True)
    d = check_real(d, "d", low=0.0, low_open=True)
    gamma = check_real(gamma, "gamma (a value of sigma')", low=0.0, high=0.25, low_open=True)
    delta = check_real(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    lam = check_real(lam, "lam", low=0.0)
    C = check_real(C, "C", low=0.0, low_open=True)
    if B is None:
        if lam > 0:
            raise InvalidParameterError("B must be given (in (0, inf)) when lam > 0")
        bias = 0.0
    else:
        bias = lam * check_real(B, "B", low=0.0, low_open=True) ** 2
    return float(C * np.sqrt((d + np.log(1.0 / delta)) / (gamma**2 * n) + bias))


@dataclass(frozen=True)
class ConfidenceSet:
    r"""Theta(theta_hat, lam) = {theta : ||theta - theta_hat||_{Sigma_D + lam I} <= radius}  (ZJJ §3).

    theta_hat : (d,) centre (the MLE).  sigma_d : (d, d) data covariance (without lam).
    lam : ridge >= 0.  radius : f >= 0.  n : effective sample size (sum of the weights).
    """

    theta_hat: np.ndarray
    sigma_d: np.ndarray
    lam: float
    radius: float
    n: float
    _chol: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        th = check_array(self.theta_hat, "theta_hat", ndim=1, min_rows=1, copy=True)
        d = th.shape[0]
        sd = check_array(self.sigma_d, "sigma_d", shape=(d, d), copy=True)
        for name in ("lam", "radius"):
            object.__setattr__(self, name, check_real(getattr(self, name), name, low=0.0))
        object.__setattr__(self, "n", check_real(self.n, "n", low=0.0, low_open=True))
        for arr in (th, sd):
            arr.setflags(write=False)
        object.__setattr__(self, "theta_hat", th)
        object.__setattr__(self, "sigma_d", sd)
        try:
            chol = np.linalg.cholesky(self.sigma_d + self.lam * np.eye(d))
        except np.linalg.LinAlgError:
            raise InvalidParameterError("Sigma_D + lam I is not positive definite (the data do not cover "
                             "every direction): give lam in (0, inf)") from None
        object.__setattr__(self, "_chol", chol)

    @property
    def d(self) -> int:
        return self.theta_hat.shape[0]

    @property
    def sigma(self) -> np.ndarray:
        """Sigma_D + lam I."""
        return self.sigma_d + self.lam * np.eye(self.d)

    def whiten(self, z) -> np.ndarray:
        """L^{-1} z for Sigma_D + lam I = L L^T; z (..., d) -> (..., d)."""
        z = np.asarray(z, dtype=np.float64)
        y = np.linalg.solve(self._chol, z.reshape(-1, self.d).T)
        return y.T.reshape(z.shape)

    def dual_norm(self, z) -> np.ndarray:
        """||z||_{(Sigma_D + lam I)^{-1}} = sqrt(z^T (Sigma_D + lam I)^{-1} z), z (..., d)."""
        y = self.whiten(z)
        return np.sqrt(np.sum(y * y, axis=-1))

    def bonus(self, z) -> np.ndarray:
        """radius * ||z||_{(Sigma_D + lam I)^{-1}}: theta_hat^T z minus the worst case over Theta."""
        return self.radius * self.dual_norm(z)

    def lower(self, z) -> np.ndarray:
        """min_{theta in Theta} theta^T z = theta_hat^T z - radius ||z||_{(Sigma_D + lam I)^{-1}}."""
        return np.asarray(z, dtype=np.float64) @ self.theta_hat - self.bonus(z)

    def worst_theta(self, z) -> np.ndarray:
        """argmin_{theta in Theta} theta^T z (theta_hat where z = 0)."""
        z = np.asarray(z, dtype=np.float64)
        nz = float(self.dual_norm(z))
        if nz == 0.0:
            return self.theta_hat.copy()
        y = np.linalg.solve(self._chol.T, self.whiten(z))  # (Sigma_D + lam I)^{-1} z
        return self.theta_hat - self.radius * y / nz

    def contains(self, theta, rtol: float = 1e-9) -> bool:
        """||theta - theta_hat||_{Sigma_D + lam I} <= radius (up to rtol)."""
        dlt = np.asarray(theta, dtype=np.float64) - self.theta_hat
        return bool(np.sqrt(dlt @ self.sigma @ dlt) <= self.radius * (1 + rtol) + 1e-300)


def confidence_set(theta_hat, data, *, sample_weight=None, lam=None, radius=None, B=None,
                   L=None, gamma=None, delta=0.05, C=1.0) -> ConfidenceSet:
    r"""The confidence set of ZJJ §3 around ``theta_hat`` from the comparison data.

    data : (n, d) comparison features x_i, or a PreferenceData (its ``X``).
    sample_weight : (n,) weights read as counts (see `data_covariance`); n = sum_i w_i.
    radius : f; when None it is Lemma 3.1's ``confidence_radius(n, d, gamma=gamma, delta=delta,
        lam=lam, B=B, C=C)``, which needs ``B`` (the parameter norm bound of Theta_B).
    gamma : curvature; default ``bt_curvature(L, B)``.  L : bound on ||x_i||; default the
        largest ||x_i|| among rows with positive weight.
    lam : ridge of Sigma_D + lam I.  Default (radius None): the value balancing the two terms
        of Lemma 3.1, lam = (d + log(1/delta)) / (gamma^2 B^2 n) [P, unverified]; with an
        explicit ``radius`` it must be given.
    delta, C : Lemma 3.1's failure probability and universal constant [C unverified, default 1.0
        a placeholder].
    """
    Xa = _check_comparisons(data, name="data")
    n_rows, d = Xa.shape
    th = check_array(theta_hat, "theta_hat", shape=(d,))
    w = _check_weights(sample_weight, n_rows)
    sigma_d = data_covariance(Xa, w)
    n = float(n_rows if w is None else w.sum())
    if radius is None:
        if B is None:
            raise InvalidParameterError("B (the norm bound of Theta_B) is required to compute the radius; "
                             "or give radius")
        B = check_real(B, "B", low=0.0, low_open=True)
        if gamma is None:
            rows = Xa if w is None else Xa[w > 0]
            L = float(np.max(np.linalg.norm(rows, axis=1))) if L is None else check_real(
                L, "L", low=0.0)
            gamma = bt_curvature(L, B) if L > 0 else 0.25
        if lam is None:
            g = check_real(gamma, "gamma", low=0.0, high=0.25, low_open=True)
            delta = check_real(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
            lam = (d + np.log(1.0 / delta)) / (g**2 * B**2 * n)
        lam = check_real(lam, "lam", low=0.0)
        radius = confidence_radius(n, d, gamma=gamma, delta=delta, lam=lam, B=B, C=C)
    else:
        radius = check_real(radius, "radius", low=0.0)
        if lam is None:
            raise InvalidParameterError("lam must be given (a real number in [0, inf)) when radius is")
        lam = check_real(lam, "lam", low=0.0)
    return ConfidenceSet(theta_hat=th, sigma_d=sigma_d, lam=float(lam), radius=float(radius), n=n)


def reference_vector(env: FiniteArmEnv, reference) -> np.ndarray:
    r"""The reference vector v of ZJJ §3, shape (d,).

    ``reference``: a (d,) vector v; an (M, A) policy pi_0, giving v = E_{s~rho} E_{a~pi_0} phi(s, a);
    or ``"pi_ref"`` (the environment's reference policy).
    """
    check_env(env)
    if isinstance(reference, str):
        if reference != "pi_ref":
            raise InvalidParameterError(f"reference must be a (d,) vector, an (M, A) policy or "
                                        f"'pi_ref'; got {reference!r}")
        reference = env.pi_ref
    ref = check_array(reference, "reference", finite=False)
    if ref.ndim == 1:
        if ref.shape != (env.d,):
            raise InvalidParameterError(f"reference vector v must have shape (d,) = ({env.d},); "
                                        f"got {ref.shape}")
        return check_array(ref, "reference", copy=True)
    pi0 = env.check_policy(ref, "reference")
    return np.einsum("m,ma,mad->d", env.rho, pi0, env.features)


# ============================================================================ the paper's policy
@dataclass(frozen=True)
class PessimisticResult:
    """Result of `pessimistic_mle_policy`.

    pi : (M, A) policy.  value : J_hat_beta(pi) (the pessimistic objective it maximises).
    dual_value : D(theta_w) >= max_pi J_hat_beta (module docstring); duality_gap = dual_value -
    value >= 0 bounds the policy's suboptimality in J_hat_beta (0 for exact enumeration).
    theta_worst : (d,) the worst case in Theta for pi.  reference : (d,) v.
    confidence : the `ConfidenceSet` (radius, lam, Sigma_D, n).
    """

    pi: np.ndarray
    value: float
    dual_value: float
    duality_gap: float
    theta_worst: np.ndarray
    reference: np.ndarray
    confidence: ConfidenceSet
    beta: float
    policy_class: str
    converged: bool
    method: str

    @property
    def radius(self) -> float:
        return self.confidence.radius


def _check_beta0(beta) -> float:
    """beta in [0, inf) (0 is the paper's unregularised objective)."""
    return check_real(beta, "beta", low=0.0)


def _mean_feature(env: FiniteArmEnv, pi: np.ndarray) -> np.ndarray:
    return np.einsum("m,ma,mad->d", env.rho, pi, env.features)


def pessimistic_value(env: FiniteArmEnv, pi, confidence: ConfidenceSet, reference,
                      beta=0.0) -> float:
    r"""J_hat_beta(pi) = theta_hat^T z - f ||z||_{(Sigma_D + lam I)^{-1}} - beta E_rho KL(pi || pi_ref),
    z = E_{s~rho} E_{a~pi} phi(s, a) - v   (ZJJ §3 in closed form [D]; beta = 0: the paper's)."""
    check_env(env)
    p = env.check_policy(pi, "pi")
    v = reference_vector(env, reference)
    b = _check_beta0(beta)
    if not isinstance(confidence, ConfidenceSet) or confidence.d != env.d:
        raise InvalidParameterError(f"confidence must be a ConfidenceSet of dimension d = "
                                    f"{env.d}")
    val = float(confidence.lower(_mean_feature(env, p) - v))
    if b > 0:
        val -= b * float(env.rho @ kl_rows(env, p))
    return val


def _dual_bound(env, theta, v, beta) -> float:
    r = env.features @ theta  # (M, A)
    if beta > 0:
        logz = gibbs_and_log_partition(env, r, beta)[1]
        return beta * float(env.rho @ logz) - float(theta @ v)
    return float(env.rho @ r.max(axis=1)) - float(theta @ v)


def _deterministic_best(env, conf, v, max_policies):
    m, a = env.n_contexts, env.n_actions
    if a**m > max_policies:
        raise InvalidParameterError(f"policy_class='deterministic' enumerates A^M = {a}^{m} policies, more "
                         f"than max_policies={max_policies}; use policy_class='stochastic'")
    best_val, best = -np.inf, None
    chunk = max(1, 65536 // max(m, 1))
    combos = itertools.product(range(a), repeat=m)
    while True:
        idx = np.array(list(itertools.islice(combos, chunk)), dtype=np.int64).reshape(-1, m)
        if idx.shape[0] == 0:
            break
        z = np.einsum("m,kmd->kd", env.rho, env.features[np.arange(m), idx]) - v
        vals = conf.lower(z)
        k = int(np.argmax(vals))
        if vals[k] > best_val:
            best_val, best = float(vals[k]), idx[k]
    pi = np.zeros((m, a))
    pi[np.arange(m), best] = 1.0
    return pi, best_val


_CLARABEL_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12,
                   "tol_ktratio": 1e-10}
"""Clarabel settings used by default: the masses a pessimistic policy leaves on poorly covered
actions are small (~1e-4), and Clarabel's default 1e-8 tolerances leave them ~1e-5 off."""


def _solve(prob, solver, solver_kwargs):
    import cvxpy as cp

    if solver is None and "CLARABEL" in cp.installed_solvers():
        solver = "CLARABEL"
        solver_kwargs = {**_CLARABEL_TIGHT, **solver_kwargs}
    with warnings.catch_warnings():  # "solution may be inaccurate": the certificate decides
        warnings.simplefilter("ignore", UserWarning)
        prob.solve(solver=solver, **solver_kwargs)
    return solver


def _stochastic_cvxpy(env, conf, v, beta, solver, solver_kwargs):
    """max_pi J_hat_beta(pi) over stochastic policies as one conic program."""
    import cvxpy as cp

    m, a, d = env.shape
    ref = env.pi_ref
    support = ref > 0
    P = cp.Variable((m, a), nonneg=True)
    feats = (env.rho[:, None, None] * env.features).reshape(m * a, d)
    Linv = np.linalg.inv(conf._chol)
    z = feats.T @ cp.reshape(P, (m * a,), order="C") - v
    obj = conf.theta_hat @ z - conf.radius * cp.norm(Linv @ z, 2)
    cons = [cp.sum(P, axis=1) == 1]
    if beta > 0:
        rho_col = env.rho[:, None] * np.ones((1, a))
        obj = obj - beta * cp.sum(cp.multiply(rho_col, cp.rel_entr(P, np.where(support, ref, 1.0))))
        if not np.all(support):
            cons.append(P[~support] == 0)
    prob = cp.Problem(cp.Maximize(obj), cons)
    solver = _solve(prob, solver, solver_kwargs)
    if P.value is None:
        raise RuntimeError(f"cvxpy failed: status {prob.status}")
    pi = np.clip(np.asarray(P.value, dtype=np.float64), 0.0, None)
    if beta > 0:
        pi = np.where(support, pi, 0.0)
    pi /= pi.sum(axis=1, keepdims=True)
    return pi, f"cvxpy:{solver}"


def _dual_cvxpy(env, conf, v, beta, solver, solver_kwargs):
    """argmin_{theta in Theta} D(theta) (module docstring), pulled back into Theta exactly."""
    import cvxpy as cp

    m, a, d = env.shape
    th = cp.Variable(d)
    cons = [cp.norm(conf._chol.T @ (th - conf.theta_hat), 2) <= conf.radius]
    if beta > 0:
        support = env.pi_ref > 0
        terms = [cp.log_sum_exp(np.log(env.pi_ref[x, support[x]])
                                + env.features[x][support[x]] @ th / beta) for x in range(m)]
        obj = beta * (env.rho @ cp.hstack(terms)) - v @ th
    else:
        t = cp.Variable(m)
        cons.append(env.features.reshape(m * a, d) @ th <= np.kron(np.eye(m), np.ones((a, 1))) @ t)
        obj = env.rho @ t - v @ th
    prob = cp.Problem(cp.Minimize(obj), cons)
    _solve(prob, solver, solver_kwargs)
    if th.value is None:
        return None
    theta = np.asarray(th.value, dtype=np.float64)
    dlt = theta - conf.theta_hat
    norm = float(np.sqrt(dlt @ conf.sigma @ dlt))
    if norm > conf.radius:
        theta = conf.theta_hat + dlt * (conf.radius / norm)
    return theta


def _maximise(env, conf, v, beta, policy_class, max_policies, solver, solver_kwargs):
    """argmax_pi J_hat_beta(pi) in the class; returns (pi, method)."""
    if conf.radius == 0.0:  # Theta is a point: the greedy / Gibbs policy of theta_hat
        r = env.rewards(conf.theta_hat)
        if beta > 0:
            return gibbs_and_log_partition(env, r, beta)[0], "closed_form"
        pi = np.zeros((env.n_contexts, env.n_actions))
        pi[np.arange(env.n_contexts), np.argmax(r, axis=1)] = 1.0
        return pi, "closed_form"
    if policy_class == "deterministic":
        return _deterministic_best(env, conf, v, max_policies)[0], "enumeration"
    pi, method = _stochastic_cvxpy(env, conf, v, beta, solver, solver_kwargs)
    if beta == 0 and env.n_actions**env.n_contexts <= max_policies:
        # a vertex solution is returned exactly instead of the interior-point approximation
        pi_det, val_det = _deterministic_best(env, conf, v, max_policies)
        if val_det >= pessimistic_value(env, pi, conf, v, beta):
            return pi_det, method + "+vertex"
    return pi, method


def pessimistic_mle_policy(env: FiniteArmEnv, theta_hat, data, *, reference, beta=0.0,
                           sample_weight=None, lam=None, radius=None, B=None, L=None,
                           gamma=None, delta=0.05, C=1.0, confidence=None,
                           policy_class="stochastic", tol=1e-6, warn=True, max_policies=100_000,
                           solver=None, **solver_kwargs) -> PessimisticResult:
    r"""Pessimistic MLE policy of Zhu, Jordan & Jiao (2023), §3 / Theorem 3.2:

        pi_PE = argmax_pi  min_{theta in Theta(theta_hat, lam)} E_{s~rho}[theta^T (phi(s, pi(s)) - v)]
                           - beta E_{s~rho} KL(pi(.|s) || pi_ref(.|s))
              = argmax_pi  theta_hat^T z(pi) - f ||z(pi)||_{(Sigma_D + lam I)^{-1}} - beta KL   [D]

    with z(pi) = E_rho E_pi phi - v, Theta of radius f = C sqrt((d + log(1/delta))/(gamma^2 n)
    + lam B^2) in the Sigma_D + lam I norm (Lemma 3.1), Sigma_D from ``data`` and
    ``sample_weight``.  ``beta = 0`` (default) is the paper's objective.

    Parameters
    ----------
    theta_hat : (d,) the MLE (e.g. ``PooledMLE(...).fit(data).coef_``).
    data : (n, d) comparison features or a PreferenceData (its ``X``); ignored when
        ``confidence`` is given.
    reference : required — v as a (d,) vector, an (M, A) reference policy (v = E_rho E_pi0 phi)
        or ``"pi_ref"``.  There is no default: the choice decides which deviations are
        penalised (a v the data cover well makes pessimism work; see the module docstring).
    beta : KL coefficient in [0, inf) [D for beta > 0].
    sample_weight, lam, radius, B, L, gamma, delta, C : the confidence set, see `confidence_set`
        (C and the lam rule are [unverified] constants, exposed here).
    confidence : a ready `ConfidenceSet` (then data and the constants are not used).
    policy_class : "stochastic" (default; conic program via cvxpy, exact enumeration of the
        deterministic policies kept when it is at least as good) or "deterministic" (beta = 0,
        exact enumeration of the A^M policies, at most ``max_policies``).
    tol, warn : certificate tolerance on ``duality_gap`` (absolute); RuntimeWarning above it.
    solver, **solver_kwargs : passed to cvxpy (default Clarabel).

    Returns a `PessimisticResult` (``.pi``, ``.value``, ``.duality_gap``, ``.theta_worst``, ...).
    """
    check_env(env)
    b = _check_beta0(beta)
    th = check_theta(env, theta_hat)
    check_choice(policy_class, "policy_class", POLICY_CLASSES)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    warn = check_bool(warn, "warn")
    max_policies = check_int(max_policies, "max_policies", low=1)
    if policy_class == "deterministic" and b > 0:
        raise InvalidParameterError("policy_class='deterministic' needs beta = 0 (the KL term is infinite "
                         "for a deterministic policy unless pi_ref is one)")
    v = reference_vector(env, reference)
    if confidence is None:
        conf = confidence_set(th, _check_comparisons(data, env.d, "data"),
                              sample_weight=sample_weight, lam=lam, radius=radius, B=B, L=L,
                              gamma=gamma, delta=delta, C=C)
    else:
        if not isinstance(confidence, ConfidenceSet) or confidence.d != env.d:
            raise InvalidParameterError(f"confidence must be a ConfidenceSet of dimension d = "
                                        f"{env.d}")
        conf = confidence

    pi, method = _maximise(env, conf, v, b, policy_class, max_policies, solver, solver_kwargs)
    value = pessimistic_value(env, pi, conf, v, b)
    theta_w = conf.worst_theta(_mean_feature(env, pi) - v)
    if policy_class == "deterministic":
        dual = value  # exact enumeration of the class
    else:
        dual = _dual_bound(env, theta_w, v, b)
        if dual - value > tol:  # theta_w is loose (e.g. z(pi) = 0): solve the dual for a witness
            theta_d = _dual_cvxpy(env, conf, v, b, solver, solver_kwargs)
            if theta_d is not None:
                dual = min(dual, _dual_bound(env, theta_d, v, b))
    gap = max(dual - value, 0.0)
    converged = bool(gap <= tol)
    if not converged and warn:
        warnings.warn(f"pessimistic_mle_policy: certified gap {gap:.3g} > tol={tol:g} "
                      f"({method})", RuntimeWarning, stacklevel=2)
    return PessimisticResult(pi=pi, value=value, dual_value=float(dual), duality_gap=float(gap),
                             theta_worst=theta_w, reference=v, confidence=conf, beta=b,
                             policy_class=policy_class, converged=converged, method=method)


# ============================================================================ per-action variant
def lcb_rewards(env: FiniteArmEnv, theta, X, alpha=1.0, lam=1e-3, *,
                sample_weight=None) -> np.ndarray:
    r"""Per-action pessimistic reward (the older variant; see the module docstring):

        r_LCB(x, a) = theta^T phi(x, a) - alpha || phi(x, a) - E_{a'~pi_ref(.|x)} phi(x, a') ||_{(Sigma_D + lam I)^{-1}},
        Sigma_D = (1/n) sum_i X_i X_i^T  (weighted: `data_covariance`),  X_i = phi(x_i, a1_i) - phi(x_i, a0_i).

    ZJJ (§3) take the min over theta' in ||theta' - theta||_{Sigma_D + lam I} <= alpha of
    theta'^T (E phi(s, pi(s)) - v) for the policy as a whole, with a free reference v; here the
    min is taken per (x, a) with v(x) = E_{pi_ref} phi(x, .), a per-action variant whose
    KL-regularised optimum is a Gibbs policy.  On symmetric designs every action gets the same
    bonus and the policy is greedy: use `pessimistic_mle_policy` (or ``pessimistic_policy(...,
    reference=v)``) for the paper's form.  alpha = 0 recovers theta^T phi.  Returns (M, A).
    """
    check_env(env)
    th = check_theta(env, theta)
    Xa = _check_comparisons(X, env.d, "X")
    alpha = check_real(alpha, "alpha", low=0.0)
    lam = check_real(lam, "lam", low=0.0, low_open=True)
    if sample_weight is None:
        sigma_d = Xa.T @ Xa / Xa.shape[0]
    else:
        sigma_d = data_covariance(Xa, sample_weight)
    sigma = sigma_d + float(lam) * np.eye(env.d)
    phi = env.features
    z = phi - np.einsum("ma,mad->md", env.pi_ref, phi)[:, None, :]
    chol = np.linalg.cholesky(sigma)
    y = np.linalg.solve(chol, z.reshape(-1, env.d).T)  # L^{-1} z
    bonus = np.sqrt(np.sum(y * y, axis=0)).reshape(env.n_contexts, env.n_actions)
    return phi @ th - float(alpha) * bonus


def pessimistic_policy(env: FiniteArmEnv, theta, beta, X, alpha=1.0, lam=1e-3, *,
                       reference=None, sample_weight=None) -> np.ndarray:
    r"""KL-regularised pessimistic policy (beta > 0); returns (M, A).

    ``reference=None`` (the older default, kept bit-identical): pi ∝ pi_ref exp(r_LCB / beta)
    with the per-action r_LCB of `lcb_rewards` (v(x) = E_{pi_ref} phi(x, .); on symmetric
    designs this is the greedy policy).  ``reference`` given (a (d,) v, an (M, A) policy or
    ``"pi_ref"``): ZJJ's policy-level form, ``pessimistic_mle_policy(env, theta, X,
    reference=reference, beta=beta, radius=alpha, lam=lam, sample_weight=sample_weight).pi`` —
    alpha is the confidence radius f.

    alpha = 0 gives ``gibbs_policy(env, theta, beta)`` in both forms.  [D] For the per-action
    form, d/d alpha E_pi[bonus] = -Var_pi(bonus) / beta <= 0: larger alpha moves mass toward
    actions whose feature deviation is well covered by the data (small bonus).
    """
    b = check_beta(beta)
    if reference is None:
        return gibbs_and_log_partition(
            env, lcb_rewards(env, theta, X, alpha, lam, sample_weight=sample_weight), b)[0]
    check_env(env)
    return pessimistic_mle_policy(
        env, theta, X, reference=reference, beta=b, sample_weight=sample_weight,
        radius=check_real(alpha, "alpha", low=0.0),
        lam=check_real(lam, "lam", low=0.0, low_open=True)).pi
