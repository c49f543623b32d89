"""Batched E-step of a mixture of Bradley–Terry models over users, in torch (CPU or CUDA).

The same quantities as :mod:`simulator.kernels.em_numba` (reference:
:func:`simulator.estimators.em.user_loglik_reference`, :func:`~simulator.estimators.em.e_step_reference`),
for S independent problems at once, everything in log space:

    L[s, h, c] = sum_{i : user_si = h} m_si log sigma((2 y_si - 1) <x_si, theta_sc>)
    R[s, h, c] = exp(L[s, h, c] + log pi_sc - logsumexp_c'(L[s, h, c'] + log pi_sc'))

``m_si`` in {0, 1} masks padding rows. A user whose every cluster has weight zero gets uniform
responsibilities and log-likelihood ``-inf`` (as the numba kernel). float64 agrees with numba to
~1e-12 relative; float32 to ~1e-6 relative in R and ~1e-6 relative in L (tested).

:class:`TorchEStep` keeps one data set's tensors on the device across EM iterations (used by
:class:`~simulator.estimators.em.EMMixture` with ``backend="torch"``).
"""

from __future__ import annotations

import numpy as np

from .torch_bt import _import_torch, small_work_one_thread

__all__ = [
    "TorchEStep",
    "e_step_batched",
    "e_step_torch",
    "user_loglik_batched",
    "user_loglik_torch",
]


def _dtype(torch, dtype):
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    return torch.float64 if dtype == "float64" else torch.float32


def user_loglik_torch(X, sgn, user, theta, n_users, mask=None):
    """Tensors: X (S, n, d), sgn (S, n) in {-1, +1}, user (S, n) long, theta (S, K, d) -> L (S, H, K)."""
    torch = _import_torch()
    S, n, _d = X.shape
    K = theta.shape[1]
    Z = torch.bmm(X, theta.transpose(1, 2))  # (S, n, K)
    lls = torch.nn.functional.logsigmoid(sgn.unsqueeze(-1) * Z)
    if mask is not None:
        lls = lls * mask.unsqueeze(-1)
    offs = (torch.arange(S, device=X.device) * n_users).unsqueeze(1)
    L = torch.zeros((S * n_users, K), dtype=X.dtype, device=X.device)
    L.index_add_(0, (user + offs).reshape(-1), lls.reshape(S * n, K))
    return L.reshape(S, n_users, K)


def e_step_torch(L, log_pi):
    """Tensors: L (S, H, K), log_pi (S, K) -> responsibilities (S, H, K), log-lik (S, H)."""
    torch = _import_torch()
    A = L + log_pi.unsqueeze(1)
    lse = torch.logsumexp(A, dim=-1)
    dead = torch.isneginf(lse)
    R = torch.exp(A - torch.where(dead, torch.zeros_like(lse), lse).unsqueeze(-1))
    R = torch.where(dead.unsqueeze(-1), torch.full_like(R, 1.0 / L.shape[-1]), R)
    return R, lse


def user_loglik_batched(X, y, user, theta, n_users, mask=None, *, device="cpu",
                        dtype="float64"):
    """numpy in/out wrapper of :func:`user_loglik_torch`; shapes as there (numpy arrays)."""
    torch = _import_torch()
    tdt = _dtype(torch, dtype)
    dev = torch.device(device)
    user = np.asarray(user)
    if user.size and (user.min() < 0 or user.max() >= n_users):
        raise ValueError(f"user ids must lie in [0, {n_users})")
    L = user_loglik_torch(torch.as_tensor(np.asarray(X, np.float64), dtype=tdt, device=dev),
                          torch.as_tensor(2.0 * np.asarray(y, np.float64) - 1.0, dtype=tdt,
                                          device=dev),
                          torch.as_tensor(user, dtype=torch.long, device=dev),
                          torch.as_tensor(np.asarray(theta, np.float64), dtype=tdt, device=dev),
                          int(n_users),
                          None if mask is None else torch.as_tensor(mask, dtype=tdt, device=dev))
    return L.cpu().numpy().astype(np.float64)


def e_step_batched(L, log_pi, *, device="cpu", dtype="float64"):
    """numpy in/out wrapper of :func:`e_step_torch`: L (S, H, K), log_pi (S, K)."""
    torch = _import_torch()
    tdt = _dtype(torch, dtype)
    dev = torch.device(device)
    R, ll = e_step_torch(torch.as_tensor(np.asarray(L, np.float64), dtype=tdt, device=dev),
                         torch.as_tensor(np.asarray(log_pi, np.float64), dtype=tdt, device=dev))
    return R.cpu().numpy().astype(np.float64), ll.cpu().numpy().astype(np.float64)


class TorchEStep:
    """One data set's (X, y, user) held on ``device``; ``loglik(theta)`` and ``e_step(L, log_pi)``
    return numpy arrays like :func:`simulator.kernels.em_numba.user_loglik` / ``e_step``."""

    def __init__(self, X, y, user, n_users, device="cpu", dtype="float64"):
        torch = _import_torch()
        self.torch = torch
        self.tdt = _dtype(torch, dtype)
        self.dev = torch.device(device)
        self.n_users = int(n_users)
        self.X = torch.as_tensor(np.asarray(X, np.float64), dtype=self.tdt, device=self.dev)[None]
        self.sgn = torch.as_tensor(2.0 * np.asarray(y, np.float64) - 1.0, dtype=self.tdt,
                                   device=self.dev)[None]
        self.user = torch.as_tensor(np.asarray(user), dtype=torch.long, device=self.dev)[None]

    def loglik(self, theta):
        th = self.torch.as_tensor(np.asarray(theta, np.float64), dtype=self.tdt,
                                  device=self.dev)[None]
        with small_work_one_thread(self.torch, self.dev, self.X.numel()):
            L = user_loglik_torch(self.X, self.sgn, self.user, th, self.n_users)
        return L[0].cpu().numpy().astype(np.float64)

    def e_step(self, L, log_pi):
        t = self.torch
        with small_work_one_thread(t, self.dev, np.size(L) * 64):
            R, ll = e_step_torch(t.as_tensor(L, dtype=self.tdt, device=self.dev)[None],
                                 t.as_tensor(log_pi, dtype=self.tdt, device=self.dev)[None])
        return R[0].cpu().numpy().astype(np.float64), ll[0].cpu().numpy().astype(np.float64)
