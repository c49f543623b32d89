"""Compiled back-ends (numba; torch in :mod:`simulator.kernels.torch_bt` when present).

Each kernel computes a quantity whose definition lives in plain numpy next to the estimator that
uses it, and is tested against that reference.
"""

#: The back-end names, defined once: ``"numba"`` (the compiled CPU kernels of this package),
#: ``"numpy"`` (the plain-numpy reference each kernel is tested against) and ``"torch"`` (CPU or
#: GPU). An estimator that supports fewer names a subset of this tuple.
BACKENDS = ("numba", "numpy", "torch")
