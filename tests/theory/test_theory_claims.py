"""Verdict rules (every branch), Claim / ClaimResult and the theory-check table."""

import math

import numpy as np
import pandas as pd
import pytest

import theory as t
from theory import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

NAN = float("nan")


@pytest.mark.parametrize(
    "ci,expected",
    [
        ((-0.52, -0.47), HOLDS),  # CI inside the band [-0.6, -0.4]
        ((-0.58, -0.55), HOLDS),  # predicted not in CI but the CI is within tolerance
        ((-0.80, -0.65), DOES_NOT_HOLD),  # CI entirely below the band
        ((-0.30, -0.20), DOES_NOT_HOLD),  # CI entirely above the band
        ((-0.90, -0.10), INCONCLUSIVE),  # contains the prediction but too wide
        ((-0.70, -0.50), INCONCLUSIVE),  # straddles the lower edge
        ((-0.45, -0.35), INCONCLUSIVE),  # straddles the upper edge, excludes the prediction
        ((NAN, -0.5), INCONCLUSIVE),  # no interval
    ],
)
def test_verdict_exponent_branches(ci, expected):
    assert t.verdict_exponent(-0.5, *ci, tol=0.1) == expected


def test_verdict_value_relative_tolerance_and_zero_tolerance():
    # ratio 1 + d/N = 1.4 with 10% relative tolerance -> band [1.26, 1.54]
    assert t.verdict_value(1.4, 1.28, 1.35, rtol=0.1) == HOLDS
    assert t.verdict_value(1.4, 1.6, 1.7, rtol=0.1) == DOES_NOT_HOLD
    assert t.verdict_value(1.4, 1.2, 1.35, rtol=0.1) == INCONCLUSIVE
    assert t.verdict_value(1.0, 1.0, 1.0) == HOLDS
    assert t.verdict_value(1.0, 0.9, 1.1) == INCONCLUSIVE
    with pytest.raises(ValueError, match="atol"):
        t.verdict_value(1.0, 0.9, 1.1, atol=-1.0)
    with pytest.raises(ValueError, match="ci_low must be <= ci_high"):
        t.verdict_value(1.0, 1.1, 0.9)
    with pytest.raises(ValueError, match="predicted"):
        t.verdict_value(float("inf"), 0.9, 1.1)


@pytest.mark.parametrize(
    "ci,bound,expected",
    [
        ((0.1, 0.5), 0.5, HOLDS),
        ((0.6, 0.9), 0.5, DOES_NOT_HOLD),
        ((0.4, 0.6), 0.5, INCONCLUSIVE),
        ((NAN, NAN), 0.5, INCONCLUSIVE),
    ],
)
def test_verdict_upper_bound(ci, bound, expected):
    assert t.verdict_upper_bound(*ci, bound) == expected


@pytest.mark.parametrize(
    "ci,bound,expected",
    [
        ((0.5, 0.9), 0.5, HOLDS),
        ((0.1, 0.4), 0.5, DOES_NOT_HOLD),
        ((0.4, 0.6), 0.5, INCONCLUSIVE),
        ((0.4, NAN), 0.5, INCONCLUSIVE),
    ],
)
def test_verdict_lower_bound(ci, bound, expected):
    assert t.verdict_lower_bound(*ci, bound) == expected


@pytest.mark.parametrize(
    "ci,expected",
    [
        ((-0.3, -0.1), HOLDS),
        ((0.0, 0.2), DOES_NOT_HOLD),
        ((0.1, 0.2), DOES_NOT_HOLD),
        ((-0.1, 0.1), INCONCLUSIVE),
        ((NAN, 0.1), INCONCLUSIVE),
    ],
)
def test_verdict_less_than(ci, expected):
    assert t.verdict_less_than(*ci) == expected


def test_claim_kinds_dispatch_and_from_bound():
    c = t.Claim.from_bound(
        t.sharedrep_rate,
        figure="fig3",
        quantity="minority error slope in n",
        prediction="-1/2",
        kind="value",
        predicted=-0.5,
        atol=0.1,
        note="n>=1e3",
    )
    assert c.verified is False and "[I]" in c.source and c.note.startswith("n>=1e3; RECONSTRUCTED")
    r = c.evaluate(-0.49, -0.53, -0.46)
    assert r.verdict == HOLDS and r.verified is False and r.figure == "fig3"
    ub = t.Claim("fig1", "error at n=1e3", "<= Lemma 3.1 bound", "upper_bound", predicted=1.0)
    assert ub.evaluate(0.5, 0.4, 0.6).verdict == HOLDS
    lb = t.Claim("fig5", "alignment gap", ">= Thm 1 bound", "lower_bound", predicted=1.0)
    assert lb.evaluate(0.5, 0.4, 0.6).verdict == DOES_NOT_HOLD
    lt = t.Claim("fig3", "SharedRep - MaxMin minority error", "SharedRep < MaxMin", "less_than")
    assert lt.evaluate(-0.1, -0.2, 0.05).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="kind"):
        t.Claim("f", "q", "p", "approx", predicted=1.0)
    with pytest.raises(ValueError, match="predicted"):
        t.Claim("f", "q", "p", "upper_bound")


