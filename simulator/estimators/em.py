r"""MaxMin-RLHF's reward mixture: EM over USERS for a mixture of Bradley–Terry models.

Each user ``h`` belongs to one latent cluster ``c(h)``; all of the user's comparisons share it.
With ``L[h, c] = sum_{i in D_h} log sigma(s_i <theta_c, x_i>)`` (``s_i = 2 y_i - 1``: the chosen
response against the rejected one):

``variant="hard"`` — Algorithm 2 of MaxMin-RLHF (arXiv 2402.08925; our note sec. 3.2–3.4, 6.4):

* E-step: ``c(h) = argmax_c L[h, c]`` (no mixing weights, no soft responsibilities);
* M-step: for every non-empty cluster, ``theta_c = argmin -sum_{h: c(h)=c} sum_{D_h}
  log sigma(s_i <theta, x_i>) + lam/2 ||theta||^2``, warm-started from the previous ``theta_c``;
* initialisation as in the authors' code: iteration 0 skips the E-step and puts user ``h`` in
  cluster ``h mod K`` (round robin); fixed iteration cap (10 in their code, ``max_iter``) and, in
  addition, a convergence test (assignments unchanged).
  Objective (classification likelihood, never decreases):
  ``J(theta) = sum_h max_c L[h, c] - lam/2 sum_c ||theta_c||^2``.

``variant="soft"`` — a proper EM for the mixture ``p(D_h) = sum_c pi_c exp(L[h, c])``:

* E-step (numba kernel :mod:`simulator.kernels.em_numba`, log space):
  ``R[h, c] ∝ pi_c exp(L[h, c])``;
* M-step: ``pi_c = mean_h R[h, c]``, ``theta_c`` = BT fit with sample weights ``R[user_i, c]``;
* objective (never decreases, MAP-EM with the ridge as a Gaussian prior):
  ``l(theta, pi) = sum_h log sum_c pi_c exp(L[h, c]) - lam/2 sum_c ||theta_c||^2``;
* inits ``"kmeans++"`` (k-means++ seeding then Lloyd on the per-user moment vectors
  ``mean_{i in D_h} s_i x_i``, which are proportional to ``Sigma theta_{c(h)}`` plus noise for
  Gaussian X) and ``"random"``; restarts; the best final objective is kept.

``m_step="sharedrep"`` — SharedRep with latent groups (the authors' later ``imdb_clustering``
branch, our SharedRep note sec. 5.4): the M-step fits a :class:`~.sharedrep.SharedRep` with ``k``
traits to the clusters (hard: relabelled data; soft: every comparison repeated once per cluster
with weight ``R[user_i, c]``), warm-started from the previous factors; the penalty in the
objective is then ``lam/2 (||B||_F^2 + ||W||_F^2)``. Their E-step bug is fixed: we score chosen
vs rejected (``s_i``), not response 0 vs response 1 (which ignores the labels).

Every sub-problem is solved by :func:`~simulator.estimators.bt.fit_bt`.

``backend="torch"`` computes the E-step (margins, user log-likelihoods, responsibilities) with
:class:`simulator.kernels.torch_em.TorchEStep` on ``device`` (the data stay there across
iterations); the M-step is unchanged. Same results as numba to ~1e-12 relative per E-step.
"""

from __future__ import annotations

import numpy as np

from ..kernels import BACKENDS, em_numba
from ..metrics import adjusted_rand_index, purity
from ..seeding import child_seeds
from ..validation import Choice, Int, InvalidParameterError, Real, Seed, Str
from .base import PreferenceEstimator, check_data, one_blas_thread_fit, renamed_param
from .bt import fit_bt
from .sharedrep import WEIGHTS, SharedRep, sharedrep_objective

__all__ = ["EMMixture", "e_step_reference", "user_loglik_reference"]

VARIANTS = ("hard", "soft")
INITS = ("round_robin", "kmeans++", "random")
M_STEPS = ("separate", "sharedrep")
#: the E-step has a numba and a torch kernel; its numpy reference (:func:`e_step_reference`) is
#: for the tests only
EM_BACKENDS = tuple(b for b in BACKENDS if b != "numpy")


