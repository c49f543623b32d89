"""SharedLoRA: the cvxpy (convex) and factorized solvers agree; monotone; constraints; contract."""

import numpy as np
import pytest

from simulator import Population
from simulator.estimators import SharedLoRA


@pytest.mark.parametrize("lam,fit_base", [(1.0, True), (5.0, True), (2.0, False)])
def test_cvxpy_and_factorized_agree(lam, fit_base):
    # Burer–Monteiro with r = min(d, N) >= rank(Delta*) has the convex problem's minimum.
    # Tolerances: CLARABEL's relative gap (~1e-8) and altmin's stopping rule (relative change
    # 1e-10 per sweep) leave the objectives within ~1e-8 relative; parameters within 1e-3
    # (observed ~1e-5).
    pop = Population.dirichlet(5, 2, 4, seed=0, base=1.0)
    data = pop.sample(800, seed=1)
    a = SharedLoRA(4, solver="cvxpy", lam=lam, fit_base=fit_base).fit(data)
    b = SharedLoRA(4, solver="factorized", lam=lam, fit_base=fit_base).fit(data)
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-6)
    np.testing.assert_allclose(b.theta_, a.theta_, atol=1e-3)
    # same spectrum of Delta (the numerical rank itself is threshold-fragile: Burer–Monteiro
    # shrinks the surplus columns only geometrically)
    np.testing.assert_allclose(np.linalg.svd(b.delta_, compute_uv=False),
                               np.linalg.svd(a.delta_, compute_uv=False), atol=1e-3)
    f = np.array([h["objective"] for h in b.history_])
    assert np.all(np.diff(f) <= 1e-9 * np.abs(f[:-1]))  # altmin never increases
    np.testing.assert_allclose(b.theta0_[None, :] + (b.B_ @ b.W_).T, b.theta_, atol=1e-10)


def test_per_user_units_and_norm_bound():
    pop = Population.dirichlet(4, 2, 2, seed=2, users_per_group=3, base=0.5)
    data = pop.sample(900, seed=3)
    # the relaxation's rank (4) exceeds rank = 2: cvxpy says it does not impose it
    with pytest.warns(UserWarning, match="without a rank constraint"):
        est = SharedLoRA(2, solver="cvxpy", unit="user", lam=0.5, norm_bound=0.3).fit(data)
    assert est.theta_.shape == (6, 4)
    assert np.all(np.linalg.norm(est.delta_, axis=0) <= 0.3 + 1e-6)
    assert np.isfinite(est.log_likelihood(data))


def test_bad_inputs_name_the_parameter():
    data = Population.dirichlet(4, 2, 3, seed=0).sample(300, seed=1)
    for kwargs, name in [({"k": 5}, "k"), ({"k": 0}, "k"),
                         ({"rank": 0}, "rank"),  # the deprecated alias is checked by its name
                         ({"k": 2, "solver": "x"}, "solver"), ({"k": 2, "unit": "x"}, "unit"),
                         ({"k": 2, "lam": 0}, "lam"),
                         ({"k": 2, "norm_bound": 1.0}, "norm_bound")]:
        with pytest.raises(ValueError, match=rf"^{name} "):  # the message starts with it
            SharedLoRA(**kwargs).fit(data)
