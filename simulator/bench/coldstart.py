"""Cold start: from a fresh clone's first import to a finished first fit (issue: estimation core).

The target is under 3 s for ``PooledMLE().fit`` on n = 2,000 comparisons, d = 8, in a new
process of a fresh clone that went through the install step (``make install`` runs
``python -m simulator warmup``, which compiles the numba kernels into their on-disk cache; see
:mod:`simulator.warmup`). The benchmark copies the package into an empty folder (no
``__pycache__``, so no numba cache), runs the install step's warm-up there and then times a new
process; ``--quick`` skips the extra measurement without the warm-up (the first fit then pays
the whole compilation, 30–90 s on 2 cores), which is printed for comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import format_table, print_targets, register

TARGET_S = 3.0

_FIRST_FIT = """
import time
t = time.perf_counter()
from simulator import Population
from simulator.estimators import PooledMLE
data = Population.shared(d=8, k=2, proportions=[0.5, 0.5], seed=0).sample(2000, seed=0)
PooledMLE().fit(data)
print(time.perf_counter() - t)
"""


def _fresh_copy(dest: Path) -> None:
    import simulator

    src = Path(simulator.__file__).parent
    shutil.copytree(src, dest / "simulator", ignore=shutil.ignore_patterns("__pycache__"))


def _run(args, cwd, env):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - t, proc.stdout


@register("coldstart", explicit=True)
def run(quick: bool = False, seed: int = 0, out=print):
    del seed  # nothing random here
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not quick:
            _fresh_copy(root / "nocache")
            wall, stdout = _run(["-c", _FIRST_FIT], root / "nocache", env)
            rows.append({"case": "fresh copy, no warm-up (compiles in the fit)",
                         "first_fit_s": float(stdout.strip().splitlines()[-1]), "wall_s": wall})
        _fresh_copy(root / "clone")
        warm_wall, _ = _run(["-m", "simulator", "warmup"], root / "clone", env)
        rows.append({"case": "install step: python -m simulator warmup", "first_fit_s": None,
                     "wall_s": warm_wall})
        wall, stdout = _run(["-c", _FIRST_FIT], root / "clone", env)
        first = float(stdout.strip().splitlines()[-1])
        rows.append({"case": "fresh clone after install: import + first fit",
                     "first_fit_s": first, "wall_s": wall})
    out(format_table(rows, [("case", "case", "{}"), ("first_fit_s", "import+fit s", "{:.2f}"),
                            ("wall_s", "process wall s", "{:.2f}")]))
    targets = print_targets([(f"first fit in a fresh clone after install < {TARGET_S:.0f} s "
                              f"(measured {first:.2f} s)", first < TARGET_S)], out)
    for r in rows:
        r["targets"] = targets
    return rows
