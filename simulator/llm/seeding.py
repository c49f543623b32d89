"""Explicit seeds: every random draw in the LLM pipeline comes from one of these.

A run seed is split into named, independent streams with :class:`numpy.random.SeedSequence`
so that, e.g., the pair-to-group assignment does not change when the number of prompts does.
"""

from __future__ import annotations

import numpy as np

from ..seeding import derive_seed_sequence


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """SeedSequence for the named stream of run ``seed`` (stable across Python runs); the same
    derivation as the simulator's sweep cells (:func:`simulator.seeding.derive_seed_sequence`)."""
    return derive_seed_sequence(int(seed), stream)


def rng(seed: int, stream: str) -> np.random.Generator:
    """numpy Generator for the named stream of run ``seed``."""
    return np.random.default_rng(seed_sequence(seed, stream))


def torch_seed(seed: int, stream: str) -> int:
    """A 63-bit integer seed for torch derived from ``(seed, stream)``."""
    return int(seed_sequence(seed, stream).generate_state(2, dtype=np.uint32).astype(np.uint64)
               .dot(np.array([1, 2**31], dtype=np.uint64)))


def torch_generator(seed: int, stream: str, device: str = "cpu"):
    """``torch.Generator`` seeded from ``(seed, stream)``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(torch_seed(seed, stream))
    return g


def seeded_torch(seed: int, stream: str):
    """Context manager: fork torch's global RNG and seed it from ``(seed, stream)``.

    Used around library calls that draw from the global RNG and accept no generator
    (``model.generate`` sampling, module initialisation).  The caller's RNG state is restored.
    """
    import torch

    class _Ctx:
        def __enter__(self):
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(torch_seed(seed, stream))
            return self

        def __exit__(self, *exc):
            return self._fork.__exit__(*exc)

    return _Ctx()
