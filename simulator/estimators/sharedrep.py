r"""SharedRep-RLHF reward learning: a shared trait matrix ``B`` and per-group weights ``w_u``.

Objective (SharedRep-RLHF, arXiv 2509.03672, sec. 2.3 of our note; labelled **[reconstructed]**
because the exact constraint set of the paper could not be checked against the PDF):

.. math::

    \min_{B \in \mathbb{R}^{d\times k},\ w_u \in \mathcal{W}}
    F(B, W) = -\sum_{u=1}^{U} \sum_{i \in D_u} c_i \log\sigma\big(s_i \langle B w_u, x_i\rangle\big)
              + \frac{\lambda_B}{2}\lVert B\rVert_F^2 + \frac{\lambda}{2}\lVert W\rVert_F^2,

with ``lambda_B = lambda`` unless ``vertex_lam`` is given (``"auto"``: ``VERTEX_PER_UNIT * U``),
``s_i = 2 y_i - 1``, optional weights ``c_i`` (EM responsibilities), ``theta_u = B w_u`` and
``W = [w_1 ... w_U]``.
``weights="simplex"``: :math:`\mathcal{W} = \Delta^{k-1}` (the paper's model, sec. 1.2);
``weights="free"``: :math:`\mathcal{W} = \mathbb{R}^k` (the official code's head).

Scale convention for the simplex
--------------------------------
The planted populations use ``w_u = signal * Dirichlet``; the estimator keeps ``w_u`` exactly on
the simplex and lets the columns of ``B`` carry any norm (so ``theta_u`` lies in the convex hull
of the columns of ``B``; the signal is absorbed by B). The learned factors in this form are
``B_raw_`` and ``W_raw_`` (columns of ``W_raw_`` on the simplex). The reported ``B_`` is the
orthonormalised basis ``B_raw_ = B_ R`` (thin QR, ``diag(R) >= 0``) and ``W_ = R W_raw_``, so
``theta_ = (B_ W_)^T = (B_raw_ W_raw_)^T`` is unchanged. With ``W`` on the simplex
``||W||_F^2`` is bounded, so ``lambda`` hardly pins the vertices' scale; ``vertex_lam`` (a ridge
on ``B`` alone; class docstring) does.

Few-shot: :meth:`SharedRep.fit_new_users` fits new users' weights with ``B_raw_`` fixed.

Solvers
-------
``solver="altmin"`` (alternating exact minimisation; every block is convex):

* given B, each ``w_u`` solves a k-dimensional BT problem on features ``X_u B``: free weights by
  :func:`~simulator.estimators.bt.fit_bt` (Newton), simplex weights by projected (proximal)
  Newton: the Newton model is minimised over the simplex (accelerated projected gradient on the
  k-dimensional quadratic), followed by an Armijo line search along the feasible direction.
  Many small groups (users with tens of comparisons; ``W_STEP_BLOCKS_GROUPS``) solve all
  groups in one vectorised :func:`~simulator.estimators.bt_blocks.fit_bt_blocks` call instead,
  to the same certificate (``W_STEP_TOL``);
* given W, ``vec(B)`` (column-major) solves a (d k)-dimensional BT problem on features
  ``kron(w_{g_i}, x_i)``, by Newton with the Kronecker-structured Hessian
  ``sum_u kron(w_u w_u^T, X_u^T D_u X_u)`` (:func:`_b_step_structured`; the design is never
  formed; vectorised over the rows with batched per-group Grams beyond
  ``B_STEP_VECTORISE_GROUPS`` groups; the numpy back-end, the reference, forms it and calls
  :func:`fit_bt`). When ``d k > B_STEP_MATFREE_DK`` (embedding-sized d) both back-ends run
  matrix-free Newton-CG instead (:func:`_b_step_matfree`: products with the Kronecker design
  only, O(n d k) memory), warm-started from the current B. The spectral start works in the
  span of the groups' means when d is large (``SPECTRAL_LOWRANK_D``);
* after every sweep from the second on, an extrapolated point ``(B, W) + beta * step`` is tried
  and kept only if it lowers ``F`` (``accelerate=True``; Ang & Gillis 2019; constants and
  measurements at ``EXTRAPOLATION_START``); with free weights every sweep that did not converge
  ends by moving to the factorisation of ``B W`` with the smallest ridge
  (:func:`balance_factors`, closed form; the loss is unchanged, so ``F`` only decreases): the
  sweeps alone crawl along that gauge when the ridge is large (70 to 92 sweeps instead of 4 at
  ``lam = "auto"``, n = 1e5, d = 64, U = 5);
* initialisation: restart 0 is spectral (method of moments): with ``m_u^{(1)}, m_u^{(2)}`` the
  averages of ``s_i x_i`` over two halves of group u's data (``E[s x] ∝ Sigma theta_u`` for
  Gaussian X, Stein's lemma), ``B0`` = top-k eigenvectors of
  ``sum_u n_u sym(m_u^{(1)} m_u^{(2)T})`` (split halves remove the noise bias; Niu et al. 2024);
  other restarts draw a Haar-random ``B0``. For simplex weights the free problem is solved first
  and its weights are mapped onto the simplex by vertex hunting (successive projection
  algorithm: k extreme groups become the vertices), then the simplex problem is solved from there.
  A restart whose free optimum meets an earlier restart's (``RESTART_DUPLICATE_TOL``) would
  start its simplex phase from the same point, so it is not run again
  (``restart_duplicate_of_``).
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

Back-ends (altmin only): ``backend="numba"`` (default) and ``"numpy"`` solve the W-blocks with
:func:`~simulator.estimators.bt.fit_bt` (numba: the B-step by :func:`_b_step_structured`, one
BLAS thread for the whole fit); ``backend="torch"`` runs the same sweeps with the batched
torch kernel :func:`simulator.kernels.torch_sharedrep.altmin_batched` on ``device`` (the B-step
uses the Kronecker structure of its Hessian instead of forming the (n, d k) design; results agree
with numba to ~1e-9 relative in float64). :func:`simulator.estimators.batched.fit_many` fits many
data sets in one batched call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels import BACKENDS
from ..seeding import as_seed_sequence, child_seeds
from ..validation import (
    Bool,
    Choice,
    Custom,
    Int,
    InvalidParameterError,
    Real,
    Seed,
    Str,
    check_array,
    check_ids,
    check_int,
)
from .base import (
    NewUsersFit,
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    require_every_group,
)
from .bt import bt_objective, check_sample_weight, check_xy, fit_bt, newton_minimize
from .bt_blocks import fit_bt_blocks
from .bt_matfree import fit_bt_matfree, kron_operator
from .regularisation import nuclear_lam

__all__ = ["VERTEX_PER_UNIT", "SharedRep", "altmin_restarts_batched", "balance_factors", "project_simplex", "sharedrep_kkt_residual", "sharedrep_objective",
           "simplex_kkt_residual"]

WEIGHTS = ("simplex", "free")
#: lam = "cv": candidates are nuclear_lam(X, U) times these (the "auto" value in the middle).
CV_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
SOLVERS = ("altmin", "joint")


#: ``vertex_lam="auto"``: this much ridge on ``B`` per unit (``vertex_lam_ = VERTEX_PER_UNIT * U``
#: with U the number of units at fit time; LoRe's pull ``ALPHA_PER_UNIT`` translated to
#: SharedRep's summed objective and re-tuned; see :class:`SharedRep`).
VERTEX_PER_UNIT = 0.4


def _check_vertex_lam(value, name="vertex_lam"):
    """SharedRep's ``vertex_lam``: ``None``, ``"auto"`` or a finite number >= 0."""
    ok = value is None or (value == "auto" if isinstance(value, str) else (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_)) and bool(np.isfinite(value)) and value >= 0))
    if not ok:
        raise InvalidParameterError(f"{name} must be None, 'auto' or a finite number >= 0; got "
                                    f"{value!r}")
    return value


def _check_lam(lam, name="lam"):
    """SharedRep's ``lam``: a finite number >= 0, ``"auto"`` or ``"cv"``."""
    ok = lam in ("auto", "cv") if isinstance(lam, str) else (
        isinstance(lam, (int, float, np.integer, np.floating))
        and not isinstance(lam, (bool, np.bool_)) and bool(np.isfinite(lam)) and lam >= 0)
    if not ok:
        raise InvalidParameterError(f"{name} must be a finite number >= 0, 'auto' or 'cv'; got "
                                    f"{lam!r}")
    return lam


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
    """Projected Newton for the k-dimensional BT problem with ``w`` on the simplex.

    Converged when the KKT residual :func:`simplex_kkt_residual` (``scale = sum(c)``) is
    ``<= tol * sum(c)``: the simplex analogue of :func:`~.bt.fit_bt`'s test on the mean
    objective's gradient (and the only way to report convergence).
    Returns ``(w, objective, iterations, converged)``.
    """
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
        if simplex_kkt_residual(w, g, scale) <= tol * scale:
            converged = True
            it -= 1
            break
        v = _simplex_qp(g, H, w, 2000, 1e-14)
        d = v - w
        dec = -float(g @ d)
        if not np.isfinite(dec) or dec < -1e-12 * max(abs(f), 1.0):
            break  # no descent direction found: not certified
        # A predicted decrease at the objective's round-off (even of either sign, seen: -7e-17
        # with a KKT residual 6e-9 that the step brings to 1e-12) is still taken: the Armijo
        # test below has a 1e-13 relative slack, and the KKT test above, on the exact gradient,
        # decides.
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
            break  # no decrease even within round-off: not certified
        w = project_simplex(wn)  # stays feasible; the projection only removes round-off
        f, g, H = full(w)
    return w, f, it, converged