def test_claim_evaluate_fit_records_fit_details():
    x = np.logspace(1, 3, 5)
    y = np.tile(x**-1.0, (3, 1)) * np.array([[1.0], [1.1], [0.9]])
    fit = t.fit_loglog_slope(x, y, n_boot=200)
    c = t.Claim("fig2", "slope", "-1", "value", predicted=-1.0, atol=0.1)
    r = c.evaluate_fit(fit)
    assert r.verdict == HOLDS and r.measured == pytest.approx(-1.0)
    assert "3 seeds" in r.note and "bootstrap" in r.note


def test_claim_result_validation():
    with pytest.raises(ValueError, match="verdict"):
        t.ClaimResult("f", "q", "p", 1.0, 0.0, 2.0, "maybe", "s", False)
    with pytest.raises(TypeError, match="verified"):
        t.ClaimResult("f", "q", "p", 1.0, 0.0, 2.0, HOLDS, "s", "no")
    with pytest.raises(ValueError, match="ci_low"):
        t.ClaimResult("f", "q", "p", 1.0, 2.0, 0.0, HOLDS, "s", False)
    with pytest.raises(ValueError, match="measured"):
        t.ClaimResult("f", "q", "p", "abc", 0.0, 2.0, HOLDS, "s", False)


def _results():
    return [
        t.ClaimResult(
            "fig1",
            "slope | n",
            "-1/2",
            -0.49,
            -0.53,
            -0.46,
            HOLDS,
            "Zhu 2023 [P]",
            False,
            "line1\nline2",
        ),
        t.ClaimResult(
            "fig2", "ratio", "1 + d/N", 1.3333333, NAN, NAN, INCONCLUSIVE, "notes [I]", True
        ),
    ]


def test_claims_table_columns_and_types():
    df = t.claims_table(_results())
    assert (
        list(df.columns)
        == list(t.COLUMNS)
        == [
            "figure",
            "quantity",
            "prediction",
            "measured",
            "ci_low",
            "ci_high",
            "verdict",
            "source",
            "verified",
            "note",
            "source_kind",
            "url",
            "read_in_paper",
            "regime",
        ]
    )
    assert df["measured"].dtype == float and df["verified"].dtype == bool
    assert df["read_in_paper"].dtype == bool
    assert len(t.claims_table([])) == 0 and list(t.claims_table([]).columns) == list(t.COLUMNS)
    with pytest.raises(TypeError, match="ClaimResult"):
        t.claims_table([{"figure": "x"}])


def test_to_markdown_hand_written_table():
    md = t.to_markdown(t.claims_table(_results()))
    lines = md.strip("\n").split("\n")
    assert len(lines) == 4
    assert lines[0] == (
        "| figure | quantity | prediction | measured | ci_low | ci_high | verdict | "
        "source | verified | note | source_kind | url | read_in_paper | regime |"
    )
    assert lines[1] == ("| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- | --- | --- | "
                        "--- | --- | --- |")
    assert lines[2] == (
        "| fig1 | slope \\| n | -1/2 | -0.49 | -0.53 | -0.46 | holds | Zhu 2023 [P] | no "
        "| line1 line2 |  |  | no |  |"
    )
    assert (
        lines[3] == "| fig2 | ratio | 1 + d/N | 1.333 |  |  | inconclusive | notes [I] | yes |  "
                    "|  |  | no |  |"
    )
    # every row has the same number of unescaped cell separators
    counts = {ln.replace("\\|", "").count("|") for ln in lines}
    assert counts == {15}  # 14 columns
    with pytest.raises(TypeError, match="DataFrame"):
        t.to_markdown([1, 2])


def test_write_theory_checks_round_trip(tmp_path):
    csv_path, md_path = t.write_theory_checks(_results(), tmp_path / "out")
    assert csv_path.name == "theory_checks.csv" and md_path.name == "theory_checks.md"
    back = pd.read_csv(csv_path, keep_default_na=True)
    assert list(back.columns) == list(t.COLUMNS)
    assert back.loc[0, "measured"] == pytest.approx(-0.49)
    assert math.isnan(back.loc[1, "ci_low"])
    assert md_path.read_text().startswith("| figure |")
