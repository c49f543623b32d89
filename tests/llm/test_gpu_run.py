"""The prepared GPU run (simulator.llm.gpu_run) and the demo's seeds report, on a CPU."""

import argparse
import json

import pytest

pytestmark = pytest.mark.llm


def _args(tmp_path, *extra):
    from simulator.llm.gpu_run import add_arguments

    parser = add_arguments(argparse.ArgumentParser())
    return parser.parse_args(["--output-dir", str(tmp_path), *extra])


def test_reduced_plan_keeps_the_papers_sequence_sizes(tmp_path, capsys):
    from simulator.llm.config import load_config
    from simulator.llm.gpu_run import run

    res = run(_args(tmp_path, "--build-models", "gpt2", "--dry-run"))
    cfg, imdb = res["config"], load_config("imdb")
    assert cfg["reward"]["methods"] == ["pooled", "separate", "sharedrep"]
    assert cfg["rl"]["methods"] == ["gold", "pooled", "separate", "sharedrep"]
    ppo = cfg["rl"]["ppo"]
    # reduced counts, the paper's per-iteration settings
    assert ppo["total_episodes"] == 12 * 128 and ppo["batch_size"] == imdb.rl.ppo.batch_size == 128
    for key in ("mini_batch_size", "ppo_epochs", "learning_rate", "kl_coef", "max_new_tokens"):
        assert ppo[key] == getattr(imdb.rl.ppo, key)
    assert cfg["generate"]["max_new_tokens"] == imdb.generate.max_new_tokens == 92
    assert cfg["pairs"]["minority_proportions"] == [0.05, 0.2] and cfg["run"]["seeds"] == [42]
    out = capsys.readouterr().out
    assert "gpu-run will load:" in out and "random weights" in out and "7 policies" in out
    assert not (tmp_path / "generations.jsonl").exists()  # a dry run loads and writes nothing


def test_plan_says_what_it_loads(tmp_path, monkeypatch):
    import importlib.util

    from simulator.llm.gpu_run import plan

    cfg, lines = plan(_args(tmp_path, "--policy", str(tmp_path), "--reward-backbone", "x/y",
                            "--sentiment-model", "/m/distilbert", "--imdb", "/d/imdb",
                            "--methods", "maxmin", "uniform"))
    assert cfg.models.policy == str(tmp_path) and cfg.prompts.source == "imdb"
    assert cfg.reward.methods == ["separate", "pooled"]
    assert [t.kind for t in cfg.traits] == ["hf_sentiment", "length"]
    assert any("x/y (not a local folder" in s for s in lines)
    assert any("/m/distilbert" in s for s in lines)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vaderSentiment" else real(name, *a))
    cfg, lines = plan(_args(tmp_path, "--build-models", "tiny"))
    assert cfg.traits[0].kind == "callable" and any("word list" in s for s in lines)
    with pytest.raises(ValueError, match="--build-models"):
        plan(_args(tmp_path, "--build-models", "tiny", "--policy", "p"))


def test_lexicon_positiveness_known_values():
    from simulator.llm.gpu_run import lexicon_positiveness

    assert lexicon_positiveness(["The film", "It"], [" was great and fun.", " was awful"]) == [
        (1 + 2 / 3) / 2, (1 - 1 / 2) / 2]
    assert lexicon_positiveness(["x"], ["y"]) == [0.5]


@pytest.mark.slow
def test_tiny_gpu_run_on_cpu(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("vaderSentiment")
    from simulator.llm.gpu_run import run

    res = run(_args(tmp_path, "--size", "tiny", "--build-models", "tiny", "--device", "cpu"))
    stages = ["build models", "generate", "score", "pairs", "reward", "rl", "evaluate", "total"]
    assert list(res["timings"]) == stages and all(v >= 0 for v in res["timings"].values())
    assert res["timings"]["total"] >= sum(res["timings"][s] for s in stages[1:-1])
    lines = res["table"].splitlines()
    assert lines[2].startswith("|  | Uniform | MaxMin | SharedRep | Gold |")
    assert lines[3].startswith("| 0.2 |") and len(lines) == 4
    for m in ("pooled", "separate", "sharedrep"):
        assert (tmp_path / "rewards" / f"{m}-p0.2-seed0" / "head.pt").exists()
        assert (tmp_path / "eval" / f"{m}-p0.2-seed0.jsonl").exists()
    assert json.loads((tmp_path / "timings.json").read_text()) == res["timings"]
    assert "Uniform = pooled" in (tmp_path / "table.md").read_text()


def test_gpu_check_script_is_short_and_runs_both_sizes():
    import pathlib

    import simulator.llm

    text = (pathlib.Path(simulator.llm.__file__).parent / "gpu_check.sh").read_text()
    assert len(text) < 2000
    assert "--size tiny" in text and "--size reduced" in text and "timeout" in text
    assert "$OUT" in text


def test_demo_seeds_report_from_eval_files(tmp_path):
    """seeds_report reads every policy's eval file and tabulates per-seed CIs."""
    from simulator.llm.cli import seeds_report
    from simulator.llm.config import load_config
    from simulator.llm.records import write_jsonl

    cfg = load_config("tiny", {"run": {"output_dir": str(tmp_path), "seeds": [0, 1, 2]},
                               "pairs": {"minority_proportions": [0.2]}})
    # gold scores 0.5 everywhere; separate beats it on prompt 0 only in every seed,
    # sharedrep on prompts 0 and 1 in seed s < 2 and on none in seed 2
    for seed in cfg.run.seeds:
        def recs(wins):
            return [{"prompt_id": i, "group_scores": [0.9 if i in wins else 0.1, 0.5]}
                    for i in range(4)]
        write_jsonl(tmp_path / "eval" / f"gold-seed{seed}.jsonl",
                    [{"prompt_id": i, "group_scores": [0.5, 0.5]} for i in range(4)])
        write_jsonl(tmp_path / "eval" / f"separate-p0.2-seed{seed}.jsonl", recs({0}))
        write_jsonl(tmp_path / "eval" / f"sharedrep-p0.2-seed{seed}.jsonl",
                    recs({0, 1} if seed < 2 else set()))
    text = seeds_report(cfg)
    summary = {r["method"]: r for r in json.loads((tmp_path / "seeds.json").read_text())["summary"]}
    assert summary["separate"]["win_minority"] == 25.0 and summary["separate"]["n_seeds"] == 3
    assert summary["sharedrep"]["win_minority"] == pytest.approx(100 / 3)
    diff = summary["separate - sharedrep"]
    assert diff["win_minority"] == pytest.approx((-25 - 25 + 25) / 3)
    assert diff["low_minority"] < diff["win_minority"] < diff["high_minority"]
    assert "MaxMin - SharedRep" in text and (tmp_path / "seeds.md").exists()


def test_gpu_run_is_an_llm_subcommand(tmp_path, capsys):
    from simulator.llm.cli import add_subparser

    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["llm", "gpu-run", "--size", "tiny", "--build-models", "tiny",
                              "--dry-run", "--output-dir", str(tmp_path)])
    assert args.func(args) == 0 and "size tiny" in capsys.readouterr().out
