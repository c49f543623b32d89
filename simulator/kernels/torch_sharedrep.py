"""Batched alternating minimisation for SharedRep in torch: S independent problems at once.

Problem ``s`` minimises the SharedRep objective of :mod:`simulator.estimators.sharedrep`

    F_s(B, W) = sum_u sum_{i in D_su} c_i softplus(-s_i <B w_u, x_i>) + lam_B/2 ||B||_F^2
                + lam/2 ||W||_F^2   (lam_B = lam unless given)

by the same alternating exact minimisation as the numpy/numba back-end, run in lock-step over
the S problems (each with its own convergence flag; a finished problem is frozen, so one slow or
degenerate problem only delays the batch):

* **W-step** (given B): for every (problem, group) the k-dimensional BT problem on features
  ``X_su B`` — all S·U of them in one call of :func:`~.torch_bt.fit_bt_batched`; simplex weights
  go through a caller-supplied per-group solver (the projected Newton of the estimator module).
* **B-step** (given W): ``vec(B)`` (column-major) is a (d k)-dimensional BT problem on features
  ``kron(w_{g_i}, x_i)``. It is solved by the same lock-step damped Newton, but without forming
  the (n, d k) Kronecker design: the Hessian is ``sum_u kron(w_u w_u^T, X_u^T diag(h_u) X_u)``,
  so one pass costs ``n d^2`` flops instead of ``n d^2 k^2``.

Data live in a grouped, padded layout ``(S, U, m, d)`` (:func:`group_layout`; padding rows get
weight 0), built once. float64 agrees with the numpy/numba back-end to ~1e-9 relative (each block
is solved to the same gradient tolerance from the same warm start). float32: the inner gradient
tests are floored at :data:`~.torch_bt.FLOAT32_TOL` and the sweep test at
:data:`FLOAT32_SWEEP_TOL`; estimates then agree with float64 to about 1e-3 relative (tested; the
bilinear model is less well conditioned than a single BT fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .torch_bt import (
    FLOAT32_TOL,
    _import_torch,
    fit_bt_batched,
    newton_lockstep,
    small_work_one_thread,
)

__all__ = ["FLOAT32_SWEEP_TOL", "BatchedAltMin", "altmin_batched", "group_layout"]

FLOAT32_SWEEP_TOL = 1e-5


def group_layout(problems, U: int):
    """Grouped, padded arrays from a list of ``(X, y, g[, c])`` problems.

    Returns ``Xg (S, U, m, d)``, ``yg (S, U, m)`` int8, ``cg (S, U, m)`` weights (0 = padding),
    ``counts (S, U)`` (real rows per group), ``rows (S, U, m)`` original row index (-1 = padding),
    with ``m`` the largest group.
    """
    S = len(problems)
    if S == 0:
        raise ValueError("problems must contain at least one problem")
    d = problems[0][0].shape[1]
    counts = np.zeros((S, U), dtype=np.int64)
    for s, p in enumerate(problems):
        g = np.asarray(p[2])
        if p[0].ndim != 2 or p[0].shape[1] != d:
            raise ValueError(f"problem {s}: X must have shape (n, {d}); got {p[0].shape}")
        if g.shape != (p[0].shape[0],) or (g.size and (g.min() < 0 or g.max() >= U)):
            raise ValueError(f"problem {s}: group ids must have shape (n,) and lie in [0, {U})")
        counts[s] = np.bincount(g, minlength=U)
    m = max(1, int(counts.max()))
    Xg = np.zeros((S, U, m, d))
    yg = np.zeros((S, U, m), dtype=np.int8)
    cg = np.zeros((S, U, m))
    rows = np.full((S, U, m), -1, dtype=np.int64)
    for s, p in enumerate(problems):
        X, y, g = p[0], p[1], np.asarray(p[2])
        c = p[3] if len(p) > 3 else None
        order = np.argsort(g, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts[s])])
        for u in range(U):
            r = order[bounds[u]:bounds[u + 1]]
            Xg[s, u, :r.size] = X[r]
            yg[s, u, :r.size] = y[r]
            cg[s, u, :r.size] = 1.0 if c is None else np.asarray(c)[r]
            rows[s, u, :r.size] = r
    return Xg, yg, cg, counts, rows


@dataclass
class BatchedAltMin:
    """Result of :func:`altmin_batched` (numpy arrays, one entry per problem)."""

    B: np.ndarray  # (S, d, k)
    W: np.ndarray  # (S, k, U)
    objective: np.ndarray  # (S,)
    history: list  # S lists of {"iter", "phase", "objective"}
    converged: np.ndarray  # (S,) bool
    n_sweeps: np.ndarray  # (S,)


# Keep the Newton matrix while every problem's gradient norm shrinks at least this much per step.
# (The numba solver of estimators/bt.py weighs chord steps against a refresh by their cost
# instead; in lock-step over a batch the slowest problem decides, so this keeps a fixed bar.)
CHORD_RATIO = 0.05
GRAM_CHUNK = 2048  # rows per block of the weighted Gram (keeps the scaled copy in cache)


def _weighted_gram(torch, X, h, buf):
    """``X^T diag(h) X`` per (problem, group), in row blocks through the buffer ``buf``.

    One large scaled copy of X would be a fresh allocation per Newton step (page faults cost
    more than the arithmetic); blocks reuse one cache-sized buffer.
    """
    S, U, m, d = X.shape
    G = torch.zeros((S, U, d, d), dtype=X.dtype, device=X.device)
    step = buf.shape[2]
    for a in range(0, m, step):
        b = min(a + step, m)
        Xa = X[:, :, a:b]
        B = buf[:, :, :b - a]
        torch.mul(Xa, h[:, :, a:b].unsqueeze(-1), out=B)
        G += torch.matmul(B.transpose(-1, -2), Xa)
    return G


def _rebalance(torch, objective, rebalance, B, W, fn, act, hist):
    """``rebalance`` for the still-active problems, kept where it lowers F (``fn`` and the last
    history entry updated in place)."""
    Bn = B.cpu().numpy().astype(np.float64)
    Wn = W.cpu().numpy().astype(np.float64)
    Bb, Wb = Bn.copy(), Wn.copy()
    for s in np.flatnonzero(act):
        Bb[s], Wb[s] = rebalance(Bn[s], Wn[s])
    Bt = torch.as_tensor(Bb, dtype=B.dtype, device=B.device)
    Wt = torch.as_tensor(Wb, dtype=W.dtype, device=W.device)
    fb = objective(Bt, Wt).cpu().numpy().astype(np.float64)
    keep = act & (fb < fn)
    for s in np.flatnonzero(keep):
        fn[s] = fb[s]
        hist[s][-1]["objective"] = float(fb[s])
    k_t = torch.as_tensor(keep, device=B.device)[:, None, None]
    return torch.where(k_t, Bt, B), torch.where(k_t, Wt, W)


def altmin_batched(Xg, yg, cg, counts, B0, W0, *, lam: float, lam_B: float | None = None,
                   max_iter: int = 100,
                   tol: float = 1e-7, inner_tol: float = 1e-10, skip_w: bool = False,
                   phase: str = "free", simplex_solver=None, device: str = "cpu",
                   dtype: str = "float64", extrapolation_rule=None,
                   extrapolation_start: float = 1.0, project_weights=None,
                   rebalance=None) -> BatchedAltMin:
    """Alternating minimisation of S SharedRep problems in lock-step (module docstring).

    Parameters
    ----------
    Xg, yg, cg, counts : the grouped layout of :func:`group_layout`.
    B0 : array (S, d, k); W0 : array (S, k, U)
        Starting factors (``W0`` is overwritten by a first W-step unless ``skip_w``).
    lam : float >= 0
        Ridge of the objective; every block fit uses ``max(lam, 1e-12)`` as the numpy path does.
    lam_B : float >= 0, optional
        Ridge on B instead of ``lam`` (``SharedRep(vertex_lam=...)``); ``lam`` when None.
    max_iter : int
        Maximum sweeps (one B-step then one W-step).
    tol : float
        Stop a problem when the relative change of F over one sweep is ``<= tol``.
    inner_tol : float
        Gradient tolerance (mean objective) of every block fit.
    simplex_solver : callable, optional
        ``solver(Z, y, c, w0) -> w`` (numpy) for one group's k-dimensional simplex-constrained
        problem; given, the W-step calls it per (problem, group) instead of the batched Newton.
    device, dtype : torch device string; "float64" or "float32".
    extrapolation_rule : callable, optional
        ``rule(f_extrapolated, f_new, beta) -> (keep, next_beta)``. Given, every sweep from the
        second on tries, per problem, ``(B, W)_new + beta * (last step)`` and keeps it where the
        rule says (the estimator passes
        :func:`simulator.estimators.sharedrep.extrapolation_update`, the rule of its own loop).
    extrapolation_start : float
        The first ``beta``.
    project_weights : callable, optional
        ``project(W (k, U)) -> W`` applied to extrapolated weights (the simplex projection).
    rebalance : callable, optional
        ``rebalance(B (d, k), W (k, U)) -> (B, W)`` with the same product ``B W`` (numpy), applied
        after every sweep that did not converge and kept where it lowers F (the estimator passes
        :func:`simulator.estimators.sharedrep.balance_factors` for free weights, as its own loop).
    """
    torch = _import_torch()
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam}")
    tdt = torch.float64 if dtype == "float64" else torch.float32
    dev = torch.device(device)
    S, U, m, d = Xg.shape
    k = B0.shape[2]
    if B0.shape != (S, d, k) or W0.shape != (S, k, U):
        raise ValueError(f"B0 must have shape ({S}, {d}, k) and W0 ({S}, k, {U}); "
                         f"got {B0.shape}, {W0.shape}")
    lam_fit = max(float(lam), 1e-12)
    lam_B = float(lam) if lam_B is None else float(lam_B)
    if not (np.isfinite(lam_B) and lam_B >= 0):
        raise ValueError(f"lam_B must be a finite number >= 0; got {lam_B}")
    lam_B_fit = max(lam_B, 1e-12)
    if dtype == "float32":
        inner_tol = max(inner_tol, FLOAT32_TOL)
        tol = max(tol, FLOAT32_SWEEP_TOL)
    slack = 1e-13 if dtype == "float64" else 1e-6
    guard = 1e-9 if dtype == "float64" else 1e-5

    X = torch.as_tensor(Xg, dtype=tdt, device=dev)
    sgn = torch.as_tensor(2.0 * yg - 1.0, dtype=tdt, device=dev)
    c = torch.as_tensor(cg, dtype=tdt, device=dev)
    scale_B = c.sum((1, 2)).clamp_min(1e-300)
    has_rows = np.asarray(counts) > 0
    yg_flat = np.asarray(yg).reshape(S * U, m)
    cg_flat = np.asarray(cg).reshape(S * U, m)
    eye = torch.eye(k * d, dtype=tdt, device=dev)
    buf = torch.empty((S, U, min(m, GRAM_CHUNK), d), dtype=tdt, device=dev)
    B = torch.as_tensor(B0, dtype=tdt, device=dev).clone()
    W = torch.as_tensor(W0, dtype=tdt, device=dev).clone()

    def objective(B, W):
        t = sgn * torch.einsum("sumd,sdu->sum", X, B @ W)
        return ((c * torch.nn.functional.softplus(-t)).sum((1, 2))
                + 0.5 * lam_B * (B * B).sum((1, 2)) + 0.5 * lam * (W * W).sum((1, 2)))

    def w_step(B, W, active):
        Z = torch.matmul(X, B[:, None])  # (S, U, m, k)
        W = W.clone()
        act = active.cpu().numpy()
        if simplex_solver is not None:
            Zn = Z.cpu().numpy().astype(np.float64)
            Wn = W.cpu().numpy().astype(np.float64)
            for s in np.flatnonzero(act):
                for u in np.flatnonzero(has_rows[s]):
                    n_su = int(counts[s][u])
                    Wn[s, :, u] = simplex_solver(Zn[s, u, :n_su], yg[s, u, :n_su],
                                                 cg[s, u, :n_su], Wn[s, :, u])
            return torch.as_tensor(Wn, dtype=tdt, device=dev)
        sel = np.flatnonzero((act[:, None] & has_rows).reshape(-1))
        if sel.size == 0:
            return W
        Zs = Z.reshape(S * U, m, k)[torch.as_tensor(sel, device=dev)]
        th0 = W.transpose(1, 2).reshape(S * U, k)[torch.as_tensor(sel, device=dev)]
        res = fit_bt_batched(Zs.cpu().numpy().astype(np.float64), yg_flat[sel],
                             lam=lam_fit, sample_weight=cg_flat[sel],
                             theta_init=th0.cpu().numpy().astype(np.float64), tol=inner_tol,
                             device=device, dtype=dtype)
        Wt = W.transpose(1, 2).reshape(S * U, k).clone()
        Wt[torch.as_tensor(sel, device=dev)] = torch.as_tensor(res.theta, dtype=tdt, device=dev)
        return Wt.reshape(S, U, k).transpose(1, 2).contiguous()

    def b_step(B, W, active):
        def unvec(theta):
            return theta.reshape(S, k, d).transpose(1, 2)

        def margins(theta):
            return sgn * torch.einsum("sumd,sdu->sum", X, unvec(theta) @ W)

        def fonly(theta):
            t = margins(theta)
            return (c * torch.nn.functional.softplus(-t)).sum((1, 2)) \
                + 0.5 * lam_B_fit * (theta * theta).sum(1)

        def fg(theta):
            t = margins(theta)
            f = (c * torch.nn.functional.softplus(-t)).sum((1, 2)) \
                + 0.5 * lam_B_fit * (theta * theta).sum(1)
            p = torch.sigmoid(t)
            r = torch.einsum("sum,sumd->sud", -c * sgn * (1.0 - p), X)
            gB = torch.einsum("sud,sku->sdk", r, W)
            return f, gB.transpose(1, 2).reshape(S, k * d) + lam_B_fit * theta

        def hess(theta):
            p = torch.sigmoid(margins(theta))
            G = _weighted_gram(torch, X, c * p * (1.0 - p), buf)  # (S, U, d, d)
            H = torch.einsum("sau,sbu,sujl->sajbl", W, W, G).reshape(S, k * d, k * d)
            return H + lam_B_fit * eye

        theta0 = B.transpose(1, 2).reshape(S, k * d)
        theta = newton_lockstep(torch, fg, hess, fonly, theta0, scale_B, inner_tol, 100, slack,
                                active, chord_ratio=CHORD_RATIO)[0]
        return unvec(theta).contiguous()

    active = torch.ones(S, dtype=torch.bool, device=dev)
    with torch.no_grad(), small_work_one_thread(torch, dev, Xg.size):
        if not skip_w:
            W = w_step(B, W, active)
        f = objective(B, W)
        fn = f.cpu().numpy().astype(np.float64)
        hist = [[{"iter": 0, "phase": phase, "objective": float(fn[s])}] for s in range(S)]
        conv = np.zeros(S, dtype=bool)
        n_sweeps = np.zeros(S, dtype=np.int64)
        act = np.ones(S, dtype=bool)
        beta = np.full(S, float(extrapolation_start))
        for it in range(1, int(max_iter) + 1):
            B_new = b_step(B, W, active)
            W_new = w_step(B_new, W, active)
            f_new = objective(B_new, W_new)
            fnn = f_new.cpu().numpy().astype(np.float64)
            if extrapolation_rule is not None and it >= 2:
                # as the numpy loop: not after a failed sweep, nor after a converged one (the
                # stopping test below is then decided by the plain sweep)
                rel_plain = np.abs(fn - fnn) / np.maximum(1.0, np.abs(fnn))
                ok = act & ~(fnn - fn > guard * np.maximum(1.0, np.abs(fn))) & (rel_plain > tol)
                if ok.any():
                    bt = torch.as_tensor(beta, dtype=tdt, device=dev)[:, None, None]
                    Be = B_new + bt * (B_new - B)
                    We = W_new + bt * (W_new - W)
                    if project_weights is not None:
                        Wn = We.cpu().numpy().astype(np.float64)
                        Wn = np.stack([project_weights(w) for w in Wn])
                        We = torch.as_tensor(Wn, dtype=tdt, device=dev)
                    fe = objective(Be, We).cpu().numpy().astype(np.float64)
                    take = np.zeros(S, dtype=bool)
                    for s in np.flatnonzero(ok):
                        take[s], beta[s] = extrapolation_rule(fe[s], fnn[s], beta[s])
                    t_t = torch.as_tensor(take, device=dev)
                    B_new = torch.where(t_t[:, None, None], Be, B_new)
                    W_new = torch.where(t_t[:, None, None], We, W_new)
                    fnn = np.where(take, fe, fnn)
            upd = np.zeros(S, dtype=bool)
            for s in np.flatnonzero(act):
                n_sweeps[s] = it
                if fnn[s] - fn[s] > guard * max(1.0, abs(fn[s])):
                    # a block failed to decrease F: keep the better point, stop, not converged
                    hist[s].append({"iter": it, "phase": phase, "objective": float(fn[s])})
                    act[s] = False
                    continue
                upd[s] = True
                best = min(fnn[s], fn[s])
                hist[s].append({"iter": it, "phase": phase, "objective": float(best)})
                rel = abs(fn[s] - fnn[s]) / max(1.0, abs(fnn[s]))
                fn[s] = best
                if rel <= tol:
                    conv[s] = True
                    act[s] = False
            u_t = torch.as_tensor(upd, device=dev)
            B = torch.where(u_t[:, None, None], B_new, B)
            W = torch.where(u_t[:, None, None], W_new, W)
            if rebalance is not None and act.any():
                B, W = _rebalance(torch, objective, rebalance, B, W, fn, act, hist)
            active = torch.as_tensor(act, device=dev)
            if not act.any():
                break
    return BatchedAltMin(B=B.cpu().numpy().astype(np.float64),
                         W=W.cpu().numpy().astype(np.float64), objective=fn, history=hist,
                         converged=conv, n_sweeps=n_sweeps)
