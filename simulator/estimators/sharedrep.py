r"""SharedRep-RLHF reward learning: a shared trait matrix ``B`` and per-group weights ``w_u``.

Objective (SharedRep-RLHF, arXiv 2509.03672, sec. 2.3 of our note; labelled **[reconstructed]**
because the exact constraint set of the paper could not be checked against the PDF):

.. math::

    \min_{B \in \mathbb{R}^{d\times k},\ w_u \in \mathcal{W}}
    F(B, W) = -\sum_{u=1}^{U} \sum_{i \in D_u} c_i \log\sigma\big(s_i \langle B w_u, x_i\rangle\big)
              + \frac{\lambda}{2}\big(\lVert B\rVert_F^2 + \lVert W\rVert_F^2\big),

with ``s_i = 2 y_i - 1``, optional weights ``c_i`` (EM responsibilities), ``theta_u = B w_u`` and
``W = [w_1 ... w_U]``. ``weights="simplex"``: :math:`\mathcal{W} = \Delta^{k-1}` (the paper's
model, sec. 1.2); ``weights="free"``: :math:`\mathcal{W} = \mathbb{R}^k` (the official code's head).

Scale convention for the simplex
--------------------------------
The planted populations use ``w_u = signal * Dirichlet``; the estimator keeps ``w_u`` exactly on
the simplex and lets the columns of ``B`` carry any norm (so ``theta_u`` lies in the convex hull
of the columns of ``B``; the signal is absorbed by B). The learned factors in this form are
``B_raw_`` and ``W_raw_`` (columns of ``W_raw_`` on the simplex). The reported ``B_`` is the
orthonormalised basis ``B_raw_ = B_ R`` (thin QR, ``diag(R) >= 0``) and ``W_ = R W_raw_``, so
``theta_ = (B_ W_)^T = (B_raw_ W_raw_)^T`` is unchanged.

Solvers
-------
``solver="altmin"`` (alternating exact minimisation; every block is convex):

* given B, each ``w_u`` solves a k-dimensional BT problem on features ``X_u B``: free weights by
  :func:`~simulator.estimators.bt.fit_bt` (Newton), simplex weights by projected (proximal)
  Newton: the Newton model is minimised over the simplex (accelerated projected gradient on the
  k-dimensional quadratic), followed by an Armijo line search along the feasible direction;
* given W, ``vec(B)`` (column-major) solves a (d k)-dimensional BT problem on features
  ``kron(w_{g_i}, x_i)`` by :func:`fit_bt`;
* initialisation: restart 0 is spectral (method of moments): with ``m_u^{(1)}, m_u^{(2)}`` the
  averages of ``s_i x_i`` over two halves of group u's data (``E[s x] ∝ Sigma theta_u`` for
  Gaussian X, Stein's lemma), ``B0`` = top-k eigenvectors of
  ``sum_u n_u sym(m_u^{(1)} m_u^{(2)T})`` (split halves remove the noise bias; Niu et al. 2024);
  other restarts draw a Haar-random ``B0``. For simplex weights the free problem is solved first
  and its weights are mapped onto the simplex by vertex hunting (successive projection
  algorithm: k extreme groups become the vertices), then the simplex problem is solved from there.
* stop when the relative change of ``F`` over one sweep is ``<= tol``; the best of the restarts
  (lowest ``F``) is kept. Every sweep cannot increase ``F`` (each block is solved exactly from a
  warm start); ``history_`` records it.

``solver="joint"`` mirrors the official head (marcellobullo/sharedrep-rlhf
``src/models/sr_gpt2/sr_gpt2_modeling.py``): ``Linear(d -> k, bias)`` then ``Linear(k -> U, no
bias)``, init ``N(0, 0.02)``, zero bias, trained jointly by AdamW with linear LR decay (the HF
Trainer default) on ``-mean log sigma(s (r(x1) - r(x0)))``, each pair scored by its own group's
head. With ``use_tanh=True`` the loss uses ``tanh(r(x1)) - tanh(r(x0))`` as in
``SharedRepRMTrainer``; since we only observe feature differences we take ``phi(x, y1) = X / 2``
and ``phi(x, y0) = -X / 2`` (the bias cancels without tanh). Simplex weights are kept by projecting
each row of the second layer onto the simplex after every step (the official code has free
weights). torch on CPU, float64, seeded from ``seed``.

Back-ends (altmin only): ``backend="numba"`` (default) and ``"numpy"`` solve every block with
:func:`~simulator.estimators.bt.fit_bt`; ``backend="torch"`` runs the same sweeps with the batched
torch kernel :func:`simulator.kernels.torch_sharedrep.altmin_batched` on ``device`` (the B-step
uses the Kronecker structure of its Hessian instead of forming the (n, d k) design; results agree
with numba to ~1e-9 relative in float64). :func:`simulator.estimators.batched.fit_many` fits many
data sets in one batched call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..seeding import as_seed_sequence
from .base import PreferenceEstimator, check_data
from .bt import bt_objective, fit_bt

__all__ = ["SharedRep", "project_simplex", "sharedrep_objective"]

WEIGHTS = ("simplex", "free")
SOLVERS = ("altmin", "joint")
BACKENDS = ("numba", "numpy", "torch")


# --------------------------------------------------------------------------- simplex helpers
def project_simplex(v) -> np.ndarray:
    """Euclidean projection of ``v`` (k,) or each row of ``v`` (m, k) onto the simplex."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1:
        return _proj_simplex(v.copy())
    return np.stack([_proj_simplex(r.copy()) for r in v])


