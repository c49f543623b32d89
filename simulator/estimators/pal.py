r"""PAL: prototype mixtures for personalised rewards, ideal points (PAL-A) and rewards (PAL-B).

Chen, Chen, Rege, Wang, Vinayak, "PAL: Sample-Efficient Personalized Reward Modeling for
Pluralistic Alignment" (ICLR 2025; arXiv 2406.08469; official code
RamyaLab/pluralistic-alignment, ``src/pal_rm_a`` and ``src/pal_rm_b``). A shared map ``f`` takes
a response into a latent preference space of dimension ``m``; ``K`` prototypes ``p_k`` live
there and user ``u`` is a mixture ``a_u = sum_k w_uk p_k = P w_u`` with ``w_u = softmax(z_u)``
on the simplex. Here ``f`` is linear, ``f(phi) = M phi`` with ``M`` of shape (m, d).

PAL-A (ideal points): the preferred response is the one nearer the user's ideal point,

.. math::

    P(a_1 \succ a_0 \mid u) = \sigma\big(\lVert M\phi_0 - a_u\rVert^2
                                        - \lVert M\phi_1 - a_u\rVert^2\big)
    = \sigma\big(2\,a_u^\top M (\phi_1 - \phi_0) - (\lVert M\phi_1\rVert^2
                                                      - \lVert M\phi_0\rVert^2)\big).

PAL-B (reward mixture): ``r_u(phi) = <M phi, a_u>``, so
``P(a_1 > a_0 | u) = sigma(a_u^T M (phi_1 - phi_0))``. Both fit

.. math::

    \min_{M, P, Z}\; \frac{1}{n}\sum_{i=1}^{n} -\log\sigma(s_i\, m_i(M, P, z_{u_i}))
        + \frac{\lambda}{2}\big(\lVert M\rVert_F^2 + \lVert P\rVert_F^2\big),

the pooled mean BT loss over comparisons (PAL trains on batches of comparisons pooled over
users), with ``s_i = 2 y_i - 1`` and ``m_i`` the margin above. Few-shot (``fit_new_users``):
``M`` and ``P`` frozen, each new user's ``z`` fitted on their own comparisons.

What is simplified for linear features, and how the two differ from LoRe
------------------------------------------------------------------------
* The paper's ``f`` is an MLP on frozen foundation-model embeddings; here it is linear. The
  official PAL-B makes each prototype a function of the prompt (``g_k(prompt)``); the simulator
  has no prompt embedding, so prototypes are constant vectors. The official code's learnable
  logit scale is absorbed by the scale of ``M`` and ``P`` (the margin is homogeneous in them:
  degree 2, both for PAL-A and PAL-B); its cosine ("angle") and unsquared-distance ("dist")
  variants are not implemented; the squared distance gives the BTL form above. [reconstructed:
  the paper's equations could not be checked against the PDF; the form follows the ideal-point
  model as the paper's abstract and code describe it.]
* PAL-B with linear ``f`` is LoRe's model with the basis factored as ``V = M^T P`` (d, K): when
  ``m >= K`` the set of rewards is the same, ``theta_u = M^T P softmax(z_u)``. They differ in the
  parametrisation (a factorisation, whose optimisation and ridge act differently), the loss
  weighting (PAL pools comparisons, LoRe averages per user first), and PAL has no reference pull
  and no pruning.
* PAL-A is not linear in ``X = phi_1 - phi_0``: the shared quadratic term
  ``||M phi_1||^2 - ||M phi_0||^2`` needs both responses' features. ``PreferenceData`` holds only
  ``X`` plus, for data drawn from a finite-arm environment, ``context`` and ``actions``; so
  ``PALA`` requires the environment (``fit(data, env=env)``; the estimator keeps its feature
  table for scoring) and raises a clear error without it. With only differences (taking
  ``phi_1 = X / 2``, ``phi_0 = -X / 2``) the quadratic term vanishes and PAL-A would be PAL-B.
  ``theta_`` of PAL-A is the user-specific linear part ``2 M^T a_u``; comparisons are scored with
  the quadratic term (``predict_proba`` / ``log_likelihood`` / ``margin``), and
  ``reward(Phi, u) = -||M phi - a_u||^2`` is the reward of single responses.
* On a planted *linear* truth PAL-A is not identified: it reaches ``theta_u`` only in the limit
  ``M -> 0``, ``||a_u|| -> infinity`` (the quadratic term shrinks as ``||M||^2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ..seeding import child_seeds
from ..validation import Choice, Custom, Int, InvalidParameterError, Real, Seed
from .base import (
    NewUsersFit,
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    require_every_group,
)
from .lore import (
    OPTIMIZERS,
    SOLVERS,
    UnitSums,
    alternate_exact,
    fewshot_simplex,
    lbfgs_block,
    minimise,
    simplex_residual,
    softmax_backward,
    softmax_rows,
    weights_to_logits,
)

__all__ = ["PALA", "PALB", "PALANewUsersFit", "pal_objective", "pair_features"]


def pair_features(data, features):
    """``(phi_0, phi_1)`` of every comparison of ``data`` from an environment's feature table.

    Parameters
    ----------
    data : PreferenceData
        With ``context`` and ``actions`` (data drawn with ``Population.sample(env=...)``).
    features : array (n_contexts, n_actions, d)
        ``FiniteArmEnv.features``.

    Raises
    ------
    ValueError
        ``data`` has no ``context`` / ``actions``, their ids fall outside the table, or the
        table does not give back ``data.X = phi_1 - phi_0`` (another environment).
    """
    if data.context is None or data.actions is None:
        raise InvalidParameterError(
            "PALA needs each comparison's two responses' features, not only their difference "
            "X: data must carry context and actions (draw it with Population.sample(n, seed, "
            "env=env)) and fit must be given env= (the FiniteArmEnv the data came from)")
    F = np.asarray(features)
    M, A, d = F.shape
    if d != data.d:
        raise InvalidParameterError(f"env has feature dimension {d}, data has d = {data.d}")
    if data.context.max() >= M or data.actions.max() >= A:
        raise InvalidParameterError(f"data's context / action ids exceed the environment's "
                                    f"{M} contexts x {A} actions")
    phi0 = F[data.context, data.actions[:, 0]]
    phi1 = F[data.context, data.actions[:, 1]]
    if not np.allclose(phi1 - phi0, data.X, rtol=1e-9, atol=1e-9):
        raise InvalidParameterError("env does not match data: phi(a1) - phi(a0) differs from "
                                    "data.X (pass the environment the data were drawn from)")
    return phi0, phi1


def pal_objective(M, P, Z, Xs, units: UnitSums, weights, *, ideal: bool, lam: float = 0.0,
                  Phi0=None, Phi1=None, s=None):
    r"""PAL's objective (module docstring) and its exact gradient.

    Parameters
    ----------
    M : array (m, d)
        The linear map ``f``.
    P : array (m, K)
        Prototypes (columns).
    Z : array (U, K)
        Logits of the units' weights.
    Xs : array (n, d)
        Signed differences ``s_i (phi_1 - phi_0)``.
    units : UnitSums
        The comparisons' units (for the per-unit sums of the gradient).
    weights : array (n,)
        Each comparison's weight in the loss (``1 / n`` pooled; ``1 / |D_u|`` per unit).
    ideal : bool
        PAL-A (ideal points; needs ``Phi0``, ``Phi1`` and ``s``) or PAL-B.
    lam : float
        Ridge ``lam / 2 (||M||^2 + ||P||^2)``.

    Returns
    -------
    F : float
    dM, dP, dZ : arrays of the shapes of M, P, Z
    per_row : array (n,)
        Each comparison's BT log-loss.
    """
    A = softmax_rows(Z)                   # (U, K)
    F, dM, dP, dA, per_row = pal_loss_weights(M, P, A, Xs, units, weights, ideal=ideal,
                                              lam=lam, Phi0=Phi0, Phi1=Phi1, s=s)
    return F, dM, dP, softmax_backward(A, dA), per_row


def _quadratic_offset(M, Phi0, Phi1):
    """PAL-A's shared term of the (unsigned) margin, ``-(||M phi_1||^2 - ||M phi_0||^2)``."""
    F1, F0 = Phi1 @ M.T, Phi0 @ M.T
    return -(np.einsum("ij,ij->i", F1, F1) - np.einsum("ij,ij->i", F0, F0))


