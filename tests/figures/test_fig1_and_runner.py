"""Figure 1 at a tiny size through the real sweep engine, and the reproduce command's table."""

import pandas as pd

import theory
from figures import runner
from simulator.cli import main


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


def test_unknown_figure_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown figure"):
        runner.run_figures(["fig99"], tmp_path)
    assert main(["reproduce", "--only", "fig99", "--out", str(tmp_path)]) == 2