@njit(cache=True)
def _proj_simplex(v):
    k = v.size
    u = np.sort(v)[::-1]
    css = 0.0
    theta = 0.0
    for j in range(k):
        css += u[j]
        t = (css - 1.0) / (j + 1)
        if u[j] - t > 0:
            theta = t
    out = np.empty(k)
    for j in range(k):
        out[j] = max(v[j] - theta, 0.0)
    return out


@njit(cache=True)
def _simplex_qp(g, H, w, max_iter, tol):
    """argmin_{v in simplex} g.(v - w) + 1/2 (v - w)^T H (v - w), by FISTA."""
    k = w.size
    L = 0.0
    for i in range(k):  # Gershgorin bound on the largest eigenvalue
        s = 0.0
        for j in range(k):
            s += abs(H[i, j])
        L = max(L, s)
    if L <= 0.0:
        L = 1.0
    v = w.copy()
    z = w.copy()
    t = 1.0
    for _ in range(max_iter):
        grad = g + H @ (z - w)
        v_new = _proj_simplex(z - grad / L)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        z = v_new + ((t - 1.0) / t_new) * (v_new - v)
        diff = 0.0
        for j in range(k):
            diff = max(diff, abs(v_new[j] - v[j]))
        v = v_new
        t = t_new
        if diff <= tol:
            break
    return v


def _fit_simplex(Z, y, sw, lam, w0, tol, max_iter):
    """Projected Newton for the k-dimensional BT problem with ``w`` on the simplex."""
    Z = np.ascontiguousarray(Z)
    scale = float(Z.shape[0] if sw is None else max(sw.sum(), 1e-300))
    w = project_simplex(w0)

    def full(v):
        f, g, H = bt_objective(v, Z, y, 0.0, sw)
        return f + 0.5 * lam * v @ v, g + lam * v, H + lam * np.eye(v.size)

    f, g, H = full(w)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is returned)
        v = _simplex_qp(g, H, w, 2000, 1e-14)
        d = v - w
        dec = -float(g @ d)
        if dec <= tol * scale or not np.isfinite(dec):
            converged = True
            break
        t = 1.0
        while True:
            wn = w + t * d
            tn = (2.0 * y - 1.0) * (Z @ wn)
            ln = np.logaddexp(0.0, -tn)
            fn = float(ln.sum() if sw is None else sw @ ln) + 0.5 * lam * wn @ wn
            if fn <= f - 1e-4 * t * dec + 1e-13 * abs(f):
                break
            t *= 0.5
            if t < 1e-12:
                break
        if t < 1e-12:
            converged = True  # no further decrease available at machine precision
            break
        w = project_simplex(wn)  # stays feasible; the projection only removes round-off
        f, g, H = full(w)
    return w, f, it, converged


