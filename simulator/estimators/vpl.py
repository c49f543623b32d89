r"""VPL: variational preference learning with a latent user variable (a peer of the arena).

Poddar et al. 2024, "Personalizing Reinforcement Learning from Human Feedback with Variational
Preference Learning" (NeurIPS 2024). Facts taken from the paper's description: a latent user
variable ``z`` is inferred from the user's own labelled pairs by an amortised, permutation-
invariant encoder ``q_psi(z | C_u)``; the reward is conditioned on it, ``r(x, a | z)``; encoder
and reward are trained together on the evidence lower bound with a Bradley-Terry likelihood and a
KL term to the prior ``N(0, I)``; a new user is personalised by one pass of the encoder over a
few labelled pairs, and the pairs to ask a user are chosen by their information about ``z``.
The equation numbers of the paper were not checked against its text; the objective is stated
here in full.

Model (linear features, this package's version)
-----------------------------------------------
Comparison ``i`` of user ``u`` has the feature difference ``x_i = phi(x, a1) - phi(x, a0)`` and
the signed difference ``s_i = (2 y_i - 1) x_i``.

* Encoder (Deep-Sets form): ``e_j = tanh(W_1 s_j + b_1)`` for each pair of the context set
  ``C_u``, mean-pooled ``h_u = mean_j e_j``, ``r_u = 1 / sqrt(1 + |C_u|)``,
  ``g_u = [h_u, r_u h_u, r_u]`` and ``mu_u = W_mu g_u + b_mu``,
  ``log sigma_u^2 = W_v g_u + b_v`` (diagonal Gaussian ``q_psi(z | C_u)``). The ``r_u`` terms
  let the posterior's mean and width depend on how many pairs the user gave (a mean alone
  cannot tell 5 pairs from 50).
* Decoder: ``theta(z) = theta_0 + A z`` (``decoder="linear"``, default; ``A`` is d x
  ``latent_dim``), or ``theta(z) = theta_0 + A tanh(A_1 z + c_1)`` (``decoder="mlp"``). The
  reward is ``r(x, a | z) = <theta(z), phi(x, a)>``.
* Objective (the negative ELBO per comparison, minimised):

  .. math::

      \mathcal{L}(\psi, \vartheta) = -\frac{1}{n}\sum_u \Big(
          \mathbb{E}_{z \sim q_\psi(z | C_u)} \sum_{i \in D_u} \log\sigma(\langle s_i,
          \theta_\vartheta(z)\rangle)
          - \beta_{KL}\, \mathrm{KL}\big(q_\psi(z | C_u) \,\|\, N(0, I)\big)\Big)
          + \frac{\lambda}{2}\lVert(\psi, \vartheta)\rVert^2,

  the expectation estimated with ``n_mc`` reparameterised draws ``z = mu + sigma * eps``.
  During training each user's context ``C_u`` is a random subset of their pairs of a size drawn
  uniformly from ``1..n_u`` (``context="random"``, default; so the encoder is trained on the
  few-shot sizes it is used at), the likelihood always on all of ``D_u``; ``context="all"``
  uses every pair as the context. Full-batch Adam in torch (float64 by default), every draw from
  ``seed`` through SeedSequence. :func:`negative_elbo` is this objective, once.
* Minibatches (``batch_users=b``, opt-in): each step draws ``b`` of the ``N`` units without
  replacement and minimises ``-(N / b) sum_{u in batch} ELBO_u / n`` (plus the ridge), whose
  expectation over the draw is the objective above. A full-batch step costs
  ``O(N m H d)`` (the encoder's ``(N, m, H)`` embedding, its ``tanh`` and their gradients
  dominate: about 1 s a step on one core at N = 10,000 users x 50 pairs, d = 32, H = 64), so at
  thousands of users a minibatch step is that many times cheaper. ``batch_users >= N`` is the
  full batch, draw for draw.

What is simplified for linear features
--------------------------------------
The paper's encoder embeds the two responses of each context pair with a language model and
pools with attention or a mean over pairs, and its reward is a neural network of the response
embedding and ``z``. Here the features are given, so the pair's only input is ``s_j`` (the label
flips the sign of the difference; this also makes the encoder invariant to swapping the two
arms), the pooling is a mean, and the decoder is linear in ``phi`` given ``z``: with
``decoder="linear"`` VPL is a low-rank model ``theta_u = theta_0 + A z_u`` (as P-ShareLoRA)
whose per-user weights come from an amortised posterior instead of a per-user fit. There is no
reward scaling or the paper's additional tricks for LLM training.

Few-shot and active queries
---------------------------
:meth:`VPL.fit_new_users` is one encoder pass over the new users' pairs (no gradient step):
VPL's few-shot path. :meth:`VPL.select_queries` picks, among candidate pairs, those with the
largest mutual information between the label and ``z`` under ``q(z | C)`` (the BALD criterion,
:func:`label_information`):

.. math::

    I(y; z \mid x, C) = H\big(\mathbb{E}_{q} \sigma(\langle x, \theta(z)\rangle)\big)
                        - \mathbb{E}_{q} H\big(\sigma(\langle x, \theta(z)\rangle)\big),

estimated with ``n_mc`` draws of ``z`` from a seed (the same draws for every candidate).
``n`` queries are the top ``n`` by this score (a non-adaptive batch; call again after the labels
come back for the sequential version).

Certificate
-----------
``objective_``: the negative ELBO per comparison at the returned parameters, with all pairs as
the context and ``N_MC_EVAL`` fixed draws; ``kkt_residual_`` (= ``grad_norm_``): the norm of the
gradient of that estimate; ``converged_``: the mean training loss over the last ``WINDOW`` steps
fell by less than ``tol`` (relative) against the window before (Adam on a Monte-Carlo objective
has no exact stationarity test); ``n_iter_``: Adam steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..seeding import as_seed_sequence, child_seeds
from ..validation import Choice, Custom, Int, InvalidParameterError, Real, Seed, check_array
from .base import (
    NewUsersFit,
    NotFittedError,
    PreferenceEstimator,
    check_data,
    check_unit,
    one_blas_thread_fit,
    require_every_group,
)

__all__ = ["VPL", "negative_elbo", "label_information", "N_MC_EVAL", "WINDOW"]

#: Draws of z for the reported objective and its gradient (fixed, from the seed).
N_MC_EVAL = 64
#: Steps per window of the convergence test (mean loss of two consecutive windows compared).
WINDOW = 100


# --------------------------------------------------------------------------- the math, once
def _encode(torch, p, S, ctx):
    """``(mu, logvar)`` of ``q(z | C_u)`` for each user: S (N, m, d) signed pairs, ctx (N, m) 0/1."""
    e = torch.tanh(S @ p["W1"].T + p["b1"])  # (N, m, H)
    cnt = ctx.sum(dim=1, keepdim=True)  # (N, 1)
    h = (e * ctx[..., None]).sum(dim=1) / torch.clamp(cnt, min=1.0)  # empty context: h = 0
    r = 1.0 / torch.sqrt(1.0 + cnt)
    g = torch.cat([h, r * h, r], dim=1)
    return g @ p["Wm"].T + p["bm"], g @ p["Wv"].T + p["bv"]


def _decode(torch, p, z, decoder):
    """theta(z), z (..., L) -> (..., d)."""
    if decoder == "linear":
        return p["theta0"] + z @ p["A"].T
    return p["theta0"] + torch.tanh(z @ p["A1"].T + p["c1"]) @ p["A"].T


def negative_elbo(torch, params, S, mask, ctx, eps, beta_kl, decoder="linear", lam=0.0,
                  norm=None):
    r"""The VPL objective of the module docstring (one Monte-Carlo estimate), per comparison.

    Parameters
    ----------
    torch : module
    params : dict of tensors
        Encoder ``W1, b1, Wm, bm, Wv, bv``; decoder ``theta0, A`` (and ``A1, c1`` for "mlp").
    S : tensor (N, m, d)
        Signed feature differences ``s_i = (2 y_i - 1) x_i`` of each user, zero-padded.
    mask : tensor (N, m)
        1 for a real comparison (the likelihood runs over these), 0 for padding.
    ctx : tensor (N, m)
        1 for the pairs of the context set ``C_u`` (a subset of ``mask``).
    eps : tensor (n_mc, N, L)
        Standard normal draws; ``z = mu + exp(logvar / 2) * eps``.
    beta_kl, lam : float
        KL weight and ridge on every parameter.
    norm : float, optional
        The divisor ``n`` (default ``mask.sum()``, the comparisons given). A minibatch of ``b``
        of ``N`` units passes ``n_total * b / N``: its expectation is then the full objective.

    Returns
    -------
    tensor (scalar)
        ``-(sum_u ELBO_u) / n + lam / 2 ||params||^2`` with ``n = mask.sum()`` (or ``norm``).
    """
    mu, logvar = _encode(torch, params, S, ctx)
    z = mu + torch.exp(0.5 * logvar) * eps  # (n_mc, N, L)
    theta = _decode(torch, params, z, decoder)  # (n_mc, N, d)
    margin = torch.einsum("umd,kud->kum", S, theta)
    loglik = (torch.nn.functional.logsigmoid(margin) * mask).sum(dim=(1, 2)).mean()
    kl = 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar).sum()
    out = -(loglik - beta_kl * kl) / (mask.sum() if norm is None else norm)
    if lam:
        out = out + 0.5 * lam * sum((v * v).sum() for v in params.values())
    return out


def label_information(p_draws) -> np.ndarray:
    r"""Mutual information between a label and z from draws of its probability (BALD).

    ``p_draws`` (n_mc, n) holds ``sigma(<x_c, theta(z_s)>)`` for draws ``z_s ~ q``; returns
    ``H(mean_s p) - mean_s H(p)`` per column (nats, in ``[0, log 2]``), ``H`` the binary entropy.
    """
    p = np.clip(np.asarray(p_draws, dtype=np.float64), 1e-300, 1.0)

    def H(q):
        q1 = np.clip(1.0 - q, 1e-300, 1.0)
        return -(q * np.log(q) + q1 * np.log(q1))

    return np.maximum(H(p.mean(axis=0)) - H(p).mean(axis=0), 0.0)


# --------------------------------------------------------------------------- helpers
def _check_beta_kl(v, name):
    from ..validation import check_real

    return check_real(v, name, low=0.0)


def _padded(data, dtype_np):
    """Signed differences (N, m, d) and the mask (N, m) of each group of ``data``."""
    rows = data.group_rows()
    N, d = data.n_groups, data.d
    m = max(1, max(r.size for r in rows))
    S = np.zeros((N, m, d), dtype=dtype_np)
    mask = np.zeros((N, m), dtype=dtype_np)
    signed = data.signed()
    for u, r in enumerate(rows):
        S[u, :r.size] = signed[r]
        mask[u, :r.size] = 1.0
    return S, mask


class VPL(PreferenceEstimator):
    """Variational preference learning: amortised posterior of a latent user variable.

    Parameters
    ----------
    latent_dim : int, default 4
        Dimension ``L`` of ``z`` (>= 1).
    hidden : int, default 64
        Width ``H`` of the encoder's pair embedding (and of the "mlp" decoder's hidden layer).
    decoder : {"linear", "mlp"}, default "linear"
        ``theta(z) = theta_0 + A z``, or ``theta_0 + A tanh(A_1 z + c_1)``.
    beta_kl : float, default 1.0
        Weight of the KL term (>= 0; 1 is the ELBO).
    context : {"random", "all"}, default "random"
        Context sets during training: a random subset of each user's pairs per step (size
        uniform in ``1..n_u``), or all of them.
    n_mc : int, default 4
        Draws of ``z`` per user per step.
    lr : float, default 1e-2
        Adam's step size.
    max_iter : int, default 3000
        Adam steps (full batch: every user every step).
    tol : float, default 1e-4
        Relative change of the windowed mean loss that stops training (module docstring).
    lam : float, default 0.0
        Ridge on every parameter.
    dtype : {"float64", "float32"}, default "float64"
    seed : int, SeedSequence or Generator, default 0
        Initialisation, context subsets and Monte-Carlo draws.
    unit : {"group", "user"}, default "user"
        Whose pairs form a context set: one latent ``z`` per ``data.user`` (VPL's setting) or per
        ``data.group``.
    batch_users : int or None, default None
        Units per step: ``None`` (or ``>= N``) is the full batch; ``b`` draws ``b`` units per
        step (module docstring). The convergence test then compares windowed means of
        minibatch losses.

    Attributes
    ----------
    theta_ : array (U, d)
        ``theta(mu_u)``, the reward at each unit's posterior mean (context: all its pairs).
    Z_mean_ : array (U, L)
    Z_logvar_ : array (U, L)
    params_ : dict of arrays
        The encoder's and decoder's parameters.
    loss_history_ : array (n_iter_,)
        Training loss per step (a Monte-Carlo estimate).
    objective_, grad_norm_, kkt_residual_, n_iter_, converged_
        The certificate (module docstring).
    """

    _fit_params = ()
    _parameter_constraints = {
        "latent_dim": Int(1),
        "hidden": Int(1),
        "decoder": Choice(("linear", "mlp")),
        "beta_kl": Custom(_check_beta_kl),
        "context": Choice(("random", "all")),
        "n_mc": Int(1),
        "lr": Real(0.0, low_open=True),
        "max_iter": Int(1),
        "batch_users": Int(1, none=True),
        "tol": Real(0.0),
        "lam": Real(0.0),
        "dtype": Choice(("float64", "float32")),
        "seed": Seed(),
        "unit": Custom(check_unit),
    }

    def __init__(self, latent_dim: int = 4, hidden: int = 64, decoder: str = "linear",
                 beta_kl: float = 1.0, context: str = "random", n_mc: int = 4, lr: float = 1e-2,
                 max_iter: int = 3000, tol: float = 1e-4, lam: float = 0.0,
                 dtype: str = "float64", seed=0, unit: str = "user",
                 batch_users: int | None = None):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.decoder = decoder
        self.beta_kl = beta_kl
        self.context = context
        self.n_mc = n_mc
        self.lr = lr
        self.max_iter = max_iter
        self.tol = tol
        self.lam = lam
        self.dtype = dtype
        self.seed = seed
        self.unit = unit
        self.batch_users = batch_users

    # ------------------------------------------------------------------ parameters
    def _init_params(self, torch, d, gen, tdt):
        L, H = int(self.latent_dim), int(self.hidden)

        def normal(*shape, scale):
            return torch.randn(*shape, generator=gen, dtype=tdt) * scale

        p = {"W1": normal(H, d, scale=1.0 / math.sqrt(d)), "b1": torch.zeros(H, dtype=tdt),
             "Wm": normal(L, 2 * H + 1, scale=1.0 / math.sqrt(2 * H + 1)),
             "bm": torch.zeros(L, dtype=tdt),
             "Wv": normal(L, 2 * H + 1, scale=0.1 / math.sqrt(2 * H + 1)),
             "bv": torch.zeros(L, dtype=tdt),
             "theta0": torch.zeros(d, dtype=tdt)}
        if self.decoder == "linear":
            p["A"] = normal(d, L, scale=1.0 / math.sqrt(L))
        else:
            p["A1"] = normal(H, L, scale=1.0 / math.sqrt(L))
            p["c1"] = torch.zeros(H, dtype=tdt)
            p["A"] = normal(d, H, scale=1.0 / math.sqrt(H))
        return p

    def _torch_params(self, torch, tdt=None):
        self._check_fitted()
        tdt = tdt or getattr(torch, self.dtype)
        return {k: torch.as_tensor(v, dtype=tdt) for k, v in self.params_.items()}

    # ------------------------------------------------------------------ fit
    @one_blas_thread_fit
    def fit(self, data, **fit_params):
        """Train encoder and decoder on the ELBO; returns ``self``.

        Parameters
        ----------
        data : PreferenceData
            Every unit (user, or group with ``unit="group"``) needs at least one comparison.
        """
        self._check_fit_params(fit_params)
        self._validate_params()
        data = check_data(data).as_units(check_unit(self.unit))
        require_every_group(data, "VPL", self.unit)
        import torch

        from ..kernels.torch_bt import small_work_one_thread

        tdt = getattr(torch, self.dtype)
        S_np, mask_np = _padded(data, np.float64)
        S, mask = torch.as_tensor(S_np, dtype=tdt), torch.as_tensor(mask_np, dtype=tdt)
        N, m, d = S.shape
        L = int(self.latent_dim)
        # the fifth child (the minibatch draws) leaves the first four as they were
        gens = []
        for s in child_seeds(self.seed, 5):
            g = torch.Generator()
            g.manual_seed(int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            gens.append(g)
        g_init, g_ctx, g_eps, g_eval, g_batch = gens
        counts = mask.sum(dim=1)
        b = N if self.batch_users is None else min(int(self.batch_users), N)
        n_total = float(mask.sum())
        # one torch thread (size 0 is always "small"): many small ops, where waking a pool
        # costs more than it saves, and one thread per fit is the house rule for workers
        with small_work_one_thread(torch, torch.device("cpu"), 0):
            params = self._init_params(torch, d, g_init, tdt)
            for v in params.values():
                v.requires_grad_(True)
            opt = torch.optim.Adam(list(params.values()), lr=float(self.lr))
            hist = []
            converged = False
            it = 0
            for it in range(1, int(self.max_iter) + 1):
                if b < N:
                    idx = torch.randperm(N, generator=g_batch)[:b]
                    S_t, mask_t, counts_t, norm = S[idx], mask[idx], counts[idx], \
                        n_total * b / N
                else:  # the full batch: no draw, the divisor mask.sum()
                    S_t, mask_t, counts_t, norm = S, mask, counts, None
                if self.context == "random":
                    ctx = self._random_context(torch, mask_t, counts_t, g_ctx, tdt)
                else:
                    ctx = mask_t
                eps = torch.randn(int(self.n_mc), b, L, generator=g_eps, dtype=tdt)
                opt.zero_grad()
                loss = negative_elbo(torch, params, S_t, mask_t, ctx, eps, float(self.beta_kl),
                                     self.decoder, float(self.lam), norm=norm)
                loss.backward()
                opt.step()
                hist.append(float(loss.detach()))
                if it >= 2 * WINDOW and it % WINDOW == 0:
                    prev = float(np.mean(hist[-2 * WINDOW:-WINDOW]))
                    last = float(np.mean(hist[-WINDOW:]))
                    if prev - last <= float(self.tol) * max(abs(prev), 1e-12):
                        converged = True
                        break
            # certificate: the objective with every pair as context and fixed draws
            eps = torch.randn(N_MC_EVAL, N, L, generator=g_eval, dtype=tdt)
            for v in params.values():
                v.grad = None
            obj = negative_elbo(torch, params, S, mask, mask, eps, float(self.beta_kl),
                                self.decoder, float(self.lam))
            grads = torch.autograd.grad(obj, list(params.values()))
            gnorm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
            with torch.no_grad():
                mu, logvar = _encode(torch, params, S, mask)
                theta = _decode(torch, params, mu, self.decoder)
        return self._set_fitted(
            params_={k: v.detach().numpy().astype(np.float64) for k, v in params.items()},
            theta_=theta.numpy().astype(np.float64), Z_mean_=mu.numpy().astype(np.float64),
            Z_logvar_=logvar.numpy().astype(np.float64), loss_history_=np.asarray(hist),
            objective_=float(obj.detach()), grad_norm_=gnorm, n_iter_=int(it),
            converged_=bool(converged), d_=int(d))

    @staticmethod
    def _random_context(torch, mask, counts, gen, tdt):
        """A random subset of each user's pairs, of a size uniform in ``1..n_u``."""
        N, m = mask.shape
        size = torch.floor(torch.rand(N, generator=gen, dtype=tdt) * counts) + 1.0
        keys = torch.rand(N, m, generator=gen, dtype=tdt)
        keys = torch.where(mask > 0, keys, torch.full_like(keys, 2.0))  # padding sorts last
        rank = torch.argsort(torch.argsort(keys, dim=1), dim=1).to(tdt)
        return (rank < size[:, None]).to(tdt) * mask

    # ------------------------------------------------------------------ posterior
    def _check_d(self, d):
        self._check_fitted()
        if d != self.d_:
            raise InvalidParameterError(f"data must have d = {self.d_} features (the fitted "
                                        f"d); got {d}")

    def posterior(self, data):
        """``(mu, logvar)`` of ``q(z | C_j)`` for each group ``j`` of ``data`` (its context set).

        One encoder pass, no gradient step. Groups with no comparisons get the encoder's output
        for an empty context.

        Returns
        -------
        mu, logvar : arrays (n_groups, L)
        """
        data = check_data(data)
        self._check_d(data.d)
        import torch

        p = self._torch_params(torch, torch.float64)
        S_np, mask_np = _padded(data, np.float64)
        with torch.no_grad():
            mu, logvar = _encode(torch, p, torch.as_tensor(S_np), torch.as_tensor(mask_np))
        return mu.numpy(), logvar.numpy()

    def theta_of(self, z) -> np.ndarray:
        """The decoder ``theta(z)`` for latent points z (L,) or (n, L)."""
        self._check_fitted()
        z = check_array(z, "z", ndim=(1, 2))
        if z.shape[-1] != int(self.params_["A"].shape[1] if self.decoder == "linear"
                              else self.params_["A1"].shape[1]):
            raise InvalidParameterError(f"z must have latent_dim = {self.latent_dim} columns; "
                                        f"got shape {z.shape}")
        import torch

        p = self._torch_params(torch, torch.float64)
        with torch.no_grad():
            return _decode(torch, p, torch.as_tensor(z), self.decoder).numpy()

    @one_blas_thread_fit
    def fit_new_users(self, data, *, weights=None) -> NewUsersFit:
        r"""Personalise new users by one encoder pass over their pairs (VPL's few-shot path).

        ``theta_j = theta(mu_j)`` with ``mu_j`` the posterior mean of ``q(z | C_j)``, ``C_j`` all
        of new user ``j``'s pairs (group ``j`` of ``data``). No parameter is trained and the
        estimator is unchanged.

        Parameters
        ----------
        data : PreferenceData
            Every new user needs at least one comparison; ``data.d`` the fitted ``d``.
        weights : {None, "free"}
            VPL's latent ``z`` is unconstrained; "simplex" is refused.

        Returns
        -------
        NewUsersFit
            ``W`` holds ``mu`` (L, N). ``objective``: each user's
            ``J_j(mu_j) = -sum_i log sigma(<s_i, theta(mu_j)>) + beta_KL / 2 ||mu_j||^2`` (the
            MAP objective of z with the prior); ``grad_norm``: ``||grad J_j(mu_j)||``, the
            amortisation gap (zero where the encoder returns the MAP); ``n_iter`` 0 and
            ``converged`` True: there is no iterative solve.
        """
        if weights is not None and weights != "free":
            raise InvalidParameterError(f"weights must be None or 'free' (VPL's latent z is "
                                        f"unconstrained); got {weights!r}")
        data = check_data(data)
        self._check_d(data.d)
        require_every_group(data, "VPL.fit_new_users", "new user")
        mu, _ = self.posterior(data)
        import torch

        p = self._torch_params(torch, torch.float64)
        S_np, mask_np = _padded(data, np.float64)
        S, mask = torch.as_tensor(S_np), torch.as_tensor(mask_np)
        z = torch.as_tensor(mu).clone().requires_grad_(True)
        theta = _decode(torch, p, z, self.decoder)
        margin = torch.einsum("umd,ud->um", S, theta)
        J = -(torch.nn.functional.logsigmoid(margin) * mask).sum(dim=1) \
            + 0.5 * float(self.beta_kl) * (z * z).sum(dim=1)
        (g,) = torch.autograd.grad(J.sum(), z)
        N = data.n_groups
        return NewUsersFit(theta=theta.detach().numpy(), W=mu.T.copy(),
                           objective=J.detach().numpy(), grad_norm=g.norm(dim=1).numpy(),
                           n_iter=np.zeros(N, dtype=np.int64), converged=True,
                           converged_units=np.ones(N, dtype=bool), weights="free")

    # ------------------------------------------------------------------ active queries
    def information_gain(self, X_candidates, context=None, *, n_mc: int = 256, seed=0):
        """``I(y; z | x_c, C)`` for each candidate pair (module docstring; nats).

        Parameters
        ----------
        X_candidates : array (n_c, d)
            Feature differences of the candidate pairs.
        context : PreferenceData, optional
            The user's labelled pairs so far (all rows are one user's, whatever their ids);
            ``None``: no pairs yet (the encoder's empty-context output).
        n_mc : int, default 256
            Draws of z from ``q(z | C)``, from ``seed``; the same draws score every candidate.
        seed : int, SeedSequence or Generator
        """
        from ..validation import check_int

        self._check_fitted()
        Xc = check_array(X_candidates, "X_candidates", ndim=2)
        self._check_d(Xc.shape[1])
        n_mc = check_int(n_mc, "n_mc", low=1)
        mu, logvar = self._context_posterior(context)
        rng = np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
        z = mu + np.exp(0.5 * logvar) * rng.standard_normal((n_mc, mu.size))
        theta = self.theta_of(z)  # (n_mc, d)
        p = 0.5 * (1.0 + np.tanh(0.5 * (theta @ Xc.T)))  # (n_mc, n_c)
        return label_information(p)

    def select_queries(self, X_candidates, context=None, n: int = 1, *, n_mc: int = 256,
                       seed=0) -> np.ndarray:
        """Indices of the ``n`` candidate pairs with the largest information about ``z``.

        The top ``n`` of :meth:`information_gain` (ties: the lower index first), in decreasing
        order of the score. Parameters as :meth:`information_gain`; ``n`` in ``[1, n_c]``.
        """
        from ..validation import check_int

        Xc = check_array(X_candidates, "X_candidates", ndim=2)
        n = check_int(n, "n", low=1, high=Xc.shape[0])
        score = self.information_gain(Xc, context, n_mc=n_mc, seed=seed)
        return np.argsort(-score, kind="stable")[:n]

    def _context_posterior(self, context):
        """``(mu, logvar)`` (L,) of one user's context (every row is theirs)."""
        if context is None:
            import torch

            p = self._torch_params(torch, torch.float64)
            with torch.no_grad():
                S = torch.zeros(1, 1, self.d_, dtype=torch.float64)
                mu, logvar = _encode(torch, p, S, torch.zeros(1, 1, dtype=torch.float64))
            return mu.numpy()[0], logvar.numpy()[0]
        context = check_data(context)
        self._check_d(context.d)
        from ..data import PreferenceData

        one = PreferenceData(X=context.X, y=context.y)  # one user: every row group 0
        mu, logvar = self.posterior(one)
        return mu[0], logvar[0]

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise NotFittedError("VPL is not fitted yet; call fit(data) first")