def pal_loss_weights(M, P, A, Xs, units: UnitSums, weights, *, ideal: bool, lam: float = 0.0,
                     Phi0=None, Phi1=None, s=None):
    """:func:`pal_objective` as a function of the weights ``A`` (U, K) themselves; returns
    ``(F, dM, dP, dA, per_row)``."""
    pts = A @ P.T                         # (U, m): a_u = P w_u
    c = 2.0 if ideal else 1.0
    MXs = Xs @ M.T                        # (n, m)
    m = c * np.einsum("ij,ij->i", MXs, pts[units.unit])
    if ideal:
        F1, F0 = Phi1 @ M.T, Phi0 @ M.T
        m = m - s * (np.einsum("ij,ij->i", F1, F1) - np.einsum("ij,ij->i", F0, F0))
    per_row = np.logaddexp(0.0, -m)
    h = -expit(-m) * weights              # dF/dm_i (m already carries s_i)
    GX = units.sum(h[:, None] * Xs)       # (U, d): sum_{i in D_u} h_i s_i x_i
    dpts = c * GX @ M.T                   # (U, m)
    dM = c * pts.T @ GX
    if ideal:
        hs = h * s
        dM = dM - 2.0 * ((hs[:, None] * F1).T @ Phi1 - (hs[:, None] * F0).T @ Phi0)
    dP = dpts.T @ A
    F = float(np.dot(weights, per_row))
    if lam > 0:
        F += 0.5 * lam * (float(np.sum(M * M)) + float(np.sum(P * P)))
        dM = dM + lam * M
        dP = dP + lam * P
    return F, dM, dP, dpts @ P, per_row


