"""The install step's warm-up compiles (or loads) every numba kernel the estimators use."""

import numpy as np

from simulator import Population
from simulator.cli import main
from simulator.estimators import PooledMLE
from simulator.kernels import bt_numba, em_numba, newton_numba
from simulator.warmup import compile_kernels


def _dispatchers():
    import numba

    for mod in (bt_numba, newton_numba, em_numba):
        for name, obj in vars(mod).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == mod.__name__:
                yield f"{mod.__name__}.{name}", obj


def test_warmup_leaves_no_kernel_uncompiled(capsys):
    assert main(["warmup"]) == 0
    assert "numba kernels compiled" in capsys.readouterr().out
    # Every public entry kernel has at least one overload after the warm-up; a kernel added
    # later without a warm-up call would make its users pay the compilation in their first fit.
    entry = {"bt_numba._pass_serial", "bt_numba._pass_parallel", "newton_numba.newton",
             "em_numba.e_step"}
    seen = {name.split("simulator.kernels.")[1]: len(d.overloads) for name, d in _dispatchers()}
    for name in entry & set(seen):
        assert seen[name] > 0, name
    assert "newton_numba.newton" in seen


def test_first_fit_after_warmup_uses_no_new_compilation():
    compile_kernels()
    before = len(newton_numba.newton.overloads)
    data = Population.shared(d=8, k=2, proportions=[0.5, 0.5], seed=0).sample(2000, seed=0)
    est = PooledMLE().fit(data)
    assert est.converged_ and np.all(np.isfinite(est.theta_))
    assert len(newton_numba.newton.overloads) == before  # the warm-up compiled this signature