def simplex_kkt_residual(w, grad, scale=1.0) -> float:
    r"""KKT residual of ``min f(w)`` over the simplex at ``w``: ``scale * ||w - P(w - grad / scale)||``.

    ``P`` is the Euclidean projection onto the simplex. The residual is zero exactly at the KKT
    points (``w = P(w - t grad)`` for every ``t > 0`` there: ``grad_j = nu`` on the support of
    ``w`` and ``grad_j >= nu`` off it, for one multiplier ``nu``); for an interior ``w`` it is the
    norm of the gradient's component along the simplex, ``||grad - mean(grad) 1||``, for any
    ``scale`` small enough to keep the step inside. With ``grad`` the gradient of a *sum*
    objective over ``m`` comparisons pass ``scale = m``: the step is then the mean objective's
    gradient and the residual is in the units of the sum objective's gradient norm.
    """
    w = np.asarray(w, dtype=np.float64)
    return float(scale * np.linalg.norm(w - project_simplex(w - np.asarray(grad) / scale)))


# --------------------------------------------------------------------------- objective
def _margins(X, g, B, W):
    return np.einsum("ij,ij->i", X @ B, W.T[g])


def sharedrep_objective(X, y, group, B, W, lam=0.0, sample_weight=None, lam_B=None) -> float:
    """Reference value of ``F(B, W)`` (module docstring); ``lam_B`` (default ``lam``) is the
    ridge on ``B`` (``vertex_lam`` of :class:`SharedRep`)."""
    t = (2.0 * np.asarray(y, dtype=np.float64) - 1.0) * _margins(X, group, B, W)
    terms = np.logaddexp(0.0, -t)
    if sample_weight is not None:
        terms = terms * sample_weight
    lam_B = lam if lam_B is None else lam_B
    return float(terms.sum() + 0.5 * lam_B * np.sum(B * B) + 0.5 * lam * np.sum(W * W))


def sharedrep_kkt_residual(X, y, group, B, W, lam, sample_weight=None, lam_B=None,
                           simplex=False) -> float:
    """KKT residual of ``F`` (module docstring) at ``(B, W)``, in the units of its gradient.

    ``sqrt(||grad_B F||_F^2 + sum_u r_u^2)`` with ``r_u`` the norm of ``grad_{w_u} F`` (free
    weights) or :func:`simplex_kkt_residual` of it with ``scale = sum of group u's weights``
    (simplex weights). Zero exactly at the stationary (KKT) points of the problem.

    Evaluated with one BLAS thread (:func:`~simulator.kernels.bt_numba.one_blas_thread`): the
    products ``X^T (q W_g)`` reduce over the rows, and a threaded BLAS adds its partial sums in
    an order that depends on the thread count (measured: the residual of a d = 300, k = 8 fit
    changed in the last bits between one and two BLAS threads).
    """
    from ..kernels.bt_numba import one_blas_thread

    with one_blas_thread():
        return _sharedrep_kkt_residual(X, y, group, B, W, lam, sample_weight, lam_B, simplex)


def _sharedrep_kkt_residual(X, y, group, B, W, lam, sample_weight, lam_B, simplex) -> float:
    lam_B = lam if lam_B is None else lam_B
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    Wg = W.T[group]  # (n, k)
    Z = X @ B
    t = s * np.einsum("ij,ij->i", Z, Wg)
    q = -s * 0.5 * (1.0 - np.tanh(0.5 * t))  # d/dm of softplus(-s m)
    c = np.ones_like(q) if sample_weight is None else np.asarray(sample_weight, np.float64)
    q = q * c
    gB = X.T @ (q[:, None] * Wg) + lam_B * B
    gW = np.zeros_like(W)
    np.add.at(gW.T, group, q[:, None] * Z)
    gW += lam * W
    if simplex:
        m = np.bincount(group, weights=c, minlength=W.shape[1])
        r = [simplex_kkt_residual(W[:, u], gW[:, u], max(m[u], 1e-300))
             for u in range(W.shape[1])]
    else:
        r = np.linalg.norm(gW, axis=0)
    return float(np.sqrt(np.sum(gB * gB) + np.sum(np.square(r))))


def _kron_features(X, g, W):
    """Rows ``kron(w_{g_i}, x_i)`` (n, k d): ``<B w, x> = <vec(B), kron(w, x)>``, vec column-major."""
    n, _d = X.shape
    Wg = W.T[g]  # (n, k)
    return (Wg[:, :, None] * X[:, None, :]).reshape(n, -1)


# Chord rule of the structured B-step: keep the Newton matrix while the gradient norm shrinks at
# least this much per step (as the torch kernel's CHORD_RATIO).
B_STEP_CHORD_RATIO = 0.05


def _group_bounds(g, U):
    """Row bounds of each group in group-sorted data: group u is rows ``b[u]:b[u + 1]``."""
    return np.concatenate([[0], np.cumsum(np.bincount(g, minlength=U))]).astype(np.int64)


# Spectral initialisation: the dense (2U x n) averaging matrix is used up to this many entries
# (80 MB; the figures' sizes), a sparse one beyond; with d above SPECTRAL_LOWRANK_D (and 2U < d)
# the rank-2U moment matrix is eigen-decomposed in the span of the means (a d x d eigh at
# d = 4096 costs minutes on one thread).
SPECTRAL_DENSE_MAX = 10_000_000
SPECTRAL_LOWRANK_D = 1024

# Stopping tolerance of the W- and B-blocks: the mean objective's gradient (free) or the
# simplex KKT residual at step 1 / n_u (:func:`simplex_kkt_residual`) at most this.
W_STEP_TOL = 1e-10
# When the W-step solves all groups in one vectorised fit_bt_blocks call instead of one solver
# call per group (_use_weight_blocks): simplex weights (or the numpy back-end) with more than
# W_STEP_BLOCKS_GROUPS groups of at most W_STEP_BLOCKS_ROWS rows on average. fit_bt_blocks
# costs ~0.6 us a row a W-step (per-unit bincount sums), the per-group loop ~0.2 ms a group for
# simplex weights (_fit_simplex) and ~0.03 ms for free ones (compiled fit_bt). One W-step from
# a perturbed optimum, d = 64, k = 4, 2 cores, loop / blocks in ms: simplex U = 5, n = 1e5:
# 17 / 52; U = 128, n = 1e5: 41 / 66; U = 100, n = 2e4: 23 / 19; U = 200, n = 2e4: 42 / 23;
# U = 1000, n = 2e4: 335 / 88. Free: U = 5, n = 1e5: 9 / 73; U = 1000, n = 2e4: 32 / 44, so
# free weights keep the compiled loop.
W_STEP_BLOCKS_GROUPS = 32
W_STEP_BLOCKS_ROWS = 250


def _use_weight_blocks(n, U, simplex, backend):
    """Whether the W-step runs :func:`_fit_weight_blocks` (see ``W_STEP_BLOCKS_GROUPS``)."""
    return ((simplex or backend == "numpy") and U > W_STEP_BLOCKS_GROUPS
            and n <= W_STEP_BLOCKS_ROWS * U)


def _fit_weight_blocks(Z, y, g, U, sw, lam, W0, simplex, max_iter=100):
    """Every group's weights given ``Z = X B``: one :func:`~.bt_blocks.fit_bt_blocks` call.

    The certificate is :data:`W_STEP_TOL` on the scale of the per-group solvers it replaces
    (:func:`~.bt.fit_bt`: ``||g_u|| <= tol n_u``; :func:`_fit_simplex`: ``||w - P(w - g_u /
    n_u)|| <= tol``, ``n_u`` the group's total weight). ``fit_bt_blocks`` measures against
    ``max(n_u, 1)``; with weights summing below 1 in a group the tolerance passed is scaled down
    by the smallest such sum, which implies both tests (the simplex residual at step ``t`` over
    ``t`` does not increase with ``t``). Free weights keep a ridge of at least ``1e-12`` as
    before. Returns the :class:`~.bt_blocks.BlocksFit` (W is (U, k)).
    """
    tol = W_STEP_TOL
    if sw is not None:
        m = np.bincount(g, weights=sw, minlength=U)
        m = m[m > 0]
        if m.size:
            tol *= min(1.0, float(m.min()))
    return fit_bt_blocks(Z, y, g, U, lam=float(lam) if simplex else max(float(lam), 1e-12),
                         sample_weight=sw, W0=W0, constraint="simplex" if simplex else None,
                         tol=tol, max_iter=max_iter)


