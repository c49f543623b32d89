"""Every stage chained on the tiny GPT-2 through the config and the CLI."""

import argparse
import json

import pytest

pytestmark = pytest.mark.llm


def test_cli_registers_every_stage():
    from simulator.llm.cli import add_subparser

    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))
    for stage in ("generate", "score", "pairs", "reward", "rl", "evaluate", "all"):
        args = parser.parse_args(["llm", stage, "--config", "tiny"])
        assert callable(args.func) and args.stage == stage
    args = parser.parse_args(["llm", "demo", "--quick"])
    assert callable(args.func) and args.quick and args.config == "demo"
    with pytest.raises(SystemExit):
        parser.parse_args(["llm", "generate"])  # --config is required


def test_importing_the_cli_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, simulator.llm.cli, simulator.llm.config; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize("algorithm, aggregation", [("ppo", "pointwise_min"),
                                                    ("grpo", "algorithm1")])
def test_tiny_pipeline_end_to_end(tmp_path, algorithm, aggregation):
    pytest.importorskip("transformers")
    pytest.importorskip("vaderSentiment")
    if algorithm == "grpo":
        pytest.importorskip("trl")
    from simulator.llm.config import load_config
    from simulator.llm.stages import run_pipeline

    cfg = load_config("tiny", {"run": {"output_dir": str(tmp_path)},
                               "pairs": {"minority_proportions": [0.3], "n_users": 8},
                               "reward": {"methods": ["uniform", "maxmin", "sharedrep"],
                                          "latent_groups": algorithm == "grpo",
                                          "em_iterations": 2, "epochs": 2}})
    cfg.rl.algorithm, cfg.rl.aggregation = algorithm, aggregation
    cfg.rl.methods = ["gold", "maxmin", "sharedrep"]
    cfg.validate()
    table = run_pipeline(cfg)
    gens = [json.loads(x) for x in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert len(gens) == 32 and all("response_1" in g for g in gens)
    scored = json.loads((tmp_path / "scored.jsonl").read_text().splitlines()[0])
    assert set(scored["traits_0"]) == {"positiveness", "conciseness"}
    assert (tmp_path / "pairs" / "p0.3-seed0.jsonl").exists()
    # the config names the methods by the papers' names; outputs use the module's
    assert cfg.reward.methods == ["pooled", "separate", "sharedrep"]
    for m in ("pooled", "separate", "sharedrep"):
        rep = json.loads((tmp_path / "rewards" / f"{m}-p0.3-seed0" / "report.json").read_text())
        assert rep["n_train"] > 0 and rep["method"] == m
    for name in ("gold-seed0", "separate-p0.3-seed0", "sharedrep-p0.3-seed0"):
        assert (tmp_path / "policies" / name / "config.json").exists()
        assert (tmp_path / "eval" / f"{name}.jsonl").exists()
    log = json.loads((tmp_path / "policies" / "separate-p0.3-seed0" / "history.json").read_text())
    groups_seen = {e["active_group"] for e in log["reward_log"]}
    assert groups_seen <= ({-1} if aggregation == "pointwise_min" else {0, 1})
    assert "| 0.3 |" in table and (tmp_path / "scores_vs_p.png").exists()
    assert (tmp_path / "table.csv").exists()
