"""Part of a grid (``where`` / ``--where``): a sweep split by grid point gives the same cells,
ids and numbers as the whole sweep run at once; bad selections are refused by name."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main as cli_main
from simulator.sweep import SpecError, load, load_spec, run_sweep
from simulator.sweep.select import check_where, parse_where, select_cells
from tests.sweep.toy_task import TOY


def spec(replicates=2):
    return {"sweep": {"name": "toy", "task": TOY, "seed": 5, "replicates": replicates},
            "n": 4,
            "axes": {"x": [0.0, 1.5]},
            "zip": [{"nested.a": [1, 1, 2], "label": ["p", "q", "r"]}]}


def frame(df):
    return df.drop(columns=["elapsed_s"]).sort_values("cell_id").reset_index(drop=True)


def test_parts_then_rest_equal_the_whole(tmp_path):
    whole = run_sweep(spec(), tmp_path / "whole", executor="serial", progress=False)
    assert whole.attrs["summary"]["complete"] and len(whole) == 12

    out = tmp_path / "split"
    part = run_sweep(spec(), out, executor="serial", progress=False, where={"nested.a": 2})
    s = part.attrs["summary"]
    # nested.a = 2 is one zip row (label r) times 2 x values times 2 replicates
    assert (s["computed"], s["not_selected"], s["complete"]) == (4, 8, False)
    assert set(part["nested.a"]) == {2}
    part2 = run_sweep(spec(), out, executor="serial", progress=False, resume=True,
                      where={"x": "1.5", "replicate": [0, 1]})
    s2 = part2.attrs["summary"]
    assert (s2["computed"], s2["skipped"], s2["complete"]) == (4, 2, False)
    rest = run_sweep(spec(), out, executor="serial", progress=False, resume=True)
    assert (rest.attrs["summary"]["computed"], rest.attrs["summary"]["skipped"]) == (4, 8)
    assert rest.attrs["summary"]["complete"]
    pd.testing.assert_frame_equal(frame(rest), frame(whole))
    pd.testing.assert_frame_equal(frame(load(out)), frame(whole))


def test_cli_where_and_dry_run(tmp_path, capsys):
    import json

    path = tmp_path / "toy.json"
    path.write_text(json.dumps(spec()))
    toml = tmp_path / "toy.toml"
    toml.write_text(f'n = 4\n[sweep]\nname = "toy"\ntask = "{TOY}"\nseed = 5\nreplicates = 2\n'
                    '[axes]\nx = [0.0, 1.5]\n[[zip]]\n"nested.a" = [1, 1, 2]\n'
                    'label = ["p", "q", "r"]\n')
    assert cli_main(["sweep", str(toml), "--out", str(tmp_path / "o"), "--dry-run",
                     "--where", "label=p,q", "--where", "replicate=1"]) == 0
    assert "selects 4 of them" in capsys.readouterr().out
    assert cli_main(["sweep", str(toml), "--out", str(tmp_path / "o"), "--no-progress",
                     "--executor", "serial", "--where", "label=q"]) == 0
    df = load(tmp_path / "o")
    assert sorted(df["label"]) == ["q"] * 4
    assert cli_main(["sweep", str(toml), "--out", str(tmp_path / "o"), "--where", "label=s"]) == 2
    err = capsys.readouterr().err
    assert "where.label" in err and "'p', 'q', 'r'" in err


@pytest.mark.parametrize("where, key, words", [
    ({"y": 1}, "where.y", "not an axis of this grid; choose from ['label', 'nested.a', 'x', "
                          "'replicate']"),
    ({"x": 2.0}, "where.x", "not one of the grid's values [0.0, 1.5]"),
    ({"x": "abc"}, "where.x", "not one of the grid's values"),
    ({"replicate": 2}, "where.replicate", "[0, 1]"),
    ({"x": []}, "where.x", "at least one value"),
    ({"nested.a": 2, "label": "p"}, "where", "selects no cell"),
])
def test_bad_where_names_the_parameter(where, key, words):
    s = load_spec(spec())
    with pytest.raises(SpecError) as e:
        select_cells(s, s.cells(), where)
    assert e.value.key == key and words in str(e.value)


@pytest.mark.parametrize("item", ["N", "=3", "N=", "N= ,"])
def test_bad_where_syntax(item):
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_where([item])


def test_values_are_matched_with_the_grid_types():
    s = load_spec({"sweep": {"task": TOY, "seed": 1},
                   "axes": {"x": [1, 2.5], "nested.flag": [True, False],
                            "nested.v": [[1, 2], [3]]}})
    assert check_where(s, {"x": ["1.0", "2.5"]}) == {"x": [1, 2.5]}
    assert check_where(s, {"nested.flag": "true"}) == {"nested.flag": [True]}
    assert check_where(s, {"nested.v": "[1,2]"}) == {"nested.v": [[1, 2]]}
    # a boolean is not the number 1, and 1 is not the boolean True
    with pytest.raises(SpecError):
        check_where(s, {"nested.flag": 1})
    with pytest.raises(SpecError):
        check_where(s, {"x": True})
    assert parse_where(["nested.v=[1,2],[3]", "x=1"]) == {"nested.v": ["[1,2]", "[3]"],
                                                          "x": ["1"]}


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.sampled_from([0.0, 1.5]), min_size=1, max_size=2, unique=True),
       reps=st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True),
       labels=st.one_of(st.none(), st.lists(st.sampled_from("pqr"), min_size=1, unique=True)))
def test_selection_is_the_cells_whose_values_match(xs, reps, labels):
    s = load_spec(spec(replicates=3))
    where = {"x": xs, "replicate": reps, **({"label": labels} if labels else {})}
    cells = s.cells()
    picked = select_cells(s, cells, where)
    expect = [c for c in cells if c.axis_values["x"] in xs and c.replicate in reps
              and (labels is None or c.axis_values["label"] in labels)]
    assert picked == expect  # the grid's order is kept
    assert len({c.cell_id for c in picked}) == len(picked)


def test_readme_where_example_selects_cells(tmp_path, capsys):
    """The README's example selection is on the example grid (a dry run: nothing is fitted)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert "--where n=3200" in (root / "README.md").read_text()
    assert cli_main(["sweep", str(root / "examples/sweeps/minority_n.toml"), "--out",
                     str(tmp_path / "mn2"), "--dry-run", "--where", "n=3200"]) == 0
    assert "selects" in capsys.readouterr().out
