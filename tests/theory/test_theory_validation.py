"""Bad inputs raise ValueError naming the parameter and the allowed range."""

import re

import numpy as np
import pytest

import theory as t

G = {"gamma": 0.2}
CASES = [
    # (function, args, kwargs, parameter name, allowed-range text)
    (t.bt_mle_error_bound, (0, 10), G, "n", r"\[1, inf\)"),
    (t.bt_mle_error_bound, (100, 0), G, "d", "integers >= 1"),
    (t.bt_mle_error_bound, (100, 2.5), G, "d", "integers >= 1"),
    (t.bt_mle_error_bound, (100, 10), {"gamma": 0.2, "delta": 0.0}, "delta", r"\(0, 1\)"),
    (t.bt_mle_error_bound, (100, 10), {"gamma": 0.2, "delta": 1.0}, "delta", r"\(0, 1\)"),
    (t.bt_mle_error_bound, (100, 10), {"gamma": 0.0}, "gamma", r"\(0, inf\)"),
    (t.bt_mle_error_bound, (100, 10), {"gamma": 0.2, "lam": -1.0, "B": 1.0}, "lam", r"\[0, inf\)"),
    (t.bt_mle_error_bound, (100, 10), {"gamma": 0.2, "C": 0.0}, "C", r"\(0, inf\)"),
    (t.bt_mle_error_bound, (np.array([10.0, 0.5]), 10), G, "n", r"\[1, inf\)"),
    (t.bt_mle_error_bound, (float("nan"), 10), G, "n", "finite"),
    (t.bt_mle_error_bound, (True, 10), G, "n", "bool"),
    (t.bt_curvature, (0.0, 1.0), {}, "L", r"\(0, inf\)"),
    (t.bt_curvature, (1.0, -1.0), {}, "B", r"\(0, inf\)"),
    (t.bt_mle_lambda, (100, 10), {"gamma": 0.2, "B": 0.0}, "B", r"\(0, inf\)"),
    (
        t.pessimistic_suboptimality_bound,
        (100, 10),
        {"gamma": 0.2, "coverage": -1.0},
        "coverage",
        r"\[0, inf\)",
    ),
    (t.minimax_lower_bound, (0.5, 10), {}, "n", r"\[1, inf\)"),
    (t.minimax_lower_bound, (100, 10), {"Lambda": 0.0}, "Lambda", r"\(0, inf\)"),
    (t.separate_mle_rate, (100, 10, 0.0), {}, "eta_min", r"\(0, 1\]"),
    (t.separate_mle_rate, (100, 10, 1.5), {}, "eta_min", r"\(0, 1\]"),
    (t.separate_mle_rate, (100, 10, 0.1), {"delta": 2.0}, "delta", r"\(0, 1\)"),
    (
        t.separate_mle_rate,
        (100, 10, 0.1),
        {"delta": 0.1, "n_groups": 0},
        "n_groups",
        "integers >= 1",
    ),
    (t.sharedrep_rate, (100, 4, 5, 0.1), {}, "k", r"\[1, d\]"),
    (t.sharedrep_rate, (100, 4, 0, 0.1), {}, "k", "integers >= 1"),
    (t.sharedrep_rate, (100, 0, 1, 0.1), {}, "d", "integers >= 1"),
    (t.sharedrep_rate, (100, 8, 2, -0.1), {}, "eta_min", r"\(0, 1\]"),
    (t.sharedrep_crossover_eta, (4, 5), {}, "k", r"\[1, d\]"),
    (t.shared_lowrank_avg_error, (10, 4, 5, 10), {}, "k", r"\[1, d\]"),
    (t.shared_lowrank_avg_error, (10, 4, 2, 0), {}, "N", "integers >= 1"),
    (t.shared_lowrank_avg_error, (0, 4, 2, 10), {}, "n", r"\[1, inf\)"),
    (t.oracle_subspace_avg_error, (10, 0), {}, "k", "integers >= 1"),
    (t.independent_avg_error, (10, 0), {}, "d", "integers >= 1"),
    (t.shared_to_oracle_ratio, (10, 0), {}, "N", "integers >= 1"),
    (t.independent_to_oracle_ratio, (3, 4), {}, "k", r"\[1, d\]"),
    (t.lowrank_degrees_of_freedom, (10, 4, 3), {}, "k", r"\[1, N\]"),
    (t.subspace_sin_theta_rate, (100, 10, 2), {"nu": 0.0}, "nu", r"\(0, inf\)"),
    (t.sharelora_param_counts, (10, 5, 11, 3), {}, "k", r"\[1, d1\]"),
    (t.sharelora_param_counts, (10, 5, 2, 3), {"r": 6}, "r", r"\[1, min\(d1, d2\)\]"),
    (t.lemma1_reward_mismatch_lower_bound, (1.5, 0.2, 1.0), {}, "epsilon", r"\[0, 1\]"),
    (t.lemma1_reward_mismatch_lower_bound, (0.5, 0.0, 1.0), {}, "eta_u", r"\(0, 1\]"),
    (t.lemma1_reward_mismatch_lower_bound, (0.5, 0.2, 0.0), {}, "D", r"\(0, inf\)"),
    (
        t.theorem1_alignment_gap_lower_bound,
        (0.5, 0.2),
        {"beta": 0.0, "D": 1.0, "lambda_psi": 1.0, "L_pi": 1.0},
        "beta",
        r"\(0, inf\)",
    ),
    (
        t.theorem1_alignment_gap_lower_bound,
        (0.5, 0.2),
        {"beta": 1.0, "D": 1.0, "lambda_psi": 0.0, "L_pi": 1.0},
        "lambda_psi",
        r"\(0, inf\)",
    ),
    (
        t.theorem1_alignment_gap_lower_bound,
        (0.5, 0.2),
        {"beta": 1.0, "D": 1.0, "lambda_psi": 1.0, "L_pi": 1.0, "exponent": 0.0},
        "exponent",
        r"\(0, inf\)",
    ),
    (t.mixture_tv_to_group, (0.5, 1.2), {}, "tv_between_groups", r"\[0, 1\]"),
    (t.alignment_gap_quadratic_approx, (-0.1, 1.0), {}, "reward_diff_variance", r"\[0, inf\)"),
    (t.quantile_across_seeds, ([1.0, 2.0], 1.0), {}, "delta", r"\(0, 1\)"),
    (t.min_seeds_for_quantile, (0.0,), {}, "delta", r"\(0, 1\)"),
    (t.bound_ratio, (1.0, 0.0), {}, "bound", r"\(0, inf\)"),
]


@pytest.mark.parametrize(
    "fn,args,kwargs,name,allowed",
    CASES,
    ids=[f"{c[0].__name__}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_input_names_parameter_and_range(fn, args, kwargs, name, allowed):
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    msg = str(err.value)
    assert msg.startswith(name + " "), msg
    assert re.search(allowed, msg), msg
