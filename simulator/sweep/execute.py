"""What runs on a worker: thread limits, then one cell, errors caught and recorded.

Every executor (serial, process pool, Dask) calls :func:`execute` with the same job dict and the
same thread limit, so a cell's numbers do not depend on where it ran: BLAS and numba reductions
can round differently with different thread counts, so the limit is part of the contract.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from contextlib import contextmanager

import numpy as np

__all__ = ["execute", "limit_threads", "worker_init", "clean_metrics"]

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")
MAX_ERROR_CHARS = 4000


_CONTROLLER = {"n_modules": -1, "ctl": None}


def _controller():
    """A cached threadpoolctl controller, rescanned when new modules were imported since (a
    scan of the loaded libraries costs milliseconds; cells can be cheaper than that)."""
    import sys

    from threadpoolctl import ThreadpoolController

    n = len(sys.modules)
    if _CONTROLLER["ctl"] is None or _CONTROLLER["n_modules"] != n:
        _CONTROLLER["ctl"] = ThreadpoolController()
        _CONTROLLER["n_modules"] = len(sys.modules)
    return _CONTROLLER["ctl"]


@contextmanager
def limit_threads(n: int):
    """At most ``n`` BLAS/OpenMP threads (threadpoolctl) and ``n`` numba threads inside."""
    old = None
    numba = None
    try:
        import numba  # a dependency; its threads are limited like BLAS's

        old = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover
        numba = None
    try:
        with _controller().limit(limits=int(n)):
            yield
    finally:
        if numba is not None and old is not None:
            numba.set_num_threads(old)


def _watch_parent(parent_pid: int, interval: float = 1.0):
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:  # the driver died (e.g. SIGKILL): do not linger
            os._exit(1)


def worker_init(threads: int, parent_pid: int | None = None):
    """Process-pool initializer: thread limits through the environment (for libraries loaded
    later), threadpoolctl and numba (for those loaded now), and a watchdog that exits when the
    driver is gone."""
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    # numba's thread count is limited by set_num_threads only: NUMBA_NUM_THREADS in the
    # environment would be re-read by numba's config reload at the worker's first JIT compile
    # (a cold cache) and clash with the pool it had already launched ("Cannot set
    # NUMBA_NUM_THREADS to a different value once the threads have been launched").
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(threads))
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover
        pass
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _clean(value, name):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_clean(v, name) for v in value]
    raise TypeError(f"metric {name!r} has unsupported value of type {type(value).__name__} "
                    "(return numbers, strings, booleans or small lists)")


def clean_metrics(metrics) -> dict:
    if not isinstance(metrics, dict):
        raise TypeError(f"a task must return a dict of metrics; got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"metric names must be non-empty strings; got {k!r}")
        out[k] = _clean(v, k)
    return out


def execute(job: dict) -> dict:
    """Run one cell. ``job``: task, params, cell_id, root_seed, seed_key, replicate, threads.

    Returns ``{"cell_id", "status", "error", "elapsed_s", "metrics"}``; never raises for a
    failure of the task itself.
    """
    from ..seeding import derive_seed_sequence
    from .registry import get_task

    t0 = time.perf_counter()
    try:
        with limit_threads(job.get("threads", 1)):
            task = get_task(job["task"])
            seed = derive_seed_sequence(job["root_seed"], job["seed_key"], job["replicate"])
            metrics = clean_metrics(task(job["params"], seed, job["replicate"]))
        status, error = "ok", None
    except Exception as exc:  # recorded, the sweep goes on
        metrics = {}
        status = "failed"
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        if len(tb) > MAX_ERROR_CHARS:
            tb = "...\n" + tb[-MAX_ERROR_CHARS:]
        error = error + "\n" + tb
    return {"cell_id": job["cell_id"], "status": status, "error": error,
            "elapsed_s": time.perf_counter() - t0, "metrics": metrics}