# --------------------------------------------------------------------------- objective
def _margins(X, g, B, W):
    return np.einsum("ij,ij->i", X @ B, W.T[g])


def sharedrep_objective(X, y, group, B, W, lam=0.0, sample_weight=None) -> float:
    """Reference value of ``F(B, W)`` (module docstring)."""
    t = (2.0 * np.asarray(y, dtype=np.float64) - 1.0) * _margins(X, group, B, W)
    terms = np.logaddexp(0.0, -t)
    if sample_weight is not None:
        terms = terms * sample_weight
    return float(terms.sum() + 0.5 * lam * (np.sum(B * B) + np.sum(W * W)))


def _kron_features(X, g, W):
    """Rows ``kron(w_{g_i}, x_i)`` (n, k d): ``<B w, x> = <vec(B), kron(w, x)>``, vec column-major."""
    n, _d = X.shape
    Wg = W.T[g]  # (n, k)
    return (Wg[:, :, None] * X[:, None, :]).reshape(n, -1)


def _orthonormalise(B_raw, W_raw):
    Q, R = np.linalg.qr(B_raw)
    sgn = np.sign(np.diag(R))
    sgn[sgn == 0] = 1.0
    return Q * sgn, sgn[:, None] * R @ W_raw


def _spa(C, k):
    """Successive projection algorithm: indices of k extreme columns of C (k, U) (or fewer)."""
    R = C.copy()
    idx = []
    for _ in range(min(k, C.shape[1])):
        norms = np.linalg.norm(R, axis=0)
        if idx:
            norms[idx] = -1.0
        j = int(np.argmax(norms))
        if norms[j] <= 1e-12:
            break
        idx.append(j)
        u = R[:, j] / norms[j]
        R = R - np.outer(u, u @ R)
    return idx


def _group_index(g, U):
    order = np.argsort(g, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=U))])
    return [order[bounds[u]:bounds[u + 1]] for u in range(U)]