def _b_step_matfree(X, y, g, sw, B, W, lam, tol):
    """The B-step by matrix-free Newton-CG on the Kronecker design (wide ``d k``).

    Same objective and certificate (``||grad|| <= tol sum(c)``) as :func:`_b_step_structured`;
    products with ``kron(w_{g_i}, x_i)`` cost ``n d k`` (:func:`~.bt_matfree.kron_operator`), so
    neither the (n, d k) design nor the (d k)^2 Hessian is formed. Warm-started from ``B``.
    """
    d, k = B.shape
    fit = fit_bt_matfree(kron_operator(X, g, W), y, lam=lam, sample_weight=sw,
                         theta_init=B.T.ravel(), tol=tol, max_iter=100)
    return fit.theta.reshape(k, d).T.copy()


# B-steps with more groups than this use row-vectorised margins and gradients and a padded,
# batched per-group Gram for the Hessian instead of a Python loop over the groups (the loop
# costs ~0.1 ms a group a pass: 1 s a Hessian at 10,000 users). One B-step from a perturbed
# optimum, n = 2e4, d = 64, k = 4, grouped / vectorised: U = 32: 37 / 48 ms; U = 100: 53 / 48
# ms; U = 1000: 289 / 134 ms. The figures have U <= 10, so they keep the loop (and its
# arithmetic) exactly.
B_STEP_VECTORISE_GROUPS = 64
# Width of the B-step (d * k) above which it runs matrix-free Newton-CG
# (:func:`~.bt_matfree.fit_bt_matfree` on :func:`~.bt_matfree.kron_operator`) instead of Newton
# with the dense (d k)^2 Hessian. Measured (2 cores, one BLAS thread, n = 3000 comparisons,
# U = 5, one B-step from a random start, lam = 1e-3, structured / matrix-free): d k = 512: 0.05 /
# 0.05 s; 1024: 0.7 / 2.9 s; 1920 (d = 384, k = 5): 3.2 / 9.7 s; 2048 (d = 512, k = 4): 5.0 /
# 3.0 s. Above the threshold the (d k)^2 Hessian (32 MB at 2000) and its Cholesky grow as
# (d k)^2 and (d k)^3; the CG cost grows as n d k per product. Agreement and fits at d = 1024
# and 4096: tests/estimators/test_sharedrep_wide.py.
B_STEP_MATFREE_DK = 2000
# Groups of the padded Gram processed at once (bounds its memory: chunk * max_rows * d).
_GRAM_CHUNK = 1024


def _b_step_structured(X, y, sw, bounds, B, W, lam, tol, max_iter=100):
    r"""Solve the B-step (given W) by Newton with the Kronecker-structured Hessian.

    The B-step minimises, over ``vec(B)`` (column-major),
    ``f(B) = sum_u sum_{i in D_u} c_i softplus(-s_i x_i^T B w_u) + lam/2 ||B||_F^2``: the BT
    objective of :mod:`.bt` on the features ``kron(w_{g_i}, x_i)``. Its gradient is
    ``sum_u r_u w_u^T + lam B`` with ``r_u = X_u^T q_u`` and its Hessian
    ``sum_u kron(w_u w_u^T, X_u^T diag(h_u) X_u) + lam I`` (``q``, ``h``: first and second
    derivatives of the loss in the margin), so a pass costs ``n d^2`` flops for the Hessian and
    ``n d`` for the value and gradient instead of ``n (d k)^2`` and ``n d k`` on the (n, d k)
    design, which is never formed. With more than :data:`B_STEP_VECTORISE_GROUPS` groups the
    passes are vectorised over the rows (``n d k`` for the value and gradient) and the per-group
    Grams are formed in batches (:func:`_kron_hessian_batched`).

    Solved by :func:`~.bt.newton_minimize`, the algorithm and stopping test of
    :func:`~.bt.fit_bt` on callables (chord ratio :data:`B_STEP_CHORD_RATIO`), converged when
    ``||grad|| <= tol * sum(c)``.

    Parameters
    ----------
    X : array (n, d)
        Features, rows sorted by group (group ``u`` is ``X[bounds[u]:bounds[u + 1]]``).
    y : array (n,) int8
    sw : array (n,) or None
        Weights ``c_i``.
    bounds : array (U + 1,)
    B : array (d, k)
        Warm start.
    W : array (k, U)
    lam : float > 0
    tol : float
    max_iter : int

    Returns
    -------
    array (d, k)
    """
    d, k = B.shape
    U = W.shape[1]
    s = 2.0 * y - 1.0
    scale = float(X.shape[0] if sw is None else max(sw.sum(), 1e-300))
    if U > B_STEP_VECTORISE_GROUPS:
        margins, loss, fg, hess = _b_step_passes_vectorised(X, s, sw, bounds, W, lam)
    else:
        margins, loss, fg, hess = _b_step_passes_grouped(X, s, sw, bounds, W, lam)

    def unvec(theta):
        return theta.reshape(k, d).T

    theta = newton_minimize(
        lambda th: fg(unvec(th)), hess,
        lambda th: loss(margins(unvec(th))) + 0.5 * lam * float(th @ th),
        B.T.ravel().copy(), scale=scale, tol=tol, max_iter=max_iter,
        chord_ratio=B_STEP_CHORD_RATIO)[0]
    return unvec(theta).copy()


def _b_step_passes_grouped(X, s, sw, bounds, W, lam):
    """The B-step's margins, loss, (value, gradient) and Hessian, one group at a time."""
    d = X.shape[1]
    k, U = W.shape
    groups = [(u, slice(int(bounds[u]), int(bounds[u + 1]))) for u in range(U)
              if bounds[u + 1] > bounds[u]]

    def margins(Bm):
        V = Bm @ W  # (d, U): theta_u
        return [(u, rows, s[rows] * (X[rows] @ V[:, u])) for u, rows in groups]

    def loss(ts):
        f = 0.0
        for _u, rows, t in ts:
            ls = np.logaddexp(0.0, -t)
            f += float(ls.sum() if sw is None else sw[rows] @ ls)
        return f

    def fg(Bm):
        ts = margins(Bm)
        G = lam * Bm
        for u, rows, t in ts:
            q = -s[rows] * (0.5 * (1.0 - np.tanh(0.5 * t)))  # d/dm softplus(-s m) = -s sigma(-t)
            if sw is not None:
                q = q * sw[rows]
            G += np.outer(X[rows].T @ q, W[:, u])
        return loss(ts) + 0.5 * lam * float(np.sum(Bm * Bm)), G.T.ravel(), ts

    def hess(ts):
        H = lam * np.eye(d * k)
        for u, rows, t in ts:
            p = 0.5 * (1.0 + np.tanh(0.5 * t))
            h = p * (1.0 - p)
            if sw is not None:
                h = h * sw[rows]
            Xu = X[rows]
            Gu = (Xu * h[:, None]).T @ Xu
            H += np.kron(np.outer(W[:, u], W[:, u]), Gu)
        return H

    return margins, loss, fg, hess


def _b_step_passes_vectorised(X, s, sw, bounds, W, lam):
    """As :func:`_b_step_passes_grouped`, vectorised over the rows (many small groups)."""
    sizes = np.diff(bounds)
    gi = np.repeat(np.arange(W.shape[1]), sizes)
    Wg = np.ascontiguousarray(W.T[gi])  # (n, k)
    layout = _padded_layout(bounds)
    if layout.size > 4 * X.shape[0] + 1024:
        layout = None  # sizes too uneven to pad: one weighted Gram per pair of traits

    def margins(Bm):
        return s * np.einsum("ij,ij->i", X @ Bm, Wg)

    def loss(t):
        ls = np.logaddexp(0.0, -t)
        return float(ls.sum() if sw is None else sw @ ls)

    def fg(Bm):
        t = margins(Bm)
        q = -s * (0.5 * (1.0 - np.tanh(0.5 * t)))
        if sw is not None:
            q = q * sw
        G = lam * Bm + X.T @ (q[:, None] * Wg)
        return loss(t) + 0.5 * lam * float(np.sum(Bm * Bm)), G.T.ravel(), t

    def hess(t):
        p = 0.5 * (1.0 + np.tanh(0.5 * t))
        h = p * (1.0 - p)
        if sw is not None:
            h = h * sw
        return (_kron_hessian_batched(X, h, W, layout, Wg)
                + lam * np.eye(X.shape[1] * W.shape[0]))

    return margins, loss, fg, hess


def _padded_layout(bounds):
    """Row index (U, m) of each group's rows padded to the largest group (-1 = padding)."""
    sizes = np.diff(bounds)
    m = int(sizes.max()) if sizes.size else 0
    j = np.arange(m)
    idx = bounds[:-1, None] + j[None, :]
    return np.where(j[None, :] < sizes[:, None], idx, -1)


