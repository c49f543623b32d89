"""simulator.policy as a package: every name the old module exported is still there, and
simulator.fairness imports only public names of it."""

import ast
import importlib
from pathlib import Path

import simulator.fairness
import simulator.policy as P

OLD_PUBLIC = [  # simulator/policy.py's __all__ before the package, less the dead code that
    # issue 13 removed (kl_to_ref, log_partition: no caller outside their own tests)
    "NORMALIZATIONS", "OBJECTIVES", "FiniteArmEnv", "MaxMinResult", "dual_value",
    "gibbs_from_rewards", "gibbs_policy", "group_utilities", "lcb_rewards",
    "maxmin_cvxpy", "maxmin_from_rewards", "maxmin_policy", "normalize_rewards",
    "pessimistic_policy", "pointwise_min_policy", "utilitarian_policy", "utilities_from_rewards",
]


def test_old_names_are_re_exported():
    assert set(OLD_PUBLIC) <= set(P.__all__)
    for name in P.__all__:
        assert getattr(P, name) is not None
    for mod in ("gibbs", "maxmin", "pessimistic", "utilitarian", "utilities", "validation"):
        m = importlib.import_module(f"simulator.policy.{mod}")
        for name in m.__all__:
            assert not name.startswith("_") and hasattr(m, name), (mod, name)


def test_fairness_uses_only_public_policy_names():
    tree = ast.parse(Path(simulator.fairness.__file__).read_text())
    imported = [(node.module, a.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "simulator.policy") for a in node.names]
    assert imported
    for module, name in imported:
        assert not name.startswith("_"), (module, name)
        assert name in importlib.import_module(module).__all__, (module, name)


def test_removed_dead_code_is_gone():
    # issue 13 item 7: no caller outside their own tests, so they are not re-exported either
    for name in ("kl_to_ref", "log_partition"):
        assert name not in P.__all__ and not hasattr(P, name)
