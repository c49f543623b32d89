"""The README's result tables say what the kept runs say.

The README quotes fig11's kept points (quick and full) and every kept run's cell count. These
are typed by hand; this test reads them back and compares them with
``figures/results/<size>/fig11/points.csv`` and ``runs.json``, so a run kept without its README
rows (or a row with a mistyped number) fails here instead of misleading a reader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "figures" / "results"
# README column -> method name in fig11's points
METHODS = {"SharedRep": "SharedRep", "SharedRep+pull": "SharedRep+pull",
           "SharedLoRA": "SharedLoRA", "LoRe": "LoRe", "VPL": "VPL", "PAL-B": "PALB",
           "PAL-A": "PALA", "OracleB": "OracleB", "truth": "truth"}
# a value printed with 3 decimals from the mean: within half a unit of the last digit
HALF_UNIT = 0.0005 + 1e-12


def _tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of ``text`` as rows of stripped cells (header first, rule dropped)."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+:?|:?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _table(header_start: tuple[str, ...]) -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    found = [t for t in _tables(text) if tuple(t[0][:len(header_start)]) == header_start]
    assert len(found) == 1, f"README: expected one table whose header starts {header_start}"
    return found[0]


def _number(s: str) -> float:
    return float(s.replace(",", ""))


def _points(size: str) -> pd.DataFrame:
    return pd.read_csv(RESULTS / size / "fig11" / "points.csv")


def _check_rows(table, points, key_of) -> None:
    header = table[0]
    methods = [h for h in header if h in METHODS]
    assert methods, header
    seen = set()
    for row in table[1:]:
        cell = dict(zip(header, row))
        key = key_of(cell)
        seen.add(key)
        alpha, N, n = key
        at = points[(points.alpha == alpha) & (points.N == N) & (points.n == n)]
        assert len(at), f"README row {row[:2]}: no such grid point in the kept points"
        for col in methods:
            mean = at[at.method == METHODS[col]].set_index("metric")["mean"]
            if col == "truth":
                quoted = {"accuracy": _number(cell[col])}
            else:
                seen_acc, new_acc = (_number(v) for v in cell[col].split("/"))
                quoted = {"accuracy": seen_acc, "new_accuracy_5": new_acc}
            for metric, value in quoted.items():
                assert abs(value - mean[metric]) <= HALF_UNIT, \
                    (f"README fig11 row {key}, {col} {metric}: {value} but the kept points say "
                     f"{mean[metric]:.4f}")
    kept = set(points[["alpha", "N", "n"]].drop_duplicates().itertuples(index=False, name=None))
    assert {(float(a), int(N), int(n)) for a, N, n in kept} == seen, \
        "the README's fig11 table must have one row per kept grid point"


def test_readme_fig11_full_table_matches_kept_points():
    table = _table(("alpha", "N × n", "SharedRep"))

    def key(cell):
        N, n = (int(_number(v)) for v in cell["N × n"].split("×"))
        return float(cell["alpha"]), N, n

    _check_rows(table, _points("full"), key)


def test_readme_fig11_quick_table_matches_kept_points():
    table = _table(("N users × n comparisons", "SharedRep"))
    alphas = _points("quick").alpha.unique()
    assert len(alphas) == 1  # the quick grid has one concentration; the table has no column

    def key(cell):
        N, n = (int(_number(v)) for v in cell["N users × n comparisons"].split("×"))
        return float(alphas[0]), N, n

    _check_rows(table, _points("quick"), key)


def test_readme_time_table_cell_counts_match_runs_json():
    column = "full cells"
    table = _table(("figure", "quick (2 workers)"))
    header = table[0]
    runs = json.loads((RESULTS / "full" / "runs.json").read_text())
    rows = {row[0]: dict(zip(header, row)) for row in table[1:]}
    assert set(rows) == set(runs), "the time table must have one row per kept figure"
    for name, entry in runs.items():
        quoted = rows[name][column]
        m = re.fullmatch(r"([\d,]+)(?: of ([\d,]+))?", quoted)
        assert m, f"{name}: {column} {quoted!r} is not 'CELLS' or 'CELLS of GRID'"
        assert _number(m.group(1)) == entry["cells"], (name, quoted, entry["cells"])
        if entry.get("partial"):
            assert m.group(2) and _number(m.group(2)) == entry["grid_cells"], \
                f"{name}: a partial run's row must say 'CELLS of {entry['grid_cells']}'"
        else:
            assert m.group(2) is None or _number(m.group(2)) == entry["cells"], (name, quoted)
