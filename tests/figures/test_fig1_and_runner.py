"""Figure 1 at a tiny size through the real sweep engine, the reproduce command's table, and the
declarative figure contract (spec / cell / claims / points / plot) of figures 1, 2, 3 and 5."""

import ast
import importlib
import inspect
import sys

import numpy as np
import pandas as pd
import pytest

import theory
from figures import fig1_mle_rate, runner
from simulator.cli import main

DECLARATIVE = ("figures.fig1_mle_rate", "figures.fig2_minority", "figures.fig3_policy",
               "figures.fig5_k_ablation")


def test_fig1_tiny_writes_files_and_claims(tmp_path):
    claims = runner.run_figure("fig1", tmp_path, size="tiny", executor="serial", progress=False)
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / f"fig1.{ext}").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig1.csv")
    assert {"d", "n", "err_l2_mean", "err_l2_q10", "err_l2_q90", "err_sigma_quantile",
            "zhu_bound_C1"} <= set(pts.columns)
    assert len(pts) == 2 * 3  # d x n of the tiny grid
    assert (pts["err_l2_q10"] <= pts["err_l2_mean"]).all()
    assert all(c.verdict in theory.VERDICTS for c in claims)
    assert all(not c.verified for c in claims)  # nothing in the notes is verified
    # one slope claim and one bound-ratio claim per d, plus the slope in d
    assert len(claims) == 2 * 2 + 1


def test_reproduce_cli_writes_one_row_per_claim(tmp_path, capsys):
    rc = main(["reproduce", "--only", "fig1", "--size", "tiny", "--out", str(tmp_path),
               "--executor", "serial"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "theory_checks.csv")
    assert list(table.columns) == list(theory.COLUMNS)
    assert len(table) == 5 and set(table["figure"]) == {"fig1"}
    md = (tmp_path / "theory_checks.md").read_text()
    assert md.count("| fig1 |") == 5
    assert "Theory checks (5 claims" in capsys.readouterr().out


def test_reproduce_where_splits_a_figure_across_runs(tmp_path, capsys):
    """--where runs part of the grid and draws nothing; the --resume run that completes the grid
    draws the figure, with the same points and claims as one run of the whole grid."""
    whole = tmp_path / "whole"
    assert main(["reproduce", "--only", "fig1", "--size", "tiny", "--out", str(whole),
                 "--executor", "serial"]) == 0
    out = tmp_path / "split"
    args = ["reproduce", "--only", "fig1", "--size", "tiny", "--out", str(out),
            "--executor", "serial"]
    assert main(args + ["--where", "d=4"]) == 0
    assert "9 of 18 cells finished" in capsys.readouterr().err
    assert not (out / "fig1.csv").exists() and not (out / "theory_checks.csv").exists()
    assert main(args + ["--resume", "--where", "n=200,400"]) == 0
    assert not (out / "fig1.csv").exists()
    assert main(args + ["--resume"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "fig1.csv"), pd.read_csv(whole / "fig1.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(out / "theory_checks.csv"),
                                  pd.read_csv(whole / "theory_checks.csv"))
    # --where names one figure's axes: several figures, or an axis it lacks, are refused
    assert main(["reproduce", "--only", "fig1", "fig2", "--where", "d=4", "--out",
                 str(tmp_path / "x")]) == 2
    assert main(args + ["--where", "N=10"]) == 2
    assert "where.N: is not an axis of this grid; choose from ['d', 'n', 'replicate']" \
        in capsys.readouterr().err
    assert len(list((out / "sweeps" / "fig1" / "cells").glob("*.parquet"))) == 18  # kept


def test_unknown_figure_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown figure"):
        runner.run_figures(["fig99"], tmp_path)
    assert main(["reproduce", "--only", "fig99", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("modname", DECLARATIVE)
def test_figure_declares_spec_claims_points_plot(modname):
    mod = importlib.import_module(modname)
    for size in runner.SIZES:
        sp = mod.spec(size)
        assert sp["sweep"]["name"] == mod.NAME
        assert sp["sweep"]["task"] == f"{modname}:cell"
        assert "params" not in sp and runner.sweep_spec(sp) is sp  # the engine's format as is
        assert set(getattr(mod.cell, "seed_ignore", ())) == set(sp["sweep"].get("seed_ignore", ()))
    assert not hasattr(mod, "analyse")
    assert all(callable(getattr(mod, f)) for f in ("cell", "claims", "points", "plot"))
    # every function under 60 lines (def line to last line)
    tree = ast.parse(inspect.getsource(mod))
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 >= 60]
    assert not long, long


def test_fig1_cell_matches_an_independent_computation():
    """The cell's library calls against the formulas written out: Lemma 3.1's Sigma_D + lambda I
    norm with lambda = LAM / n, and the mean BT curvature sigma'(<theta, x_i>) on the data."""
    from simulator import Population
    from simulator.estimators import PooledMLE

    params = {"d": 3, "n": 400, "signal": 1.0}
    out = fig1_mle_rate.cell(params, np.random.SeedSequence(9))
    s_pop, s_data = np.random.SeedSequence(9).spawn(2)
    pop = Population.shared(3, 1, [1.0], seed=s_pop, signal=1.0)
    data = pop.sample(400, seed=s_data)
    delta = PooledMLE(lam=fig1_mle_rate.LAM).fit(data).coef_ - pop.theta[0]
    S = data.X.T @ data.X / 400 + fig1_mle_rate.LAM / 400 * np.eye(3)
    p = 1 / (1 + np.exp(-data.X @ pop.theta[0]))
    assert out["err_l2"] == pytest.approx(np.sqrt(delta @ delta), rel=1e-12)
    assert out["err_sigma"] == pytest.approx(np.sqrt(delta @ S @ delta), rel=1e-12)
    assert out["gamma_mean"] == pytest.approx(np.mean(p * (1 - p)), rel=1e-12)
    assert out["norm_bound"] == pytest.approx(np.linalg.norm(pop.theta[0]), rel=1e-15)
    assert out["feature_bound"] == np.linalg.norm(data.X, axis=1).max()


def test_fig1_analyse_splits_claims_points_plot(tmp_path, tiny_sweep, monkeypatch):
    df = tiny_sweep(fig1_mle_rate)
    claims = runner.analyse(fig1_mle_rate, df, tmp_path)
    assert len(claims) == 5 and (tmp_path / "fig1.png").stat().st_size > 0
    pts = pd.read_csv(tmp_path / "fig1.csv")
    pd.testing.assert_frame_equal(pts, fig1_mle_rate.points(df), check_dtype=False)
    # the slope line is anchored at the smallest n and falls like n^-1/2
    for _, p in pts.groupby("d"):
        np.testing.assert_allclose(p["predicted_slope_line"] * np.sqrt(p["n"]),
                                   p["err_l2_mean"].iloc[0] * np.sqrt(p["n"].iloc[0]), rtol=1e-12)
    # claims and points draw nothing: they run with matplotlib unimportable
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    again = fig1_mle_rate.claims(df)
    assert [c.measured for c in again] == [c.measured for c in claims]
    fig1_mle_rate.points(df)
    with pytest.raises(ImportError):
        fig1_mle_rate.plot(df, pts)
