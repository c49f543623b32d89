"""Figure 12 (the penalised phase at many users): spec, the claims on planted curves, tiny run."""

import numpy as np
import pandas as pd
import pytest

import theory
from figures import FIGURES, runner
from figures import fig12_two_phase as fig12

D, K, NU, KAPPA, GAMMA = 8, 2, 0.25, 1.0, 0.22  # n* = (1 + sqrt(8/N))^2 / 0.11, about 10


def _planted(curve, Ns=(512, 2048), seeds=4):
    """Cells whose sin theta follows ``curve(N, n)`` exactly (a per-seed factor, equal over n)."""
    rows = []
    for N in Ns:
        for n in fig12.NS:
            for r in range(seeds):
                rows.append({"d": D, "k": K, "signal": 1.0, "N": N, "n": n, "replicate": r,
                             "sin_theta": curve(N, n) * (1 + 0.01 * r), "shared_err2": 1.0,
                             "converged": True, "nu": NU, "kappa_bar": KAPPA,
                             "gamma_mean": GAMMA})
    return pd.DataFrame(rows)


def _two_phase(N, n, C=0.3):
    return float(theory.shared_subspace_two_phase_rate(n, D, K, N, nu=NU, kappa_bar=KAPPA,
                                                       gamma=GAMMA, C=C))


def test_spec_and_registration():
    assert FIGURES["fig12"] == "figures.fig12_two_phase"
    for size in ("tiny", "quick", "full"):
        sp = fig12.spec(size)
        assert runner.sweep_spec(sp) is sp and set(sp["axes"]) == {"N", "n"}
        assert sp["sweep"]["seed_ignore"] == ["n"]
    assert min(fig12.spec("quick")["axes"]["N"]) >= 512  # many users: the point of the figure


def test_constants_and_window_known_answer():
    df = _planted(_two_phase)
    c = fig12.constants(df, 2048)
    assert c["n_star"] == pytest.approx((1 + np.sqrt(D / 2048)) ** 2 / (NU * KAPPA * K * GAMMA))
    C = fig12.fitted_C(df)
    assert C == pytest.approx(0.3 * np.mean([1 + 0.01 * r for r in range(4)]), rel=1e-9)
    inside = fig12._window(df, 2048, C)
    two, counting = fig12._curves(df, 2048, np.array(fig12.NS, float), C)
    assert np.array_equal(inside, (np.array(fig12.NS) < 16 * c["n_star"]) & (two <= 0.5))
    assert np.all(counting < two)  # the counting term alone lies below the two-phase sum


def test_claims_hold_on_the_two_phase_curve_and_fail_on_counting_alone():
    res = fig12.claims(_planted(_two_phase))
    assert len(res) == 4 and all(c.figure == "fig12" for c in res)
    assert all(c.verdict == "holds" for c in res), [(c.quantity, c.measured) for c in res]
    assert not any(c.verified for c in res) and res[0].source_kind == "reconstruction"

    def counting(N, n):  # parameter counting alone: slope -1/2 exactly
        return 0.3 * np.sqrt(KAPPA * D * K / (NU * GAMMA * N * n))

    res = fig12.claims(_planted(counting))
    assert [c.measured for c in res[:2]] == pytest.approx([-0.5, -0.5], abs=1e-9)
    assert all(c.verdict == "does not hold" for c in res), [(c.quantity, c.verdict) for c in res]


def test_tiny_run_writes_points_and_claims(tiny_sweep, tmp_path):
    df = tiny_sweep(fig12)
    assert ((df["sin_theta"] >= 0) & (df["sin_theta"] <= 1)).all()
    res = runner.analyse(fig12, df, tmp_path)
    assert len(res) == 2
    pts = pd.read_csv(tmp_path / "fig12.csv")
    assert set(pts["phase"]) <= set(theory.PHASES) and len(pts) == 4
    assert (tmp_path / "fig12.png").exists()
