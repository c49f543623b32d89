"""Verified shards: a checksum of each shard's content and of its cell in the parquet metadata;
``--resume`` recomputes exactly the shards that fail it, and says so."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.cli import main as cli_main
from simulator.sweep import load, load_spec, run_sweep
from simulator.sweep.store import (
    CHECKSUM_KEY,
    cell_digest,
    content_digest,
    scan_verified,
    shard_checksum,
    verify_shard,
)
from tests.sweep.toy_task import TOY, TOY_LOG_ENV


def toy_spec(seed=7, xs=(0.0, 1.0, 2.5)):
    return {"sweep": {"name": "toy", "task": TOY, "seed": seed, "replicates": 2},
            "n": 6, "axes": {"x": list(xs), "nested.a": [1, 2]}}


def est_spec():
    return {"sweep": {"task": "estimation", "seed": 2, "replicates": 1},
            "n": 60, "group_sampling": "fixed",
            "metrics": ["l2_error", "minority_error", "converged"],
            "population": {"regime": "shared", "d": 3, "k": 2, "proportions": [0.3, 0.7]},
            "estimators": {"PooledMLE": {"lam": 1e-3}},
            "axes": {"n": [40, 60]}}


def frame(df):
    return df.drop(columns=["elapsed_s"]).sort_values("cell_id").reset_index(drop=True)


def computations(log):
    return Counter(line for line in Path(log).read_text().splitlines() if line) \
        if Path(log).exists() else Counter()


@pytest.fixture
def toy_log(tmp_path, monkeypatch):
    log = tmp_path / "toy.log"
    monkeypatch.setenv(TOY_LOG_ENV, str(log))
    return log


def test_every_shard_carries_a_checksum_that_survives_the_round_trip(tmp_path):
    for name, spec in (("toy", toy_spec()), ("est", est_spec())):
        out = tmp_path / name
        run_sweep(spec, out, executor="serial", progress=False)
        s = load_spec(spec)
        digests = {c.cell_id: cell_digest(s.task, c) for c in s.cells()}
        for path in (out / "cells").glob("*.parquet"):
            table = pq.read_table(path)
            info = json.loads(table.schema.metadata[CHECKSUM_KEY])
            assert info["scheme"] == "sha256/1"
            assert info["content"] == content_digest(table)
            assert info["cell"] == digests[path.stem]
            assert verify_shard(table, digests[path.stem]) is None
        good, bad, rejected = scan_verified(out, digests)
        assert len(good) == len(digests) and not bad and not rejected


def test_resume_recomputes_exactly_the_tampered_shards(tmp_path, toy_log, capsys):
    out = tmp_path / "run"
    spec_path = tmp_path / "toy.toml"
    spec_path.write_text(
        "n = 6\n[sweep]\nname = 'toy'\ntask = 'tests.sweep.toy_task:toy'\nseed = 7\nreplicates = 2\n"
        "[axes]\nx = [0.0, 1.0, 2.5]\n'nested.a' = [1, 2]\n")
    assert cli_main(["sweep", str(spec_path), "--out", str(out), "--executor", "serial",
                     "--no-progress"]) == 0
    first = load(out)
    assert len(computations(toy_log)) == 12
    # a clean resume trusts every shard and says nothing
    assert cli_main(["sweep", str(spec_path), "--out", str(out), "--resume", "--no-progress"]) \
        == 0
    assert capsys.readouterr().err == ""
    assert sum(computations(toy_log).values()) == 12

    shards = sorted((out / "cells").glob("*.parquet"))
    # 1. a metric changed, the file rewritten as valid parquet keeping the old metadata
    t = pq.read_table(shards[0])
    i = t.column_names.index("mean")
    edited = t.set_column(i, "mean", pa.array([t.column("mean")[0].as_py() + 1e-9]))
    assert shard_checksum(edited) is not None
    pq.write_table(edited, shards[0])
    # 2. a metric changed through pandas (the checksum metadata is lost)
    df = pq.read_table(shards[1]).to_pandas()
    df.loc[0, "sd"] = 0.5
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), shards[1])
    # 3. valid content, but of another cell: the same parameters under another root seed
    other = tmp_path / "other"
    run_sweep(toy_spec(seed=8), other, executor="serial", progress=False)
    shutil.copyfile(other / "cells" / shards[2].name, shards[2])
    toy_log.write_text("")
    for p in shards[:3]:
        assert pq.read_table(p).num_rows == 1  # all three are readable, valid parquet

    assert cli_main(["sweep", str(spec_path), "--out", str(out), "--resume", "--no-progress"]) \
        == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines
    by_shard = {p.name: [line for line in lines if p.name in line] for p in shards[:3]}
    assert "content does not match its checksum" in by_shard[shards[0].name][0]
    assert "unverified: no checksum" in by_shard[shards[1].name][0]
    assert "other cell parameters" in by_shard[shards[2].name][0]
    assert all(line.endswith("recomputing it") for line in lines)

    # exactly those three recomputed, and the results are a clean run's, bit for bit
    again = load(out)
    key_of = dict(zip(again["cell_id"], again["seed_spawn_key"]))
    assert computations(toy_log) == Counter({key_of[p.stem]: 1 for p in shards[:3]})
    clean = run_sweep(toy_spec(), tmp_path / "clean", executor="serial", progress=False)
    pd.testing.assert_frame_equal(frame(again), frame(clean), check_exact=True)
    pd.testing.assert_frame_equal(frame(again), frame(first), check_exact=True)
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert runs[-1]["recomputed_unverified"] == 3 and runs[-1]["computed"] == 3


def test_old_shards_without_a_checksum_are_recomputed_and_reported(tmp_path, toy_log, capsys):
    spec = toy_spec(xs=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0))  # 24 cells
    out = tmp_path / "run"
    first = run_sweep(spec, out, executor="serial", progress=False)
    for p in (out / "cells").glob("*.parquet"):  # as an older version wrote them
        pq.write_table(pq.read_table(p).replace_schema_metadata(None), p)
    toy_log.write_text("")
    again = run_sweep(spec, out, executor="serial", resume=True, progress=False)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 21 and lines[-1].startswith("... and 4 more shard(s)")
    assert all("unverified: no checksum" in line for line in lines[:20])
    assert again.attrs["summary"]["recomputed_unverified"] == 24
    assert again.attrs["summary"]["computed"] == 24
    assert sum(computations(toy_log).values()) == 24
    pd.testing.assert_frame_equal(frame(again), frame(first), check_exact=True)


def test_load_skips_a_shard_whose_content_does_not_match(tmp_path):
    out = tmp_path / "run"
    run_sweep(toy_spec(), out, executor="serial", progress=False)
    path = sorted((out / "cells").glob("*.parquet"))[0]
    t = pq.read_table(path)
    pq.write_table(t.set_column(t.column_names.index("mean"), "mean", pa.array([99.0])), path)
    with pytest.warns(UserWarning, match="does not match their checksum"):
        df = load(out)
    assert len(df) == 11 and path.stem not in set(df["cell_id"])
