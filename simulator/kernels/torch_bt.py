"""Batched Bradley–Terry Newton solver in torch: S independent problems at once, CPU or CUDA.

Each problem ``s`` minimises the objective of :func:`simulator.estimators.bt.bt_objective`,

    f_s(theta) = sum_i w_si softplus(-(2 y_si - 1) (<x_si, theta> + o_si)) + lam / 2 ||theta||^2,

with its own data (the offsets ``o_si`` are optional, 0 without them: a fit under linear
equality constraints, :func:`simulator.estimators.bt.fit_bt`). Problems of unequal size are padded; padded rows get weight 0 and so drop out
of every sum. The iteration is the same damped Newton method as the numpy/numba back-end, run in
lock-step: each problem has its own step length (Armijo backtracking) and convergence flag, and a
problem that has converged is frozen, so one hard problem (separable data, say) cannot spoil the
others' results, only delay the batch.

float64 agrees with the numba back-end to ~1e-9 relative. float32 is faster on GPUs; its
gradient test is floored at ``FLOAT32_TOL`` (the gradient of the mean objective cannot be
resolved much below sqrt(float32 eps) ~ 3e-4 times the feature scale), and estimates then agree
with float64 to about 1e-4 relative (tested).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

FLOAT32_TOL = 1e-5


SMALL_WORK = 2**24  # data elements below which a CPU solve runs torch on one thread


class small_work_one_thread:
    """One torch thread for CPU problems below :data:`SMALL_WORK` elements of data.

    The lock-step solvers issue many small ops; waking torch's thread pool per op costs more
    than it saves, and on a loaded 2-core machine each wake-up can cost a scheduler slice
    (~5 ms): seen 14 s -> 2.8 s (S = 4 tiny problems) and 6.8 s -> 1.5 s (n = 1e5, d = 64,
    k = 4, U = 5). It also keeps sweep workers (one per core) from oversubscribing.

    torch's thread count is global to the process, so fits running in several Python threads
    at once (a Dask worker with threads, a user's thread pool) share one count of active
    blocks: the first to enter saves the setting, the last to leave restores it. Saving and
    restoring per block would let interleaved blocks leave the process on one thread for good.
    """

    _lock = threading.Lock()
    _active = 0
    _saved = None

    def __init__(self, torch, dev, size):
        self.torch, self.on = torch, dev.type == "cpu" and size < SMALL_WORK
        self.entered = False

    def __enter__(self):
        if self.on:
            cls = type(self)
            with cls._lock:
                if cls._active == 0:
                    cls._saved = self.torch.get_num_threads()
                    self.torch.set_num_threads(1)
                cls._active += 1
                self.entered = True
        return self

    def __exit__(self, *exc):
        if self.entered:
            cls = type(self)
            with cls._lock:
                cls._active -= 1
                if cls._active == 0:
                    self.torch.set_num_threads(cls._saved)
                    cls._saved = None
            self.entered = False


@dataclass
class BatchedBTFit:
    """Result of :func:`fit_bt_batched` (numpy arrays, one entry per problem)."""

    theta: np.ndarray  # (S, d)
    objective: np.ndarray  # (S,)
    grad_norm: np.ndarray  # (S,)
    n_iter: np.ndarray  # (S,)
    converged: np.ndarray  # (S,) bool


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ImportError("backend='torch' needs torch (pip install torch==2.13.0)") from exc
    return torch


def pad_problems(problems, d=None):
    """Stack a list of (X_s, y_s[, w_s]) into padded arrays (S, n_max, d), (S, n_max), (S, n_max).

    Padded rows have weight 0.
    """
    S = len(problems)
    if S == 0:
        raise ValueError("problems must contain at least one (X, y) problem")
    d = d or problems[0][0].shape[1]
    n_max = max(p[0].shape[0] for p in problems)
    X = np.zeros((S, n_max, d))
    y = np.zeros((S, n_max), dtype=np.int8)
    w = np.zeros((S, n_max))
    for s, p in enumerate(problems):
        n = p[0].shape[0]
        if p[0].shape[1] != d:
            raise ValueError(f"problem {s} has {p[0].shape[1]} features; expected d = {d}")
        X[s, :n] = p[0]
        y[s, :n] = p[1]
        w[s, :n] = 1.0 if len(p) < 3 or p[2] is None else p[2]
    return X, y, w


def _margins(torch, theta, X, offset):
    """``<x_si, theta_s> (+ o_si)``; without an offset the same single op as before offsets."""
    m = torch.einsum("snd,sd->sn", X, theta)
    return m if offset is None else m + offset


def _objective(torch, theta, X, sgn, w, lam, offset=None):
    t = sgn * _margins(torch, theta, X, offset)
    f = (w * torch.nn.functional.softplus(-t)).sum(1) + 0.5 * lam * (theta * theta).sum(1)
    return f, t


def _levenberg_cholesky(torch, H, L, info, active):
    """Cholesky factors of ``H + delta I`` for the active problems whose ``H`` did not factorise
    (``info != 0``): delta from 1e-12 of the largest diagonal entry, times 10 until it does
    (Levenberg damping, as the numpy/numba solver of :mod:`simulator.estimators.bt` does).
    Returns ``(L, bad)``, ``bad`` the problems still without a factor after 40 tries."""
    bad = active & (info != 0)
    if not bool(bad.any()):
        return L, bad
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    delta = 1e-12 * H.diagonal(dim1=1, dim2=2).abs().amax(1)
    delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    for _damp in range(40):
        L2, info2 = torch.linalg.cholesky_ex(H + (delta * bad)[:, None, None] * eye)
        fixed = bad & (info2 == 0)
        L = torch.where(fixed[:, None, None], L2, L)
        bad &= ~fixed
        if not bool(bad.any()):
            break
        delta = delta * 10.0
    return L, bad


def newton_lockstep(torch, fg, hess, fonly, theta, scale, tol, max_iter, slack, active=None,
                    chord_ratio=None):
    """The batched Newton driver: S problems in lock-step, each with its own step length and
    convergence flag (a finished problem is frozen). Every batched torch solver of the package
    (:func:`fit_bt_batched`, the SharedRep B-step of :mod:`.torch_sharedrep`) runs this loop.

    Parameters
    ----------
    fg : callable
        ``fg(theta (S, p)) -> (f (S,), grad (S, p))``, exact.
    hess : callable
        ``hess(theta) -> (S, p, p)`` Newton matrices (Hessian + ridge).
    fonly : callable
        ``fonly(theta) -> f (S,)`` (the line search).
    scale : tensor (S,)
        Converged when ``||grad|| <= tol * scale`` (the sum of weights: the mean objective's
        gradient at ``tol``).
    slack : float
        Armijo slack for round-off in ``f`` (relative).
    active : bool tensor (S,), optional
        Problems to solve (the others are left as they are).
    chord_ratio : float, optional
        Keep the Newton matrix (a chord step) while every active problem's last step shrank its
        gradient norm by this factor or better; a stale matrix whose step fails the Armijo test
        is refreshed rather than backtracked. ``None``: a fresh matrix every step.

    Returns
    -------
    theta, f, gnorm, n_iter, converged : tensors, one entry (row) per problem.

    A matrix that does not factorise gets Levenberg damping (:func:`_levenberg_cholesky`); a
    problem whose exact Newton direction finds no decrease stops where it is, not converged.
    """
    S = theta.shape[0]
    dev = theta.device
    active = (torch.ones(S, dtype=torch.bool, device=dev) if active is None
              else active.clone())
    conv = torch.zeros(S, dtype=torch.bool, device=dev)
    n_iter = torch.zeros(S, dtype=torch.int64, device=dev)
    f, g = fg(theta)
    H, fresh, L = hess(theta), True, None
    gnorm = g.norm(dim=1)
    for _ in range(2 * int(max_iter) + 1):
        gnorm = g.norm(dim=1)
        newly = active & (gnorm <= tol * scale)
        conv |= newly
        active &= ~newly
        if not bool(active.any()) or int(n_iter.max()) >= max_iter:
            break
        if L is None:
            L, info = torch.linalg.cholesky_ex(H)
            L, bad = _levenberg_cholesky(torch, H, L, info, active)
            active &= ~bad
        step = -torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
        step = torch.where(active[:, None], step, torch.zeros_like(step))
        slope = (g * step).sum(1)
        lr = torch.ones_like(f)
        pending = active.clone()
        new_theta = theta
        for _ls in range(40):
            cand = theta + lr[:, None] * step
            fc = fonly(cand)
            ok = pending & (fc <= f + 1e-4 * lr * slope + slack * f.abs())
            new_theta = torch.where(ok[:, None], cand, new_theta)
            pending &= ~ok
            if not bool(pending.any()) or not fresh:
                break
            lr = torch.where(pending, lr * 0.5, lr)
        if bool(pending.any()) and not fresh:
            H, fresh, L = hess(theta), True, None  # retry this iteration with a fresh matrix
            continue
        active &= ~pending  # no decrease found with a fresh matrix: stop that problem
        n_iter += active.to(torch.int64)
        theta = new_theta
        f, g = fg(theta)
        if chord_ratio is None:
            H, fresh, L = hess(theta), True, None
        elif bool(active.any()):
            ratio = (g.norm(dim=1) / gnorm.clamp_min(1e-300))[active].max()
            if float(ratio) > chord_ratio:
                H, fresh, L = hess(theta), True, None
            else:
                fresh = False
    return theta, f, gnorm, n_iter, conv


def fit_bt_batched(X, y, *, lam: float = 1e-4, sample_weight=None, theta_init=None,
                   tol: float = 1e-9, max_iter: int = 100, device: str = "cpu",
                   dtype: str = "float64", offset=None) -> BatchedBTFit:
    """Fit S BT problems at once by lock-step damped Newton.

    Parameters
    ----------
    X : array (S, n, d)
    y : array (S, n) of {0, 1}
    lam : float >= 0
        Ridge on each problem's summed objective.
    sample_weight : array (S, n), optional
        Non-negative weights; 0 marks padding.
    theta_init : array (S, d), optional
    tol : float
        Converged when the gradient of the mean objective has norm <= tol (floored at
        ``FLOAT32_TOL`` in float32).
    max_iter : int
    device : str
        "cpu" or "cuda" (any torch device string).
    dtype : {"float64", "float32"}
    offset : array (S, n), optional
        Fixed offsets ``o_si`` of the margins (module docstring); finite.
    """
    torch = _import_torch()
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (S, n, d); got {X.shape}")
    S, n, d = X.shape
    y = np.asarray(y)
    if y.shape != (S, n) or not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y must be an array of shape ({S}, {n}) with labels in {{0, 1}}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite entries; all features must be finite")
    w = np.ones((S, n)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (S, n) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"sample_weight must be finite, non-negative, of shape ({S}, {n})")
    if offset is not None:
        offset = np.asarray(offset, dtype=np.float64)
        if offset.shape != (S, n) or not np.all(np.isfinite(offset)):
            raise ValueError(f"offset must be a finite array of shape ({S}, {n})")
    tdt = torch.float64 if dtype == "float64" else torch.float32
    if dtype == "float32":
        tol = max(tol, FLOAT32_TOL)
    dev = torch.device(device)
    Xt = torch.as_tensor(X, dtype=tdt, device=dev)
    sgn = torch.as_tensor(2.0 * y - 1.0, dtype=tdt, device=dev)
    wt = torch.as_tensor(w, dtype=tdt, device=dev)
    ot = None if offset is None else torch.as_tensor(offset, dtype=tdt, device=dev)
    theta = (torch.zeros((S, d), dtype=tdt, device=dev) if theta_init is None
             else torch.as_tensor(np.asarray(theta_init, np.float64), dtype=tdt, device=dev).clone())
    scale = wt.sum(1).clamp_min(1e-300)
    # Armijo slack for round-off in f: a few ulps of the dtype.
    slack = 1e-13 if dtype == "float64" else 1e-6
    eye = torch.eye(d, dtype=tdt, device=dev)

    def fonly(th):
        return _objective(torch, th, Xt, sgn, wt, lam, ot)[0]

    def fg(th):
        f, t = _objective(torch, th, Xt, sgn, wt, lam, ot)
        p = torch.sigmoid(t)
        return f, -torch.einsum("sn,snd->sd", wt * sgn * (1 - p), Xt) + lam * th

    def hess(th):
        p = torch.sigmoid(sgn * _margins(torch, th, Xt, ot))
        h = wt * p * (1 - p)
        return torch.bmm((Xt * h.unsqueeze(-1)).transpose(1, 2), Xt) + lam * eye

    with torch.no_grad(), small_work_one_thread(torch, dev, Xt.numel()):
        theta, f, gnorm, n_iter, conv = newton_lockstep(torch, fg, hess, fonly, theta, scale,
                                                        tol, int(max_iter), slack)
        if lam == 0:
            # As in the numba back-end: an estimate that ranks every weighted comparison
            # correctly can be scaled up forever, so that problem has no MLE (separable). With
            # an offset only the feature part <x, theta> scales, so that is what is tested
            # (a direction with every such margin > 0 is a recession direction; the offsets do
            # not change whether the MLE exists: see simulator.estimators.bt.separable).
            t = sgn * torch.einsum("snd,sd->sn", Xt, theta)
            separable = ((t > 0) | (wt == 0)).all(1) & (wt > 0).any(1)
            conv &= ~separable
    return BatchedBTFit(theta=theta.cpu().numpy().astype(np.float64),
                        objective=f.cpu().numpy().astype(np.float64),
                        grad_norm=gnorm.cpu().numpy().astype(np.float64),
                        n_iter=n_iter.cpu().numpy(), converged=conv.cpu().numpy())