class SharedRep(PreferenceEstimator):
    """Shared trait matrix ``B`` (d×k) and per-group weights ``w_u``: ``theta_u = B w_u``.

    Parameters
    ----------
    k : int
        Number of shared traits, ``1 <= k <= d``.
    weights : {"simplex", "free"}
        Constraint on each ``w_u`` (see the module docstring for the simplex scale convention).
    solver : {"altmin", "joint"}
    lam : float, default 1e-3
        Ridge ``lambda/2 (||B||_F^2 + ||W||_F^2)`` on the summed objective (on free factors this
        equals a nuclear-norm penalty ``lambda ||B W||_*`` at the optimum).
    n_restarts : int, default 3
        Restart 0 is spectral (altmin) or the first random draw (joint); the best objective wins.
    max_iter : int, default 100
        altmin: maximum sweeps per restart (and per phase for simplex weights).
    tol : float, default 1e-7
        altmin: stop when the relative change of the objective over one sweep is ``<= tol``.
    seed : int or SeedSequence, default 0
    lr, n_epochs, batch_size, use_tanh, weight_decay :
        The ``joint`` solver's AdamW settings (ignored by altmin).
    backend : {"numba", "numpy", "torch"}, default "numba"
        altmin's block solver (module docstring); ignored by ``solver="joint"``.
    device : str, default "cpu"
        Torch device for ``backend="torch"``.

    Attributes
    ----------
    B_ : array (d, k), orthonormal columns
    W_ : array (k, U), with ``theta_ = (B_ W_)^T``
    B_raw_, W_raw_ : the factors as fitted (``W_raw_`` on the simplex for simplex weights)
    theta_ : array (U, d)
    objective_ : float
        ``F(B, W)`` of the kept restart.
    history_ : list of dict
        Per sweep / epoch of the kept restart: ``{"iter", "phase", "objective"}``.
    restart_objectives_ : array (n_restarts,)
    n_iter_ : int
    converged_ : bool
    """

    def __init__(self, k: int, weights: str = "simplex", solver: str = "altmin",
                 lam: float = 1e-3, n_restarts: int = 3, max_iter: int = 100, tol: float = 1e-7,
                 seed=0, lr: float = 5e-3, n_epochs: int = 50, batch_size: int = 256,
                 use_tanh: bool = False, weight_decay: float = 0.0, backend: str = "numba",
                 device: str = "cpu"):
        self.k = k
        self.weights = weights
        self.solver = solver
        self.lam = lam
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.lr = lr
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.use_tanh = use_tanh
        self.weight_decay = weight_decay
        self.backend = backend
        self.device = device

    # ------------------------------------------------------------------ validation
    def _validate(self, d):
        if not isinstance(self.k, (int, np.integer)) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1; got {self.k!r}")
        if self.k > d:
            raise ValueError(f"k must be <= d = {d}; got k = {self.k}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}; got {self.weights!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}; got {self.solver!r}")
        if not (np.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0; got {self.lam}")
        if int(self.n_restarts) < 1:
            raise ValueError(f"n_restarts must be >= 1; got {self.n_restarts}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1; got {self.max_iter}")
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0; got {self.tol}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}")
        if self.device != "cpu" and self.backend != "torch":
            raise ValueError(f"device {self.device!r} needs backend='torch'")
        if self.solver == "joint":
            if not self.lr > 0:
                raise ValueError(f"lr must be > 0; got {self.lr}")
            if int(self.n_epochs) < 1:
                raise ValueError(f"n_epochs must be >= 1; got {self.n_epochs}")
            if int(self.batch_size) < 1:
                raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")

    # ------------------------------------------------------------------ public fit
    def fit(self, data, sample_weight=None):
        """Fit on a :class:`~simulator.data.PreferenceData`; every group needs comparisons."""
        data = check_data(data)
        self._validate(data.d)
        counts = data.group_counts()
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(f"SharedRep needs data for every group; group(s) {empty.tolist()} "
                             f"have no comparisons (n_groups = {data.n_groups})")
        sw = None
        if sample_weight is not None:
            sw = np.ascontiguousarray(sample_weight, dtype=np.float64)
            if sw.shape != (data.n,) or not np.all(np.isfinite(sw)) or np.any(sw < 0):
                raise ValueError(f"sample_weight must be finite, >= 0, of shape ({data.n},)")
        return self._fit_arrays(data.X, data.y, data.group, sw, data.n_groups)

    def _fit_arrays(self, X, y, g, sw, U, warm=None):
        """Fit on arrays; ``warm = (B_raw, W_raw)`` runs one altmin from there (EM M-step)."""
        self._validate(X.shape[1])
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.int8)
        g = np.asarray(g, dtype=np.int64)
        if self.solver == "joint":
            B, W, obj, hist, conv, objs = self._joint(X, y, g, sw, U)
        elif self.backend == "torch":
            if warm is not None:
                lay = self._layout([(X, y, g, sw)], U)
                B, W, obj, hist, conv = self._altmin_torch(
                    lay, [warm[0]], [warm[1]], self.weights == "simplex", "warm", skip_w=True)[0]
                objs = np.array([obj])
            else:
                B, W, obj, hist, conv, objs = _altmin_restarts_torch([self], [(X, y, g, sw)], U)[0]
        elif warm is not None:
            idx = _group_index(g, U)
            B, W, obj, hist, conv = self._altmin(X, y, g, sw, U, idx, warm[0].copy(),
                                                 warm[1].copy(), self.weights == "simplex",
                                                 "warm", skip_w=True)
            objs = np.array([obj])
        else:
            B, W, obj, hist, conv, objs = self._altmin_restarts(X, y, g, sw, U)
        return self._set_result(B, W, obj, hist, conv, objs)

    def _set_result(self, B, W, obj, hist, conv, objs):
        self.B_raw_, self.W_raw_ = B, W
        self.B_, self.W_ = _orthonormalise(B, W)
        self.theta_ = (B @ W).T.copy()
        self.objective_ = float(obj)
        self.history_ = hist
        self.restart_objectives_ = np.asarray(objs, dtype=np.float64)
        self.n_iter_ = len(hist)
        self.converged_ = bool(conv)
        return self

    # ------------------------------------------------------------------ altmin
    def _spectral_init(self, X, y, idx, rng):
        n, d, k = X.shape[0], X.shape[1], int(self.k)
        # Signed means of the two halves of every group's rows, as one (2U x n) @ (n x d) product
        # (no copy of X): half 2u holds rows[:h] of group u, half 2u + 1 the rest.
        U = len(idx)
        A = np.zeros((2 * U, n))
        sgn = 2.0 * y - 1.0
        for u, rows in enumerate(idx):
            if rows.size >= 2:
                h = rows.size // 2
                A[2 * u, rows[:h]] = sgn[rows[:h]] / h
                A[2 * u + 1, rows[h:]] = sgn[rows[h:]] / (rows.size - h)
        means = A @ X
        M = np.zeros((d, d))
        for u, rows in enumerate(idx):
            if rows.size < 2:
                continue
            m1, m2 = means[2 * u], means[2 * u + 1]
            M += rows.size * 0.5 * (np.outer(m1, m2) + np.outer(m2, m1))
        evals, evecs = np.linalg.eigh(M)
        B0 = evecs[:, np.argsort(-evals)[:k]]
        # Directions with no signal (U < k, or zero eigenvalues) are random.
        weak = np.sort(-evals)[:k] > -1e-12 * max(1.0, abs(evals).max())
        if weak.any():
            R = rng.standard_normal((d, int(weak.sum())))
            R -= B0[:, ~weak] @ (B0[:, ~weak].T @ R)
            B0[:, weak] = np.linalg.qr(R)[0]
        return B0

    def _w_step(self, X, y, sw, idx, B, W, simplex):
        Z = X @ B
        W = W.copy()
        for u, rows in enumerate(idx):
            if rows.size == 0:
                continue
            wu = None if sw is None else sw[rows]
            if simplex:
                W[:, u] = _fit_simplex(Z[rows], y[rows], wu, self.lam, W[:, u], 1e-10, 100)[0]
            else:
                W[:, u] = fit_bt(Z[rows], y[rows], lam=max(self.lam, 1e-12), sample_weight=wu,
                                 theta_init=W[:, u], tol=1e-10, backend=self.backend).theta
        return W

    def _b_step(self, X, y, g, sw, B, W):
        d, k = B.shape
        F = _kron_features(X, g, W)
        res = fit_bt(F, y, lam=max(self.lam, 1e-12), sample_weight=sw,
                     theta_init=B.T.ravel(), tol=1e-10, backend=self.backend)
        return res.theta.reshape(k, d).T.copy()

    def _altmin(self, X, y, g, sw, U, idx, B, W, simplex, phase, skip_w=False):
        lam = self.lam
        if not skip_w:
            W = self._w_step(X, y, sw, idx, B, W, simplex)
        f = sharedrep_objective(X, y, g, B, W, lam, sw)
        hist = [{"iter": 0, "phase": phase, "objective": f}]
        converged = False
        for it in range(1, int(self.max_iter) + 1):
            B_new = self._b_step(X, y, g, sw, B, W)
            W_new = self._w_step(X, y, sw, idx, B_new, W, simplex)
            f_new = sharedrep_objective(X, y, g, B_new, W_new, lam, sw)
            if f_new - f > 1e-9 * max(1.0, abs(f)):
                # A sub-solver failed to decrease F (should not happen: each block is convex and
                # warm-started). Keep the better point and stop, reported as not converged.
                hist.append({"iter": it, "phase": phase, "objective": f})
                break
            B, W = B_new, W_new
            hist.append({"iter": it, "phase": phase, "objective": min(f_new, f)})
            rel = abs(f - f_new) / max(1.0, abs(f_new))
            f = min(f_new, f)
            if rel <= self.tol:
                converged = True
                break
        return B, W, f, hist, converged

    def _to_simplex(self, B, W, rng):
        """Map free factors onto simplex weights by vertex hunting (SPA)."""
        k, _U = W.shape
        vid = _spa(W, k)
        V = W[:, vid]
        if V.shape[1] < k:  # fewer extreme groups than traits: complete the basis at random
            extra = rng.standard_normal((k, k - V.shape[1]))
            if V.shape[1]:
                extra -= V @ np.linalg.lstsq(V, extra, rcond=None)[0]
            V = np.hstack([V, extra])
        A = np.linalg.lstsq(V, W, rcond=None)[0]
        A = project_simplex(A.T).T
        return B @ V, A

    def _altmin_restarts(self, X, y, g, sw, U):
        d, k = X.shape[1], int(self.k)
        idx = _group_index(g, U)
        simplex = self.weights == "simplex"
        rngs = [np.random.Generator(np.random.PCG64(s))
                for s in as_seed_sequence(self.seed).spawn(int(self.n_restarts))]
        best = None
        objs = []
        for r, rng in enumerate(rngs):
            if r == 0:
                B0 = self._spectral_init(X, y, idx, rng)
            else:
                B0 = np.linalg.qr(rng.standard_normal((d, k)))[0]
            W0 = np.zeros((k, U))
            B, W, f, hist, conv = self._altmin(X, y, g, sw, U, idx, B0, W0, False, "free")
            if simplex:
                B, W = self._to_simplex(B, W, rng)
                B, W, f, h2, conv = self._altmin(X, y, g, sw, U, idx, B, W, True, "simplex",
                                                 skip_w=True)
                hist = hist + h2
            objs.append(f)
            if best is None or f < best[2]:
                best = (B, W, f, hist, conv)
        return (*best, np.array(objs))

    # ------------------------------------------------------------------ altmin (torch)
    @staticmethod
    def _layout(problems, U):
        from ..kernels.torch_sharedrep import group_layout

        return group_layout(problems, U)[:4]

    def _altmin_torch(self, layout, B0s, W0s, simplex, phase, skip_w=False):
        """One altmin phase for each problem of ``layout`` at once (the torch kernel)."""
        from ..kernels.torch_sharedrep import altmin_batched

        solver = None
        if simplex:
            lam = self.lam
            solver = lambda Z, y, c, w0: _fit_simplex(Z, y, c, lam, w0, 1e-10, 100)[0]
        res = altmin_batched(*layout, np.stack(B0s), np.stack(W0s), lam=self.lam,
                             max_iter=int(self.max_iter), tol=self.tol, skip_w=skip_w,
                             phase=phase, simplex_solver=solver, device=self.device)
        return [(res.B[s], res.W[s], float(res.objective[s]), res.history[s],
                 bool(res.converged[s])) for s in range(res.B.shape[0])]

    # ------------------------------------------------------------------ joint (torch)
    def _joint(self, X, y, g, sw, U):
        import torch

        n, d = X.shape
        k = int(self.k)
        simplex = self.weights == "simplex"
        Xt = torch.as_tensor(X, dtype=torch.float64)
        st = torch.as_tensor(2.0 * y - 1.0, dtype=torch.float64)
        gt = torch.as_tensor(g, dtype=torch.long)
        cw = torch.ones(n, dtype=torch.float64) if sw is None else torch.as_tensor(
            sw, dtype=torch.float64)
        seeds = as_seed_sequence(self.seed).spawn(int(self.n_restarts))
        best = None
        objs = []
        bs = min(int(self.batch_size), n)
        steps_per_epoch = (n + bs - 1) // bs
        total = steps_per_epoch * int(self.n_epochs)
        for ss in seeds:
            gen = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
            lin1 = torch.nn.Linear(d, k, bias=True, dtype=torch.float64)
            lin2 = torch.nn.Linear(k, U, bias=False, dtype=torch.float64)
            with torch.no_grad():
                lin1.weight.normal_(0.0, 0.02, generator=gen)
                lin1.bias.zero_()
                lin2.weight.normal_(0.0, 0.02, generator=gen)
                if simplex:
                    lin2.weight.copy_(_torch_proj_simplex(lin2.weight))
            params = list(lin1.parameters()) + list(lin2.parameters())
            opt = torch.optim.AdamW(params, lr=float(self.lr), weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda step: max(0.0, 1.0 - step / max(total, 1)))

            def margin(rows, lin1=lin1, lin2=lin2):
                xb, gb = Xt[rows], gt[rows]
                if self.use_tanh:
                    r1 = lin2(lin1(0.5 * xb)).gather(1, gb[:, None])[:, 0]
                    r0 = lin2(lin1(-0.5 * xb)).gather(1, gb[:, None])[:, 0]
                    return torch.tanh(r1) - torch.tanh(r0)
                return (xb @ lin1.weight.T @ lin2.weight.T).gather(1, gb[:, None])[:, 0]

            hist = []
            for epoch in range(int(self.n_epochs)):
                perm = torch.randperm(n, generator=gen)
                tot = 0.0
                for s0 in range(0, n, bs):
                    rows = perm[s0:s0 + bs]
                    c = cw[rows]
                    loss = -(c * torch.nn.functional.logsigmoid(st[rows] * margin(rows))).sum() \
                        / torch.clamp(c.sum(), min=1e-300)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    if simplex:
                        with torch.no_grad():
                            lin2.weight.copy_(_torch_proj_simplex(lin2.weight))
                    tot += float(loss.detach()) * rows.numel()
                hist.append({"iter": epoch + 1, "phase": "joint", "objective": tot / n})
            with torch.no_grad():
                B = lin1.weight.T.numpy().copy()
                W = lin2.weight.T.numpy().copy()
            f = sharedrep_objective(X, y, g, B, W, self.lam, sw)
            objs.append(f)
            conv = len(hist) < 2 or abs(hist[-1]["objective"] - hist[-2]["objective"]) <= \
                1e-3 * max(1e-12, abs(hist[-2]["objective"]))
            if best is None or f < best[2]:
                best = (B, W, f, hist, conv)
        return (*best, np.array(objs))


