"""Running sweeps: identical numbers across executors, resume after SIGKILL, corrupt shards,
failures recorded, manifest checks, CLI."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from simulator.cli import main as cli_main
from simulator.sweep import SweepError, load, run_cell, run_sweep
from tests.sweep.toy_task import TOY, TOY_LOG_ENV

ROOT = Path(__file__).resolve().parents[2]


def toy_spec(replicates=2, **extra):
    return {"sweep": {"name": "toy", "task": TOY, "seed": 7, "replicates": replicates},
            "n": 6, **extra,
            "axes": {"x": [0.0, 1.0, 2.5], "nested.a": [1, 2]}}


def est_spec():
    return {
        "sweep": {"task": "estimation", "seed": 2, "replicates": 2},
        "n": 80, "group_sampling": "fixed",
        "metrics": ["l2_error", "minority_error", "max_error", "converged"],
        "population": {"regime": "shared", "d": 3, "k": 2, "proportions": [0.3, 0.7]},
        "estimators": {"PooledMLE": {"lam": 1e-3}, "sep": {"class": "SeparateMLE", "lam": 1e-2}},
        "axes": {"n": [40, 80], "population.proportions": [[0.3, 0.7], [0.5, 0.5]]},
    }


def frame(df):
    """Results without wall-clock times, in cell order."""
    return df.drop(columns=["elapsed_s"]).sort_values("cell_id").reset_index(drop=True)


def log_counts(path):
    if not Path(path).exists():
        return Counter()
    return Counter(line for line in Path(path).read_text().splitlines() if line)


@pytest.fixture
def toy_log(tmp_path, monkeypatch):
    log = tmp_path / "toy.log"
    monkeypatch.setenv(TOY_LOG_ENV, str(log))
    return log


# ------------------------------------------------------------------------- executors
def test_serial_process_and_dask_give_identical_frames(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    for name, spec in (("est", est_spec()), ("toy", toy_spec())):
        serial = run_sweep(spec, tmp_path / f"{name}-serial", executor="serial", progress=False)
        assert (serial["status"] == "ok").all(), serial["error"].dropna().tolist()
        proc = run_sweep(spec, tmp_path / f"{name}-proc", executor="process", workers=2,
                         progress=False)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            dask = run_sweep(spec, tmp_path / f"{name}-dask", executor="dask", scheduler=client,
                             progress=False)
        pd.testing.assert_frame_equal(frame(serial), frame(proc), check_exact=True)
        pd.testing.assert_frame_equal(frame(serial), frame(dask), check_exact=True)
        assert len(serial) == load_spec_cells(spec)
    # a row recomputed alone is the stored row
    row = serial[serial["cell_index"] == 3].iloc[1]
    rec = run_cell(toy_spec(), {"x": row["x"], "nested.a": row["nested.a"]},
                   replicate=int(row["replicate"]))
    assert rec["mean"] == row["mean"] and rec["draws"] == list(row["draws"])
    assert rec["cell_id"] == row["cell_id"] and rec["seed_spawn_key"] == row["seed_spawn_key"]


def load_spec_cells(spec):
    from simulator.sweep import load_spec

    return load_spec(spec).n_cells


def test_dask_local_cluster_of_processes(tmp_path):
    pytest.importorskip("distributed")
    spec = toy_spec(replicates=1)
    serial = run_sweep(spec, tmp_path / "s", executor="serial", progress=False)
    dask = run_sweep(spec, tmp_path / "d", executor="dask", workers=2, progress=False)
    pd.testing.assert_frame_equal(frame(serial), frame(dask), check_exact=True)


# ---------------------------------------------------------------------- kill + resume
def test_sigkill_midway_then_resume_equals_uninterrupted_run(tmp_path, toy_log):
    spec_text = textwrap.dedent("""
        n = 4
        sleep = 0.08
        [sweep]
        task = "tests.sweep.toy_task:toy"
        seed = 99
        replicates = 2
        [axes]
        x = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
        label = ["a", "b"]
    """)
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_text)
    out = tmp_path / "run"
    env = {**os.environ, TOY_LOG_ENV: str(toy_log)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "sweep", str(spec), "--out", str(out),
         "--workers", "2", "--no-progress"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cells = out / "cells"
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if cells.is_dir() and len(list(cells.glob("*.parquet"))) >= 10:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stdout.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished = {p.stem for p in cells.glob("*.parquet")}
    assert 10 <= len(finished) < 40
    with pytest.raises(SweepError, match="already holds a sweep"):
        run_sweep(spec, out, executor="serial", progress=False)

    resumed = run_sweep(spec, out, executor="process", workers=2, resume=True, progress=False)
    s = resumed.attrs["summary"]
    assert s["skipped"] >= len(finished) and s["computed"] + s["skipped"] == 40
    assert s["failed"] == 0

    # every cell finished before the kill was computed exactly once
    counts = log_counts(toy_log)
    key_of = dict(zip(resumed["cell_id"], resumed["seed_spawn_key"]))
    assert all(counts[key_of[c]] == 1 for c in finished)
    assert set(counts) == set(key_of.values())

    # and the result is exactly that of an uninterrupted run
    os.environ.pop(TOY_LOG_ENV, None)
    clean = run_sweep(spec, tmp_path / "clean", executor="serial", progress=False)
    pd.testing.assert_frame_equal(frame(resumed), frame(clean), check_exact=True)
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert len(runs) == 2 and runs[1]["resume"] is True


def test_corrupt_and_misnamed_shards_are_recomputed(tmp_path, toy_log):
    out = tmp_path / "run"
    first = run_sweep(toy_spec(), out, executor="serial", progress=False)
    assert len(log_counts(toy_log)) == 12
    shards = sorted((out / "cells").glob("*.parquet"))
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) // 2])  # partial write
    shards[1].write_bytes(shards[2].read_bytes())  # wrong cell id inside
    (out / "cells" / ".tmp-leftover.part").write_bytes(b"junk")  # a killed writer's temp file
    with pytest.warns(UserWarning, match="unreadable"):
        assert len(load(out)) == 10
    again = run_sweep(toy_spec(), out, executor="serial", resume=True, progress=False)
    assert again.attrs["summary"]["computed"] == 2
    assert again.attrs["summary"]["recomputed_corrupt"] == 2
    counts = log_counts(toy_log)
    redone = {k for k, v in counts.items() if v == 2}
    ids = dict(zip(again["seed_spawn_key"], again["cell_id"]))
    assert {ids[k] for k in redone} == {shards[0].stem, shards[1].stem}
    assert not list((out / "cells").glob(".tmp-*"))
    pd.testing.assert_frame_equal(frame(first), frame(again), check_exact=True)


def test_failing_cells_are_recorded_and_recomputed_on_resume(tmp_path, toy_log):
    spec = toy_spec(replicates=1)
    spec["axes"]["fail"] = [False, True]
    out = tmp_path / "run"
    df = run_sweep(spec, out, executor="process", workers=2, progress=False)
    assert len(df) == 12
    failed = df[df["status"] == "failed"]
    assert len(failed) == 6 and failed["fail"].all()
    assert failed["error"].str.contains("RuntimeError: toy failure requested").all()
    assert df.loc[df["status"] == "ok", "mean"].notna().all()
    assert df.attrs["summary"]["failed"] == 6
    again = run_sweep(spec, out, executor="serial", resume=True, progress=False)
    assert again.attrs["summary"] == {**again.attrs["summary"], "skipped": 6, "failed": 6,
                                      "computed": 0}
    assert len(load(out, status="ok")) == 6


def test_resume_with_another_spec_names_the_difference(tmp_path):
    out = tmp_path / "run"
    run_sweep(toy_spec(), out, executor="serial", progress=False)
    other = toy_spec()
    other["n"] = 7
    other["sweep"]["replicates"] = 3
    with pytest.raises(SweepError) as info:
        run_sweep(other, out, executor="serial", resume=True, progress=False)
    msg = str(info.value)
    assert "n: 6 in the manifest's spec, 7 in this spec" in msg
    assert "sweep.replicates: 2" in msg
    # a bad spec writes nothing at all
    fresh = tmp_path / "fresh"
    bad = toy_spec()
    bad["axes"]["x"] = []
    with pytest.raises(ValueError, match="axes.x: values must be a non-empty list"):
        run_sweep(bad, fresh, progress=False)
    assert not fresh.exists()


# ------------------------------------------------------------------------------- CLI
def test_cli_runs_resumes_and_reports_bad_specs(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text("n = 3\n[sweep]\ntask = 'tests.sweep.toy_task:toy'\nseed = 1\n[axes]\nx = [1.0, 2.0]\n")
    out = tmp_path / "out"
    assert cli_main(["sweep", str(spec), "--out", str(out), "--executor", "serial"]) == 0
    err = capsys.readouterr().err
    assert "2 computed, 0 already done, 0 failed" in err
    assert cli_main(["sweep", str(spec), "--out", str(out), "--resume"]) == 0
    assert "0 computed, 2 already done" in capsys.readouterr().err
    assert len(load(out)) == 2
    assert cli_main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    assert "2 cells" in capsys.readouterr().out
    spec.write_text("[sweep]\ntask = 'tests.sweep.toy_task:toy'\nseed = 1\nreplicates = 0\n")
    assert cli_main(["sweep", str(spec), "--out", str(tmp_path / "o2")]) == 2
    assert "sweep.replicates: must be an integer >= 1" in capsys.readouterr().err


def test_example_specs_are_valid():
    from simulator.sweep import load_spec

    for p in sorted((ROOT / "examples" / "sweeps").glob("*.toml")):
        s = load_spec(p)
        assert s.n_cells > 0 and s.task == "estimation"


def test_a_dying_worker_fails_only_its_cells_and_the_sweep_goes_on(tmp_path):
    spec = toy_spec(replicates=1)
    del spec["axes"]["x"]
    spec["zip"] = [{"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                    "crash": [False, False, True, False, False, False]}]
    df = run_sweep(spec, tmp_path / "run", executor="process", workers=2, progress=False)
    assert len(df) == 12
    assert df.attrs["summary"]["failed"] == 2
    dead = df[df["status"] == "failed"]
    assert dead["crash"].all() and dead["error"].str.contains("worker process died").all()
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", progress=False)
    assert serial.loc[serial["crash"], "error"].str.contains("toy crash requested").all()
    pd.testing.assert_frame_equal(frame(df[~df["crash"]]), frame(serial[~serial["crash"]]),
                                  check_exact=True)


def test_task_asking_for_its_replicate_gets_it_and_the_same_seed(tmp_path):
    """A task with ``wants_replicate`` gets the replicate index; its draws still come from the
    seed alone (the same numbers as the plain task), serial or in processes."""
    from simulator.sweep import run_sweep

    def spec(task):
        return {"sweep": {"name": "r", "task": task, "seed": 5, "replicates": 3},
                "n": 4, "axes": {"x": [0.0, 1.0]}}

    plain = run_sweep(spec(TOY), tmp_path / "a", executor="serial", progress=False)
    got = {ex: run_sweep(spec("tests.sweep.toy_task:toy_replicate"), tmp_path / ex, executor=ex,
                         workers=2, progress=False) for ex in ("serial", "process")}
    for df in got.values():
        assert (df["replicate_seen"] == df["replicate"]).all()
        key = ["x", "replicate"]
        a = plain.sort_values(key).reset_index(drop=True)
        b = df.sort_values(key).reset_index(drop=True)
        assert a["mean"].tolist() == b["mean"].tolist()
