"""numba kernels for the small dense algebra of the Newton solver in
:mod:`simulator.estimators.bt` (one call instead of a dozen numpy calls per iteration).

Reference: :func:`simulator.estimators.bt.bfgs_update` (plain numpy), tested against this.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def bfgs_update(H, s, y):
    """``H - (H s)(H s)^T / (s^T H s) + y y^T / (y^T s)``, or H itself when ``y^T s <= 0``
    or ``s^T H s <= 0`` (the update would not stay positive definite)."""
    d = s.size
    Hs = np.zeros(d)
    ys = 0.0
    for i in range(d):
        ys += y[i] * s[i]
        acc = 0.0
        for j in range(d):
            acc += H[i, j] * s[j]
        Hs[i] = acc
    sHs = 0.0
    for i in range(d):
        sHs += s[i] * Hs[i]
    if not (ys > 0.0 and sHs > 0.0):
        return H
    out = np.empty_like(H)
    for i in range(d):
        a = Hs[i] / sHs
        b = y[i] / ys
        for j in range(d):
            out[i, j] = H[i, j] - a * Hs[j] + b * y[j]
    return out
