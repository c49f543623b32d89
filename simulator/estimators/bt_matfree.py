r"""Matrix-free Newton–CG for the BT objective of :mod:`.bt`, for designs too wide to form.

The objective is the one of :func:`simulator.estimators.bt.bt_objective`,

.. math::

    f(\theta) = \sum_i w_i\,\mathrm{softplus}(-s_i\, a_i^\top\theta)
                + \frac{\lambda}{2}\lVert\theta\rVert^2 ,

but the design :math:`A` (rows :math:`a_i`) is given only as an operator: ``matvec(theta) = A
theta`` (the n margins) and ``rmatvec(r) = A^T r``. That is what the wide problems of this
project look like: the SharedRep B-step's design ``kron(w_{g_i}, x_i)`` has d·k columns (d = 4096,
k = 5 would need a 20480² Hessian), and each product with it costs O(n d k) without forming it
(:func:`kron_operator`).

Algorithm: line-search Newton–CG (Nocedal & Wright 2006, Algorithm 7.1). Each Newton step solves
``H p = -g`` by conjugate gradients on Hessian-vector products ``H v = A^T (h * (A v)) + lam v``
(``h_i = w_i sigma(t_i) sigma(-t_i)``), to the forcing tolerance ``min(0.5, sqrt(||g|| / n))
||g||`` (superlinear convergence), Jacobi-preconditioned when the operator gives the Hessian's
diagonal, followed by the Armijo backtracking of the dense solver. The certificate and the
statuses are those of :class:`~simulator.estimators.bt.BTFit`: converged when the mean gradient
is below ``tol``, ``roundoff`` when the Newton step is below 1e-13 of ``||theta||``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bt import CERTIFIED, BTFit, _message, check_sample_weight

__all__ = ["BTOperator", "dense_operator", "kron_operator", "fit_bt_matfree"]

ROUNDOFF_STEP = 1e-13


@dataclass(frozen=True)
class BTOperator:
    """A BT design given as products: ``matvec(theta) -> (n,)``, ``rmatvec(r) -> (p,)`` and,
    optionally, ``hess_diag(h) -> (p,)``, the diagonal of ``A^T diag(h) A`` (preconditioner)."""

    n: int
    p: int
    matvec: object
    rmatvec: object
    hess_diag: object = None


def dense_operator(X) -> BTOperator:
    """The operator of an explicit design matrix ``X`` (n, p); for tests and medium widths."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    X2 = X * X
    return BTOperator(X.shape[0], X.shape[1], lambda th: X @ th, lambda r: r @ X,
                      lambda h: h @ X2)


