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
    "reward": "uniform / MaxMin / SharedRep reward models (optionally EM, LoRA)",
    "rl": "PPO (IMDb) or GRPO (GSM8K, HH) on the min over group rewards",
    "evaluate": "per-group scores, win rates vs the gold policy, table and plot",
    "all": "every stage in order",
}

QUICK = {  # demo --quick: a few minutes instead of ~15
    "prompts": {"n_train": 48, "n_test": 24},
    "generate": {"max_new_tokens": 12, "batch_size": 24},
    "pairs": {"minority_proportions": [0.1, 0.3]},
    "rl": {"ppo": {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8,
                   "ppo_epochs": 1}},
}


def _load(args, overrides=None):
    from .config import load_config

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
    print(f"\nplot: {cfg.output_path / 'scores_vs_p.png'}")
    return 0


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
        sp.set_defaults(func=_run_stage, stage=stage)
    demo = sub.add_parser("demo", help="offline CPU demo: SmolLM2-135M policy, MiniLM reward "
                                       "backbone, VADER + length traits (~15 min)")
    demo.add_argument("--config", default="demo", help="TOML file (default: bundled demo)")
    demo.add_argument("--output-dir", default=None, help="override run.output_dir")
    demo.add_argument("--quick", action="store_true", help="smaller run (a few minutes)")
    demo.set_defaults(func=_run_demo)
    return llm


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m simulator.llm.cli STAGE --config FILE``."""
    parser = argparse.ArgumentParser(prog="simulator-llm")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["llm", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