def _kron_hessian_batched(X, h, W, layout, Wg=None):
    r"""``sum_u kron(w_u w_u^T, X_u^T diag(h_u) X_u)`` (d k, d k) from batched per-group Grams.

    The groups' rows are gathered into a zero-padded (chunk, m, d) array, their Grams formed by
    one batched product and contracted with the ``w_u w_u^T`` by one matrix product:
    ``n_pad d^2 + U k^2 d^2`` flops (``n_pad = U m``). ``layout=None`` (group sizes too uneven
    to pad) forms the (a, b) block as ``X^T diag(h w_{g_i,a} w_{g_i,b}) X`` from ``Wg`` (n, k),
    each row's group weights, instead (``k (k + 1) n d^2`` flops).
    """
    d = X.shape[1]
    k, U = W.shape
    if layout is None:
        H = np.empty((k, d, k, d))
        for a in range(k):
            for b in range(a, k):
                blk = (X * (h * Wg[:, a] * Wg[:, b])[:, None]).T @ X
                H[a, :, b, :] = blk
                H[b, :, a, :] = blk.T
        return H.reshape(k * d, k * d)
    acc = np.zeros((k * k, d * d))
    WW = np.einsum("au,bu->uab", W, W).reshape(U, k * k)
    equal = layout.size == X.shape[0]  # every group has m rows: (U, m, d) is a view of X
    for c0 in range(0, U, _GRAM_CHUNK):
        lay = layout[c0:c0 + _GRAM_CHUNK]
        if equal:
            r0, r1 = c0 * layout.shape[1], (c0 + lay.shape[0]) * layout.shape[1]
            Xp = X[r0:r1].reshape(lay.shape[0], layout.shape[1], d)
            hp = h[r0:r1].reshape(lay.shape[0], layout.shape[1])
        else:
            pad = lay < 0
            rows = np.where(pad, 0, lay)
            Xp = X[rows]  # (c, m, d)
            hp = np.where(pad, 0.0, h[rows])
        G = np.matmul((Xp * hp[:, :, None]).transpose(0, 2, 1), Xp)  # (c, d, d)
        acc += WW[c0:c0 + _GRAM_CHUNK].T @ G.reshape(G.shape[0], d * d)
    return acc.reshape(k, k, d, d).transpose(0, 2, 1, 3).reshape(k * d, k * d)


# Extrapolated altmin (Ang & Gillis 2019, "Accelerating nonnegative matrix factorization
# algorithms using extrapolation", Neural Computation 31(2)): after every sweep from the second
# on, the point (B, W) + beta * (last sweep's step) is tried and kept only if it lowers F, so F
# still never increases and every fixed point is one of plain altmin. beta grows by
# EXTRAPOLATION_GROW after a success (up to EXTRAPOLATION_MAX) and shrinks by
# EXTRAPOLATION_SHRINK after a failure (down to EXTRAPOLATION_MIN). One extra evaluation of F
# per sweep (n d k flops, a few per cent of a sweep). Measured at n = 1e5, d = 64, k = 4, U = 5
# (simplex population, seeds 0 and 1, one restart): sweeps 27 -> 16 and 42 -> 20, with a lower
# final F (by 7e-3 and 1e-2; plain altmin's relative-change test stopped it early on its slow
# tail). A converged sweep is never extrapolated, so the returned W is an exact W-step.
EXTRAPOLATION_START = 1.0
EXTRAPOLATION_GROW = 1.5
EXTRAPOLATION_MAX = 8.0
EXTRAPOLATION_SHRINK = 0.5
EXTRAPOLATION_MIN = 0.25


def extrapolation_update(f_extrapolated, f_new, beta):
    """(keep the extrapolated point?, next beta): the rule shared by both altmin back-ends."""
    if f_extrapolated < f_new:
        return True, min(beta * EXTRAPOLATION_GROW, EXTRAPOLATION_MAX)
    return False, max(beta * EXTRAPOLATION_SHRINK, EXTRAPOLATION_MIN)


def _extrapolate(fobj, B, W, B_new, W_new, f_new, beta, simplex):
    """Try ``(B_new, W_new) + beta (B_new - B, W_new - W)`` (W projected back onto the simplex);
    keep it only if it lowers F. Returns the kept point, its F and the next ``beta``."""
    Be = B_new + beta * (B_new - B)
    We = W_new + beta * (W_new - W)
    if simplex:
        We = project_simplex(We.T).T
    fe = fobj(Be, We)
    take, beta = extrapolation_update(fe, f_new, beta)
    if take:
        return Be, We, fe, beta
    return B_new, W_new, f_new, beta


# Restarts that meet again. For simplex weights every restart runs the free problem first and
# maps its optimum onto the simplex (vertex hunting); the map depends on the free factors only
# through Theta = B W at a balanced point (B^T B = W W^T holds at any stationary point of the
# ridge), so two restarts whose free phases end at the same Theta start the simplex phase at
# the same point and end at the same simplex optimum. A restart whose free Theta lies within
# RESTART_DUPLICATE_TOL (relative Frobenius distance) of an earlier restart's is therefore not
# run again: it is recorded with that restart's objective (``restart_duplicate_of_``). Measured
# (n = 3e3 .. 1e5, d = 12 .. 64, k = 2 .. 4, U = 4 .. 8, 6 data sets): the free Thetas of the
# three restarts differed by 2e-5 .. 8.5e-4 and their simplex optima by <= 4e-5 relative (equal
# F to 1e-4); distinct local optima differ by O(1).
RESTART_DUPLICATE_TOL = 1e-2


# Balancing (free weights). F is invariant in its loss under B -> B G, W -> G^-1 W; only the
# ridge sees G, and altmin's sweeps move along this gauge slowly when the ridge is large (lam =
# "auto" is 7.7 at n = 1e5, d = 64, U = 5: 70-92 sweeps instead of 4). balance_factors moves to
# the best G in closed form after every sweep that did not converge, so F only decreases and the
# fixed points are those of plain altmin (every stationary point of the ridge is balanced).
BALANCE_MIN_SV = 1e-10  # relative: below it the product is rank deficient; not balanced


def balance_factors(B, W, lam, lam_B=None):
    r"""The factorisation of ``B W`` that minimises the ridge: ``argmin_G lam_B/2 ||B G||_F^2 +
    lam/2 ||G^{-1} W||_F^2`` (G invertible, so ``B W`` and the loss are unchanged).

    With ``B W = P S V^T`` (thin SVD, through the QRs of B and W^T) and ``c = (lam /
    lam_B)^{1/4}``: ``B' = c P S^{1/2}``, ``W' = S^{1/2} V^T / c``, whose ridge is ``sqrt(lam
    lam_B) ||B W||_*``, the minimum (``2 ||B||_F ||W||_F >= 2 ||B W||_*`` and AM-GM). Returns
    ``(B, W)`` unchanged when either ridge is 0 (no minimiser), when ``U < k``, or when ``B W``
    has a singular value below :data:`BALANCE_MIN_SV` of the largest (a rank-deficient product
    would lose columns).
    """
    lam = float(lam)
    lam_B = lam if lam_B is None else float(lam_B)
    d, k = B.shape
    if not (lam > 0 and lam_B > 0) or W.shape[1] < k:
        return B, W
    Qb, Rb = np.linalg.qr(B)
    Qw, Rw = np.linalg.qr(W.T)
    P, S, Vt = np.linalg.svd(Rb @ Rw.T)
    if not S[-1] > BALANCE_MIN_SV * S[0]:
        return B, W
    c = (lam / lam_B) ** 0.25
    root = np.sqrt(S)
    return c * (Qb @ P) * root, (root[:, None] * Vt @ Qw.T) / c


