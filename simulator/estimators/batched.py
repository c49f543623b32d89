"""Fit one estimator configuration on many data sets at once through the batched torch kernels.

A theory check needs thousands of fits (grid × seeds) of small problems; one batched solve of
them all is much cheaper than thousands of separate calls. :func:`fit_many` is the hand-off point:

>>> ests = fit_many(lambda: SeparateMLE(lam=1e-3), datasets, device="cpu")  # doctest: +SKIP

* :class:`~.mle.PooledMLE` — one lock-step Newton solve of all data sets
  (:func:`simulator.kernels.torch_bt.fit_bt_batched`);
* :class:`~.mle.SeparateMLE` — every group of every data set in one solve;
* :class:`~.sharedrep.SharedRep` (``solver="altmin"``) — restart r of every data set in one call of
  :func:`simulator.kernels.torch_sharedrep.altmin_batched` (data sets must share ``U`` and ``d``);
* anything else (or a configuration the kernels do not cover: ``norm_bound``, ``sample_weight``
  for SharedRep, mixed shapes) is fitted one data set at a time with ``est.fit(data)``.

Each returned estimator carries the same fitted attributes as after ``est.fit(data)`` with
``backend="torch"`` (equal to the numba back-end within 1e-6 relative in float64), certificate
included; they are handed over through the contract's ``_set_fitted`` hook (:mod:`.base`; SharedRep
derives its orthonormal basis and ``theta_`` there).

**From a sweep.** The sweep engine runs one cell per task call. A figure that wants batching
groups its cells itself: build the cells' data sets (each from its own seed, as the
``estimation`` task does), call ``fit_many`` once, then compute each cell's metrics — e.g. a task
whose one cell stands for a block of seeds (``params["seeds"] = [...]``) and returns per-seed
lists. The engine itself is unchanged.
"""

from __future__ import annotations

import numpy as np

from .mle import PooledMLE, SeparateMLE
from .sharedrep import SharedRep, altmin_restarts_batched, sharedrep_kkt_residual

__all__ = ["fit_many"]


def _make(estimator_factory, n):
    if callable(estimator_factory) and not hasattr(estimator_factory, "fit"):
        return [estimator_factory() for _ in range(n)]
    if hasattr(estimator_factory, "fit"):  # one estimator: clone its parameters
        cls, params = type(estimator_factory), estimator_factory.get_params(deep=False)
        return [cls(**params) for _ in range(n)]
    ests = list(estimator_factory)
    if len(ests) != n:
        raise ValueError(f"got {len(ests)} estimators for {n} data sets")
    return ests


