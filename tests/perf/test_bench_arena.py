"""The arena benchmark is registered explicit-only and its tables print a row per method."""

import numpy as np

from simulator import arena as protocols
from simulator import bench
from simulator.bench import arena


def test_registered_explicit_only():
    bench._load_all()
    assert bench.BENCHMARKS["arena"] is arena.run and "arena" in bench.EXPLICIT


def test_policy_protocol_tiny_replicate():
    # one tiny replicate of protocol 4: every method's max-min suboptimality is >= 0 (V* is the
    # exact max-min value of the truth) and win rates are probabilities
    p = {**protocols.SIZES["tiny"], "minority": 0.1}
    out = protocols.policy_level(p, np.random.SeedSequence(3))
    names = {k.split(".")[0] for k in out}
    assert {"SharedRep", "LoRe", "DPO", "GR-DPO"} <= names
    for m in names:
        assert out[f"{m}.subopt"] >= -1e-6
        assert 0.0 <= out[f"{m}.minority_win"] <= 1.0