@dataclass(frozen=True, eq=False)
class PALANewUsersFit(NewUsersFit):
    """New users' fit of PAL-A: :class:`~.base.NewUsersFit` plus what scoring needs.

    ``theta`` is the linear part ``2 M^T a_j``; comparisons are scored with the shared quadratic
    term, so ``predict_proba`` / ``log_likelihood`` / ``accuracy`` need the environment's
    feature table (``features``, kept from the fit) and data with ``context`` / ``actions``.
    """

    M: np.ndarray | None = None
    points: np.ndarray | None = None
    features: np.ndarray | None = None

    def margin(self, data) -> np.ndarray:
        """``log P(y=1) / P(y=0)`` of each comparison (group = new user)."""
        phi0, phi1 = pair_features(check_data(data), self.features)
        return _ideal_margin(self.M, self.points, phi0, phi1, data.group)

    def reward(self, X, unit) -> np.ndarray:
        """Reward ``-||M phi - a_unit||^2`` of single responses ``X`` ((n, d) or (d,))."""
        return _ideal_reward(self.M, self.points, X, unit)

    def predict_proba(self, data) -> np.ndarray:
        return expit(self.margin(data))

    def log_likelihood(self, data) -> float:
        z = self.margin(data)
        return float(-np.sum(np.logaddexp(0.0, -(2.0 * data.y - 1.0) * z)))

    def accuracy(self, data) -> float:
        return float(np.mean((self.margin(data) > 0) == (data.y == 1)))


def _ideal_margin(M, pts, phi0, phi1, unit):
    a = pts[unit]
    return (np.sum((phi0 @ M.T - a) ** 2, axis=1) - np.sum((phi1 @ M.T - a) ** 2, axis=1))


