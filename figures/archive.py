"""The committed runs: raw cells, plotted points and theory checks of a quick and a full run.

``reproduce`` writes its results to a git-ignored folder; the runs kept in the repository live
under ``figures/results/<size>/`` so that anyone can re-derive every verdict without re-running
a sweep, and see whether a quick verdict survives at paper size:

* ``<size>/<figure>/cells.csv.gz`` — the sweep's raw cells (one row per grid point and replicate,
  every column the cell returned), gzip with a fixed timestamp so that equal cells give equal bytes;
* ``<size>/<figure>/points.csv`` — the figure's plotted points (``points(df)`` of those cells);
* ``<size>/theory_checks.csv`` / ``.md`` — the claims of every kept figure, in figure order;
* ``<size>/runs.json`` — per figure: wall time, workers, cells (and the grid's number of cells:
  a run kept before all of its grid was done says ``"partial": true``), the commit and date;
* ``disagreements.csv`` — every claim whose quick and full verdicts differ, with its reason
  (tests/figures/test_archive.py fails on a disagreement without one, or a reason without one).

Command line::

    python -m simulator reproduce --full --only fig3 --out DIR
    python -m figures.archive save DIR --size full --only fig3 --seconds 63 --workers 1
    python -m figures.archive rederive          # after a change to a figure's claims()
    python -m figures.archive compare           # quick vs full, with the reasons
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

import theory
from figures import FIGURES

ROOT = Path(__file__).resolve().parent / "results"
KEPT_SIZES = ("quick", "full")
REASONS = ROOT / "disagreements.csv"
REASON_COLUMNS = ("figure", "quantity_quick", "quantity_full", "verdict_quick", "verdict_full",
                  "reason")
_GZIP = {"method": "gzip", "mtime": 0}


def _check_size(size: str) -> str:
    if size not in KEPT_SIZES:
        raise ValueError(f"size must be one of {KEPT_SIZES}; got {size!r}")
    return size


def _check_figure(name: str) -> str:
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {sorted(FIGURES)}")
    return name


def cells_path(size: str, name: str) -> Path:
    """Where a kept run's raw cells live."""
    return ROOT / _check_size(size) / _check_figure(name) / "cells.csv.gz"


def kept_figures(size: str) -> list[str]:
    """The figures with kept cells at ``size``, in figure order."""
    return [n for n in FIGURES if cells_path(size, n).exists()]


def load_cells(size: str, name: str) -> pd.DataFrame:
    """A kept run's raw cells as the sweep store returns them (one row per cell)."""
    path = cells_path(size, name)
    if not path.exists():
        raise FileNotFoundError(f"no kept {size} run of {name} ({path})")
    return pd.read_csv(path)


def rederive(size: str, name: str) -> list:
    """The figure's claims recomputed from its kept cells (no sweep is run)."""
    mod = importlib.import_module(FIGURES[_check_figure(name)])
    return mod.claims(load_cells(size, name))


def committed_table(size: str) -> pd.DataFrame:
    """The kept theory-check table at ``size`` (empty when none is kept)."""
    path = ROOT / _check_size(size) / "theory_checks.csv"
    if not path.exists():
        return pd.DataFrame(columns=list(theory.COLUMNS))
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).astype(
        {"measured": float, "ci_low": float, "ci_high": float})


