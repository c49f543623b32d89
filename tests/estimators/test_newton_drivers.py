"""The Newton drivers on callables: numpy (``bt.newton_minimize``) and batched torch
(``torch_bt.newton_lockstep``) against the one BT solver ``fit_bt``."""

import numpy as np
import pytest
import torch

from simulator.estimators.bt import bt_objective, fit_bt, newton_minimize
from simulator.kernels.torch_bt import newton_lockstep


def _problem(seed, n=400, d=5, duplicate=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if duplicate:  # a duplicated column: the Hessian of the unpenalised loss is singular
        X[:, -1] = X[:, 0]
    theta = rng.standard_normal(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ theta))).astype(np.int8)
    return X, y


def _callables(X, y, lam):
    def fg(th):
        f, g, H = bt_objective(th, X, y, lam)
        return f, g, H

    return fg, (lambda H: H), (lambda th: bt_objective(th, X, y, lam)[0])


@pytest.mark.parametrize("chord", [0.05, 0.0])
def test_newton_minimize_equals_fit_bt(chord):
    # the same strictly convex problem to the same gradient test: minimisers agree to the
    # conditioning times the tolerance (1e-10 of the mean gradient; far below 1e-8)
    X, y = _problem(0)
    fg, hess, fonly = _callables(X, y, 1e-3)
    th, f, g, conv = newton_minimize(fg, hess, fonly, np.zeros(5), scale=X.shape[0], tol=1e-10,
                                     max_iter=100, chord_ratio=chord)
    ref = fit_bt(X, y, lam=1e-3, tol=1e-10, backend="numpy")
    assert conv and np.linalg.norm(g) <= 1e-10 * X.shape[0]
    np.testing.assert_allclose(th, ref.theta, atol=1e-8)
    assert f == pytest.approx(ref.objective, rel=1e-12)


def test_newton_minimize_takes_a_levenberg_step_on_a_singular_hessian(monkeypatch):
    # lam = 0 with a duplicated column: H is singular at every point, the Cholesky step fails
    # and the damped step must carry the fit to a stationary point (the MLE exists: n >> d and
    # the labels are noisy) instead of stopping at the start
    import simulator.estimators.bt as bt

    calls = []
    real = bt._damped_step
    monkeypatch.setattr(bt, "_damped_step", lambda H, g: calls.append(1) or real(H, g))
    X, y = _problem(1, duplicate=True)
    fg, hess, fonly = _callables(X, y, 0.0)
    th, f, g, conv = newton_minimize(fg, hess, fonly, np.zeros(5), scale=X.shape[0], tol=1e-9,
                                     max_iter=200, chord_ratio=0.05)
    assert calls, "the singular Hessian never reached the damped step"
    assert conv and np.linalg.norm(g) <= 1e-9 * X.shape[0]
    assert f < fonly(np.zeros(5)) - 1.0


def test_newton_lockstep_equals_fit_bt_per_problem_and_damps_singular_ones(monkeypatch):
    import simulator.kernels.torch_bt as tb

    damped = []
    real = tb._levenberg_cholesky

    def spy(torch_, H, L, info, active):
        damped.append(bool((active & (info != 0)).any()))
        return real(torch_, H, L, info, active)

    monkeypatch.setattr(tb, "_levenberg_cholesky", spy)
    # three problems in one batch, the last with a singular unpenalised Hessian: each solved to
    # its own certificate, equal to fit_bt one at a time
    probs = [_problem(2), _problem(3), _problem(4, duplicate=True)]
    X = torch.as_tensor(np.stack([p[0] for p in probs]))
    s = torch.as_tensor(np.stack([2.0 * p[1] - 1.0 for p in probs]))
    lam = torch.tensor([1e-3, 1e-3, 0.0], dtype=torch.float64)

    def fonly(th):
        t = s * torch.einsum("snd,sd->sn", X, th)
        return torch.nn.functional.softplus(-t).sum(1) + 0.5 * lam * (th * th).sum(1)

    def fg(th):
        t = s * torch.einsum("snd,sd->sn", X, th)
        p = torch.sigmoid(t)
        g = -torch.einsum("sn,snd->sd", s * (1 - p), X) + lam[:, None] * th
        return fonly(th), g

    def hess(th):
        p = torch.sigmoid(s * torch.einsum("snd,sd->sn", X, th))
        H = torch.bmm((X * (p * (1 - p)).unsqueeze(-1)).transpose(1, 2), X)
        return H + lam[:, None, None] * torch.eye(5, dtype=torch.float64)

    scale = torch.full((3,), 400.0, dtype=torch.float64)
    th, f, gnorm, n_iter, conv = newton_lockstep(torch, fg, hess, fonly,
                                                 torch.zeros((3, 5), dtype=torch.float64), scale,
                                                 1e-10, 200, 1e-13, chord_ratio=0.05)
    assert bool(conv.all())
    for j, (Xj, yj) in enumerate(probs[:2]):
        ref = fit_bt(Xj, yj, lam=1e-3, tol=1e-10, backend="numpy")
        np.testing.assert_allclose(th[j].numpy(), ref.theta, atol=1e-8)
    assert float(gnorm[2]) <= 1e-10 * 400
    assert any(damped), "the singular problem never needed damping"
