"""Batched torch Newton: equal to the numba back-end, float32 tolerance, isolation of problems."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.estimators.bt import fit_bt
from simulator.kernels.torch_bt import fit_bt_batched, pad_problems


def _problems(S, d, seed, n_lo=5, n_hi=300):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(S):
        n = int(rng.integers(n_lo, n_hi))
        X = rng.standard_normal((n, d))
        th = rng.standard_normal(d)
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ th))).astype(np.int8)
        out.append((X, y))
    return out


@given(S=st.integers(1, 6), d=st.integers(1, 8), seed=st.integers(0, 2**31),
       lam=st.sampled_from([1e-3, 0.1, 1.0]))
def test_batched_equals_unbatched(S, d, seed, lam):
    probs = _problems(S, d, seed)
    X, y, w = pad_problems(probs)
    res = fit_bt_batched(X, y, lam=lam, sample_weight=w)
    assert np.all(np.isfinite(res.theta)) and res.converged.all()
    for s, (Xs, ys) in enumerate(probs):
        ref = fit_bt(Xs, ys, lam=lam)
        # both stop at mean-gradient norm 1e-9; with curvature >= lam / n the solutions differ by
        # at most ~1e-9 n / lam relative to their scale, far below 1e-6
        np.testing.assert_allclose(res.theta[s], ref.theta, rtol=1e-6, atol=1e-8)
        assert res.objective[s] == pytest.approx(ref.objective, rel=1e-10)


def test_float32_matches_float64_within_documented_tolerance():
    probs = _problems(20, 8, 1, n_lo=500, n_hi=1000)
    X, y, w = pad_problems(probs)
    a = fit_bt_batched(X, y, lam=1.0, sample_weight=w, dtype="float64")
    b = fit_bt_batched(X, y, lam=1.0, sample_weight=w, dtype="float32")
    assert b.converged.all()
    # float32 stops at mean-gradient 1e-5 and rounds at ~1e-7 per term: 1e-4 relative to |theta|
    err = np.abs(a.theta - b.theta).max(axis=1) / np.abs(a.theta).max(axis=1)
    assert err.max() < 1e-4


def test_one_separable_problem_does_not_spoil_the_others():
    probs = _problems(4, 3, 2, n_lo=200, n_hi=300)
    Xs = np.random.default_rng(3).standard_normal((50, 3))
    probs[1] = (Xs, (Xs[:, 0] > 0).astype(np.int8))  # separable: no MLE at lam = 0
    X, y, w = pad_problems(probs)
    res = fit_bt_batched(X, y, lam=0.0, sample_weight=w, max_iter=60)
    assert not res.converged[1]
    for s in (0, 2, 3):
        ref = fit_bt(*probs[s], lam=0.0)
        assert res.converged[s]
        np.testing.assert_allclose(res.theta[s], ref.theta, rtol=1e-6, atol=1e-8)


def test_estimators_accept_torch_backend_and_reject_bad_device():
    from simulator import Population
    from simulator.estimators import PooledMLE, SeparateMLE

    data = Population.shared(6, 2, [0.2, 0.3, 0.5], seed=0).sample(3000, seed=1)
    a = SeparateMLE(backend="torch").fit(data)
    b = SeparateMLE().fit(data)
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="device"):
        PooledMLE(device="cuda").fit(data)
    with pytest.raises(ValueError, match="norm_bound"):
        PooledMLE(backend="torch", norm_bound=1.0).fit(data)


@pytest.mark.parametrize("kw,match", [
    ({"dtype": "float16"}, "dtype"), ({"lam": -1.0}, "lam"), ({"tol": 0.0}, "tol")])
def test_bad_arguments(kw, match):
    X, y, w = pad_problems(_problems(2, 2, 0))
    with pytest.raises(ValueError, match=match):
        fit_bt_batched(X, y, **kw)



def test_one_thread_blocks_from_many_threads_restore_the_setting():
    """torch's thread count is process-wide: a block entered in one Python thread and left
    after a block of another thread has left must leave the process on its original count
    (saving and restoring per block ended on one thread for good), and the count is one while
    any block is active."""
    import threading

    import torch

    from simulator.kernels.torch_bt import SMALL_WORK, small_work_one_thread

    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        a, b = small_work_one_thread(torch, cpu, 10), small_work_one_thread(torch, cpu, 10)
        a.__enter__()
        seen = []

        def other():  # enters while a is active, leaves after a has left
            b.__enter__()
            seen.append(torch.get_num_threads())

        t = threading.Thread(target=other)
        t.start()
        t.join()
        a.__exit__(None, None, None)
        seen.append(torch.get_num_threads())  # b still active
        b.__exit__(None, None, None)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 3
        with small_work_one_thread(torch, cpu, 10), small_work_one_thread(torch, cpu, 10):
            assert torch.get_num_threads() == 1  # nested in one thread
        assert torch.get_num_threads() == 3
        with small_work_one_thread(torch, cpu, SMALL_WORK):  # large work: left alone
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