def _ideal_reward(M, pts, X, unit):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim not in (1, 2) or X.shape[-1] != M.shape[1]:
        raise InvalidParameterError(f"X must have shape (n, {M.shape[1]}) or "
                                    f"({M.shape[1]},); got {X.shape}")
    unit = np.asarray(unit)
    if unit.dtype.kind not in "iu" or (unit.size and (unit.min() < 0
                                                      or unit.max() >= pts.shape[0])):
        raise InvalidParameterError(f"unit ids must be integers in [0, {pts.shape[0]})")
    return -np.sum((X @ M.T - pts[unit]) ** 2, axis=-1)


class _PAL(PreferenceEstimator):
    """Shared fit of PAL-A and PAL-B (``_IDEAL`` selects the margin)."""

    _IDEAL = False
    _parameter_constraints = {
        "k": Int(1),
        "dim": Int(1, none=True),
        "lam": Real(0.0),
        "solver": Choice(SOLVERS),
        "optimizer": Choice(OPTIMIZERS),
        "lr": Real(0.0, low_open=True),
        "max_iter": Int(1),
        "tol": Real(0.0, low_open=True),
        "fewshot_lr": Real(0.0, low_open=True),
        "fewshot_max_iter": Int(1),
        "seed": Seed(),
        "unit": Custom(check_unit),
    }

    def __init__(self, k: int = 4, dim: int | None = None, lam: float = 1e-3,
                 solver: str = "joint", optimizer: str = "lbfgs", lr: float = 0.01,
                 max_iter: int = 500, tol: float = 1e-6, fewshot_lr: float = 0.1,
                 fewshot_max_iter: int = 500, seed=0, unit: str = "group"):
        self.k = k
        self.dim = dim
        self.lam = lam
        self.solver = solver
        self.optimizer = optimizer
        self.lr = lr
        self.max_iter = max_iter
        self.tol = tol
        self.fewshot_lr = fewshot_lr
        self.fewshot_max_iter = fewshot_max_iter
        self.seed = seed
        self.unit = unit

    # -------------------------------------------------------------- hooks of the subclasses
    def _pairs(self, data, env):
        """(Phi0, Phi1, features) for PAL-A; (None, None, None) for PAL-B."""
        return None, None, None

    def _solve(self, data, env):
        self._validate_params()
        data = check_data(data).as_units(check_unit(self.unit))
        require_every_group(data, type(self).__name__, self.unit)
        Phi0, Phi1, feats = self._pairs(data, env)
        d, K, U = data.d, int(self.k), data.n_groups
        m_dim = K if self.dim is None else int(self.dim)
        units = UnitSums(data.group, U)
        Xs = data.signed()
        s = 2.0 * data.y - 1.0
        w = np.full(data.n, 1.0 / data.n)
        rng = np.random.Generator(np.random.PCG64(child_seeds(self.seed, 2)[0]))
        # PAL's "gaussian, expectation-norm" start: unit expected norms of M phi and of p_k
        M0 = rng.standard_normal((m_dim, d)) / np.sqrt(d)
        P0 = rng.standard_normal((m_dim, K)) / np.sqrt(m_dim)
        Z0 = rng.standard_normal((U, K))
        nM, nP = m_dim * d, m_dim * K
        lam = float(self.lam)

        def unpack(x):
            return (x[:nM].reshape(m_dim, d), x[nM:nM + nP].reshape(m_dim, K),
                    x[nM + nP:].reshape(U, K))

        def fun(x):
            M, P, Z = unpack(x)
            F, dM, dP, dZ, _ = pal_objective(M, P, Z, Xs, units, w, ideal=self._IDEAL,
                                             lam=lam, Phi0=Phi0, Phi1=Phi1, s=s)
            return F, np.concatenate([dM.ravel(), dP.ravel(), dZ.ravel()])

        x0 = np.concatenate([M0.ravel(), P0.ravel(), Z0.ravel()])
        n_iter, converged = 0, False
        if self.optimizer == "adam" or self.solver == "joint":
            res = minimise(fun, x0, optimizer=self.optimizer, solver=self.solver,
                           blocks=[slice(nM + nP, None), slice(0, nM + nP)],
                           lr=np.full(x0.size, float(self.lr)), max_iter=int(self.max_iter),
                           tol=float(self.tol))
            x0 = res.x
            n_iter, converged = int(res.n_iter), bool(res.converged)
        M, P, Z = unpack(x0)
        A = softmax_rows(Z)
        c = 2.0 if self._IDEAL else 1.0
        tol = float(self.tol)
        if self.optimizer == "lbfgs":
            # exact alternating sweeps after L-BFGS (as LoRe's; a unit whose logits saturated
            # at a vertex has a vanishing gradient in z): W by projected Newton per unit (the
            # margin is linear in w, PAL-A with a fixed offset), then (M, P) by L-BFGS
            def loss(A, MP, grad=False):
                M, P = MP
                out = pal_loss_weights(M, P, A, Xs, units, w, ideal=self._IDEAL, lam=lam,
                                       Phi0=Phi0, Phi1=Phi1, s=s)
                return out if grad else out[0]

            def w_step(A, MP):
                M, P = MP
                offset = None if not self._IDEAL else _quadratic_offset(M, Phi0, Phi1)
                return fewshot_simplex(c * (data.X @ M.T) @ P, data.y, data.group, U,
                                       offset=offset, W0=A)[0]

            def mp_step(A, MP):
                def f(x):
                    Mx, Px = x[:nM].reshape(m_dim, d), x[nM:].reshape(m_dim, K)
                    F, dM, dP, _, _ = loss(A, (Mx, Px), grad=True)
                    return F, np.concatenate([dM.ravel(), dP.ravel()])
                x = lbfgs_block(f, np.concatenate([MP[0].ravel(), MP[1].ravel()]), 200, tol)
                return x[:nM].reshape(m_dim, d), x[nM:].reshape(m_dim, K)

            A, (M, P), sweeps, converged = alternate_exact(loss, w_step, mp_step, A, (M, P),
                                                           max_sweeps=int(self.max_iter))
            n_iter += sweeps
        F, dM, dP, dA, _ = pal_loss_weights(M, P, A, Xs, units, w, ideal=self._IDEAL, lam=lam,
                                            Phi0=Phi0, Phi1=Phi1, s=s)
        # certificate: the larger of ||d(M, P)|| and the units' simplex KKT residuals (at the
        # scale of each unit's mean loss: the pooled weights sum to n_u / n per unit)
        size = units.counts / data.n
        kkt = max(float(np.sqrt(np.sum(dM * dM) + np.sum(dP * dP))),
                  float(simplex_residual(A, dA, size).max()))
        if self.optimizer == "adam":
            converged = kkt <= tol
        pts = A @ P.T
        attrs = dict(M_=M, P_=P, Z_=weights_to_logits(A), W_=A.T.copy(), points_=pts,
                     theta_=c * pts @ M, objective_=F, kkt_residual_=kkt, n_iter_=n_iter,
                     converged_=bool(converged))
        if feats is not None:
            attrs["env_features_"] = feats
        return self._set_fitted(**attrs)

    def _fewshot(self, data, env):
        self._check_fitted()
        data = check_data(data)
        if data.d != self.M_.shape[1]:
            raise InvalidParameterError(f"data must have d = {self.M_.shape[1]} features (the "
                                        f"fitted map); got d = {data.d}")
        require_every_group(data, f"{type(self).__name__}.fit_new_users", "new user")
        Phi0, Phi1, feats = self._pairs(data, env)
        M, P = self.M_, self.P_
        K, N = P.shape[1], data.n_groups
        units = UnitSums(data.group, N)
        Xs = data.signed()
        s = 2.0 * data.y - 1.0
        c = 2.0 if self._IDEAL else 1.0
        if self.optimizer == "lbfgs":
            # exact: the margin is linear in w (PAL-A: plus a fixed offset), convex on the simplex
            offset = _quadratic_offset(M, Phi0, Phi1) if self._IDEAL else None
            A, obj, kkt, n_it, conv = fewshot_simplex(c * (data.X @ M.T) @ P, data.y,
                                                      data.group, N, offset=offset)
            return self._new_users(A, obj, kkt, n_it, conv, feats)
        rng = np.random.Generator(np.random.PCG64(child_seeds(self.seed, 2)[1]))
        Z0 = rng.standard_normal((N, K))

        # each new user's own mean loss (the terms separate); no ridge on the frozen M, P
        def fun(z):
            F, _, _, dZ, _ = pal_objective(M, P, z.reshape(N, K), Xs, units, units.c,
                                           ideal=self._IDEAL, Phi0=Phi0, Phi1=Phi1, s=s)
            return F / N, dZ.ravel() / N

        res = minimise(fun, Z0.ravel(), optimizer=self.optimizer, solver="joint", blocks=None,
                       lr=np.full(N * K, float(self.fewshot_lr)),
                       max_iter=int(self.fewshot_max_iter), tol=float(self.tol) / N)
        Z = res.x.reshape(N, K)
        _, _, _, dZ, per_row = pal_objective(M, P, Z, Xs, units, units.c, ideal=self._IDEAL,
                                             Phi0=Phi0, Phi1=Phi1, s=s)
        gn = np.linalg.norm(dZ, axis=1)
        conv = (gn <= float(self.tol)) | res.converged
        return self._new_users(softmax_rows(Z), units.mean(per_row), gn,
                               np.full(N, res.n_iter), conv, feats)

    def _new_users(self, A, obj, resid, n_iter, conv, feats):
        M, P = self.M_, self.P_
        pts = A @ P.T
        c = 2.0 if self._IDEAL else 1.0
        common = dict(theta=c * pts @ M, W=A.T, objective=obj, grad_norm=resid, n_iter=n_iter,
                      converged=bool(np.all(conv)), converged_units=conv, weights="simplex")
        if self._IDEAL:
            return PALANewUsersFit(**common, M=M, points=pts, features=feats)
        return NewUsersFit(**common)


