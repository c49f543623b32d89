"""Compiled back-ends (numba; torch in :mod:`simulator.kernels.torch_bt` when present).

Each kernel computes a quantity whose definition lives in plain numpy next to the estimator that
uses it, and is tested against that reference.
"""