def runs(size: str) -> dict:
    """The kept runs' manifest: figure -> {seconds, workers, cells, commit, date}."""
    path = ROOT / _check_size(size) / "runs.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _write_table(size: str, results_by_figure: dict) -> None:
    """Write the theory checks of every kept figure (figure order) into ``size``'s folder."""
    rows = [r for name in FIGURES for r in results_by_figure.get(name, [])]
    theory.write_theory_checks(rows, ROOT / size)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT.parent,
                             capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_run(run_dir, size: str, names=None, *, seconds=None, workers=None) -> list[str]:
    """Keep a ``reproduce`` run: copy its raw cells, re-derive its points and claims.

    Parameters
    ----------
    run_dir : path
        The ``--out`` folder of a ``python -m simulator reproduce`` run.
    size : {"quick", "full"}
        The size the run was made at.
    names : list of str, optional
        Figures to keep (default: every figure with a sweep in ``run_dir``).
    seconds : dict, optional
        Wall time per figure, recorded in ``runs.json``.
    workers : int, optional
        Worker processes of the run, recorded in ``runs.json``.

    Returns
    -------
    list of str
        The figures kept.
    """
    from simulator.sweep import store

    run_dir, size = Path(run_dir), _check_size(size)
    names = [n for n in FIGURES if (run_dir / "sweeps" / n).exists()] if names is None else names
    if not names:
        raise ValueError(f"no figure sweeps found under {run_dir / 'sweeps'}")
    manifest = runs(size)
    for name in names:
        df = store.load(run_dir / "sweeps" / _check_figure(name))
        if "status" in df and (df["status"] != "ok").any():
            raise ValueError(f"{name}: the run has failed cells; keep only complete runs")
        grid = grid_cell_index(size, name)
        foreign = set(df["cell_id"]) - set(grid)
        if foreign:
            raise ValueError(f"{name}: {len(foreign)} of the run's cells are not cells of the "
                             f"figure's {size} grid (another spec or older code)")
        # a cell computed by a run of part of the grid (a restricted spec) carries that spec's
        # grid-point index: kept cells carry the index in the figure's grid
        df["cell_index"] = df["cell_id"].map(grid).astype(int)
        df = df.sort_values(["cell_index", "replicate"], kind="stable").reset_index(drop=True)
        path = cells_path(size, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, compression=_GZIP)
        manifest[name] = {"seconds": (seconds or {}).get(name), "workers": workers,
                          "cells": int(len(df)), "grid_cells": len(grid),
                          "commit": _git_commit(), "date": _dt.date.today().isoformat()}
        if len(df) < len(grid):  # part of the grid, e.g. a sweep continued across sittings
            manifest[name]["partial"] = True
    (ROOT / size / "runs.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    rederive_tables(size)
    return names


def grid_cell_ids(size: str, name: str) -> set:
    """The cell ids of a figure's grid at ``size`` (they depend on the parameters only)."""
    return set(grid_cell_index(size, name))


def grid_cell_index(size: str, name: str) -> dict:
    """Cell id -> its grid point's index in the figure's grid at ``size``."""
    from figures.runner import sweep_spec
    from simulator.sweep.spec import load_spec

    mod = importlib.import_module(FIGURES[_check_figure(name)])
    return {c.cell_id: c.index for c in load_spec(sweep_spec(mod.spec(size))).cells()}


def points_of(size: str, name: str) -> pd.DataFrame:
    """The figure's plotted points recomputed from its kept cells."""
    mod = importlib.import_module(FIGURES[_check_figure(name)])
    return mod.points(load_cells(size, name))


def rederive_tables(size: str | None = None) -> None:
    """Recompute the kept theory-check tables and points from the kept cells (after a change to
    a figure's claims or points)."""
    for s in (KEPT_SIZES if size is None else (_check_size(size),)):
        for name in kept_figures(s):
            points_of(s, name).to_csv(cells_path(s, name).parent / "points.csv", index=False)
        _write_table(s, {name: rederive(s, name) for name in kept_figures(s)})


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def _shape(quantity: str) -> tuple[str, list[str]]:
    """A quantity's text with its numbers blanked, and the numbers: the quick and full grids
    differ, so "the largest N" carries a different number at each size."""
    return _NUMBER.sub("#", quantity), _NUMBER.findall(quantity)


def _partner(quantity: str, candidates: dict) -> int | None:
    """The candidate (index -> quantity) of the same shape sharing most numbers with
    ``quantity``; ties only between identical texts (a repeated row) go to the first."""
    shape, nums = _shape(quantity)
    scored = []
    for j, other in candidates.items():
        o_shape, o_nums = _shape(other)
        if o_shape == shape:
            scored.append((sum(a == b for a, b in zip(nums, o_nums)), j))
    if not scored:
        return None
    best = max(score for score, _ in scored)
    top = [j for score, j in scored if score == best]
    return top[0] if len({candidates[j] for j in top}) == 1 else None


def compare(quick: pd.DataFrame | None = None, full: pd.DataFrame | None = None) -> pd.DataFrame:
    """Match the quick and full claims and put their verdicts side by side.

    A row of one table is matched to the row of the other with the same figure and quantity;
    failing that, to the row whose quantity differs only in its numbers and shares most of them
    (a tie between different rows leaves it unmatched). Rows with no partner are kept with an
    empty verdict on the missing side.

    Returns
    -------
    pandas.DataFrame
        Columns ``figure``, ``quantity_quick``, ``quantity_full``, ``verdict_quick``,
        ``verdict_full``, ``measured_quick``, ``measured_full``, ``agree``.
    """
    quick = committed_table("quick") if quick is None else quick
    full = committed_table("full") if full is None else full
    figures = [f for f in FIGURES if f in set(quick["figure"]) & set(full["figure"])]
    rows = []
    for fig in figures:
        q = quick[quick["figure"] == fig].reset_index(drop=True)
        f = full[full["figure"] == fig].reset_index(drop=True)
        pairs, used_f = {}, set()
        for i, qq in enumerate(q["quantity"]):
            hits = [j for j, ff in enumerate(f["quantity"]) if ff == qq and j not in used_f]
            if hits:
                pairs[i] = hits[0]
                used_f.add(hits[0])
        for i, qq in enumerate(q["quantity"]):
            if i in pairs:
                continue
            j = _partner(qq, {j: f["quantity"].iloc[j] for j in range(len(f)) if j not in used_f})
            if j is not None:
                pairs[i] = j
                used_f.add(j)
        for i in range(len(q)):
            j = pairs.get(i)
            rows.append(_pair_row(fig, q.iloc[i], None if j is None else f.iloc[j]))
        rows += [_pair_row(fig, None, f.iloc[j]) for j in range(len(f)) if j not in used_f]
    out = pd.DataFrame(rows, columns=["figure", "quantity_quick", "quantity_full",
                                      "verdict_quick", "verdict_full", "measured_quick",
                                      "measured_full", "agree"])
    return out


def _pair_row(fig, q, f) -> dict:
    vq = "" if q is None else q["verdict"]
    vf = "" if f is None else f["verdict"]
    return {"figure": fig, "quantity_quick": "" if q is None else q["quantity"],
            "quantity_full": "" if f is None else f["quantity"], "verdict_quick": vq,
            "verdict_full": vf,
            "measured_quick": float("nan") if q is None else float(q["measured"]),
            "measured_full": float("nan") if f is None else float(f["measured"]),
            "agree": (vq == vf) if (q is not None and f is not None) else None}


def disagreements(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The matched claims whose quick and full verdicts differ, with the kept reasons."""
    table = compare() if table is None else table
    dis = table[table["agree"].eq(False)][list(REASON_COLUMNS[:-1])].reset_index(drop=True)
    reasons = (pd.read_csv(REASONS, keep_default_na=False) if REASONS.exists()
               else pd.DataFrame(columns=list(REASON_COLUMNS)))
    return dis.merge(reasons, how="left", on=list(REASON_COLUMNS[:-1])).fillna({"reason": ""})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m figures.archive", description=__doc__.split(
        "\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save", help="keep a reproduce run's cells, points and claims")
    s.add_argument("run_dir")
    s.add_argument("--size", choices=KEPT_SIZES, required=True)
    s.add_argument("--only", nargs="+")
    s.add_argument("--seconds", type=float, help="wall time of the run (one figure)")
    s.add_argument("--workers", type=int)
    r = sub.add_parser("rederive", help="recompute the kept tables from the kept cells")
    r.add_argument("--size", choices=KEPT_SIZES)
    sub.add_parser("compare", help="quick vs full verdicts, with the kept reasons")
    a = p.parse_args(argv)
    if a.cmd == "save":
        names = a.only
        secs = None
        if a.seconds is not None:
            if not names or len(names) != 1:
                raise SystemExit("--seconds needs exactly one figure in --only")
            secs = {names[0]: a.seconds}
        kept = save_run(a.run_dir, a.size, names, seconds=secs, workers=a.workers)
        print(f"kept {', '.join(kept)} ({a.size}) under {ROOT / a.size}")
    elif a.cmd == "rederive":
        rederive_tables(a.size)
        print(f"theory checks re-derived from the kept cells under {ROOT}")
    else:
        table = compare()
        dis = disagreements(table)
        agree = int(table["agree"].eq(True).sum())
        print(f"{len(table)} rows: {agree} agree, {len(dis)} disagree, "
              f"{int(table['agree'].isna().sum())} on one size only")
        with pd.option_context("display.max_colwidth", 80, "display.width", 200):
            print(dis.to_string(index=False) if len(dis) else "no disagreement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