class PALB(_PAL):
    """PAL-B: user reward ``<M phi, P softmax(z_u)>``, a mixture of ``K`` prototype rewards.

    Parameters
    ----------
    k : int, default 4
        Number of prototypes ``K`` (>= 1).
    dim : int, optional
        Latent dimension ``m`` of ``f(phi) = M phi`` (default ``d``; ``m >= K`` makes the
        reward set LoRe's).
    lam : float, default 1e-4
        Ridge ``lam / 2 (||M||^2 + ||P||^2)`` on the pooled mean loss (PAL's weight decay; it
        also fixes the scale gauge ``M -> c M, P -> P / c``).
    solver : {"joint", "alternating"}, default "joint"
        All parameters at once, or ``Z`` then ``(M, P)`` in turn.
    optimizer : {"lbfgs", "adam"}, default "lbfgs"
        L-BFGS on the exact gradient, or Adam with ``max_iter`` steps of size ``lr``.
    lr : float, default 0.01
    max_iter : int, default 500
        L-BFGS iterations (Adam steps), then at most as many exact alternating sweeps.
    tol : float, default 1e-6
        Gradient tolerance of the (mean) objective.
    fewshot_lr : float, default 0.1
    fewshot_max_iter : int, default 500
    seed : int, SeedSequence or Generator, default 0
        Initial ``M``, ``P``, ``Z`` (child 0); new users' initial logits (child 1).
    unit : {"group", "user"}, default "group"

    Attributes
    ----------
    M_ : array (m, d)
    P_ : array (m, K)
    Z_ : array (U, K)
    W_ : array (K, U)
        ``softmax(z_u)`` as columns.
    points_ : array (U, m)
        ``a_u = P_ softmax(z_u)``.
    theta_ : array (U, d)
        ``M_^T a_u``.
    objective_, kkt_residual_, n_iter_, converged_
        The certificate: ``kkt_residual_`` is the larger of ``||d(M, P)||`` and the units'
        simplex KKT residuals (each at the scale of the unit's mean loss); ``converged_``:
        L-BFGS, the exact alternating sweeps (W by projected Newton, then ``(M, P)`` by L-BFGS)
        stopped lowering the objective (relative 1e-8); Adam, ``kkt_residual_ <= tol``.
    """

    _fit_params = ()
    _IDEAL = False

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit ``M``, the prototypes and every unit's weights; returns ``self``."""
        self._check_fit_params(fit_params)
        return self._solve(data, None)

    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None) -> NewUsersFit:
        """New users' weights with ``M_`` and ``P_`` frozen (each user's own mean loss).

        ``weights`` must be None or ``"simplex"`` (PAL's weights are softmax weights).
        """
        if weights not in (None, "simplex"):
            raise InvalidParameterError(f"weights must be None or 'simplex'; got {weights!r}")
        return self._fewshot(data, None)