def kron_operator(X, group, W) -> BTOperator:
    r"""The SharedRep B-step design: row i is ``kron(w_{g_i}, x_i)`` (``vec(B)`` column-major).

    With ``B = vec^{-1}(theta)`` (d, k): the margin is ``x_i^T B w_{g_i}``, and ``A^T r =
    vec(X^T (r * W_g^T))`` with ``W_g`` the (k, n) matrix of each row's group weights. Both cost
    O(n d k); nothing of size (n, d k) or (d k)^2 is formed.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    Wg = np.ascontiguousarray(np.asarray(W, dtype=np.float64)[:, np.asarray(group)].T)  # (n, k)
    k = Wg.shape[1]
    X2, Wg2 = X * X, Wg * Wg

    def matvec(theta):
        B = theta.reshape(k, d).T  # column-major vec(B): theta[c*d:(c+1)*d] = B[:, c]
        return np.einsum("ik,ik->i", X @ B, Wg)

    def rmatvec(r):
        return (X.T @ (r[:, None] * Wg)).T.reshape(-1)

    def hess_diag(h):
        return (X2.T @ (h[:, None] * Wg2)).T.reshape(-1)

    return BTOperator(n, d * k, matvec, rmatvec, hess_diag)


def _terms(t, s, w):
    """softplus(-s t) (weighted sum), the residual ``-w s sigma(-s t)`` and ``h``."""
    st = s * t
    f = float(np.sum(w * np.logaddexp(0.0, -st)))
    p = 0.5 * (1.0 + np.tanh(0.5 * st))  # sigma(s t), overflow-free
    return f, -w * s * (1.0 - p), w * p * (1.0 - p)


def _cg(hv, g, precond, tol, max_cg):
    """Preconditioned CG for ``H p = -g``; stops at ``||H p + g|| <= tol`` or on curvature
    ``<= 0`` (then the last iterate, or ``-g`` scaled if none). Returns p and the iterations."""
    p = np.zeros_like(g)
    r = -g.copy()
    z = r * precond
    d = z.copy()
    rz = float(r @ z)
    for j in range(max_cg):
        Hd = hv(d)
        dHd = float(d @ Hd)
        if not dHd > 0:
            if j == 0:
                return -g * precond, 1
            return p, j
        alpha = rz / dHd
        p += alpha * d
        r -= alpha * Hd
        if math.sqrt(float(r @ r)) <= tol:
            return p, j + 1
        z = r * precond
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return p, max_cg


def fit_bt_matfree(op: BTOperator, y, *, lam: float = 1e-4, sample_weight=None,
                   theta_init=None, tol: float = 1e-9, max_iter: int = 100,
                   max_cg: int | None = None) -> BTFit:
    """Minimise the BT objective on the design ``op`` by line-search Newton–CG.

    Parameters
    ----------
    op : BTOperator
    y : array (n,), labels in {0, 1}
    lam, sample_weight, theta_init, tol, max_iter :
        As in :func:`simulator.estimators.bt.fit_bt` (``lam`` must be > 0 here: without a ridge
        the CG systems can be singular; use the dense solver for ``lam = 0``).
    max_cg : int, optional
        CG iterations per Newton step (default ``min(p, 250)``).

    Returns
    -------
    BTFit
        ``n_evals`` counts objective evaluations, ``n_hess`` the Hessian-vector products.
    """
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be a finite number > 0 for the matrix-free solver; got {lam}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    n, p = op.n, op.p
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    if s.shape != (n,):
        raise ValueError(f"y must have shape ({n},); got {s.shape}")
    w = check_sample_weight(sample_weight, n)
    w = np.ones(n) if w is None else w
    theta = np.zeros(p) if theta_init is None else np.array(theta_init, dtype=np.float64)
    if theta.shape != (p,):
        raise ValueError(f"theta_init must have shape ({p},); got {theta.shape}")
    max_cg = min(p, 250) if max_cg is None else int(max_cg)
    scale = max(float(np.sum(w)), 1e-300)

    t = op.matvec(theta)
    f, r, h = _terms(t, s, w)
    f += 0.5 * lam * theta @ theta
    g = op.rmatvec(r) + lam * theta
    n_evals, n_hv, status, it = 1, 0, "max_iter", 0
    for it in range(1, int(max_iter) + 1):
        gnorm = math.sqrt(float(g @ g))
        if not (np.isfinite(f) and np.isfinite(gnorm)):
            status = "nonfinite"
            break
        if gnorm <= tol * scale:
            status, it = "converged", it - 1
            break
        if op.hess_diag is not None:
            precond = 1.0 / (op.hess_diag(h) + lam)
        else:
            precond = np.ones(p)

        def hv(v, h=h):
            return op.rmatvec(h * op.matvec(v)) + lam * v

        forcing = min(0.5, math.sqrt(gnorm / scale))
        step, n_cg = _cg(hv, g, precond, forcing * gnorm, max_cg)
        n_hv += n_cg
        if math.sqrt(float(step @ step)) <= ROUNDOFF_STEP * math.sqrt(float(theta @ theta)):
            status = "roundoff"
            break
        slope = float(g @ step)
        if not slope < 0:
            step, slope = -g, -gnorm * gnorm  # CG gave no descent direction: steepest descent
        a = 1.0
        while True:
            th_new = theta + a * step
            t_new = op.matvec(th_new)
            f_new, r_new, h_new = _terms(t_new, s, w)
            f_new += 0.5 * lam * th_new @ th_new
            n_evals += 1
            if f_new <= f + 1e-4 * a * slope + 1e-13 * abs(f):
                break
            a *= 0.5
            if a < 1e-12:
                break
        if a < 1e-12:
            status = "stalled"
            break
        theta, f, r, h = th_new, f_new, r_new, h_new
        g = op.rmatvec(r) + lam * theta
    else:
        status = "converged" if math.sqrt(float(g @ g)) <= tol * scale else "max_iter"
    gn = math.sqrt(float(g @ g))
    return BTFit(theta, float(f), gn, it, n_evals, status in CERTIFIED, n_hess=n_hv,
                 status=status, message=_message(status, gn, tol, scale))
