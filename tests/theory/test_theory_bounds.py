"""Bound and rate functions against hand-computed values, plus provenance flags."""

import math
import subprocess
import sys

import numpy as np
import pytest

import theory as t


def test_sigmoid_derivative_values_and_stability():
    assert t.sigmoid_derivative(0.0) == pytest.approx(0.25)
    z = np.array([-3.0, 1.5, 7.0])
    s = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(t.sigmoid_derivative(z), s * (1 - s), rtol=1e-12)
    assert 0.0 <= t.sigmoid_derivative(1e4) < 1e-300  # no overflow warning / nan
    assert t.effective_curvature([0.0, 0.0]) == pytest.approx(0.25)


def test_bt_curvature_hand_values():
    # gamma = 1/(2 + e^{-1} + e^{1}) for L = B = 1 (difference convention)
    assert t.bt_curvature(1.0, 1.0) == pytest.approx(1.0 / (2.0 + math.e + 1.0 / math.e))
    assert t.bt_curvature(1.0, 1.0) == pytest.approx(0.19661193324148185)
    # features convention doubles the logit bound: sigma'(2 * 0.5 * 2) = sigma'(2)
    assert t.bt_curvature(0.5, 2.0, L_bounds="features") == pytest.approx(
        1.0 / (2.0 + math.exp(2) + math.exp(-2))
    )
    with pytest.raises(ValueError, match="L_bounds"):
        t.bt_curvature(1.0, 1.0, L_bounds="norm")


def test_bt_mle_error_bound_hand_values():
    delta = math.exp(-2.0)  # log(1/delta) = 2
    # sqrt((10 + 2) / (0.25^2 * 100)) = sqrt(1.92)
    assert t.bt_mle_error_bound(100, 10, gamma=0.25, delta=delta) == pytest.approx(math.sqrt(1.92))
    # + lambda B^2 = 0.01 * 4 -> sqrt(1.96) = 1.4 ; C = 2 -> 2.8
    assert t.bt_mle_error_bound(100, 10, gamma=0.25, delta=delta, lam=0.01, B=2.0) == pytest.approx(
        1.4
    )
    assert t.bt_mle_error_bound(
        100, 10, gamma=0.25, delta=delta, lam=0.01, B=2.0, C=2.0
    ) == pytest.approx(2.8)
    # lambda choice balances the terms: 12 / (0.0625 * 4 * 100) = 0.48
    assert t.bt_mle_lambda(100, 10, gamma=0.25, B=2.0, delta=delta) == pytest.approx(0.48)
    # pessimistic policy bound = error bound * coverage
    assert t.pessimistic_suboptimality_bound(
        100, 10, gamma=0.25, coverage=3.0, delta=delta, lam=0.01, B=2.0
    ) == pytest.approx(4.2)
    # vectorised over n
    out = t.bt_mle_error_bound(np.array([100.0, 400.0]), 10, gamma=0.25, delta=delta)
    np.testing.assert_allclose(out, [math.sqrt(1.92), math.sqrt(1.92) / 2])


def test_bt_mle_error_bound_requires_B_with_ridge():
    with pytest.raises(ValueError, match="B"):
        t.bt_mle_error_bound(100, 10, gamma=0.25, lam=0.1)


def test_minimax_lower_bound_hand_value():
    # 0.5 * 2 * sqrt(16/400) = 0.2
    assert t.minimax_lower_bound(400, 16, Lambda=2.0, C=0.5) == pytest.approx(0.2)
    assert t.minimax_lower_bound(100, 4) == pytest.approx(0.2)


def test_coverage_coefficient():
    S = np.diag([4.0, 1.0])
    assert t.coverage_coefficient(S, [2.0, 1.0]) == pytest.approx(math.sqrt(2.0))
    assert t.coverage_coefficient(S, [2.0, 1.0], lam=1.0) == pytest.approx(math.sqrt(4 / 5 + 1 / 2))
    # rotation invariance: R S R^T with R v
    th = 0.3
    R = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    assert t.coverage_coefficient(R @ S @ R.T, R @ [2.0, 1.0]) == pytest.approx(math.sqrt(2.0))
    with pytest.raises(ValueError, match="positive definite"):
        t.coverage_coefficient(np.diag([1.0, 0.0]), [1.0, 1.0])
    with pytest.raises(ValueError, match="direction"):
        t.coverage_coefficient(S, [1.0, 1.0, 1.0])


def test_group_rates_hand_values():
    assert t.separate_mle_rate(1000, 40, 0.1) == pytest.approx(math.sqrt(0.4))
    assert t.separate_mle_rate(1000, 40, 0.1, gamma=0.5, delta=0.1, n_groups=2) == pytest.approx(
        math.sqrt((40 + math.log(20)) / (0.25 * 100))
    )
    assert t.sharedrep_rate(1000, 40, 2, 0.1) == pytest.approx(math.sqrt(0.08) + math.sqrt(0.02))
    assert t.sharedrep_rate(
        1000, 40, 2, 0.1, gamma=0.5, delta=0.1, n_groups=2, C=3.0
    ) == pytest.approx(
        3.0 * (math.sqrt((80 + math.log(10)) / 250) + math.sqrt((2 + math.log(20)) / 25))
    )
    # crossover (1/sqrt(4) - 1/sqrt(64))^2 = (0.5 - 0.125)^2
    eta_star = t.sharedrep_crossover_eta(64, 4)
    assert eta_star == pytest.approx(0.140625)
    assert t.sharedrep_rate(5000, 64, 4, eta_star) == pytest.approx(
        t.separate_mle_rate(5000, 64, eta_star)
    )
    assert t.sharedrep_crossover_eta(8, 8) == pytest.approx(0.0)


