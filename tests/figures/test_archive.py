"""The committed quick and full runs (figures/results/): every kept verdict re-derives from the kept
cells with today's code, and every quick-vs-full disagreement is listed with its reason."""

import gzip
import importlib
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import theory
from figures import FIGURES, archive, runner

KEPT = [(size, name) for size in archive.KEPT_SIZES for name in archive.kept_figures(size)]


def test_full_runs_are_kept_for_the_figures():
    full = archive.kept_figures("full")
    assert {f"fig{i}" for i in range(1, 9)} <= set(full)
    assert set(archive.kept_figures("quick")) == set(FIGURES)
    manifest = archive.runs("full")
    for name in full:
        entry = manifest[name]
        assert entry["seconds"] > 0 and entry["workers"] >= 1 and entry["commit"]
        assert entry["cells"] == len(archive.load_cells("full", name))


@pytest.mark.parametrize("size,name", KEPT)
def test_kept_verdicts_rederive_from_the_kept_cells(size, name):
    """A change to a figure's claims() that moves a kept verdict or number fails here until the
    tables are re-derived (python -m figures.archive rederive) and the change is noted."""
    got = theory.claims_table(archive.rederive(size, name))
    kept = archive.committed_table(size)
    kept = kept[kept["figure"] == name].reset_index(drop=True)
    assert list(got["quantity"]) == list(kept["quantity"])
    assert list(got["verdict"]) == list(kept["verdict"])
    np.testing.assert_allclose(got["measured"].to_numpy(float), kept["measured"].to_numpy(float),
                               rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("size,name", KEPT)
def test_kept_points_rederive_from_the_kept_cells(size, name):
    kept = pd.read_csv(archive.cells_path(size, name).parent / "points.csv")
    got = pd.read_csv(io.StringIO(archive.points_of(size, name).to_csv(index=False)))
    pd.testing.assert_frame_equal(got, kept, rtol=1e-9)


@pytest.mark.parametrize("size,name", KEPT)
def test_kept_cells_are_a_complete_sweep(size, name):
    df = archive.load_cells(size, name)
    assert (df["status"] == "ok").all() if "status" in df else True
    spec = runner.sweep_spec(importlib.import_module(FIGURES[name]).spec(size))
    reps = spec["sweep"]["replicates"]
    assert df["replicate"].nunique() == reps
    assert not df.duplicated(["cell_id"]).any()
    # every kept cell is a cell of today's grid; all of the grid unless the run says partial
    grid = archive.grid_cell_ids(size, name)
    assert set(df["cell_id"]) <= grid
    index = archive.grid_cell_index(size, name)  # grid points numbered as in today's grid
    assert (df["cell_index"] == df["cell_id"].map(index)).all()
    entry = archive.runs(size).get(name, {})
    if entry.get("partial"):
        assert len(df) < len(grid) == entry["grid_cells"]
    else:
        assert set(df["cell_id"]) == grid
    with gzip.open(archive.cells_path(size, name)) as fh:  # gzip without a timestamp
        fh.read(1)
    assert archive.cells_path(size, name).read_bytes()[4:8] == b"\0\0\0\0"


def test_every_quick_full_disagreement_has_its_reason():
    table = archive.compare()
    dis = archive.disagreements(table)
    missing = dis[dis["reason"].str.strip() == ""]
    assert missing.empty, "disagreements without a reason in figures/results/disagreements.csv:\n" \
        + missing.to_string()
    if archive.REASONS.exists():  # no stale reason: each listed row still disagrees
        kept = pd.read_csv(archive.REASONS, keep_default_na=False)
        keys = list(archive.REASON_COLUMNS[:-1])
        stale = kept.merge(dis[keys], how="left", on=keys, indicator=True)
        assert (stale["_merge"] == "both").all(), stale[stale["_merge"] != "both"].to_string()


def test_compare_matches_rows_by_quantity_then_by_blanked_grid_values():
    def table(rows):
        return pd.DataFrame([{"figure": "fig7", "quantity": q, "verdict": v, "measured": m}
                             for q, v, m in rows])
    quick = table([("slope vs n, N = 32", "holds", -1.0), ("level, n = 160", "holds", 1.0),
                   ("only quick, N = 8", "holds", 0.0), ("twice, N = 8", "holds", 0.0),
                   ("twice, N = 16", "holds", 0.0)])
    full = table([("slope vs n, N = 128", "inconclusive", -0.9), ("level, n = 160", "holds", 1.1),
                  ("new row", "holds", 0.0), ("twice, N = 8", "does not hold", 0.0),
                  ("twice, N = 64", "holds", 0.0)])
    got = archive.compare(quick, full)
    pair = got[got["quantity_quick"] == "slope vs n, N = 32"].iloc[0]
    assert pair["quantity_full"] == "slope vs n, N = 128" and pair["agree"] is False
    assert got[got["quantity_quick"] == "level, n = 160"].iloc[0]["agree"] is True
    exact = got[got["quantity_quick"] == "twice, N = 8"].iloc[0]
    assert exact["quantity_full"] == "twice, N = 8" and exact["agree"] is False
    # once the exact match is taken, "twice, N = #" is unique on both sides: N = 16 <-> N = 64
    assert got[got["quantity_quick"] == "twice, N = 16"].iloc[0]["quantity_full"] == "twice, N = 64"
    assert (got["quantity_full"] == "new row").sum() == 1
    assert got[got["quantity_full"] == "new row"].iloc[0]["agree"] is None


def test_archive_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="size"):
        archive.cells_path("tiny", "fig1")
    with pytest.raises(ValueError, match="unknown figure"):
        archive.cells_path("full", "fig99")
    with pytest.raises(ValueError, match="no figure sweeps"):
        archive.save_run(tmp_path, "full")