def _altmin_restarts_torch(ests, problems, U):
    """:meth:`SharedRep._altmin_restarts` for several data sets at once (torch kernel).

    ``ests[j]`` (same hyperparameters, own ``seed``) fits ``problems[j] = (X, y, g, sw)``; every
    data set has the same ``U`` and ``d``. Restart r of all data sets runs in one batched call;
    each data set draws its starting points from its own estimator's seed exactly as the numba
    path does, so both back-ends start from the same points.
    """
    e0 = ests[0]
    d, k, R = problems[0][0].shape[1], int(e0.k), int(e0.n_restarts)
    simplex = e0.weights == "simplex"
    layout = e0._layout(problems, U)
    idxs = [_group_index(p[2], U) for p in problems]
    rngs = [[np.random.Generator(np.random.PCG64(s)) for s in as_seed_sequence(e.seed).spawn(R)]
            for e in ests]
    best = [None] * len(problems)
    objs = [[] for _ in problems]
    for r in range(R):
        B0s = []
        for j, p in enumerate(problems):
            rng = rngs[j][r]
            B0s.append(e0._spectral_init(p[0], p[1], idxs[j], rng) if r == 0
                       else np.linalg.qr(rng.standard_normal((d, k)))[0])
        out = e0._altmin_torch(layout, B0s, [np.zeros((k, U))] * len(problems), False, "free")
        if simplex:
            mapped = [ests[j]._to_simplex(o[0], o[1], rngs[j][r]) for j, o in enumerate(out)]
            out2 = e0._altmin_torch(layout, [m[0] for m in mapped], [m[1] for m in mapped],
                                    True, "simplex", skip_w=True)
            out = [(B, W, f, out[j][3] + h2, conv) for j, (B, W, f, h2, conv) in enumerate(out2)]
        for j, o in enumerate(out):
            objs[j].append(o[2])
            if best[j] is None or o[2] < best[j][2]:
                best[j] = o
    return [(*best[j], np.array(objs[j])) for j in range(len(problems))]


def _torch_proj_simplex(V):
    """Project each row of V (U, k) onto the simplex (torch)."""
    import torch

    k = V.shape[1]
    u, _ = torch.sort(V, dim=1, descending=True)
    css = torch.cumsum(u, dim=1) - 1.0
    ind = torch.arange(1, k + 1, dtype=V.dtype)
    cond = u - css / ind > 0
    rho = (cond.sum(dim=1) - 1).clamp(min=0)  # cond holds on a prefix of the sorted row
    theta = css.gather(1, rho[:, None]) / (rho[:, None] + 1).to(V.dtype)
    return torch.clamp(V - theta, min=0.0)

