"""The ``llm`` sub-command: ``python -m simulator llm STAGE --config FILE``.

Registered by :func:`add_subparser` from ``simulator/cli.py``.  Nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
import time

STAGE_HELP = {
    "generate": "two responses per prompt from the SFT/base policy",
    "score": "trait scores of every response",
    "pairs": "preference pairs per minority proportion and seed",
    "reward": "pooled / separate / SharedRep reward models (optionally EM, LoRA)",
    "rl": "PPO (IMDb) or GRPO (GSM8K, HH) on the min over group rewards",
    "evaluate": "per-group scores, win rates vs the gold policy, table and plot",
    "all": "every stage in order",
}

METHODS_HELP = ("reward methods to train (and policies on them, plus gold): pooled, separate, "
                "sharedrep; the papers' names uniform / maxmin are accepted")
GPU_RUN_HELP = ("the IMDb pipeline (imdb.toml) end to end at a reduced size for one GPU, with "
                "local or built-from-config models; prints the table and per-stage timings")

QUICK = {  # demo --quick: a few minutes instead of ~15
    "prompts": {"n_train": 48, "n_test": 24},
    "generate": {"max_new_tokens": 12, "batch_size": 24},
    "pairs": {"minority_proportions": [0.1, 0.3]},
    "rl": {"ppo": {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8,
                   "ppo_epochs": 1}},
}


def method_overrides(methods) -> dict:
    """Config overrides of ``--methods``: the reward methods trained and the policies trained on
    them, plus ``gold`` (the papers' names ``uniform`` / ``maxmin`` are accepted and normalised
    like in a config)."""
    from .methods import RL_METHODS, canonical_methods

    names = canonical_methods(methods, "--methods", RL_METHODS)
    learned = [m for m in dict.fromkeys(names) if m != "gold"]
    if not learned:
        raise ValueError(f"bad config value --methods={list(methods)!r}; allowed: at least one "
                         "of ['pooled', 'separate', 'sharedrep'] (aliases: uniform, maxmin)")
    return {"reward": {"methods": learned}, "rl": {"methods": ["gold", *learned]}}


def _load(args, overrides=None):
    from .config import load_config
    from .config import merge_tables as _merge

    overrides = dict(overrides or {})
    if getattr(args, "methods", None):
        overrides = _merge(overrides, method_overrides(args.methods))
    if getattr(args, "seeds", None):
        overrides = _merge(overrides, {"run": {"seeds": list(range(args.seeds))}})
    cfg = load_config(args.config, overrides)
    if getattr(args, "output_dir", None):
        cfg.run.output_dir = args.output_dir
    return cfg


def _run_stage(args) -> int:
    from .stages import STAGES, run_pipeline

    cfg = _load(args)
    stages = tuple(STAGES) if args.stage == "all" else (args.stage,)
    table = run_pipeline(cfg, stages)
    if table:
        print(table)
    return 0


def _run_demo(args) -> int:
    from .stages import run_pipeline

    cfg = _load(args, QUICK if args.quick else None)
    t0 = time.time()
    table = run_pipeline(cfg)
    print(f"\nSharedRep / MaxMin demo ({'quick' if args.quick else 'full'}), "
          f"{time.time() - t0:.0f} s; outputs in {cfg.run.output_dir}\n")
    print(table)
    if args.seeds:
        print("\n" + seeds_report(cfg))
    print(f"\nplot: {cfg.output_path / 'scores_vs_p.png'}")
    return 0


def seeds_report(cfg) -> str:
    """Mean and 95% CI over the run's seeds of every method's per-group win rate and of the
    paired difference separate - sharedrep (written to ``seeds.md`` and ``seeds.json``)."""
    from .evaluation import format_seed_summary, seed_summary, seed_win_rates
    from .records import write_json
    from .stages import load_eval_runs

    per_seed = seed_win_rates(load_eval_runs(cfg), cfg.group_names, cfg.evaluate.baseline)
    rows = seed_summary(per_seed, cfg.group_names)
    text = (f"Win rates over {len(cfg.run.seeds)} seeds (Student-t 95% CI; MaxMin - SharedRep is "
            "the per-seed paired difference):\n\n" + format_seed_summary(rows, cfg.group_names))
    (cfg.output_path / "seeds.md").write_text(text + "\n")
    write_json(cfg.output_path / "seeds.json", {"per_seed": per_seed, "summary": rows})
    return text


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def add_subparser(subparsers) -> argparse.ArgumentParser:
    """Register ``llm`` and its stage commands on an argparse ``subparsers`` object."""
    llm = subparsers.add_parser(
        "llm", help="LLM reproduction of SharedRep-RLHF / MaxMin-RLHF (needs the [llm] extra)",
        description="Stages read and write plain files under run.output_dir; "
                    "see simulator/llm/README.md.")
    sub = llm.add_subparsers(dest="llm_command", metavar="STAGE", required=True)
    for stage, text in STAGE_HELP.items():
        sp = sub.add_parser(stage, help=text, description=text)
        sp.add_argument("--config", required=True,
                        help="TOML file, or a bundled name: imdb, gsm8k, hh, demo, tiny")
        sp.add_argument("--output-dir", default=None, help="override run.output_dir")
        sp.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help=METHODS_HELP)
        sp.set_defaults(func=_run_stage, stage=stage)
    demo = sub.add_parser("demo", help="offline CPU demo: SmolLM2-135M policy, MiniLM reward "
                                       "backbone, VADER + length traits (~15 min)")
    demo.add_argument("--config", default="demo", help="TOML file (default: bundled demo)")
    demo.add_argument("--output-dir", default=None, help="override run.output_dir")
    demo.add_argument("--quick", action="store_true", help="smaller run (a few minutes)")
    demo.add_argument("--methods", nargs="+", default=None, metavar="METHOD", help=METHODS_HELP)
    demo.add_argument("--seeds", type=_positive_int, default=None, metavar="N",
                      help="run seeds 0..N-1 and print mean and 95%% CI over seeds of each "
                           "method's per-group win rate and of MaxMin - SharedRep")
    demo.set_defaults(func=_run_demo)
    from .gpu_run import add_arguments as add_gpu_run_arguments

    gpu = sub.add_parser("gpu-run", help=GPU_RUN_HELP, description=GPU_RUN_HELP)
    add_gpu_run_arguments(gpu)
    return llm


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m simulator.llm.cli STAGE --config FILE``."""
    parser = argparse.ArgumentParser(prog="simulator-llm")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["llm", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