def test_manifest_is_json():
    for size in archive.KEPT_SIZES:
        path = archive.ROOT / size / "runs.json"
        if path.exists():
            assert isinstance(json.loads(path.read_text()), dict)


def test_save_run_marks_part_of_a_grid_and_refuses_other_cells(tmp_path, monkeypatch):
    """A run of part of a figure's grid (fig4's quick grid at two of its ten replicates) is
    kept with ``partial`` and the grid's size; cells of another grid are refused."""
    from simulator.sweep import run_sweep

    monkeypatch.setattr(archive, "ROOT", tmp_path / "results")
    spec = runner.sweep_spec(importlib.import_module(FIGURES["fig4"]).spec("quick"))
    grid = archive.grid_cell_ids("quick", "fig4")
    part = {**spec, "sweep": {**spec["sweep"], "replicates": 2}}
    run_sweep(part, tmp_path / "run" / "sweeps" / "fig4", workers=1, progress=False)
    # and one grid point alone (a restricted spec: its cell carries index 0 of that spec)
    axis, values = next(iter(spec["axes"].items()))
    alone = {**part, "axes": {**spec["axes"], axis: values[-1:]}}
    run_sweep(alone, tmp_path / "alone", workers=1, progress=False)
    for shard in (tmp_path / "alone" / "cells").glob("*.parquet"):
        shutil.copy(shard, tmp_path / "run" / "sweeps" / "fig4" / "cells")
    archive.save_run(tmp_path / "run", "quick", ["fig4"], seconds={"fig4": 1.0}, workers=1)
    entry = archive.runs("quick")["fig4"]
    assert entry["partial"] is True and entry["grid_cells"] == len(grid) > entry["cells"]
    kept = archive.load_cells("quick", "fig4")
    assert set(kept["cell_id"]) < grid
    index = archive.grid_cell_index("quick", "fig4")
    assert (kept["cell_index"] == kept["cell_id"].map(index)).all()
    assert kept["cell_index"].is_monotonic_increasing
    other = {**part, "extra": 1}  # another parameter: other cells
    run_sweep(other, tmp_path / "other" / "sweeps" / "fig4", workers=1, progress=False)
    with pytest.raises(ValueError, match="not cells of the figure's quick grid"):
        archive.save_run(tmp_path / "other", "quick", ["fig4"])