def _duplicate_of(theta, previous):
    """Index of the first of ``previous`` within RESTART_DUPLICATE_TOL of ``theta``, or -1."""
    for q, t in enumerate(previous):
        if np.linalg.norm(theta - t) <= RESTART_DUPLICATE_TOL * max(np.linalg.norm(t), 1e-300):
            return q
    return -1


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
    lam : float, "auto" or "cv", default "auto"
        Ridge ``lambda/2 (||B||_F^2 + ||W||_F^2)`` on the summed objective (on free factors this
        equals a nuclear-norm penalty ``lambda ||B W||_*`` at the optimum). ``"auto"`` (the
        default): the nuclear-norm scale ``0.75 s (sqrt(d) + sqrt(U))`` of the data (``s`` the
        root-mean-square feature;
        :func:`~simulator.estimators.regularisation.nuclear_lam`, SharedLoRA's rule), recorded
        in ``lam_``. Checked in two regimes (``python -m simulator bench sharedrep``,
        ``many_users``, ``fewshot``; 2026-12-02): with few comparisons per group (d = 64, k = 4,
        1,000 users x 20 comparisons) mean squared error 0.62 against a planted ``||theta||^2``
        of 1.6, where ``lam = 1e-3`` (the default until then) let the simplex vertices run away
        (error 157); with thousands per group (n = 1e5, d = 64, U = 5, the figures' regime) the
        same error as ``lam = 1e-3`` (0.0141) in 4 s. The figures pass ``lam = 1e-3``
        explicitly (their numbers predate the change). A number is used as given. ``"cv"``:
        the best of ``nuclear_lam * CV_FACTORS`` (0.1 to 10 times the ``"auto"`` value) by
        ``n_folds``-fold held-out log-likelihood, folds stratified by unit and drawn from
        ``seed``, each candidate fitted with one restart (``cv_result_``, ``cv_scores_``); it
        costs ``n_folds x 5`` fits (on 30 to 60 users x 20 comparisons it chose the ``"auto"``
        value).
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
    accelerate : bool, default True
        altmin: extrapolate after every sweep (``_extrapolate``; kept only where it lowers F, so
        the fixed points and the monotone objective are those of plain altmin). ``False`` runs
        plain altmin.
    vertex_lam : float, "auto" or None, default None
        Ridge on ``B`` alone, ``vertex_lam / 2 ||B||_F^2`` in place of ``lam / 2 ||B||_F^2``:
        pins the scale of the simplex vertices (the columns of ``B_raw_``). As a Gaussian prior
        ``b_j ~ N(0, I / vertex_lam)`` it expects ``||b_j||^2 = d / vertex_lam``: ``vertex_lam =
        d / R^2`` for vertices of norm about R. ``None`` uses ``lam_``, which at the default
        ``lam = "auto"`` already pins them (60 users x 20 comparisons, planted norm 2: largest
        fitted norm 1.9; with ``lam = 1e-3`` they grew to 14 to 19, and to 81 to 94 at 200 users,
        ``bench fewshot``); it matters with a small numeric ``lam`` and few comparisons per
        group. The value used is ``vertex_lam_``.

        ``"auto"``: ``VERTEX_PER_UNIT * U`` (``VERTEX_PER_UNIT = 0.4``, U the number of units at
        fit time), LoRe's default pull folded in (issue 14). LoRe
        (:class:`~simulator.estimators.lore.LoRe`) minimises the *sum over units of each
        unit's mean* log-loss plus ``alpha ||V||_F^2`` with ``alpha = 0.01 U``; this objective
        sums over comparisons and halves the ridge, so with ``m`` comparisons per unit LoRe's
        pull is ``vertex_lam = 2 * 0.01 * m * U``, 0.4 U at the arena's ``m = 20``. Its
        effect depends on ``lam``, the ridge on the weights: on the simplex ``lam / 2
        ||w_u||^2`` pulls every user towards the centre, which LoRe (softmax weights, no ridge)
        does not have. With a small ``lam`` this is LoRe's model and objective (``lam = 1e-6``:
        LoRe's objective at SharedRep's fit equals LoRe's own optimum to 1e-9 relative, 200
        users x 20, d = 8; ``lam = 0.1``: held-out accuracies within 0.001 of ``LoRe``'s, seen
        and new users, on the tuning setting). Tuned on a setting that is not the arena's
        (d = 16, 300 users x 20 comparisons, Dirichlet(alpha) weights, K = 3, seeds 101 to 103;
        held-out accuracy of the seen users, mean of 3 seeds), ``lam = 0.1``:

        ====================  =====  =====  =====  =====
        VERTEX_PER_UNIT        0.2    0.4    0.8    1.6
        ====================  =====  =====  =====  =====
        alpha = 0.1           0.743  0.745  0.746  0.744
        alpha = 1.0           0.695  0.694  0.691  0.679
        ====================  =====  =====  =====  =====

        (default SharedRep 0.733 / 0.699, LoRe 0.745 / 0.693; at ``VERTEX_PER_UNIT = 0.4``,
        ``lam`` = 0.01 / 0.1 / 1 / 3 gave 0.745 / 0.745 / 0.744 / 0.740 at alpha = 0.1 and
        0.693 / 0.694 / 0.697 / 0.698 at alpha = 1.0). 0.4 is the exact translation and lies
        on the plateau of both rows. With the default ``lam = "auto"`` (16 here, a
        nuclear-norm scale meant for free factors) the two ridges shrink together and
        ``"auto"`` *lowers* accuracy (0.715 against 0.733 at alpha = 0.1, seeds 101, 102):
        use it with ``lam`` about 1, e.g. ``SharedRep(k, lam=1.0, vertex_lam="auto")``.
    unit : {"group", "user"}, default "group"
        The units personalised: one ``w`` per ``data.group``, or per ``data.user`` (the fit
        runs on :meth:`~simulator.data.PreferenceData.as_units`, ``theta_`` and ``W_`` have
        ``data.n_users`` units and comparisons are scored by their user).
    n_folds : int, default 5
        Folds of ``lam="cv"`` (>= 2; ignored otherwise).

    Attributes
    ----------
    B_ : array (d, k), orthonormal columns
    W_ : array (k, U), with ``theta_ = (B_ W_)^T``
    lam_ : float
        The ridge used (``lam``, or its value for ``lam="auto"`` / ``"cv"``).
    vertex_lam_ : float
        The ridge on ``B`` used: ``vertex_lam``, ``VERTEX_PER_UNIT * U`` for ``"auto"``, or
        ``lam_`` for ``None``.
    cv_result_, cv_scores_ :
        With ``lam="cv"``: the :class:`~simulator.estimators.regularisation.CVResult` and its
        mean held-out log-likelihood per grid value.
    B_raw_, W_raw_ : the factors as fitted (``W_raw_`` on the simplex for simplex weights)
    theta_ : array (U, d)
    objective_ : float
        ``F(B, W)`` of the kept restart.
    history_ : list of dict
        Per sweep / epoch of the kept restart: ``{"iter", "phase", "objective"}``.
    restart_objectives_ : array (n_restarts,)
    restart_duplicate_of_ : array (n_restarts,) of int
        For simplex weights, the earlier restart whose free optimum restart r met (its simplex
        phase was then not run again and its objective is that restart's; see
        ``RESTART_DUPLICATE_TOL``), -1 for a restart that ran to its end.
    n_iter_ : int
    converged_ : bool
        altmin: the relative change of F over the last sweep was ``<= tol``.
    kkt_residual_ : float
        :func:`sharedrep_kkt_residual` at the returned factors (gradient units of the summed
        objective). altmin stops on the change of F, not on this residual; each W-block is
        exact at the returned B, so it is mostly the B-gradient left by the last sweep.
    """

    def __init__(self, k: int, weights: str = "simplex", solver: str = "altmin",
                 lam="auto", n_restarts: int = 3, max_iter: int = 100, tol: float = 1e-7,
                 seed=0, lr: float = 5e-3, n_epochs: int = 50, batch_size: int = 256,
                 use_tanh: bool = False, weight_decay: float = 0.0, backend: str = "numba",
                 device: str = "cpu", accelerate: bool = True, vertex_lam: float | None = None,
                 unit: str = "group", n_folds: int = 5):
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
        self.accelerate = accelerate
        self.vertex_lam = vertex_lam
        self.unit = unit
        self.n_folds = n_folds

    # ------------------------------------------------------------------ validation
    _parameter_constraints = {
        "k": Int(1),
        "weights": Choice(WEIGHTS),
        "solver": Choice(SOLVERS),
        "lam": Custom(_check_lam),
        "n_folds": Int(2),
        "vertex_lam": Custom(_check_vertex_lam),
        "n_restarts": Int(1),
        "max_iter": Int(1),
        "tol": Real(0.0, low_open=True),
        "seed": Seed(),
        "lr": Real(0.0, low_open=True),
        "n_epochs": Int(1),
        "batch_size": Int(1),
        "use_tanh": Bool(),
        "weight_decay": Real(0.0),
        "backend": Choice(BACKENDS),
        "device": Str(),
        "accelerate": Bool(),
        "unit": Custom(check_unit),
    }

    def _validate(self, d):
        self._validate_params()
        if self.k > d:
            raise InvalidParameterError(f"k must be <= d = {d}; got k = {self.k}")
        if self.device != "cpu" and self.backend != "torch":
            raise InvalidParameterError(f"device {self.device!r} needs backend='torch'")

    @property
    def _lam_B(self):
        """Ridge on B: ``vertex_lam_`` once resolved by a fit, else ``vertex_lam``, or ``lam``
        when that is None."""
        lam_B = self.__dict__.get("vertex_lam_")
        if lam_B is not None:
            return lam_B
        if self.vertex_lam is None:
            return float(self._lam_value)
        if isinstance(self.vertex_lam, str):
            raise RuntimeError(f"vertex_lam={self.vertex_lam!r} is resolved from the data by fit; "
                               "call fit first")
        return float(self.vertex_lam)

    @property
    def _lam_value(self):
        """The ridge in use: ``lam_`` once resolved by a fit, else a numeric ``lam``."""
        lam = self.__dict__.get("lam_")
        if lam is not None:
            return lam
        if isinstance(self.lam, str):
            raise RuntimeError(f"lam={self.lam!r} is resolved from the data by fit; call fit "
                               "first")
        return float(self.lam)

    def _resolve_lam(self, X, U, y=None, g=None, sw=None):
        """``lam_``: ``lam`` itself; for ``lam="auto"`` the nuclear-norm scale of the data
        (:func:`~simulator.estimators.regularisation.nuclear_lam` with one column per group);
        for ``lam="cv"`` the best of that scale times :data:`CV_FACTORS` by held-out
        log-likelihood (:meth:`_choose_lam_cv`; needs ``y`` and ``g``)."""
        self.__dict__.pop("cv_result_", None)
        self.__dict__.pop("cv_scores_", None)
        if self.lam == "cv":
            self.lam_ = self._choose_lam_cv(X, y, g, sw, U)
        else:
            self.lam_ = nuclear_lam(X, U) if isinstance(self.lam, str) else float(self.lam)
        # the ridge on B: None follows lam_; "auto" scales with the number of units U
        self.vertex_lam_ = float(self.lam_ if self.vertex_lam is None else
                            VERTEX_PER_UNIT * U if isinstance(self.vertex_lam, str) else
                            float(self.vertex_lam))
        return self.lam_

    def _choose_lam_cv(self, X, y, g, sw, U):
        """``n_folds``-fold cross-validation over ``nuclear_lam * CV_FACTORS``, folds stratified
        by group and drawn from ``seed``; every candidate is fitted with this estimator's
        settings but one restart (the spectral start), and scored by the summed held-out BT
        log-likelihood (:func:`~simulator.estimators.regularisation.cv_lam`)."""
        from sklearn.base import clone

        from .regularisation import cv_lam

        grid = nuclear_lam(X, U) * np.asarray(CV_FACTORS)
        s = 2.0 * y - 1.0

        def fit_score(tr, te, lam):
            est = clone(self).set_params(lam=float(lam), n_restarts=1)
            est.fit_arrays(X[tr], y[tr], g[tr], U, sample_weight=None if sw is None else sw[tr],
                           check_input=False)
            z = s[te] * np.einsum("ij,ij->i", X[te], est.theta_[g[te]])
            ll = -np.logaddexp(0.0, -z)
            return float(np.sum(ll if sw is None else sw[te] * ll))

        # the folds' own stream, derived without spawning from seed (which the restarts spawn)
        root = as_seed_sequence(self.seed)
        folds_seed = np.random.SeedSequence(root.entropy,
                                            spawn_key=tuple(root.spawn_key) + (0xC5,))
        cv = cv_lam(fit_score, g, grid, n_folds=int(self.n_folds), seed=folds_seed, by="group")
        self.cv_result_ = cv
        self.cv_scores_ = cv.scores
        return float(cv.lam)

    # ------------------------------------------------------------------ public fit
    _fit_params = ("sample_weight", "init")

    def fit(self, data, **fit_params):
        """Fit on a :class:`~simulator.data.PreferenceData`; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
            Every unit (group, or user for ``unit="user"``) needs comparisons unless ``init``
            is given.
        **fit_params
            ``sample_weight`` (n,), optional non-negative weights of the comparisons.
            ``init = (B_raw, W_raw)`` ((d, k), (k, U); ``W_raw`` on the simplex for simplex
            weights): a warm start, one altmin run from these factors instead of the restarts
            (the EM M-step's use); a unit without comparisons keeps its column of ``W_raw``.
        """
        fp = self._check_fit_params(fit_params)
        data = check_data(data).as_units(check_unit(self.unit))
        self._validate(data.d)
        if fp["init"] is None:
            require_every_group(data, "SharedRep", self.unit)
        return self.fit_arrays(data.X, data.y, data.group, data.n_groups,
                               sample_weight=fp["sample_weight"], init=fp["init"],
                               check_input=False)

    @one_blas_thread_fit
    def fit_arrays(self, X, y, group, n_groups, *, sample_weight=None, init=None,
                   check_input: bool = True):
        """:meth:`fit` on arrays (drivers that build many data sets, e.g. the EM M-step).

        ``X`` (n, d) finite, ``y`` (n,) in {0, 1}, ``group`` (n,) ids in ``[0, n_groups)``; a
        group without rows keeps its column of ``init`` (zeros without one). Validated as
        :meth:`fit` validates, except that empty groups are allowed; ``check_input=False``
        skips the pass over ``X`` and ``y`` for rows of a validated
        :class:`~simulator.data.PreferenceData` (as :func:`~.bt.fit_bt` does). Returns ``self``.
        """
        if check_input:
            X, y = check_xy(X, y)
        else:
            X = np.ascontiguousarray(X, dtype=np.float64)
            y = np.ascontiguousarray(y, dtype=np.int8)
        self._validate(X.shape[1])
        U = check_int(n_groups, "n_groups", low=1)
        n, d = X.shape
        g = check_ids(group, "group", n=n, upper=U, upper_name="n_groups")
        sw = check_sample_weight(sample_weight, n)
        warm = None if init is None else self._check_init(init, d, U)
        self._resolve_lam(X, U, y, g, sw)
        if self.solver == "altmin" and self.backend != "torch":
            # Group-sorted rows: every group is a contiguous block (the structured B-step and
            # the W-step read slices). The stable order keeps each group's rows as given.
            order = np.argsort(g, kind="stable")
            X, y, g = X[order], y[order], g[order]
            sw = None if sw is None else sw[order]
        dup = None
        if self.solver == "joint":
            B, W, obj, hist, conv, objs = self._joint(X, y, g, sw, U)
        elif self.backend == "torch":
            if warm is not None:
                lay = self._layout([(X, y, g, sw)], U)
                B, W, obj, hist, conv = self._altmin_torch(
                    lay, [warm[0]], [warm[1]], self.weights == "simplex", "warm", skip_w=True)[0]
                objs = np.array([obj])
            else:
                B, W, obj, hist, conv, objs, dup = altmin_restarts_batched(
                    [self], [(X, y, g, sw)], U)[0]
        else:
            from ..kernels.bt_numba import one_blas_thread

            # One BLAS thread for the whole fit: the blocks are small products, and a BLAS
            # thread pool on a shared 2-core machine costs more than it gives (a 256 x 256
            # Cholesky took 0.1 s instead of 1 ms with the pool; rules of the house).
            with one_blas_thread():
                if warm is not None:
                    idx = _group_index(g, U)
                    B, W, obj, hist, conv = self._altmin(
                        X, y, g, sw, U, idx, warm[0].copy(), warm[1].copy(),
                        self.weights == "simplex", "warm", skip_w=True)
                    objs = np.array([obj])
                else:
                    B, W, obj, hist, conv, objs, dup = self._altmin_restarts(X, y, g, sw, U)
        self._set_fitted(**self._result(B, W, obj, hist, conv, objs, dup))
        self.kkt_residual_ = sharedrep_kkt_residual(
            X, y, g, B, W, self._lam_value, sw, self._lam_B,
            simplex=self.weights == "simplex")
        return self

    # ------------------------------------------------------------------ few-shot
    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None, sample_weight=None) -> NewUsersFit:
        r"""Fit the weights of new users on the fitted trait matrix (few-shot personalisation).

        ``B_raw_`` stays fixed; each new user ``j`` (group ``j`` of ``data``) gets the weights

        .. math::

            \hat w_j = \arg\min_{w \in \mathcal{W}}
                -\sum_{i \in D_j} c_i \log\sigma(s_i \langle B w, x_i\rangle)
                + \frac{\lambda}{2}\lVert w\rVert^2,

        the SharedRep objective with ``B`` fixed (the W-step of :meth:`fit`, same ``lam``):
        :func:`~.bt_blocks.fit_bt_blocks` (projected Newton on the simplex, Newton for free
        weights), started from the simplex centre / zero.
        The estimator itself is not changed.

        Parameters
        ----------
        data : PreferenceData
            The new users' comparisons, ``data.d`` equal to the fitted ``d``; group ``j`` is new
            user ``j`` and every user needs at least one comparison.
        weights : {None, "simplex", "free"}
            Constraint on each new ``w_j``; ``None`` takes the estimator's ``weights``. With
            simplex weights ``theta_j`` lies in the convex hull of the columns of ``B_raw_`` (the
            fitted vertices); free weights on a simplex fit use the same ``B_raw_`` unconstrained.
        sample_weight : array (n,), optional
            Non-negative weights ``c_i`` of the comparisons.

        Returns
        -------
        NewUsersFit
            ``W`` (k, N) the weights on ``B_raw_``, ``theta = (B_raw_ W)^T``; ``objective`` each
            user's objective above; ``grad_norm`` the gradient norm (free) or the KKT residual
            :func:`simplex_kkt_residual` with ``scale = n_j`` (simplex; ``n_j`` the user's
            total weight), both of the summed objective evaluated by :func:`~.bt.bt_objective`; ``converged_units`` the
            certificates of :func:`~.bt_blocks.fit_bt_blocks`, all users in one call (free:
            gradient of the mean objective ``<= 1e-10``; simplex: ``||w - P(w - g / n_j)|| <=
            1e-10``).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        ValueError
            ``weights`` not one of the above, ``data.d`` different from the fitted ``d``, a new
            user without comparisons, or a bad ``sample_weight``.
        """
        self._check_fitted()
        data = check_data(data)
        weights = self.weights if weights is None else weights
        if not isinstance(weights, str) or weights not in WEIGHTS:
            raise InvalidParameterError(f"weights must be None or one of {WEIGHTS}; got "
                                        f"{weights!r}")
        B = self.B_raw_
        d, k = B.shape
        if data.d != d:
            raise ValueError(f"data has d = {data.d} features but the fitted B has d = {d}")
        require_every_group(data, "fit_new_users", "new user")
        sw = check_sample_weight(sample_weight, data.n)
        N = data.n_groups
        lam = max(float(self._lam_value), 1e-12)
        simplex = weights == "simplex"
        fit = _fit_weight_blocks(data.X @ B, data.y, data.group, N, sw, lam, None, simplex)
        W = fit.W.T.copy()
        obj, n_iter, conv = fit.objective, fit.n_iter, fit.converged
        # The certificate re-evaluated on the reference objective (bt_objective), in the units
        # of the summed objective's gradient (~30 us a user).
        Z = data.X @ B
        res = np.zeros(N)
        for j, rows in enumerate(_group_index(data.group, N)):
            cj = None if sw is None else sw[rows]
            _f, gr, _H = bt_objective(W[:, j], Z[rows], data.y[rows], lam, cj)
            m = float(rows.size if cj is None else max(cj.sum(), 1e-300))
            res[j] = simplex_kkt_residual(W[:, j], gr, m) if simplex else np.linalg.norm(gr)
        return NewUsersFit(theta=(B @ W).T, W=W, objective=obj, grad_norm=res, n_iter=n_iter,
                           converged=bool(conv.all()), converged_units=conv, weights=weights)

    def _check_init(self, init, d, U):
        """``init = (B_raw, W_raw)`` validated (shapes, finite, simplex columns)."""
        if self.solver != "altmin":
            raise ValueError("init (a warm start) needs solver='altmin'")
        try:
            B0, W0 = (check_array(a, "init", finite=False, copy=True) for a in init)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"init must be a pair (B_raw (d, k), W_raw (k, U)) of "
                                        f"real arrays ({exc})") from None
        k = int(self.k)
        if B0.shape != (d, k) or W0.shape != (k, U):
            raise ValueError(f"init must be (B_raw ({d}, {k}), W_raw ({k}, {U})); got "
                             f"{B0.shape}, {W0.shape}")
        if not (np.all(np.isfinite(B0)) and np.all(np.isfinite(W0))):
            raise ValueError("init must be finite")
        if self.weights == "simplex" and not (np.all(W0 >= -1e-12)
                                              and np.allclose(W0.sum(axis=0), 1.0, atol=1e-9)):
            raise ValueError("init's W_raw columns must lie on the simplex for weights='simplex'")
        return B0, W0

    @staticmethod
    def _result(B, W, obj, hist, conv, objs, dup=None):
        """The fitted attributes of one altmin / joint result (for :meth:`_set_fitted`)."""
        objs = np.asarray(objs, dtype=np.float64)
        return dict(B_raw_=B, W_raw_=W, objective_=float(obj), history_=hist,
                    converged_=bool(conv), restart_objectives_=objs,
                    restart_duplicate_of_=(np.full(objs.size, -1, dtype=np.int64) if dup is None
                                           else np.asarray(dup, dtype=np.int64)))

    def _set_fitted(self, **attrs):
        """The contract's hook (:meth:`PreferenceEstimator._set_fitted`) with SharedRep's derived
        state: given ``B_raw_`` and ``W_raw_`` it sets ``B_``, ``W_`` (orthonormalised) and
        ``theta_``, and ``n_iter_`` from ``history_``; ``kkt_residual_`` is NaN unless given
        (the caller has the data)."""
        if "B_raw_" in attrs:
            B, W = attrs["B_raw_"], attrs["W_raw_"]
            attrs["B_"], attrs["W_"] = _orthonormalise(B, W)
            attrs["theta_"] = (B @ W).T.copy()
            attrs.setdefault("kkt_residual_", float("nan"))
        if "history_" in attrs:
            attrs.setdefault("n_iter_", len(attrs["history_"]))
        return super()._set_fitted(**attrs)

    # ------------------------------------------------------------------ altmin
    def _spectral_init(self, X, y, idx, rng):
        n, d, k = X.shape[0], X.shape[1], int(self.k)
        # Signed means of the two halves of every group's rows: half 2u holds rows[:h] of group
        # u, half 2u + 1 the rest.
        U = len(idx)
        sgn = 2.0 * y - 1.0
        if 2 * U * n <= SPECTRAL_DENSE_MAX:  # one (2U x n) @ (n x d) product (no copy of X)
            A = np.zeros((2 * U, n))
            for u, rows in enumerate(idx):
                if rows.size >= 2:
                    h = rows.size // 2
                    A[2 * u, rows[:h]] = sgn[rows[:h]] / h
                    A[2 * u + 1, rows[h:]] = sgn[rows[h:]] / (rows.size - h)
            means = A @ X
        else:  # many groups: the same means from a sparse (2U x n) matrix
            from scipy.sparse import csr_matrix

            sizes = np.array([rows.size for rows in idx])
            h = sizes // 2
            order = np.concatenate(idx)
            pos = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            gu = np.repeat(np.arange(U), sizes)
            first = pos < h[gu]
            half = 2 * gu + (~first)
            cnt = np.where(first, h[gu], sizes[gu] - h[gu])
            keep = sizes[gu] >= 2
            A = csr_matrix((sgn[order][keep] / cnt[keep], (half[keep], order[keep])),
                           shape=(2 * U, n))
            means = np.asarray(A @ X)
        ok = np.array([rows.size >= 2 for rows in idx])
        wts = np.array([rows.size for rows in idx], dtype=np.float64) * ok
        m1, m2 = means[0::2], means[1::2]
        if d > SPECTRAL_LOWRANK_D and 2 * U < d:
            # M = sym(m1^T diag(wts) m2) has rank <= 2U: eigen-decompose it in the span of the
            # means (thin QR of [m1; m2]^T), d^2 U flops instead of d^3
            Q, R = np.linalg.qr(np.vstack([m1, m2]).T)
            S = np.zeros((2 * U, 2 * U))
            S[:U, U:] = 0.5 * np.diag(wts)
            S[U:, :U] = 0.5 * np.diag(wts)
            ev_small, V = np.linalg.eigh(R @ S @ R.T)
            evals = np.concatenate([ev_small, np.zeros(max(k - ev_small.size, 0))])
            evecs = Q @ V
            if evecs.shape[1] < k:
                evecs = np.hstack([evecs, np.zeros((d, k - evecs.shape[1]))])
        elif U > B_STEP_VECTORISE_GROUPS:
            P = (m1 * wts[:, None]).T @ m2
            evals, evecs = np.linalg.eigh(0.5 * (P + P.T))
        else:
            M = np.zeros((d, d))
            for u in range(U):
                if ok[u]:
                    M += wts[u] * 0.5 * (np.outer(m1[u], m2[u]) + np.outer(m2[u], m1[u]))
            evals, evecs = np.linalg.eigh(M)
        B0 = evecs[:, np.argsort(-evals)[:k]]
        # Directions with no signal (U < k, or zero eigenvalues) are random.
        weak = np.sort(-evals)[:k] > -1e-12 * max(1.0, abs(evals).max())
        if weak.any():
            R = rng.standard_normal((d, int(weak.sum())))
            R -= B0[:, ~weak] @ (B0[:, ~weak].T @ R)
            B0[:, weak] = np.linalg.qr(R)[0]
        return B0

    def _w_step(self, X, y, g, sw, B, W, simplex):
        """W given B, warm-started from ``W`` (groups without rows keep their column).

        Many small groups (:func:`_use_weight_blocks`): every group's k-dimensional block in
        one :func:`~.bt_blocks.fit_bt_blocks` call; otherwise one :func:`~.bt.fit_bt` /
        :func:`_fit_simplex` call per group (faster for few large groups, and for free weights
        on the compiled back-end). Both stop at the same certificate (:data:`W_STEP_TOL`).
        """
        U = W.shape[1]
        Z = X @ B
        if _use_weight_blocks(X.shape[0], U, simplex, self.backend):
            fit = _fit_weight_blocks(Z, y, g, U, sw, self._lam_value, W.T, simplex)
            W_new = fit.W.T.copy()
            empty = np.bincount(g, minlength=U) == 0
            W_new[:, empty] = W[:, empty]
            return W_new
        W = W.copy()
        for u, rows in enumerate(_group_index(g, U)):
            if rows.size == 0:
                continue
            wu = None if sw is None else sw[rows]
            if simplex:
                W[:, u] = _fit_simplex(Z[rows], y[rows], wu, self._lam_value, W[:, u], W_STEP_TOL,
                                       100)[0]
            else:
                W[:, u] = fit_bt(Z[rows], y[rows], lam=max(self._lam_value, 1e-12), sample_weight=wu,
                                 theta_init=W[:, u], tol=W_STEP_TOL, backend=self.backend).theta
        return W

    def _b_step(self, X, y, g, sw, B, W):
        """B given W. ``X`` is sorted by group. The numpy back-end (the reference) forms the
        (n, d k) Kronecker design and calls :func:`fit_bt`; numba uses the Kronecker structure
        of the Hessian (:func:`_b_step_structured`): the same convex problem to the same
        gradient tolerance."""
        d, k = B.shape
        if d * k > B_STEP_MATFREE_DK:
            return _b_step_matfree(X, y, g, sw, B, W, max(self._lam_B, 1e-12), W_STEP_TOL)
        if self.backend != "numpy":
            return _b_step_structured(X, y, sw, _group_bounds(g, W.shape[1]), B, W,
                                      max(self._lam_B, 1e-12), W_STEP_TOL)
        F = _kron_features(X, g, W)
        res = fit_bt(F, y, lam=max(self._lam_B, 1e-12), sample_weight=sw,
                     theta_init=B.T.ravel(), tol=1e-10, backend=self.backend)
        return res.theta.reshape(k, d).T.copy()

    def _altmin(self, X, y, g, sw, U, idx, B, W, simplex, phase, skip_w=False):
        lam, lam_B = self._lam_value, self._lam_B
        if not skip_w:
            W = self._w_step(X, y, g, sw, B, W, simplex)
        f = sharedrep_objective(X, y, g, B, W, lam, sw, lam_B)
        hist = [{"iter": 0, "phase": phase, "objective": f}]
        converged = False
        beta = EXTRAPOLATION_START
        for it in range(1, int(self.max_iter) + 1):
            B_new = self._b_step(X, y, g, sw, B, W)
            W_new = self._w_step(X, y, g, sw, B_new, W, simplex)
            f_new = sharedrep_objective(X, y, g, B_new, W_new, lam, sw, lam_B)
            if f_new - f > 1e-9 * max(1.0, abs(f)):
                # A sub-solver failed to decrease F (should not happen: each block is convex and
                # warm-started). Keep the better point and stop, reported as not converged.
                hist.append({"iter": it, "phase": phase, "objective": f})
                break
            # the stopping test is on the plain sweep; a converged sweep is not extrapolated, so
            # the returned W is an exact W-step of the returned B
            rel = abs(f - f_new) / max(1.0, abs(f_new))
            if self.accelerate and it >= 2 and rel > self.tol:
                B_new, W_new, f_new, beta = _extrapolate(
                    lambda Bc, Wc: sharedrep_objective(X, y, g, Bc, Wc, lam, sw, lam_B),
                    B, W, B_new, W_new, f_new, beta, simplex)
            B, W = B_new, W_new
            f = min(f_new, f)
            if rel <= self.tol:
                hist.append({"iter": it, "phase": phase, "objective": f})
                converged = True
                break
            if not simplex:  # the ridge's best gauge (balance_factors): F only decreases
                Bb, Wb = balance_factors(B, W, lam, lam_B)
                if Bb is not B:
                    fb = sharedrep_objective(X, y, g, Bb, Wb, lam, sw, lam_B)
                    if fb < f:
                        B, W, f = Bb, Wb, fb
            hist.append({"iter": it, "phase": phase, "objective": f})
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
                for s in child_seeds(self.seed, int(self.n_restarts))]
        best = None
        objs, dup, free_thetas = [], [], []
        for r, rng in enumerate(rngs):
            if r == 0:
                B0 = self._spectral_init(X, y, idx, rng)
            else:
                B0 = np.linalg.qr(rng.standard_normal((d, k)))[0]
            W0 = np.zeros((k, U))
            B, W, f, hist, conv = self._altmin(X, y, g, sw, U, idx, B0, W0, False, "free")
            q = -1
            if simplex:
                q = _duplicate_of(B @ W, free_thetas)
                free_thetas.append(B @ W)
                if q >= 0:  # same free optimum as restart q: its simplex phase is q's
                    objs.append(objs[q])
                    dup.append(q)
                    continue
                B, W = self._to_simplex(B, W, rng)
                B, W, f, h2, conv = self._altmin(X, y, g, sw, U, idx, B, W, True, "simplex",
                                                 skip_w=True)
                hist = hist + h2
            objs.append(f)
            dup.append(q)
            if best is None or f < best[2]:
                best = (B, W, f, hist, conv)
        return (*best, np.array(objs), np.array(dup, dtype=np.int64))

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
            lam = self._lam_value
            solver = lambda Z, y, c, w0: _fit_simplex(Z, y, c, lam, w0, 1e-10, 100)[0]
        res = altmin_batched(*layout, np.stack(B0s), np.stack(W0s), lam=self._lam_value,
                             lam_B=self._lam_B,
                             max_iter=int(self.max_iter), tol=self.tol, skip_w=skip_w,
                             phase=phase, simplex_solver=solver, device=self.device,
                             extrapolation_rule=extrapolation_update if self.accelerate
                             else None, extrapolation_start=EXTRAPOLATION_START,
                             project_weights=(lambda W: project_simplex(W.T).T) if simplex
                             else None,
                             rebalance=None if simplex else (
                                 lambda B, W: balance_factors(B, W, self._lam_value,
                                                              self._lam_B)))
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
        seeds = child_seeds(self.seed, int(self.n_restarts))
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
            f = sharedrep_objective(X, y, g, B, W, self._lam_value, sw, self._lam_B)
            objs.append(f)
            conv = len(hist) < 2 or abs(hist[-1]["objective"] - hist[-2]["objective"]) <= \
                1e-3 * max(1e-12, abs(hist[-2]["objective"]))
            if best is None or f < best[2]:
                best = (B, W, f, hist, conv)
        return (*best, np.array(objs))


def altmin_restarts_batched(ests, problems, U):
    """SharedRep's altmin restarts for several data sets at once (the torch kernel), the driver
    behind :func:`simulator.estimators.batched.fit_many`.

    ``ests[j]`` (same hyperparameters, own ``seed``) fits ``problems[j] = (X, y, g, sw)``; every
    data set has the same ``U`` and ``d``. Restart r of all data sets runs in one batched call;
    each data set draws its starting points from its own estimator's seed exactly as the numba
    path does, so both back-ends start from the same points. Returns, per data set, ``(B, W,
    objective, history, converged, restart_objectives, restart_duplicate_of)``, which
    ``est._set_fitted(**SharedRep._result(*out))`` records.
    """
    e0 = ests[0]
    # lam = "cv" was resolved by the estimator's own fit (fit_many fits string lams one by one)
    lams = {e.lam_ if e.lam == "cv" else e._resolve_lam(p[0], U) for e, p in zip(ests, problems)}
    if len(lams) > 1:  # lam = "auto" on different data: one batched call cannot serve them
        raise ValueError("batched SharedRep fits need one numeric lam; lam='auto' resolved to "
                         f"{sorted(lams)} on these data sets: fit them one at a time")
    d, k, R = problems[0][0].shape[1], int(e0.k), int(e0.n_restarts)
    simplex = e0.weights == "simplex"
    layout = e0._layout(problems, U)
    idxs = [_group_index(p[2], U) for p in problems]
    rngs = [[np.random.Generator(np.random.PCG64(s)) for s in child_seeds(e.seed, R)]
            for e in ests]
    best = [None] * len(problems)
    objs = [[] for _ in problems]
    dups = [[] for _ in problems]
    free_thetas = [[] for _ in problems]
    for r in range(R):
        B0s = []
        for j, p in enumerate(problems):
            rng = rngs[j][r]
            B0s.append(e0._spectral_init(p[0], p[1], idxs[j], rng) if r == 0
                       else np.linalg.qr(rng.standard_normal((d, k)))[0])
        out = e0._altmin_torch(layout, B0s, [np.zeros((k, U))] * len(problems), False, "free")
        if simplex:
            # restarts that meet an earlier one's free optimum are not run again (numba path)
            run = []
            for j, o in enumerate(out):
                q = _duplicate_of(o[0] @ o[1], free_thetas[j])
                free_thetas[j].append(o[0] @ o[1])
                dups[j].append(q)
                if q >= 0:
                    objs[j].append(objs[j][q])
                else:
                    run.append(j)
            if not run:
                continue
            sub = [a[run] for a in layout]
            mapped = [ests[j]._to_simplex(out[j][0], out[j][1], rngs[j][r]) for j in run]
            out2 = e0._altmin_torch(sub, [m[0] for m in mapped], [m[1] for m in mapped],
                                    True, "simplex", skip_w=True)
            for j, (B, W, f, h2, conv) in zip(run, out2):
                o = (B, W, f, out[j][3] + h2, conv)
                objs[j].append(f)
                if best[j] is None or f < best[j][2]:
                    best[j] = o
            continue
        for j, o in enumerate(out):
            objs[j].append(o[2])
            dups[j].append(-1)
            if best[j] is None or o[2] < best[j][2]:
                best[j] = o
    return [(*best[j], np.array(objs[j]), np.array(dups[j], dtype=np.int64))
            for j in range(len(problems))]


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

