r"""The Bradley–Terry objective, stated once, and its Newton solver.

For comparisons :math:`(x_i, y_i)` with feature differences :math:`x_i` and labels
:math:`y_i \in \{0, 1\}`, optional weights :math:`w_i \ge 0` and ridge :math:`\lambda \ge 0`,

.. math::

    f(\theta) = -\sum_i w_i \big[y_i \log\sigma(x_i^\top\theta)
                + (1 - y_i)\log\sigma(-x_i^\top\theta)\big] + \frac{\lambda}{2}\lVert\theta\rVert^2 .

This is the *sum* of negative log-likelihoods, so ``lam`` equals ``1 / C`` of scikit-learn's
``LogisticRegression(fit_intercept=False)`` on the same design (Zhu, Jordan & Jiao 2023, eq. 2
uses the mean; the minimiser is the same with ``lambda_mean = lam / n``).

:func:`bt_objective` is the plain-numpy reference; the numba kernels
(:mod:`simulator.kernels.bt_numba`) compute the same (f, g, H) in one pass and are tested against it.

Linear equality constraints ``A theta = b`` (:func:`fit_bt` ``constraints``) are solved exactly
by the null-space reduction ``theta = theta_p + N z`` (:func:`_fit_constrained`): an
unconstrained fit in ``z`` with features ``X N`` and fixed margin offsets ``X theta_p``, which
every back-end's kernels take; its gradient certificate is the constrained KKT condition.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import get_lapack_funcs

from ..kernels import BACKENDS
from ..validation import InvalidParameterError, check_array, check_int, check_real, check_str

__all__ = ["bt_objective", "fit_bt", "separable", "check_sample_weight", "check_constraints",
           "LinearConstraints", "BTFit", "BTConvergenceWarning", "MLENotExistWarning", "BACKENDS"]



class MLENotExistWarning(RuntimeWarning):
    """The unpenalised BT MLE does not exist (the data are, or are close to, separable)."""


def check_sample_weight(sample_weight, n):
    """``sample_weight`` as a contiguous float64 (n,) array (None stays None), or a ValueError
    naming it: the weights of the objective must be finite and non-negative."""
    if sample_weight is None:
        return None
    try:
        w = check_array(sample_weight, "sample_weight", finite=False)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"sample_weight must be a finite non-negative array of "
                                    f"shape ({n},); {exc}") from None
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidParameterError(f"sample_weight must be a finite non-negative array of "
                                    f"shape ({n},)")
    return w


def check_xy(X, y):
    """``X`` (n, d) finite float64 and ``y`` (n,) labels in {0, 1} as int8 (named errors)."""
    X = check_array(X, "X", ndim=2)
    y0 = np.asarray(y)
    if y0.dtype.kind not in "biuf" or y0.shape != (X.shape[0],):
        raise InvalidParameterError(f"y must be an array of labels 0 and 1 of shape "
                                    f"({X.shape[0]},); got shape {y0.shape} and dtype {y0.dtype}")
    if y0.dtype != np.int8 and y0.size and not np.all((y0 == 0) | (y0 == 1)):
        raise InvalidParameterError("y must contain only labels 0 and 1")
    return X, np.ascontiguousarray(y0, dtype=np.int8)


@dataclass(frozen=True)
class LinearConstraints:
    r"""Linear equality constraints ``A theta = b`` on the BT parameter, checked and factorised
    (:func:`check_constraints`).

    With the SVD ``A = U S V^T`` (full row rank m < d), ``theta_p = V_m S^{-1} U^T b`` is the
    minimum-norm feasible point (it lies in row(A)) and ``N = V_{m+1..d}`` is an orthonormal
    basis of null(A), so the feasible set is ``{theta_p + N z : z in R^{d-m}}`` and
    ``||theta||^2 = ||theta_p||^2 + ||z||^2`` (the two parts are orthogonal).
    """

    A: np.ndarray  # (m, d)
    b: np.ndarray  # (m,)
    N: np.ndarray  # (d, d - m), orthonormal columns spanning null(A)
    theta_p: np.ndarray  # (d,), minimum-norm solution of A theta = b
    pinv: np.ndarray  # (d, m), the pseudo-inverse of A

    def to_z(self, theta):
        """Coordinates of the projection of ``theta`` onto the feasible set."""
        return self.N.T @ (theta - self.theta_p)

    def to_theta(self, z):
        """``theta_p + N z``, with one step of iterative refinement so that ``A theta = b``
        holds to the round-off of one product (not of the whole chain)."""
        theta = self.theta_p + self.N @ z
        return theta - self.pinv @ (self.A @ theta - self.b)


def check_constraints(constraints, d: int, name: str = "constraints"):
    """``constraints`` as :class:`LinearConstraints` (None stays None), or an
    :class:`~simulator.validation.InvalidParameterError` naming it.

    ``constraints`` is a pair ``(A, b)``: ``A`` a finite real (m, d) array with
    ``1 <= m < d`` and full row rank m (numerical rank: singular values above
    ``max(m, d) * eps * s_max``), ``b`` a finite real (m,) array. A rank-deficient ``A`` is
    refused even when ``b`` is consistent (drop the redundant rows); the message says whether
    ``b`` is consistent. A full-row-rank ``A`` with m < d is always consistent.
    """
    if constraints is None:
        return None
    if isinstance(constraints, LinearConstraints):
        constraints = (constraints.A, constraints.b)
    if not isinstance(constraints, (tuple, list)) or len(constraints) != 2:
        raise InvalidParameterError(f"{name} must be None or a pair (A, b) of an (m, d) array "
                                    f"and an (m,) array (A theta = b); got "
                                    f"{type(constraints).__name__} {str(constraints)[:60]}")
    A = check_array(constraints[0], f"{name} A", ndim=2)
    b = check_array(constraints[1], f"{name} b", ndim=1)
    m = A.shape[0]
    if A.shape[1] != d:
        raise InvalidParameterError(f"{name} A must have d = {d} columns (one per entry of "
                                    f"theta); got shape {A.shape}")
    if not 1 <= m < d:
        raise InvalidParameterError(f"{name} A must have 1 <= m < d = {d} rows (m >= d "
                                    f"full-rank constraints leave no free parameter); got "
                                    f"shape {A.shape}")
    if b.shape != (m,):
        raise InvalidParameterError(f"{name} b must have shape ({m},) (one entry per row of "
                                    f"A); got {b.shape}")
    U, S, Vt = np.linalg.svd(A, full_matrices=True)
    rank = int(np.count_nonzero(S > max(m, d) * np.finfo(np.float64).eps * S[0])) if S[0] > 0 \
        else 0
    if rank < m:
        # b is consistent iff it lies in range(A) = span(U[:, :rank])
        Ur = U[:, :rank]
        resid = float(np.linalg.norm(b - Ur @ (Ur.T @ b)))
        consistent = resid <= 1e-10 * max(float(np.linalg.norm(b)), 1.0)
        tail = ("b is consistent with A: drop the redundant rows" if consistent else
                f"b is also inconsistent with A (no theta satisfies A theta = b; least-squares "
                f"residual {resid:.3g})")
        raise InvalidParameterError(f"{name} A must have full row rank m = {m}; its numerical "
                                    f"rank is {rank} (singular values "
                                    f"{np.array2string(S, precision=3)}); {tail}")
    Vm = Vt[:m]
    pinv = Vm.T @ (U.T / S[:, None])
    theta_p = pinv @ b
    N = np.ascontiguousarray(Vt[m:].T)
    return LinearConstraints(A=A, b=b, N=N, theta_p=theta_p, pinv=pinv)


def bt_objective(theta, X, y, lam: float = 0.0, sample_weight=None, offset=None):
    """Reference (numpy) value, gradient and Hessian of the penalised BT objective.

    ``offset`` (n,), optional: fixed offsets ``o_i`` of the margins, ``x_i^T theta + o_i``
    (the reduced problem of a fit under linear equality constraints, :func:`fit_bt`).

    Returns
    -------
    f : float
    g : array (d,)
    H : array (d, d)
    """
    theta = np.asarray(theta, dtype=np.float64)
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    t = s * (X @ theta if offset is None else X @ theta + offset)
    w = np.ones_like(t) if sample_weight is None else np.asarray(sample_weight, np.float64)
    p = 0.5 * (1.0 + np.tanh(0.5 * t))  # sigma(t), overflow-free
    f = float(np.sum(w * np.logaddexp(0.0, -t)) + 0.5 * lam * theta @ theta)
    g = -(w * s * (1.0 - p)) @ X + lam * theta
    H = (X * (w * p * (1.0 - p))[:, None]).T @ X + lam * np.eye(X.shape[1])
    return f, g, H


def _numpy_loss(theta, X, y, w, offset=None):
    t = (2.0 * y - 1.0) * (X @ theta if offset is None else X @ theta + offset)
    terms = np.logaddexp(0.0, -t)
    return float(np.sum(terms if w is None else w * terms))


def _numpy_loss_grad(theta, X, y, w, offset=None):
    f, g, _ = bt_objective(theta, X, y, 0.0, w, offset)
    return f, g


def _kernels(backend, offset=None):
    """(loss_grad_hess, loss_grad, loss) of the unpenalised objective for a back-end, each
    ``fn(theta, X, y, w)``; with ``offset`` (n,) the margins are ``X theta + offset``."""
    if backend == "numba":
        from ..kernels import bt_numba

        # The solver uses H only as a Newton matrix: float32 chunk products are accurate enough
        # (relative 1e-7, so a Newton step still contracts the error by about that factor).
        if offset is None:
            return (lambda th, X, y, w: bt_numba.loss_grad_hess(th, X, y, w, hess32=True),
                    bt_numba.loss_grad, bt_numba.loss)
        return (lambda th, X, y, w: bt_numba.loss_grad_hess(th, X, y, w, True, offset),
                lambda th, X, y, w: bt_numba.loss_grad(th, X, y, w, offset),
                lambda th, X, y, w: bt_numba.loss(th, X, y, w, offset))
    if backend == "numpy":
        if offset is None:
            return ((lambda th, X, y, w: bt_objective(th, X, y, 0.0, w)), _numpy_loss_grad,
                    _numpy_loss)
        return (lambda th, X, y, w: bt_objective(th, X, y, 0.0, w, offset),
                lambda th, X, y, w: _numpy_loss_grad(th, X, y, w, offset),
                lambda th, X, y, w: _numpy_loss(th, X, y, w, offset))
    raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")


# Multilevel warm start. A fit without a given start whose every WARM_START_STRIDE-th row still
# makes a well-posed problem (at least WARM_START_MIN_ROWS rows and WARM_START_ROWS_PER_DIM rows
# per parameter) first solves that subsample (ridge scaled to match, loose tolerance;
# recursively, so a large problem is solved on 1/8, 1/64, ... of its rows first) and starts
# there, with the subsample's Hessian rescaled as the first Newton (chord) matrix. The full-data
# iterations then begin within sampling error of the optimum, and each chord step contracts the
# gradient by about sqrt(d / subsample size) per memory-bound pass; the compute-bound Hessians
# are formed on the subsamples. The optimum is unchanged: every full-data iteration, the line
# search and the stopping test use all rows.
WARM_START_STRIDE = 8
WARM_START_MIN_ROWS = 1000
WARM_START_ROWS_PER_DIM = 32
# The subsample optimum is within sampling error, a mean gradient of about sqrt(d / m) on m
# rows, of the full one; solving the subsample much more finely than that is wasted work. Its
# tolerance is WARM_START_TOL * sqrt(d / m).
WARM_START_TOL = 0.02


def _warm_start_applies(n, d):
    return n // WARM_START_STRIDE >= max(WARM_START_MIN_ROWS, WARM_START_ROWS_PER_DIM * d)


@dataclass
class BTFit:
    """Result of :func:`fit_bt`, with its certificate.

    ``kkt_residual`` is the norm of the gradient of the Lagrangian at ``theta``: the gradient of
    ``f + lam/2 ||theta||^2`` plus ``mu theta`` for an active norm bound. Under linear equality
    constraints ``A theta = b`` it is the *projected* gradient ``||N^T grad||`` (``N`` an
    orthonormal basis of null(A)), which is ``min_nu ||grad + A^T nu||``: the residual of the
    Lagrangian's stationarity at the multipliers ``multipliers`` (``nu``, (m,)). ``converged`` is True
    exactly when ``kkt_residual <= tol * sum(w)`` (and, with a bound, ``||theta||`` equals it to
    1e-8 relative or ``mu = 0``), or when the exact float64 Newton step is below 1e-13
    ``||theta||`` (``status = "roundoff"``: no float64 point is closer to the optimum; this is
    how fits with huge features, whose gradient round-off exceeds ``tol``, are certified). ``status`` says why the solver stopped; ``message`` says what
    to change when the certificate was not met.
    """

    theta: np.ndarray
    objective: float
    grad_norm: float
    n_iter: int
    n_evals: int
    converged: bool
    mu: float = 0.0  # extra ridge that enforces the norm bound (0 when inactive)
    n_hess: int = 0  # data passes that also computed the Hessian (the compute-bound ones)
    status: str = "converged"
    message: str = ""
    # Lagrange multipliers nu of A theta = b (least squares; None without constraints)
    multipliers: np.ndarray | None = None

    @property
    def kkt_residual(self) -> float:
        return self.grad_norm


STATUS = {0: "converged", 1: "max_iter", 2: "stalled", 3: "diverging", 4: "nonfinite",
          5: "roundoff"}
CERTIFIED = ("converged", "roundoff")
_REMEDY = {
    "max_iter": "the iteration budget ran out before the gradient certificate; raise max_iter",
    "stalled": ("no decrease of the objective was found at float64 round-off before the "
                "gradient certificate; raise tol, or rescale the features (|X| and lam differ by "
                "many orders of magnitude)"),
    "diverging": "the unpenalised iterates diverge; use lam > 0 or a norm_bound",
    "nonfinite": ("the objective or its Hessian is not finite in float64; rescale the features "
                  "(|X|^2 must stay below ~1e300)"),
    "separable": ("the unpenalised BT MLE does not exist: the data are separable (the likelihood "
                  "keeps increasing along a direction). Use lam > 0 or a norm_bound"),
}


def _message(status, gn, tol, scale):
    if status in CERTIFIED:
        return ""
    return (f"BT fit not certified ({status}): mean-gradient norm {gn / scale:.3g} vs tol "
            f"{tol:.3g}; {_REMEDY[status]}")


class BTConvergenceWarning(RuntimeWarning):
    """A BT fit stopped without meeting its gradient (KKT) certificate; the message says why."""


def separable(X, y, sample_weight=None) -> bool:
    r"""Whether the unpenalised BT MLE fails to exist, decided exactly from the data by an LP.

    With ``a_i = s_i x_i`` (``s_i = 2 y_i - 1``, rows of positive weight), the likelihood is
    unbounded above along a direction iff some ``theta`` has ``a_i^T theta >= 0`` for all i and
    ``> 0`` for at least one (complete or quasi-complete separation; Albert & Anderson 1984).
    We maximise :math:`\sum_i a_i^\top\theta` over :math:`\{a_i^\top\theta \ge 0,
    \lVert\theta\rVert_\infty \le 1\}` (HiGHS) and verify the LP's answer in float64.
    A direction in the null space of X (an all-zero column) is not an escape direction.

    Under linear equality constraints ``A theta = b`` (``theta = theta_p + N z``, :func:`fit_bt`)
    the reduced problem has features ``X N`` and fixed offsets ``o_i = x_i^T theta_p``. The
    offsets do not change the question: ``F(z) = sum_i w_i softplus(-(a_i^T z + c_i))`` has the
    recession function ``sum_i w_i max(-a_i^T v, 0)`` whatever the ``c_i``, so the minimum is
    attained iff no ``v`` has ``a_i^T v >= 0`` for all i and ``> 0`` for one (coercive on the
    complement of the directions of constancy otherwise). So the constrained MLE exists iff
    ``separable(X @ N, y, w)`` is False: no separating direction inside null(A). A constraint
    can only make the MLE exist (null(A) is a subspace), never destroy it.
    """
    from scipy.optimize import linprog

    X = np.asarray(X, dtype=np.float64)
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    A = s[:, None] * X
    if sample_weight is not None:
        A = A[np.asarray(sample_weight) > 0]
    if A.shape[0] == 0:
        return False
    amax = float(np.abs(A).max())
    if amax == 0.0:
        return False
    A = A / amax
    res = linprog(-A.sum(0), A_ub=-A, b_ub=np.zeros(A.shape[0]),
                  bounds=[(-1.0, 1.0)] * A.shape[1], method="highs")
    if res.status != 0 or res.x is None:
        return False
    t = A @ res.x
    # The LP's feasibility tolerance is ~1e-7; accept its direction only if the margins are
    # exactly non-negative up to round-off after rounding it (a genuine separating direction
    # has margins of order 1 on the normalised rows).
    return bool(t.max() > 1e-6 and t.min() >= -1e-12 * A.shape[1])


# The rule for refreshing the Newton matrix and the BFGS update live with the compiled solver
# (simulator/kernels/newton_numba.py), so that both loops share them.
_POTRF, _POTRS = get_lapack_funcs(("potrf", "potrs"), (np.zeros((1, 1)),))


def _norm(v):
    return math.sqrt(float(v @ v))


def bfgs_update(H, s, y):
    """BFGS update of the Newton matrix H with the secant pair (s, y) of the last step
    (reference; the solvers call :func:`simulator.kernels.newton_numba.bfgs_update`).

    ``y`` is the exact change of the gradient, so the updated matrix agrees with the averaged
    Hessian along ``s``; the chord error left by a stale or subsampled matrix shrinks faster.
    Skipped when the curvature ``y^T s`` is not positive (then H stays positive definite).
    """
    ys = float(y @ s)
    Hs = H @ s
    sHs = float(s @ Hs)
    if not (ys > 0 and sHs > 0):
        return H
    return H - np.outer(Hs / sHs, Hs) + np.outer(y / ys, y)


def _damped_step(H, g):
    """Levenberg step ``-(H + delta I)^{-1} g``, smallest ``delta = 10^j 1e-12 max|H_ii|`` that
    factorises (reference of :func:`simulator.kernels.newton_numba._damped_step`)."""
    diag = np.abs(np.diag(H))
    scale = float(diag.max()) if diag.size else 1.0
    if not np.isfinite(scale):
        return None
    scale = scale if scale > 0 else 1.0
    delta = 1e-12 * scale
    eye = np.eye(H.shape[0])
    for _ in range(40):
        chol, info = _POTRF(H + delta * eye, lower=False, overwrite_a=False, clean=False)
        if info == 0:
            step, info = _POTRS(chol, -g, lower=False)
            if info == 0:
                return step
        delta *= 10.0
    return None


def _newton_step(H, g):
    """Cholesky Newton step and its slope ``g^T step``; None when H does not factorise or the
    step is not a finite descent direction."""
    if not np.all(np.isfinite(H)):
        return None, 0.0
    chol, info = _POTRF(H, lower=False, overwrite_a=False, clean=False)
    if info != 0:
        return None, 0.0
    step, info = _POTRS(chol, -g, lower=False)
    slope = float(g @ step)
    if info != 0 or not np.isfinite(slope) or slope >= 0:
        return None, 0.0
    return step, slope


def newton_minimize(fg, hess, fonly, theta, *, scale, tol, max_iter, chord_ratio):
    """The Newton driver for BT objectives given as callables (structured designs: the
    SharedRep B-step's Kronecker Hessian), the algorithm of :func:`_newton` without its
    design-specific parts: damped Newton, Armijo backtracking, the Newton matrix kept while the
    gradient norm contracts by ``chord_ratio`` per step (a kept matrix whose step fails the
    Armijo test is refreshed instead of backtracked), a Levenberg step when the exact matrix
    does not factorise, converged when ``||grad|| <= tol * scale``.

    Parameters
    ----------
    fg : callable
        ``fg(theta) -> (f, grad, state)``, exact; ``state`` is what ``hess`` needs at theta.
    hess : callable
        ``hess(state) -> H``, the Newton matrix (Hessian + ridge).
    fonly : callable
        ``fonly(theta) -> f`` (the line search).

    Returns
    -------
    theta, f, grad, converged
    """
    f, g, st = fg(theta)
    H, fresh = hess(st), True
    converged = False
    for _it in range(int(max_iter)):
        gnorm = float(np.linalg.norm(g))
        if gnorm <= tol * scale:
            converged = True
            break
        step, slope = _newton_step(H, g)
        if step is None:
            if not fresh:
                H, fresh = hess(st), True
                continue
            step = _damped_step(H, g)  # the exact matrix is singular or indefinite
            slope = float(g @ step) if step is not None else 0.0
            if step is None or not (np.isfinite(slope) and slope < 0):
                break
        t = 1.0
        while True:
            cand = theta + t * step
            f_new = fonly(cand)
            if f_new <= f + 1e-4 * t * slope + 1e-13 * abs(f):
                break
            if not fresh:
                break
            t *= 0.5
            if t < 1e-12:
                break
        if f_new > f + 1e-4 * t * slope + 1e-13 * abs(f):
            if fresh:
                break  # no decrease available at machine precision
            H, fresh = hess(st), True  # a stale matrix gave a poor step
            continue
        theta = cand
        f, g, st = fg(theta)
        if float(np.linalg.norm(g)) > chord_ratio * gnorm:
            H, fresh = hess(st), True
        else:
            fresh = False
    return theta, f, g, converged


def _newton(X, y, w, lam, theta, tol, max_iter, backend, H_init=None, offset=None):
    """Damped Newton with a lazily refreshed Hessian and Armijo backtracking on
    f + lam/2 ||theta||^2.

    Converged when ``||grad|| <= tol * sum(w)``: the gradient of the *mean* objective is below
    ``tol``, which makes ``tol`` independent of the sample size. The gradient, the objective and
    the stopping test are always exact, so the optimum does not depend on which Hessian was used;
    a stale Hessian only changes the path (linear instead of quadratic convergence, for as long
    as that is cheaper than a fresh Hessian; see
    :func:`simulator.kernels.newton_numba.refresh`).

    A Newton matrix that does not factorise, or whose step finds no decrease, is replaced by the
    exact Hessian at the same point; an exact Hessian that does not factorise (singular or
    numerically indefinite) gives a Levenberg-damped step. Failure to factorise is never read as
    separability: that is decided from the data (:func:`separable`).

    Returns theta, f, ||g||, iterations, data passes, status (``newton_numba.CONVERGED`` ...), H,
    Hessian passes and whether H is the Hessian at the returned theta (rather than a stale chord
    matrix).

    This loop is the reference; the numba back-end runs the same algorithm compiled
    (:func:`simulator.kernels.newton_numba.newton`). ``offset`` (n,): the margins are
    ``X theta + offset`` (a fit under linear equality constraints).
    """
    if backend == "numba":
        return _newton_compiled(X, y, w, lam, theta, tol, max_iter, H_init, offset)
    from ..kernels import newton_numba as nn

    lgh, lg, loss_only = _kernels(backend, offset)
    scale = float(X.shape[0] if w is None else max(np.sum(w), 1e-300))
    eye = np.eye(theta.size)

    def fused(th):
        f, g, H = lgh(th, X, y, w)
        return f + 0.5 * lam * th @ th, g + lam * th, H + lam * eye

    def fg(th):
        f, g = lg(th, X, y, w)
        return f + 0.5 * lam * th @ th, g + lam * th

    def exact_at(th):
        nonlocal n_evals, n_hess
        n_evals += 1
        n_hess += 1
        return fused(th)

    if H_init is None:
        f, g, H = fused(theta)
        n_hess, fresh = 1, True
    else:
        (f, g), H = fg(theta), H_init
        n_hess, fresh = 0, False
    exact = fresh  # the numpy Hessian is float64: exact whenever it is fresh
    n_evals = 1
    status = nn.MAX_ITER
    force_fresh = tiny = False
    # Gradient-norm reduction of the last step; a given matrix is trusted for the first step.
    ratio = 1.0 if H_init is None else 0.0
    it = 0
    for it in range(1, max_iter + 1):
        gnorm = _norm(g)
        if not (np.isfinite(f) and np.isfinite(gnorm)):
            status = nn.NONFINITE
            break
        if gnorm <= tol * scale:
            status = nn.CONVERGED
            it -= 1
            break
        step, slope = _newton_step(H, g)
        if tiny and not exact:
            step = None  # the last step did not move theta: check the point with the exact H
        if step is None and not exact:
            f, g, H = exact_at(theta)
            fresh = exact = True
            ratio = 1.0
            step, slope = _newton_step(H, g)
        if step is None:
            step = _damped_step(H, g)
            slope = float(g @ step) if step is not None else 0.0
            if step is None or not np.isfinite(slope) or slope >= 0:
                status = nn.NONFINITE
                break
            force_fresh = True
        if exact and _norm(step) <= nn.ROUNDOFF_STEP * _norm(theta):
            status = nn.ROUNDOFF
            break
        want_fresh = force_fresh or nn.refresh(ratio, gnorm, tol * scale, theta.size)
        force_fresh = False
        t = 1.0
        while True:
            th_new = theta + t * step
            if t == 1.0:
                if want_fresh:
                    f_new, g_new, H_new = fused(th_new)
                    n_hess += 1
                else:
                    (f_new, g_new), H_new = fg(th_new), None
            else:
                f_new = loss_only(th_new, X, y, w) + 0.5 * lam * th_new @ th_new
            n_evals += 1
            # Armijo; the relative slack absorbs round-off once the decrease is below machine
            # precision (then the step is accepted and the gradient test decides).
            if f_new <= f + 1e-4 * t * slope + 1e-13 * abs(f):
                break
            if not fresh:
                break  # a stale matrix gave a poor step: refresh it here rather than backtrack
            t *= 0.5
            if t < 1e-12:
                break
        if t < 1e-12 and exact:
            status = nn.STALLED
            break
        if t < 1e-12 or f_new > f + 1e-4 * t * slope + 1e-13 * abs(f):
            # no decrease from a stale or chord matrix: redo the step with the exact Hessian
            f, g, H = exact_at(theta)
            fresh = exact = True
            ratio = 1.0
            continue
        if t != 1.0:
            f_new, g_new, H_new = fused(th_new)
            n_evals += 1
            n_hess += 1
        ratio = _norm(g_new) / gnorm
        s_k, y_k = th_new - theta, g_new - g
        tiny = _norm(s_k) <= nn.ROUNDOFF_STEP * _norm(theta)
        theta, f, g = th_new, f_new, g_new
        if H_new is not None:
            H, fresh, exact = H_new, True, True
        else:
            H, fresh, exact = nn.bfgs_update(H, s_k, y_k), False, False
        if lam == 0 and _norm(theta) > 1e8:
            status = nn.DIVERGING
            break
    else:
        status = nn.CONVERGED if _norm(g) <= tol * scale else nn.MAX_ITER
    return theta, f, _norm(g), it, n_evals, status, H, n_hess, fresh


def _newton_compiled(X, y, w, lam, theta, tol, max_iter, H_init, offset=None):
    from ..kernels import bt_numba, newton_numba

    n, d = X.shape
    has_w = w is not None
    # without an offset the compiled solver is called as before offsets existed (o omitted)
    extra = () if offset is None else (np.ascontiguousarray(offset, dtype=np.float64),)
    th, f, gn, it, ne, status, H, nh, fresh = newton_numba.newton(
        X, y, w if has_w else bt_numba._EMPTY, has_w, bt_numba._blocks(n), float(lam),
        np.array(theta, dtype=np.float64), float(tol), int(max_iter),
        np.zeros((d, d)) if H_init is None else np.ascontiguousarray(H_init, dtype=np.float64),
        H_init is not None, bt_numba.threaded(n, d, False), bt_numba.threaded(n, d, True),
        *extra)
    return th, float(f), float(gn), int(it), int(ne), int(status), H, int(nh), bool(fresh)


def fit_bt(X, y, *, lam: float = 1e-4, sample_weight=None, theta_init=None,
           norm_bound: float | None = None, tol: float = 1e-9, max_iter: int = 100,
           backend: str = "numba", device: str = "cpu", check_input: bool = True,
           constraints=None) -> BTFit:
    """Minimise the BT objective (module docstring) by Newton's method, optionally under linear
    equality constraints ``A theta = b`` (:func:`check_constraints`; the reduction is stated in
    :func:`_fit_constrained`).

    Parameters
    ----------
    X : array (n, d), float64, finite
    y : array (n,), labels in {0, 1}
    lam : float
        Ridge ``lambda >= 0`` on the *sum* objective (``1 / C`` of scikit-learn).
    sample_weight : array (n,), optional
        Non-negative weights ``w_i`` (EM responsibilities).
    theta_init : array (d,), optional
        Warm start (with ``constraints``: projected onto ``{A theta = b}``).
    norm_bound : float, optional
        Constrain ``||theta|| <= norm_bound``. Solved exactly through its KKT condition: the
        constrained optimum is the ridge solution with the extra multiplier ``mu`` for which
        the norm equals the bound, found by bisection on ``log mu``. With ``constraints`` it
        must exceed the norm of the least-norm feasible point ``||theta_p||`` (the reduced
        problem's bound is ``sqrt(norm_bound^2 - ||theta_p||^2)``).
    tol : float
        Stop when the gradient of the mean objective has norm ``<= tol``.
    max_iter : int
    backend : {"numba", "numpy", "torch"}
        "torch" runs the batched solver of :mod:`simulator.kernels.torch_bt` on one problem.
    device : str
        Torch device ("cpu", "cuda"), only with ``backend="torch"``.
    check_input : bool, default True
        Validate ``X`` and ``y`` (as scikit-learn's ``check_input``). Estimators pass False for
        the rows of a :class:`~simulator.data.PreferenceData`, validated when it was built: the
        finiteness pass over ``X`` costs about a sixth of a fit at n = 1e6, d = 32.
    constraints : (A, b), optional
        Linear equality constraints ``A theta = b``: ``A`` an (m, d) finite array of full row
        rank with ``1 <= m < d``, ``b`` an (m,) finite array (e.g. sum-to-zero:
        ``(np.ones((1, d)), [0.0])``). The fit certifies the constrained KKT conditions
        (:class:`BTFit`: ``kkt_residual`` is the projected gradient, ``multipliers`` the
        Lagrange multipliers), and ``A theta = b`` holds to round-off. With ``lam = 0`` the
        MLE exists iff the data are not separable inside null(A) (:func:`separable`).

    Returns
    -------
    BTFit
    """
    if check_input:
        X, y = check_xy(X, y)
    else:
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.int8)
    n, d = X.shape
    lam = check_real(lam, "lam", low=0.0)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", low=1)
    norm_bound = check_real(norm_bound, "norm_bound", low=0.0, low_open=True, allow_none=True)
    device = check_str(device, "device")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {BACKENDS}; got {backend!r}")
    w = check_sample_weight(sample_weight, n)
    theta = np.zeros(d) if theta_init is None else check_array(theta_init, "theta_init",
                                                                 copy=True)
    if theta.shape != (d,):
        raise InvalidParameterError(f"theta_init must have shape ({d},); got {theta.shape}")
    lc = check_constraints(constraints, d)
    if lc is not None:
        if backend != "torch" and device != "cpu":
            raise InvalidParameterError(f"device {device!r} needs backend='torch'; backend "
                                        f"{backend!r} runs on cpu")
        return _fit_constrained(X, y, w, lam, theta, theta_init is None, norm_bound, tol,
                                max_iter, backend, device, lc)

    if backend == "torch":
        return _fit_torch(X, y, w, lam, theta, norm_bound, tol, max_iter, device)
    if device != "cpu":
        raise InvalidParameterError(f"device {device!r} needs backend='torch'; backend "
                                    f"{backend!r} runs on cpu")
    with _pinned_blas(backend):
        return _fit_cpu(X, y, w, lam, theta, theta_init is None, norm_bound, tol, max_iter,
                        backend)


def _pinned_blas(backend):
    """One BLAS thread for a CPU fit (re-entrant, :func:`~simulator.kernels.bt_numba.
    one_blas_thread`). numba: the kernels' own threads must not oversubscribe the cores. numpy:
    a threaded BLAS splits the reductions ``X^T q`` over its threads and adds the partial sums
    in an order that depends on the thread count, so with two BLAS threads the numpy back-end's
    ``theta`` differed from one thread's in the last bit (measured 2026-12, up to 1.2e-16
    relative in ``theta``, 5e-6 relative in the gradient norm); pinned, a fit is bit-identical
    whatever the process's BLAS thread count."""
    from ..kernels import bt_numba

    return bt_numba.one_blas_thread()


def _fit_cpu(X, y, w, lam, theta, cold, norm_bound, tol, max_iter, backend, offset=None):
    n, d = X.shape
    scale = float(n if w is None else max(np.sum(w), 1e-300))
    H_init, n_warm = None, 0
    if cold and _warm_start_applies(n, d):
        theta, H_init, n_warm = _subsample_start(X, y, w, lam, max_iter, backend, offset)
    theta, f, gn, it, ne, code, _H, n_hess, _fr = _newton(X, y, w, lam, theta, tol, max_iter,
                                                          backend, H_init, offset)
    status = STATUS[code]
    ne += n_warm
    # the existence of the MLE does not depend on an offset (separable's docstring): the LP
    # is on the features alone
    if lam == 0 and _separability_suspected(X, y, w, theta, status, offset):
        if separable(X, y, w):
            status = "separable"
        elif status == "diverging":
            status = "max_iter"  # not separable: the iterates were on their way (huge scale)
    fit = BTFit(theta, f, gn, it, ne, status in CERTIFIED, n_hess=n_hess, status=status,
                message=_message(status, gn, tol, scale))
    if norm_bound is not None and (status == "separable" or np.linalg.norm(theta) > norm_bound):
        return _fit_norm_bound(X, y, w, lam, norm_bound, fit, tol, max_iter, backend, offset)
    if status == "separable":
        warnings.warn(fit.message, MLENotExistWarning, stacklevel=3)
    return fit


def _ranks_all_correctly(X, y, w, theta):
    """Whether theta ranks every (positively weighted) comparison correctly: then scaling it up
    keeps increasing the likelihood, and without a ridge the MLE does not exist."""
    t = (2.0 * y - 1.0) * (X @ theta)
    active = t if w is None else t[w > 0]
    return bool(active.size and active.min() > 0)


# Above this width the singular-Hessian trigger is skipped (an O(n d^2 + d^3) check); the other
# triggers (divergence, every comparison ranked correctly) still call the LP.
_EIG_CHECK_MAX_D = 1024


def _separability_suspected(X, y, w, theta, status, offset=None):
    """Cheap triggers for the exact LP test (lam = 0 only): the iterates diverged or stopped
    early, the estimate ranks every comparison correctly, or the float64 Hessian at the
    estimate is (numerically) singular, as it is along a quasi-separating direction. (With an
    offset, ``theta`` ranking every comparison by its feature part alone is a separating
    direction of the features, the question the LP decides.)"""
    if status not in CERTIFIED or _ranks_all_correctly(X, y, w, theta):
        return True
    if not np.all(np.isfinite(theta)):
        return True
    if X.shape[1] > _EIG_CHECK_MAX_D:
        return False  # forming and decomposing H would cost more than the fit itself
    H = bt_objective(theta, X, y, 0.0, w, offset)[2]
    ev = np.linalg.eigvalsh(H)
    return bool(ev[0] <= 1e-10 * max(ev[-1], 1e-300))


def _subsample_start(X, y, w, lam, max_iter, backend, offset=None):
    """Start point and first Newton matrix for the full problem from every
    WARM_START_STRIDE-th row (module constants; recursive). Returns theta, H, passes (counted
    as one for the whole hierarchy: it reads 1/8 + 1/64 + ... of the data per iteration)."""
    n, d = X.shape
    sl = slice(None, None, WARM_START_STRIDE)
    Xs, ys = np.ascontiguousarray(X[sl]), np.ascontiguousarray(y[sl])
    ws = None if w is None else np.ascontiguousarray(w[sl])
    os_ = None if offset is None else np.ascontiguousarray(offset[sl])
    frac = Xs.shape[0] / n if w is None else (
        float(np.sum(ws)) / max(float(np.sum(w)), 1e-300))
    if not frac > 0:
        return np.zeros(d), None, 0
    lam_s = lam * frac
    theta, H_init = np.zeros(d), None
    if _warm_start_applies(*Xs.shape):
        theta, H_init, _ = _subsample_start(Xs, ys, ws, lam_s, max_iter, backend, os_)
    tol_s = WARM_START_TOL * math.sqrt(d / Xs.shape[0])
    th_s, _f, _g, _it, _ne, code, H_s, _nh, fresh = _newton(Xs, ys, ws, lam_s, theta, tol_s,
                                                            max_iter, backend, H_init, os_)
    if STATUS[code] not in CERTIFIED or not np.all(np.isfinite(th_s)):
        return np.zeros(d), None, 1  # e.g. a subsample without an MLE (lam = 0): start cold
    if not fresh:  # a Hessian at the subsample optimum is a better first matrix than a stale one
        H_s = _kernels(backend, os_)[0](th_s, Xs, ys, ws)[2] + lam_s * np.eye(d)
    # Rescale the subsample's Newton matrix to the full data.
    return th_s, (H_s - lam_s * np.eye(d)) / frac + lam * np.eye(d), 1


def _fit_torch(X, y, w, lam, theta, norm_bound, tol, max_iter, device, offset=None):
    from ..kernels.torch_bt import fit_bt_batched

    if norm_bound is not None:
        raise ValueError("norm_bound is not supported with backend='torch'; use 'numba'")
    res = fit_bt_batched(X[None], y[None], lam=lam, sample_weight=None if w is None else w[None],
                         theta_init=theta[None], tol=tol, max_iter=max_iter, device=device,
                         offset=None if offset is None else offset[None])
    theta, gn = res.theta[0], float(res.grad_norm[0])
    scale = float(X.shape[0] if w is None else max(np.sum(w), 1e-300))
    status = "converged" if res.converged[0] else (
        "max_iter" if int(res.n_iter[0]) >= max_iter else "stalled")
    if lam == 0 and _separability_suspected(X, y, w, theta, status, offset) and \
            separable(X, y, w):
        status = "separable"
        warnings.warn(_message(status, gn, tol, scale), MLENotExistWarning, stacklevel=3)
    return BTFit(theta, float(res.objective[0]), gn, int(res.n_iter[0]), int(res.n_iter[0]) + 1,
                 status == "converged", status=status, message=_message(status, gn, tol, scale))


def _fit_constrained(X, y, w, lam, theta, cold, norm_bound, tol, max_iter, backend, device, lc):
    r"""The BT fit under ``A theta = b``, reduced to an unconstrained one.

    With ``theta = theta_p + N z`` (:class:`LinearConstraints`: ``theta_p`` in row(A), ``N``
    an orthonormal basis of null(A)), ``x_i^T theta = (N^T x_i)^T z + x_i^T theta_p`` and
    ``||theta||^2 = ||z||^2 + ||theta_p||^2``, so

    .. math::

        \min_{A\theta = b} f(\theta) + \tfrac{\lambda}{2}\lVert\theta\rVert^2
        = \min_z \sum_i w_i\,\mathrm{softplus}\big(-s_i (\tilde x_i^\top z + o_i)\big)
          + \tfrac{\lambda}{2}\lVert z\rVert^2 + \tfrac{\lambda}{2}\lVert\theta_p\rVert^2,

    with features ``X N`` (rows :math:`\tilde x_i = N^\top x_i`) and offsets ``o = X theta_p``
    (:math:`o_i = x_i^\top\theta_p`; absent when ``b = 0``, since then
    ``theta_p = 0``): the unconstrained fit of the module, on every back-end. Its gradient is
    ``N^T grad_theta``, so its certificate ``||g_z|| <= tol * sum(w)`` is the constrained KKT
    condition (projected gradient; the multipliers ``nu = -(A^+)^T grad_theta`` are reported).
    A norm bound ``||theta|| <= R`` is ``||z|| <= sqrt(R^2 - ||theta_p||^2)``.
    """
    R_z = None
    if norm_bound is not None:
        pn2 = float(lc.theta_p @ lc.theta_p)
        if not norm_bound ** 2 > pn2:
            raise InvalidParameterError(
                f"norm_bound must exceed the norm of the least-norm point of the constraints, "
                f"||theta_p|| = {math.sqrt(pn2):.6g} (no other feasible theta is shorter; at "
                f"equality theta_p is the only one); got {norm_bound!r}")
        R_z = math.sqrt(norm_bound ** 2 - pn2)
    with _pinned_blas(backend):  # the products with X too, so that a fit is bit-reproducible
        Z = np.ascontiguousarray(X @ lc.N)
        offset = np.ascontiguousarray(X @ lc.theta_p) if np.any(lc.theta_p != 0) else None
        z0 = lc.to_z(theta)
        if backend == "torch":
            fz = _fit_torch(Z, y, w, lam, z0, R_z, tol, max_iter, device, offset)
        else:
            fz = _fit_cpu(Z, y, w, lam, z0, cold, R_z, tol, max_iter, backend, offset)
        th = lc.to_theta(fz.theta)
        # the multipliers from the full-space gradient of the Lagrangian (one more pass over
        # X): grad + A^T nu = 0 in the least-squares sense
        nu = np.full(lc.b.shape, np.nan)
        if np.all(np.isfinite(th)):
            g = _kernels(backend if backend == "numba" else "numpy")[1](th, X, y, w)[1]
            nu = -lc.pinv.T @ (g + (lam + fz.mu) * th)
    return BTFit(th, fz.objective + 0.5 * lam * float(lc.theta_p @ lc.theta_p), fz.grad_norm,
                 fz.n_iter, fz.n_evals, fz.converged, mu=fz.mu, n_hess=fz.n_hess,
                 status=fz.status, message=fz.message, multipliers=nu)


def _fit_norm_bound(X, y, w, lam, bound, fit, tol, max_iter, backend, offset=None):
    """``min f(theta) + lam/2 ||theta||^2 s.t. ||theta|| <= bound`` through its KKT condition:
    the solution is the ridge solution at ``lam + mu`` for the multiplier ``mu > 0`` at which
    ``||theta(mu)|| = bound``. ``||theta(mu)||`` decreases in mu: bracket, then bisect on
    log(mu). Also the route when the unconstrained problem has no solution (separable data,
    lam = 0): every ``mu > 0`` gives a strictly convex problem."""
    total_iter, total_evals = fit.n_iter, fit.n_evals
    scale = float(X.shape[0] if w is None else max(np.sum(w), 1e-300))

    def solve(mu, th0):
        nonlocal total_iter, total_evals
        th, f, gn, it, ne, code, *_ = _newton(X, y, w, lam + mu, th0, tol, max_iter, backend,
                                              offset=offset)
        total_iter += it
        total_evals += ne
        return th, f, gn, STATUS[code]

    lo, hi = 0.0, max(1e-8 * scale, 1e-8)
    th_hi = fit.theta if np.all(np.isfinite(fit.theta)) else np.zeros_like(fit.theta)
    for _ in range(400):
        th_hi, f_hi, gn_hi, st_hi = solve(hi, th_hi)
        if np.linalg.norm(th_hi) <= bound:
            break
        lo, hi = hi, hi * 10.0
    th = th_hi
    for _ in range(200):
        if lo > 0 and hi / lo < 1 + 1e-12:
            break
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 10.0
        if lo == 0 and mid < 1e-14 * max(scale, 1.0):
            break
        th_mid, f_mid, gn_mid, st_mid = solve(mid, th)
        if np.linalg.norm(th_mid) > bound:
            lo = mid
        else:
            hi, th_hi, f_hi, gn_hi, st_hi = mid, th_mid, f_mid, gn_mid, st_mid
        th = th_mid
        if abs(np.linalg.norm(th_hi) - bound) <= 1e-10 * bound:
            break
    # Report the objective without the multiplier term: f(theta) + lam/2 ||theta||^2. The KKT
    # residual is the gradient of the Lagrangian f + (lam + mu)/2 ||theta||^2, i.e. gn_hi.
    f_pen = f_hi - 0.5 * hi * th_hi @ th_hi
    on_bound = abs(np.linalg.norm(th_hi) - bound) <= 1e-8 * bound or lo == 0
    status = st_hi if on_bound or st_hi not in CERTIFIED else "max_iter"
    return BTFit(th_hi, float(f_pen), gn_hi, total_iter, total_evals, status in CERTIFIED,
                 mu=hi, status=status, message=_message(status, gn_hi, tol, scale))