class PALA(_PAL):
    """PAL-A: ideal points ``a_u = P softmax(z_u)``; the response nearer ``a_u`` wins.

    Parameters are those of :class:`PALB`. ``fit(data, env=env)`` needs the
    :class:`~simulator.arms.FiniteArmEnv` the data were drawn from (``data.context`` and
    ``data.actions`` index its feature table): PAL-A's margin needs both responses' features.
    The table is kept (``env_features_``) to score later data drawn from the same environment.

    Attributes
    ----------
    As :class:`PALB`, with ``theta_ = 2 M_^T a_u`` the linear part of the margin (the full margin
    subtracts the shared ``||M phi_1||^2 - ||M phi_0||^2``), and ``env_features_``.
    """

    _fit_params = ("env",)
    _IDEAL = True

    def _pairs(self, data, env):
        if env is None:
            feats = getattr(self, "env_features_", None)
            if feats is None:
                raise InvalidParameterError(
                    "PALA needs env= (the FiniteArmEnv the data were drawn from): its margin "
                    "uses both responses' features, and data holds only their difference X "
                    "plus context / action ids")
        else:
            feats = getattr(env, "features", None)
            if feats is None:
                raise InvalidParameterError(f"env must be a FiniteArmEnv; got "
                                            f"{type(env).__name__}")
        phi0, phi1 = pair_features(data, feats)
        return phi0, phi1, feats

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit ``M``, the prototypes and every unit's weights; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
            With ``context`` and ``actions``.
        **fit_params
            ``env`` (required): the :class:`~simulator.arms.FiniteArmEnv` of the data.
        """
        fp = self._check_fit_params(fit_params)
        self.__dict__.pop("env_features_", None)  # a refit must not score with an old table
        if fp["env"] is None:
            self._pairs(check_data(data), None)  # raises the error naming env
        return self._solve(data, fp["env"])

    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None, env=None) -> PALANewUsersFit:
        """New users' weights with ``M_`` and ``P_`` frozen.

        ``env`` defaults to the environment of the fit (``env_features_``).
        """
        if weights not in (None, "simplex"):
            raise InvalidParameterError(f"weights must be None or 'simplex'; got {weights!r}")
        return self._fewshot(data, env)

    # ----------------------------------------------------------------- scoring
    def margin(self, data, env=None) -> np.ndarray:
        """``log P(y=1) / P(y=0)`` of each comparison under its unit's ideal point."""
        self._check_fitted()
        data = check_data(data)
        phi0, phi1, _ = self._pairs(data, env)
        return _ideal_margin(self.M_, self.points_, phi0, phi1, self._unit_ids(data))

    def reward(self, X, group) -> np.ndarray:
        """Reward ``-||M_ phi - a_group||^2`` of single responses ``X`` ((n, d) or (d,))."""
        self._check_fitted()
        return _ideal_reward(self.M_, self.points_, X, group)

    def predict_proba(self, data, env=None) -> np.ndarray:
        """P(y = 1) of each comparison (``env`` defaults to the fit's)."""
        return expit(self.margin(data, env))

    def log_likelihood(self, data, env=None) -> float:
        """Sum of BT log-likelihoods of ``data`` under PAL-A's margin."""
        z = self.margin(data, env)
        return float(-np.sum(np.logaddexp(0.0, -(2.0 * data.y - 1.0) * z)))
