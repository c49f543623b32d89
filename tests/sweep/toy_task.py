"""The ``toy`` sweep task: a cheap stand-in for a real cell, for testing the engine (it can
sleep, fail and kill its worker process, so it lives with the tests, not in the package).

Specs name it by path, ``task = "tests.sweep.toy_task:toy"`` (:data:`TOY`); workers import it
from the repository root, which the tests run in (``cwd`` of the subprocesses, ``sys.path`` of
the spawned pool's workers).
"""

from __future__ import annotations

import os
import time

import numpy as np

from simulator.sweep.errors import SpecError

TOY = "tests.sweep.toy_task:toy"
TOY_LOG_ENV = "PLURALRLHF_SWEEP_TOY_LOG"
_TOY_KEYS = ("x", "n", "sleep", "fail", "crash", "label", "nested")


def _validate_toy(params: dict):
    for k in params:
        if k not in _TOY_KEYS:
            raise SpecError(k, "unknown parameter for task 'toy' "
                               f"(allowed: {', '.join(_TOY_KEYS)})")
    x = params.get("x", 0.0)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise SpecError("x", f"must be a number; got {x!r}")
    n = params.get("n", 8)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpecError("n", f"must be an integer >= 1; got {n!r}")
    s = params.get("sleep", 0.0)
    if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
        raise SpecError("sleep", f"must be a number >= 0; got {s!r}")


def toy(params: dict, seed: np.random.SeedSequence) -> dict:
    """``n`` normal draws shifted by ``x``.

    ``sleep`` seconds of wall time, ``fail = true`` raises, ``crash = true`` kills the worker
    process (raises in the main process instead); when the environment variable
    ``PLURALRLHF_SWEEP_TOY_LOG`` names a file, each computation appends its seed's spawn key to
    it (tests count computations that way).
    """
    x = float(params.get("x", 0.0))
    n = int(params.get("n", 8))
    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    if params.get("fail"):
        raise RuntimeError(f"toy failure requested (x={x!r})")
    if params.get("crash"):
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            os._exit(70)
        raise RuntimeError("toy crash requested (not in a worker process: raised instead)")
    rng = np.random.Generator(np.random.PCG64(seed))
    z = rng.standard_normal((n, 3))
    out = {"mean": float(z.mean() + x), "sd": float(z.std()), "trace": float(np.trace(z.T @ z)),
           "draws": z[:3, 0].tolist(), "n_draws": n}
    log = os.environ.get(TOY_LOG_ENV)
    if log:
        line = ("{}\n".format(",".join(str(k) for k in seed.spawn_key))).encode()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return out


toy.validate = _validate_toy


def toy_replicate(params: dict, seed: np.random.SeedSequence, replicate: int) -> dict:
    """``toy`` plus the replicate index the engine passes to tasks that ask for it."""
    return {**toy(params, seed), "replicate_seen": int(replicate)}


toy_replicate.wants_replicate = True
toy_replicate.validate = _validate_toy
