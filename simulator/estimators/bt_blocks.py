r"""Many small BT problems at once: the per-unit blocks of SharedRep, SharedLoRA and OracleB.

For units ``u = 0..N-1`` (groups, users or new users), each with its rows ``i in D_u``, features
``z_i`` (k), an optional fixed offset ``o_i`` and weight ``c_i``, solve independently

.. math::

    \hat w_u = \arg\min_{w \in \mathcal{W}}\
        \sum_{i \in D_u} c_i\,\mathrm{softplus}\big(-s_i (z_i^\top w + o_i)\big)
        + \frac{\lambda}{2}\lVert w\rVert^2 ,
    \qquad \mathcal{W} = \mathbb{R}^k \ \text{or the simplex}\ \Delta^{k-1},

which is the objective of :func:`simulator.estimators.bt.bt_objective` per unit (plus the
offset). This is the W-step of SharedRep (``z_i = B^T x_i``), the personal step of SharedLoRA
(offset ``x_i^T theta_0``), OracleB's fit on the true B and every few-shot ``fit_new_users``.

One iteration serves all units together, in O(n k^2) vectorised numpy (per-unit sums by
``bincount``), so 10,000 users cost about what one problem of the same total size costs:

* free weights: Newton's method with the unit's exact Hessian, eigen-decomposed (k is small), so
  a singular or numerically indefinite Hessian becomes a Levenberg step (eigenvalues floored at
  ``1e-12`` of the largest) instead of a failure;
* simplex weights: projected Newton — the Newton model minimised over the simplex by accelerated
  projected gradient (FISTA, step ``1 / lambda_max``; compiled unit by unit in
  :mod:`simulator.kernels.simplex_numba`, with :func:`fista_simplex_numpy` its reference), the
  exact step on the face FISTA found, then an Armijo search along the feasible direction;
* a per-unit Armijo backtracking line search; a unit stops when its certificate is met.

Certificate per unit: free, ``||g_u|| <= tol * n_u``; simplex, the projected-gradient residual
``||w - P(w - g_u / n_u)|| <= tol`` (the KKT conditions of the simplex problem at scale 1 / n_u;
``n_u`` is the unit's total weight, at least 1). Units without rows get ``w = 0`` (free) or the
simplex centre's minimiser of the ridge alone (the centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bt import check_sample_weight

__all__ = ["BlocksFit", "fista_simplex_numpy", "fit_bt_blocks", "project_simplex_rows"]

CONSTRAINTS = (None, "simplex")
_QP_ITER = 200
_QP_TOL = 1e-12  # per-unit FISTA stop: the largest change of an iterate's coordinates


@dataclass
class BlocksFit:
    """Result of :func:`fit_bt_blocks`: ``W`` (N, k) and a certificate per unit."""

    W: np.ndarray
    objective: np.ndarray  # (N,)
    kkt_residual: np.ndarray  # (N,), on the scale of the stopping test (see module docstring)
    n_iter: np.ndarray  # (N,)
    converged: np.ndarray  # (N,) bool

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))


def project_simplex_rows(V) -> np.ndarray:
    """Euclidean projection of each row of ``V`` (m, k) onto the probability simplex
    (sort-based; Held, Wolfe & Crowder 1974; Duchi et al. 2008)."""
    V = np.asarray(V, dtype=np.float64)
    m, k = V.shape
    U = -np.sort(-V, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    idx = np.arange(1, k + 1)
    cond = U - css / idx > 0
    rho = k - 1 - np.argmax(cond[:, ::-1], axis=1)
    tau = css[np.arange(m), rho] / (rho + 1)
    return np.maximum(V - tau[:, None], 0.0)


class _Units:
    """Per-unit sums of row quantities (``bincount``; empty units give zeros)."""

    def __init__(self, unit, N, Z, s, offset, c):
        self.unit, self.N, self.Z, self.s = unit, N, Z, s
        self.offset, self.c = offset, c
        self.k = Z.shape[1]
        self.size = np.maximum(np.bincount(unit, weights=c, minlength=N), 1.0)

    def sum(self, v):
        return np.bincount(self.unit, weights=v, minlength=self.N)

    def margins(self, W):
        t = np.einsum("ij,ij->i", self.Z, W[self.unit])
        return t if self.offset is None else t + self.offset

    def objective(self, W, lam):
        t = self.s * self.margins(W)
        return self.sum(self.c * np.logaddexp(0.0, -t)) + 0.5 * lam * np.einsum("uj,uj->u", W, W)

    def derivatives(self, W, lam):
        st = self.s * self.margins(W)
        p = 0.5 * (1.0 + np.tanh(0.5 * st))  # sigma(s t), overflow-free
        r = -self.c * self.s * (1.0 - p)
        h = self.c * p * (1.0 - p)
        k = self.k
        g = np.stack([self.sum(r * self.Z[:, j]) for j in range(k)], axis=1) + lam * W
        H = np.empty((self.N, k, k))
        for a in range(k):
            hz = h * self.Z[:, a]
            for b in range(a, k):
                H[:, a, b] = H[:, b, a] = self.sum(hz * self.Z[:, b])
        H += lam * np.eye(k)
        return g, H


def _newton_free(g, H):
    """Per-unit ``-H^{-1} g`` through eigen-decomposition; eigenvalues below 1e-12 of the
    largest are floored there (a Levenberg step in singular directions). ``g=None``: only the
    largest floored eigenvalue (the simplex path's step size; its free step is not needed, and
    at a zero Hessian it would overflow to no purpose)."""
    ev, V = np.linalg.eigh(H)
    floor = 1e-12 * np.maximum(ev[:, -1:], 1e-300)
    ev = np.maximum(ev, floor)
    if g is None:
        return None, ev[:, -1]
    return -np.einsum("uij,uj->ui", V, np.einsum("uji,uj->ui", V, g) / ev), ev[:, -1]


def fista_simplex_numpy(W, g, H, L, max_iter: int = _QP_ITER, tol: float = _QP_TOL):
    """Per unit, FISTA (step ``1 / L``) on the Newton model ``g^T (v - w) + 1/2 (v - w)^T H
    (v - w)`` over the simplex from ``v = w``, vectorised over the units still moving (a unit
    stops when no coordinate moved by more than ``tol``). The plain-numpy reference of
    :func:`simulator.kernels.simplex_numba.fista_simplex`."""
    L = np.asarray(L)[:, None]
    v = W.copy()
    z = W.copy()
    t = np.ones(W.shape[0])
    live = np.arange(W.shape[0])  # units whose FISTA iterate still moves
    for _ in range(int(max_iter)):
        if live.size == 0:
            break
        grad = g[live] + np.einsum("uij,uj->ui", H[live], z[live] - W[live])
        v_new = project_simplex_rows(z[live] - grad / L[live])
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t[live] ** 2))
        z[live] = v_new + ((t[live] - 1.0) / t_new)[:, None] * (v_new - v[live])
        done = np.max(np.abs(v_new - v[live]), axis=1) <= tol
        v[live], t[live] = v_new, t_new
        live = live[~done]
    return v


def _newton_simplex(W, g, H, lmax, size):
    """Per unit, argmin over the simplex of ``g^T (v - w) + 1/2 (v - w)^T H (v - w)``;
    returns the direction ``v - w`` (feasible for steps in [0, 1])."""
    from ..kernels.simplex_numba import fista_simplex

    L = np.maximum(lmax, 1e-300)
    # FISTA only has to find the face; the exact step on it comes from _refine_on_face.
    v = fista_simplex(np.ascontiguousarray(W), np.ascontiguousarray(g),
                      np.ascontiguousarray(H), L, _QP_ITER, _QP_TOL)
    # The face: FISTA's support, plus the coordinates a projected-gradient step would activate
    # (a near-degenerate optimum may carry a weight of 1e-9 that FISTA leaves at 0).
    face = (v > 1e-14) | (project_simplex_rows(W - g / size[:, None]) > 1e-14)
    return _refine_on_face(W, g, H, v, face) - W


def _refine_on_face(W, g, H, v, S):
    """Exact minimiser of the Newton model on the face ``S`` of the simplex: the equality-constrained QP ``min g^T d + 1/2 d^T H d``
    with ``sum d = 0`` and ``d_j = -w_j`` off the support, by its KKT system. Used where the
    result is feasible, so the final iterations are exact Newton steps on the active face
    (quadratic convergence) rather than FISTA-accurate ones."""
    m, k = W.shape
    K = np.zeros((m, k + 1, k + 1))
    rhs = np.zeros((m, k + 1))
    eye = np.eye(k)
    Hs = np.where(S[:, :, None] & S[:, None, :], H, 0.0)
    K[:, :k, :k] = Hs + np.where(S[:, :, None], 0.0, eye[None])
    K[:, :k, k] = S
    K[:, k, :k] = 1.0
    d_off = np.where(S, 0.0, -W)
    rhs[:, :k] = np.where(S, -g - np.einsum("uij,uj->ui", np.where(S[:, :, None], H, 0.0),
                                            d_off), d_off)
    rhs[:, k] = -d_off.sum(axis=1)
    try:
        sol = np.linalg.solve(K, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return v
    v_face = W + sol[:, :k]
    ok = np.all(np.isfinite(v_face), axis=1) & (v_face.min(axis=1) >= -1e-13)
    v_face = np.maximum(v_face, 0.0)
    v_face /= v_face.sum(axis=1, keepdims=True)
    return np.where(ok[:, None], v_face, v)


def _kkt(W, g, size, simplex):
    if simplex:
        return np.linalg.norm(W - project_simplex_rows(W - g / size[:, None]), axis=1)
    return np.linalg.norm(g, axis=1) / size


def fit_bt_blocks(Z, y, unit, N, *, lam: float, offset=None, sample_weight=None, W0=None,
                  constraint: str | None = None, tol: float = 1e-9,
                  max_iter: int = 100) -> BlocksFit:
    """Solve the N per-unit BT problems of the module docstring.

    Parameters
    ----------
    Z : array (n, k)
        Per-row features of the unit's parameters (e.g. ``X B``).
    y : array (n,), labels in {0, 1}
    unit : array (n,) of int in [0, N)
    N : int
        Number of units (units without rows are allowed).
    lam : float
        Ridge ``>= 0`` on each ``w_u`` (a unit with too few rows and ``lam = 0`` gets a
        Levenberg step in its flat directions).
    offset : array (n,), optional
        Fixed margin added to ``z_i^T w`` (SharedLoRA's ``x_i^T theta_0``).
    sample_weight : array (n,), optional
        Non-negative row weights (EM responsibilities).
    W0 : array (N, k), optional
        Start (projected onto the simplex for ``constraint="simplex"``); default 0 / the centre.
    constraint : {None, "simplex"}
    tol : float
        Certificate threshold (module docstring).
    max_iter : int

    Returns
    -------
    BlocksFit
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array (n, k); got shape {Z.shape}")
    n, k = Z.shape
    if not isinstance(N, (int, np.integer)) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be an integer >= 1; got {N!r}")
    unit = np.asarray(unit)
    if unit.shape != (n,) or (n and (unit.min() < 0 or unit.max() >= N)):
        raise ValueError(f"unit must be an integer array of shape ({n},) with values in [0, {N})")
    unit = unit.astype(np.int64)
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    if s.shape != (n,):
        raise ValueError(f"y must have shape ({n},); got {s.shape}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam}")
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}; got {constraint!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    c = check_sample_weight(sample_weight, n)
    c = np.ones(n) if c is None else c
    if offset is not None:
        offset = np.asarray(offset, dtype=np.float64)
        if offset.shape != (n,) or not np.all(np.isfinite(offset)):
            raise ValueError(f"offset must be a finite array of shape ({n},)")
    simplex = constraint == "simplex"
    if W0 is None:
        W = np.full((N, k), 1.0 / k) if simplex else np.zeros((N, k))
    else:
        W = np.array(W0, dtype=np.float64)
        if W.shape != (N, k) or not np.all(np.isfinite(W)):
            raise ValueError(f"W0 must be a finite array of shape ({N}, {k})")
        if simplex:
            W = project_simplex_rows(W)
    units = _Units(unit, N, Z, s, offset, c)
    f = units.objective(W, lam)
    g, H = units.derivatives(W, lam)
    kkt = _kkt(W, g, units.size, simplex)
    active = kkt > tol
    n_iter = np.zeros(N, dtype=np.int64)
    roundoff = np.zeros(N, dtype=bool)
    for _ in range(int(max_iter)):
        if not active.any():
            break
        a = np.flatnonzero(active)
        if simplex:
            _, lmax = _newton_free(None, H[a])
            step = _newton_simplex(W[a], g[a], H[a], lmax, units.size[a])
        else:
            step, _ = _newton_free(g[a], H[a])
        if simplex:
            # Simplex directions sum to zero, so only the centred gradient enters the slope;
            # with g itself, the common component times the round-off of sum(step) (~1e-16)
            # swamps the true slope near the optimum (seen: +3e-17 for a true -3e-17).
            # The constant that matters is the gradient's mean over the face the step moves on.
            face = (W[a] + step > 0) | (W[a] > 0)
            c = np.sum(np.where(face, g[a], 0.0), axis=1) / np.maximum(face.sum(axis=1), 1)
            slope = np.einsum("uj,uj->u", g[a] - c[:, None], step)
        else:
            slope = np.einsum("uj,uj->u", g[a], step)
        # A unit whose model predicts no decrease is at its optimum to round-off.
        stuck = ~(slope < 0)
        t = np.ones(a.size)
        accepted = stuck.copy()
        W_try = W.copy()
        for _ls in range(50):
            todo = ~accepted
            if not todo.any():
                break
            W_try[a[todo]] = W[a[todo]] + t[todo, None] * step[todo]
            f_try = units.objective(W_try, lam)[a]
            ok = todo & (f_try <= f[a] + 1e-4 * t * slope + 1e-13 * np.abs(f[a]))
            accepted |= ok
            t = np.where(todo & ~ok, 0.5 * t, t)
        moved = a[accepted & ~stuck]
        W[moved] = W_try[moved]
        n_iter[a] += 1
        f = units.objective(W, lam)
        g, H = units.derivatives(W, lam)
        kkt = _kkt(W, g, units.size, simplex)
        # A unit stops when certified, or when it cannot move any more (no accepted step, or a
        # step below the resolution of w): its residual then reports how close it got.
        small = np.linalg.norm(t[:, None] * step, axis=1) <= 1e-13 * np.linalg.norm(W[a], axis=1)
        tiny = np.zeros(N, dtype=bool)
        tiny[a] = ~accepted | stuck | small
        if not simplex:
            # The exact Newton step fell below the resolution of w: no float64 point is closer
            # to the optimum (huge features, whose gradient round-off exceeds tol): certified,
            # as in the dense solver's "roundoff" status.
            roundoff[a] |= accepted & ~stuck & small
        active &= (kkt > tol) & ~tiny
    conv = (kkt <= tol) | roundoff
    return BlocksFit(W=W, objective=f, kkt_residual=kkt, n_iter=n_iter, converged=conv)