def user_loglik_reference(X, y, user, theta, n_users) -> np.ndarray:
    """numpy reference of :func:`simulator.kernels.em_numba.user_loglik` (from X and theta)."""
    t = (2.0 * np.asarray(y, float) - 1.0)[:, None] * (X @ np.asarray(theta).T)
    lls = -np.logaddexp(0.0, -t)
    L = np.zeros((n_users, lls.shape[1]))
    np.add.at(L, np.asarray(user), lls)
    return L


def e_step_reference(L, log_pi):
    """numpy reference of :func:`simulator.kernels.em_numba.e_step`."""
    from scipy.special import logsumexp

    A = L + log_pi[None, :]
    lse = logsumexp(A, axis=1)
    return np.exp(A - lse[:, None]), lse


def _kmeanspp_labels(M, K, rng, n_lloyd=20):
    H = M.shape[0]
    centers = [M[rng.integers(H)]]
    for _ in range(1, K):
        D = np.min([np.sum((M - c) ** 2, axis=1) for c in centers], axis=0)
        tot = D.sum()
        j = rng.integers(H) if tot <= 0 else rng.choice(H, p=D / tot)
        centers.append(M[j])
    C = np.array(centers)
    labels = np.zeros(H, dtype=np.int64)
    for _ in range(n_lloyd):
        D = ((M[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        new = D.argmin(axis=1)
        for c in range(K):
            if np.any(new == c):
                C[c] = M[new == c].mean(axis=0)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


class EMMixture(PreferenceEstimator):
    """Mixture of BT rewards over users, fitted by (hard or soft) EM.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``K >= 1`` (known, as in MaxMin-RLHF). It counts the latent
        clusters EM fits, not the data's known groups (``data.n_groups``).
    variant : {"hard", "soft"}
    init : {"round_robin", "kmeans++", "random"}, optional
        Default ``"round_robin"`` for hard (the authors' code), ``"kmeans++"`` for soft.
        Round robin is deterministic, so it runs once whatever ``n_restarts`` says.
    n_restarts : int, default 3
    max_iter : int, optional
        EM iterations (M-steps); default 10 for hard (the authors' cap), 200 for soft.
    tol : float, default 1e-7
        Soft: stop when the objective's relative change is ``<= tol``. Hard: stop when the
        assignments no longer change.
    lam : float, default 1e-3
        Ridge of every M-step fit.
    m_step : {"separate", "sharedrep"}
        One free ``theta_c`` per cluster, or SharedRep factors ``theta_c = B w_c`` (latent
        SharedRep).
    k : int, optional
        Number of traits for ``m_step="sharedrep"`` (required there).
    weights : {"free", "simplex"}
        SharedRep weights for ``m_step="sharedrep"``.
    seed : int or SeedSequence, default 0
    backend : {"numba", "torch"}, default "numba"
        E-step kernel (module docstring).
    device : str, default "cpu"
        Torch device of the E-step for ``backend="torch"``.
    n_groups : int, optional
        Deprecated alias of ``n_clusters`` (issue 13; a :class:`FutureWarning`; giving both is
        an error).

    Attributes
    ----------
    theta_ : array (K, d)
        One row per cluster, in no particular order: ``reward(X, c)`` takes cluster ids, and
        ``predict_proba`` / ``log_likelihood`` score each comparison of a fitted user by that
        user's cluster, ``theta_[assignments_[data.user]]`` (not by ``data.group``).
    assignments_ : array (n_users,)
        Argmax cluster of each user (users without comparisons get the largest cluster).
    responsibilities_ : array (n_users, K)
        One-hot for hard EM.
    mixing_weights_ : array (K,)
        ``pi`` (soft) or the fraction of users per cluster (hard).
    log_likelihood_ : float
        Soft: observed-data log-likelihood ``sum_h log sum_c pi_c exp(L[h,c])``; hard: the
        classification log-likelihood ``sum_h max_c L[h, c]``.
    objective_ : float
        The monotone EM objective (log-likelihood minus the ridge).
    history_ : list of dict
        Per iteration of the kept restart: ``iter``, ``objective``, ``log_likelihood``, and with
        ``true_groups`` also ``purity`` and ``ari``.
    restart_objectives_ : array
    kkt_residual_ : float
        Stationarity residual of the EM objective at the returned parameters (gradient norm in
        the parameters, plus the mixing weights' KKT residual for soft EM; see
        :meth:`_kkt_residual`). Certifies a fixed point: EM stops on the objective's change
        (soft) or unchanged assignments (hard), and this says how stationary that point is.
    B_, W_ : SharedRep factors (``m_step="sharedrep"`` only)
    n_iter_ : int
    converged_ : bool
        The stopping test (``tol`` on the objective, or unchanged assignments) was met within
        ``max_iter`` iterations.
    """

    _parameter_constraints = {
        "n_clusters": Int(1, none=True),
        "variant": Choice(VARIANTS),
        "init": Choice((None,) + INITS),
        "n_restarts": Int(1),
        "max_iter": Int(1, none=True),
        "tol": Real(0.0, low_open=True),
        "lam": Real(0.0),
        "m_step": Choice(M_STEPS),
        "k": Int(1, none=True),
        "weights": Choice(WEIGHTS),
        "seed": Seed(),
        "backend": Choice(EM_BACKENDS),
        "device": Str(),
        "n_groups": Int(1, none=True),
    }

    def __init__(self, n_clusters: int | None = None, variant: str = "soft",
                 init: str | None = None, n_restarts: int = 3, max_iter: int | None = None,
                 tol: float = 1e-7, lam: float = 1e-3, m_step: str = "separate", k: int | None = None,
                 weights: str = "free", seed=0, backend: str = "numba", device: str = "cpu",
                 n_groups: int | None = None):
        self.n_clusters = n_clusters
        self.variant = variant
        self.init = init
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.lam = lam
        self.m_step = m_step
        self.k = k
        self.weights = weights
        self.seed = seed
        self.backend = backend
        self.device = device
        self.n_groups = n_groups

    def _K(self) -> int:
        """The cluster count (``n_clusters``, or its deprecated alias); checked in ``fit``."""
        return int(self.n_clusters if self.n_clusters is not None else self.n_groups)

    # ---------------------------------------------------------------- validation
    def _validate(self, data):
        self._validate_params()
        K = renamed_param(self, "n_clusters", "n_groups")
        if self.device != "cpu" and self.backend != "torch":
            raise InvalidParameterError(f"device {self.device!r} needs backend='torch'")
        if self.m_step == "sharedrep":
            if self.k is None:
                raise InvalidParameterError("k must be given when m_step='sharedrep'")
            if self.k > data.d:
                raise InvalidParameterError(f"k must be an integer with 1 <= k <= d = {data.d}; "
                                            f"got {self.k!r}")
        active = int(np.count_nonzero(data.user_counts()))
        if active < K:
            raise ValueError(f"too few users: n_clusters = {K} clusters need at least {K} users "
                             f"with comparisons; data has {active} (n_users = {data.n_users})")

    # ---------------------------------------------------------------- fit
    _fit_params = ("true_groups",)

    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Fit by EM over ``data.user``; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
        **fit_params
            ``true_groups`` (n_users,), optional: a diagnostic only (each iteration's purity and
            ARI are recorded in ``history_``); it does not change the fit.
        """
        true_groups = self._check_fit_params(fit_params)["true_groups"]
        data = check_data(data)
        self._validate(data)
        H, _K = data.n_users, self._K()
        if true_groups is not None:
            true_groups = np.asarray(true_groups)
            if true_groups.shape != (H,):
                raise InvalidParameterError(f"true_groups must have shape (n_users,) = ({H},); "
                                            f"got {true_groups.shape}")
            if true_groups.dtype.kind not in "biufUS" or (
                    true_groups.dtype.kind == "f" and not np.all(np.isfinite(true_groups))):
                raise InvalidParameterError(f"true_groups must hold finite integer or string "
                                            f"labels; got dtype {true_groups.dtype}")
        init = self.init or ("round_robin" if self.variant == "hard" else "kmeans++")
        max_iter = int(self.max_iter or (10 if self.variant == "hard" else 200))
        n_runs = 1 if init == "round_robin" else int(self.n_restarts)
        rngs = [np.random.Generator(np.random.PCG64(s))
                for s in child_seeds(self.seed, n_runs)]
        best = None
        objs = []
        estep = None
        if self.backend == "torch":
            from ..kernels.torch_em import TorchEStep

            estep = TorchEStep(data.X, data.y, data.user, H, device=self.device)
        for rng in rngs:
            run = self._run(data, init, max_iter, rng, true_groups, estep)
            objs.append(run["objective"])
            if best is None or run["objective"] > best["objective"]:
                best = run
        return self._set_fitted(**{key + "_": val for key, val in best.items()},
                                restart_objectives_=np.array(objs))

    def _unit_ids(self, data):
        # theta_ is indexed by cluster, and a cluster's index says nothing about a group's (the
        # labels are exchangeable): scoring by data.group, as the base class does, silently gave
        # group g cluster g's reward. A comparison is scored by its user's assigned cluster.
        self._check_fitted()
        H = self.assignments_.shape[0]
        if data.user.size and int(data.user.max()) >= H:
            raise InvalidParameterError(
                f"data.user ids must lie in [0, {H}) (the users EM was fitted on: their clusters "
                f"score the comparisons); found id {int(data.user.max())}")
        return self.assignments_[data.user]

    def _initial_resp(self, data, init, rng):
        H, K = data.n_users, self._K()
        if init == "round_robin":
            labels = np.arange(H) % K
        elif init == "random":
            if self.variant == "soft":
                return rng.dirichlet(np.ones(K), size=H)
            labels = rng.integers(0, K, size=H)
        else:
            counts = np.maximum(data.user_counts(), 1)
            M = np.zeros((H, data.d))
            np.add.at(M, data.user, data.signed())
            M /= counts[:, None]
            labels = _kmeanspp_labels(M, K, rng)
        R = np.zeros((H, K))
        R[np.arange(H), labels] = 1.0
        return R

    def _m_step(self, data, R, state, rng):
        """New parameters given responsibilities R (one-hot for hard); returns state dict."""
        K = self._K()
        X, y = data.X, data.y
        hard = self.variant == "hard"
        if self.m_step == "separate":
            theta = state["theta"].copy()
            for c in range(K):
                if hard:
                    rows = np.flatnonzero(R[data.user, c] > 0.5)
                    if rows.size == 0:
                        continue  # the authors skip empty clusters
                    res = fit_bt(X[rows], y[rows], lam=max(self.lam, 1e-12),
                                 theta_init=theta[c], tol=1e-10)
                else:
                    w = R[data.user, c]
                    if w.sum() < 1e-9:
                        continue
                    res = fit_bt(X, y, lam=max(self.lam, 1e-12), sample_weight=w,
                                 theta_init=theta[c], tol=1e-10)
                theta[c] = res.theta
            return {"theta": theta, "penalty": 0.5 * self.lam * float(np.sum(theta * theta))}
        sr = SharedRep(int(self.k), weights=self.weights, lam=self.lam, n_restarts=1,
                       seed=int(rng.integers(2**31)))
        if hard:
            g = R.argmax(axis=1)[data.user]
            Xs, ys, gs, sw = X, y, g, None
        else:
            Xs = np.tile(X, (K, 1))
            ys = np.tile(y, K)
            gs = np.repeat(np.arange(K), X.shape[0])
            sw = np.ascontiguousarray(R[data.user].T.ravel())
        warm = None if state.get("B") is None else (state["B"], state["W"])
        sr.fit_arrays(Xs, ys, gs, K, sample_weight=sw, init=warm, check_input=False)
        if warm is not None:
            # altmin from a warm start never increases F; guard against the round-off case
            f_old = sharedrep_objective(Xs, ys, gs, warm[0], warm[1], self.lam, sw)
            if sr.objective_ > f_old:
                B, W = warm
            else:
                B, W = sr.B_raw_, sr.W_raw_
        else:
            B, W = sr.B_raw_, sr.W_raw_
        return {"theta": (B @ W).T.copy(), "B": B, "W": W,
                "penalty": 0.5 * self.lam * float(np.sum(B * B) + np.sum(W * W))}

    def _kkt_residual(self, data, state, R, pi, active) -> float:
        """Stationarity residual of the EM objective at the returned parameters.

        By Fisher's identity the gradient of ``log sum_c pi_c exp(L[h, c])`` in ``theta_c`` is
        ``sum_c R[h, c] grad L[h, c]`` with the responsibilities ``R`` of the final E-step, so
        the gradient of the objective is the weighted BT gradient

        ``G_c = sum_i R[user_i, c] s_i sigma(-s_i <theta_c, x_i>) x_i - lam theta_c``

        (the hard variant's classification likelihood has the same gradient with one-hot ``R``
        wherever the assignments are not tied). With the SharedRep M-step the parameters are
        ``(B, W)`` with ``theta_c = B w_c``: ``grad_B = sum_c g_c w_c^T - lam B`` and
        ``grad_{w_c} = B^T g_c - lam w_c``, for simplex weights replaced by the projected-gradient
        residual ``w_c - P(w_c + grad_{w_c})``. Soft EM also has ``pi`` on the simplex; its KKT
        residual is ``sum_h R[h, c] / pi_c - H`` (H active users). The result is the Euclidean
        norm of all parts, on the *summed* objective (the scale of ``fit_bt``'s ``grad_norm``).
        """
        theta = state["theta"]
        s = 2.0 * data.y.astype(np.float64) - 1.0
        t = s[:, None] * (data.X @ theta.T)                    # (n, K) signed margins
        coef = R[data.user] * s[:, None] * 0.5 * (1.0 - np.tanh(0.5 * t))  # R sigma(-t) s
        G = coef.T @ data.X                                    # (K, d): unpenalised gradients
        parts = []
        if self.m_step == "separate":
            parts.append(G - self.lam * theta)
        else:
            B, W = state["B"], state["W"]
            parts.append(G.T @ W.T - self.lam * B)
            gW = B.T @ G.T - self.lam * W                      # (k, K)
            if self.weights == "simplex":
                from .sharedrep import project_simplex

                gW = W - project_simplex((W + gW).T).T
            parts.append(gW)
        if self.variant == "soft":
            mass = R[active].sum(axis=0)
            parts.append(mass / np.maximum(pi, 1e-300) - mass.sum())
        return float(np.sqrt(sum(np.sum(p * p) for p in parts)))

    def _run(self, data, init, max_iter, rng, true_groups, estep=None):
        H, K, d = data.n_users, self._K(), data.d
        hard = self.variant == "hard"
        active = data.user_counts() > 0
        R = self._initial_resp(data, init, rng)
        pi = R[active].mean(axis=0)
        state = self._m_step(data, R, {"theta": np.zeros((K, d)), "B": None}, rng)
        history = []
        prev_obj = None
        prev_labels = R.argmax(axis=1)
        converged = False
        n_m = 1
        while True:
            if estep is None:
                Z = np.ascontiguousarray(data.X @ state["theta"].T)
                L = em_numba.user_loglik(Z, data.y.astype(np.float64), data.user, H)
            else:
                L = estep.loglik(state["theta"])
            if hard:
                labels = L.argmax(axis=1)
                labels[~active] = prev_labels[~active]
                R_new = np.zeros((H, K))
                R_new[np.arange(H), labels] = 1.0
                ll = float(L[np.arange(H), labels].sum())
            else:
                log_pi = np.log(np.maximum(pi, 1e-300))
                R_new, llh = (em_numba.e_step(L, log_pi) if estep is None
                              else estep.e_step(L, log_pi))
                labels = R_new.argmax(axis=1)
                ll = float(llh[active].sum())
            obj = ll - state["penalty"]
            rec = {"iter": n_m, "objective": obj, "log_likelihood": ll}
            if true_groups is not None:
                rec["purity"] = purity(labels[active], true_groups[active])
                rec["ari"] = adjusted_rand_index(labels[active], true_groups[active])
            history.append(rec)
            if hard:
                if np.array_equal(labels, prev_labels):
                    converged = True
            elif prev_obj is not None and abs(obj - prev_obj) <= self.tol * max(1.0, abs(obj)):
                converged = True
            if converged or n_m >= max_iter:
                break
            R, prev_labels, prev_obj = R_new, labels, obj
            if not hard:
                pi = np.maximum(R[active].mean(axis=0), 1e-12)
                pi /= pi.sum()
            state = self._m_step(data, R, state, rng)
            n_m += 1
        if hard:
            pi = np.bincount(labels[active], minlength=K) / max(int(active.sum()), 1)
        out = {"theta": state["theta"], "assignments": labels, "responsibilities": R_new,
               "mixing_weights": pi, "log_likelihood": ll, "objective": obj,
               "history": history, "n_iter": n_m, "converged": converged,
               "kkt_residual": self._kkt_residual(data, state, R_new, pi, active)}
        if self.m_step == "sharedrep":
            from .sharedrep import _orthonormalise

            out["B"], out["W"] = _orthonormalise(state["B"], state["W"])
        return out