def _same_value(a, b) -> bool:
    """Equality of hyperparameter values that may hold arrays (``constraints=(A, b)``)."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    return a == b


def _same_config(ests, ignore=("seed",)):
    p0 = {k: v for k, v in ests[0].get_params(deep=False).items() if k not in ignore}
    return all(type(e) is type(ests[0])
               and _same_value({k: v for k, v in e.get_params(deep=False).items()
                                if k not in ignore}, p0)
               for e in ests)


def fit_many(estimator_factory, datasets, *, backend: str = "torch", device: str = "cpu"):
    """Fit an estimator on each data set, batching the fits where a batched kernel exists.

    Parameters
    ----------
    estimator_factory : callable, estimator, or list of estimators
        ``factory()`` makes one fresh estimator per data set; an estimator is cloned; a list
        gives one estimator per data set (they may differ only in ``seed`` to be batched).
    datasets : list of :class:`~simulator.data.PreferenceData`
    backend : {"torch", "numba", "numpy"}
        "torch" batches; the others fit one at a time with that back-end.
    device : str
        Torch device ("cpu", "cuda") for the batched solve.

    Returns
    -------
    list of fitted estimators, in the order of ``datasets``.
    """
    datasets = list(datasets)
    if not datasets:
        return []
    ests = _make(estimator_factory, len(datasets))
    for e in ests:
        if "backend" in e.get_params(deep=False):
            e.set_params(backend=backend, device=device if backend == "torch" else "cpu")
    same = (_same_config(ests) and len({d.d for d in datasets}) == 1)
    if backend != "torch" or not same:
        return [e.fit(d) for e, d in zip(ests, datasets)]
    e0 = ests[0]
    if getattr(e0, "unit", "group") != "group":
        # the batched drivers personalise per data.group: give them each data set's user view
        datasets = [d.as_units(e0.unit) for d in datasets]
    if isinstance(getattr(e0, "lam", None), str):
        # lam = "auto" / "cv" is resolved per data set by the estimator's own fit.
        return [e.fit(d) for e, d in zip(ests, datasets)]
    # the batched torch Newton solves unconstrained ridge problems only
    plain = getattr(e0, "norm_bound", None) is None and getattr(e0, "constraints", None) is None
    if isinstance(e0, PooledMLE) and plain:
        return _pooled(ests, datasets)
    if isinstance(e0, SeparateMLE) and plain:
        return _separate(ests, datasets)
    if (isinstance(e0, SharedRep) and e0.solver == "altmin"
            and len({d.n_groups for d in datasets}) == 1):
        return _sharedrep(ests, datasets)
    return [e.fit(d) for e, d in zip(ests, datasets)]


def _solve(e0, probs):
    from ..kernels.torch_bt import fit_bt_batched, pad_problems

    e0._validate_params()
    X, y, w = pad_problems(probs, probs[0][0].shape[1])
    return fit_bt_batched(X, y, lam=e0.lam, sample_weight=w, tol=e0.tol, max_iter=e0.max_iter,
                          device=e0.device)


def _pooled(ests, datasets):
    res = _solve(ests[0], [(d.X, d.y) for d in datasets])
    for j, (e, d) in enumerate(zip(ests, datasets)):
        e._set_fitted(coef_=res.theta[j], theta_=np.tile(res.theta[j], (d.n_groups, 1)),
                      objective_=float(res.objective[j]), grad_norm_=float(res.grad_norm[j]),
                      n_iter_=int(res.n_iter[j]), converged_=bool(res.converged[j]))
    return ests


def _separate(ests, datasets):
    probs, spans = [], []
    for d in datasets:
        counts = d.group_counts()
        if np.any(counts == 0):
            raise ValueError(f"SeparateMLE needs data for every group; group(s) "
                             f"{np.flatnonzero(counts == 0).tolist()} have no comparisons")
        start = len(probs)
        for idx in d.group_rows():
            probs.append((d.X[idx], d.y[idx]))
        spans.append(slice(start, len(probs)))
    res = _solve(ests[0], probs)
    for e, sl in zip(ests, spans):
        e._set_fitted(theta_=res.theta[sl], objective_=res.objective[sl],
                      grad_norm_=res.grad_norm[sl], n_iter_=res.n_iter[sl],
                      converged_groups_=res.converged[sl],
                      converged_=bool(res.converged[sl].all()))
    return ests


def _sharedrep(ests, datasets):
    U = datasets[0].n_groups
    for d in datasets:
        empty = np.flatnonzero(d.group_counts() == 0)
        if empty.size:
            raise ValueError(f"SharedRep needs data for every group; group(s) {empty.tolist()} "
                             f"have no comparisons")
    for e in ests:
        e._validate(datasets[0].d)
    problems = [(np.ascontiguousarray(d.X, dtype=np.float64),
                 np.ascontiguousarray(d.y, dtype=np.int8),
                 np.asarray(d.group, dtype=np.int64), None) for d in datasets]
    out = altmin_restarts_batched(ests, problems, U)
    for e, o, (X, y, g, _sw) in zip(ests, out, problems):
        e._set_fitted(**SharedRep._result(*o))
        e.kkt_residual_ = sharedrep_kkt_residual(X, y, g, e.B_raw_, e.W_raw_, e._lam_value,
                                                 None, e._lam_B, simplex=e.weights == "simplex")
    return ests
