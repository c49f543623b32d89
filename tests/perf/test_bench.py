"""The benchmarks run at tiny sizes (through their parameters) and `bench all --json` writes
valid JSON; `reproduce` runs only when named."""

import functools
import json
import math

import pytest

from simulator import bench
from simulator.bench import _jsonable, run_benchmarks

TINY = {
    "mle": dict(sizes=[2000], d=4),
    "batched": dict(S=4, n=100, d=3, devices=["cpu"]),
    "sharedrep": dict(n=1500, d=6, k=2, U=3, n_epochs=2, cap_s=2.0),
    "em": dict(n=600, d=4, K=2, users_per_group=5, repeats=1, devices=["cpu"]),
    "policy": dict(M=5, A=3, d=4, k=2, U=3),
}


@pytest.fixture
def tiny_registry(monkeypatch):
    bench._load_all()
    reg = dict(bench.BENCHMARKS)
    for name, kw in TINY.items():
        reg[name] = functools.partial(bench.BENCHMARKS[name], **kw)
    reg["reproduce"] = lambda **kw: pytest.fail("reproduce must not run under 'all'")
    monkeypatch.setattr(bench, "BENCHMARKS", reg)
    return reg


def test_all_benchmarks_run_tiny_and_write_valid_json(tiny_registry, tmp_path):
    lines = []
    path = tmp_path / "bench.json"
    res = run_benchmarks(["all"], quick=True, json_path=path, out=lines.append)
    assert set(res) == set(TINY)
    text = path.read_text()
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert set(loaded) == set(TINY)
    for name, rows in loaded.items():
        assert rows and all("targets" in r or name == "batched" for r in rows)
    printed = "\n".join(lines)
    assert "target:" in printed and ("met" in printed)
    assert "x altmin" in printed and "passes/fit" in printed and "certified gap" in printed


def test_reproduce_is_explicit_only():
    bench._load_all()
    assert "reproduce" in bench.BENCHMARKS and "reproduce" in bench.EXPLICIT


def test_jsonable_handles_numpy_and_non_finite():
    import numpy as np

    out = _jsonable({"a": np.float64(1.5), "b": np.array([1, 2]), "c": float("nan"),
                     "d": np.bool_(True), "e": (np.int64(3), math.inf)})
    assert json.loads(json.dumps(out, allow_nan=False)) == {"a": 1.5, "b": [1, 2], "c": None,
                                                           "d": True, "e": [3, None]}