def test_lowrank_hand_values():
    # (2/10 + 20*2/(50*10)) / 0.5 = 0.56
    assert t.shared_lowrank_avg_error(10, 20, 2, 50, gamma=0.5) == pytest.approx(0.56)
    assert t.oracle_subspace_avg_error(10, 2, gamma=0.5) == pytest.approx(0.4)
    assert t.independent_avg_error(10, 20, gamma=0.5, C=2.0) == pytest.approx(8.0)
    assert t.shared_to_oracle_ratio(20, 50) == pytest.approx(1.4)
    assert t.shared_to_oracle_ratio(20, 200) == pytest.approx(1.1)
    assert t.independent_to_oracle_ratio(20, 2) == pytest.approx(10.0)
    assert t.lowrank_degrees_of_freedom(20, 2, 50) == pytest.approx(136.0)
    assert t.subspace_sin_theta_rate(1000, 20, 2, nu=0.5, kappa_bar=2.0) == pytest.approx(0.4)
    assert t.sharelora_param_counts(10, 5, 2, 3, r=1) == {
        "full_ft": 150,
        "sharelora": 50,
        "lora": 45,
    }
    assert t.sharelora_rank_threshold(10, 5, 3) == pytest.approx(6.0)


def test_shared_over_oracle_is_one_plus_d_over_N():
    for n, d, k, N in [(10, 20, 2, 50), (37.5, 64, 5, 7), (1000, 3, 3, 1)]:
        ratio = t.shared_lowrank_avg_error(n, d, k, N) / t.oracle_subspace_avg_error(n, k)
        assert ratio == pytest.approx(t.shared_to_oracle_ratio(d, N))


def test_maxmin_hand_values():
    assert t.lemma1_reward_mismatch_lower_bound(0.4, 0.2, 2.0) == pytest.approx(0.04)
    kw = {"beta": 0.5, "D": 1.0, "lambda_psi": 2.0, "L_pi": 1.0}
    # 2 * (0.5 * 0.5) / (64 * 0.25) = 1/32
    assert t.theorem1_alignment_gap_lower_bound(0.5, 0.5, **kw) == pytest.approx(1 / 32)
    assert t.theorem1_alignment_gap_lower_bound(0.5, 0.5, exponent=2.0, **kw) == pytest.approx(
        1 / 128
    )
    assert t.theorem1_alignment_gap_lower_bound(0.5, 0.5, beta_power=1.0, **kw) == pytest.approx(
        1 / 64
    )
    assert t.mixture_tv_to_group(0.25, 0.8) == pytest.approx(0.6)
    assert t.bt_preference_tv([0.0, 0.0], [0.0, 800.0]) == pytest.approx(0.25)
    assert t.alignment_gap_quadratic_approx(0.3, 0.5) == pytest.approx(0.3)
    assert t.THEOREM1_EXPONENT_VERIFIED is False


def test_alignment_gap_quadratic_approx_matches_exact_kl():
    # beta * KL(pi_a || pi_b) for Gibbs policies over 5 responses, small reward difference.
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(5))
    r = rng.normal(size=5)
    dr = 1e-2 * rng.normal(size=5)
    beta = 0.7
    pa = ref * np.exp((r + dr) / beta)
    pa /= pa.sum()
    pb = ref * np.exp(r / beta)
    pb /= pb.sum()
    exact = beta * np.sum(pa * np.log(pa / pb))
    var = np.sum(pa * dr**2) - np.sum(pa * dr) ** 2
    assert t.alignment_gap_quadratic_approx(var, beta) == pytest.approx(exact, rel=1e-2)


def test_every_bound_is_flagged_unverified_with_a_source():
    assert len(t.REGISTRY) >= 20
    for name, src in t.REGISTRY.items():
        assert src.verified is False, name
        assert src.tag in {"[P]", "[S]", "[I]", "[D]", "[V]", "[T]"}, name
        assert src.reference and src.where, name
    for fn in (t.sharedrep_rate, t.shared_lowrank_avg_error, t.theorem1_alignment_gap_lower_bound):
        assert fn.VERIFIED is False
        assert fn.source.tag in {"[I]", "[S]"}
    assert "RECONSTRUCTED" in t.sharedrep_rate.source.note
    assert "DOUBTFUL" in t.theorem1_alignment_gap_lower_bound.source.note
    assert "Lemma 3.1" in t.bt_mle_error_bound.SOURCE
    with pytest.raises(TypeError, match="Source"):
        t.source_of(len)


def test_theory_does_not_import_simulator():
    code = "import sys, theory; bad = [m for m in sys.modules if m.split('.')[0] == 'simulator']; print(bad); assert not bad"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
