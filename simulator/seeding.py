"""Every random draw in the package flows from a seed through :class:`numpy.random.SeedSequence`.

Functions accept ``seed`` as an int, a ``SeedSequence`` or a ``Generator``. ``None`` is refused
everywhere: there is no global or entropy-seeded randomness in the package.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["as_seed_sequence", "as_generator", "child_seeds", "named_child",
           "spawn_generators", "derive_seed_sequence"]


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """Turn ``seed`` (int >= 0, SeedSequence or Generator) into a SeedSequence."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        # A generator's own seed sequence is not recoverable; draw entropy from it.
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed}")
        return np.random.SeedSequence(int(seed))
    raise ValueError("seed must be a non-negative int, a numpy.random.SeedSequence or a "
                     f"numpy.random.Generator (None is not allowed); got {seed!r}")


def as_generator(seed) -> np.random.Generator:
    """A PCG64 generator from ``seed``; a Generator is passed through unchanged."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))


def child_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed``, the ones ``SeedSequence.spawn(n)`` gives a
    fresh sequence, derived without spawning: ``SeedSequence.spawn`` advances the parent's
    counter, so a ``SeedSequence`` passed as ``seed`` to two fits would give the second other
    children; these depend on the seed's entropy and key alone (same seed, same numbers)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}")
    ss = as_seed_sequence(seed)
    return [np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,),
                                   pool_size=ss.pool_size) for i in range(int(n))]


def named_child(seed, *words) -> np.random.SeedSequence:
    """A child of ``seed`` keyed by words (the pipeline's and the sweep tasks' named streams:
    "data", "env", "estimator/<label>" ...): stable (it does not depend on how many other
    children exist or were drawn) and independent across words; unlike
    :func:`derive_seed_sequence` it extends the seed's own spawn key, so children of different
    cells differ."""
    ss = as_seed_sequence(seed)
    keys = tuple(int.from_bytes(hashlib.sha256(str(w).encode()).digest()[:8], "little")
                 for w in words)
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + keys)


def spawn_generators(seed, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (:func:`child_seeds`)."""
    return [np.random.Generator(np.random.PCG64(s)) for s in child_seeds(seed, n)]


def _key_to_int(key) -> int:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def derive_seed_sequence(root_seed, *keys) -> np.random.SeedSequence:
    """A SeedSequence that depends only on ``root_seed`` and the (hashable, repr-stable) keys.

    Used by sweeps: a cell's stream depends on the root seed and the cell's parameters, not on the
    order in which cells run.
    """
    entropy = as_seed_sequence(root_seed).entropy
    return np.random.SeedSequence(entropy, spawn_key=tuple(_key_to_int(k) for k in keys))
