r"""The IMDb pipeline (``configs/imdb.toml``) end to end at a reduced size, for one GPU.

``python -m simulator llm gpu-run [options]`` (or ``python -m simulator.llm.gpu_run``) runs every
stage of ``imdb.toml`` -- generate, score, pairs, reward models for every method (pooled,
separate, sharedrep), PPO for gold and every method, evaluation -- and prints the paper-layout
table and the seconds of every stage (also written to ``table.md`` and ``timings.json``).
What it will load is printed before anything is loaded.

Models, data and traits.  A GPU machine without the hub gets its models from one of

* ``--policy PATH`` / ``--reward-backbone PATH``: local ``from_pretrained`` folders (e.g. copies of
  ``lvwerra/gpt2-imdb``); ``--sentiment-model PATH``: a local ``lvwerra/distilbert-imdb`` for the
  paper's positiveness trait (P(POSITIVE)) and its token-count conciseness;
  ``--imdb PATH``: a local IMDb dataset for the paper's review-prefix prompts;
* ``--build-models {tiny,gpt2}``: models built in-process from a config, nothing read from disk:
  ``tiny`` the tests' tiny GPT-2 (``tiny:gpt2``), ``gpt2`` a randomly initialised GPT-2 with the
  architecture of ``gpt2`` / ``lvwerra/gpt2-imdb`` (12 layers, width 768, 12 heads; a byte-level
  BPE vocabulary trained in-process, so the output layer is smaller than GPT-2's 50,257 words).
  Numbers from random weights mean nothing; the run measures that every stage works on the GPU
  and how long each takes at the paper's sequence lengths.

Without ``--sentiment-model`` positiveness is VADER (``vaderSentiment``) when it is installed, else
a small built-in word list (:func:`lexicon_positiveness`), and conciseness counts words; without
``--imdb`` the prompts are the review openers generated in code (``templates``).

Sizes (:data:`SIZES`).  ``tiny`` is a smoke run of seconds on a CPU (the test suite runs it).
``reduced`` keeps the paper's per-sequence sizes and PPO settings (92-token pair generations,
53-token rollouts, 128-prompt batches of 2 x 64, 3 PPO epochs, lr 3e-6 cosine, KL 0.05) and
shrinks the counts: 1 seed (of 10), p in {0.05, 0.2} (of 4), 512 training prompts, 128 test
prompts, 12 PPO iterations per policy (1,536 episodes of 50,000), 7 policies (gold + 3 methods x
2 p).

Time estimate of ``reduced`` on one H200 (not measured: no GPU was lent when this was written).
Basis: a 12-layer, width-768 decoder in fp32 (TF32 matmuls), where HF ``generate`` is bound by
kernel launches and Python at about 15 ms per new token and call for batches <= 128, and a
forward + backward pass on 64 x ~60 tokens costs 6 x 124M x 3,840 ~ 2.9 TFLOP (~0.1 s at
30 TFLOP/s sustained).

==========  ==========================================================================  =======
generate    1,024 responses = 16 calls of 64 x 92 tokens x 15 ms                        ~ 25 s
score       VADER / word counts on 1,024 texts (distilbert: 16 forward passes)            ~ 2 s
reward      2 p x 3 methods: ~2,050 texts of <= 128 tokens encoded (64 passes) + heads  ~ 15 s
rl          7 policies x 12 iterations x (53 x 15 ms rollout + scoring + 2 no-grad
            passes + 3 epochs x 2 mini-batch steps ~ 0.6 s) ~ 1.7 s, + ~2 s per policy   ~ 160 s
evaluate    7 policies x 2 calls of 64 x 92 tokens x 15 ms, + scoring                    ~ 20 s
start-up    CUDA, model build / load                                                     ~ 20 s
==========  ==========================================================================  =======

about 4 minutes in all; the 8-minute budget leaves a factor 2 for the dominant uncertainty, the
per-token latency of ``generate`` (at 30 ms per token the run takes about 5.5 minutes).  The full
``imdb.toml`` is ~ 10 seeds x 9 policies x 390 iterations: about 12 GPU-hours at the same rates.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import time

SIZES = {
    "tiny": {
        "run": {"seeds": [0]},
        "prompts": {"n_train": 16, "n_test": 8},
        "generate": {"max_new_tokens": 8, "batch_size": 16},
        "pairs": {"minority_proportions": [0.2], "eval_fraction": 0.1},
        "reward": {"epochs": 2, "batch_size": 8, "max_length": 32},
        "rl": {"ppo": {"total_episodes": 8, "batch_size": 4, "mini_batch_size": 2,
                       "ppo_epochs": 1, "max_new_tokens": 8, "learning_rate": 1e-4}},
    },
    "reduced": {
        "run": {"seeds": [42]},
        "prompts": {"n_train": 512, "n_test": 128},
        "generate": {"batch_size": 64},
        "pairs": {"minority_proportions": [0.05, 0.2]},
        "rl": {"ppo": {"total_episodes": 12 * 128}},
    },
}
METHODS = ("pooled", "separate", "sharedrep")

_POSITIVE = ("good", "great", "lovely", "loved", "brilliant", "wonderful", "fun", "funny",
             "happy", "best", "beautiful", "excellent", "enjoyed", "amazing", "love", "like",
             "nice", "perfect", "fantastic", "superb")
_NEGATIVE = ("bad", "awful", "boring", "hated", "terrible", "dull", "slow", "sad", "worst",
             "poor", "waste", "stupid", "hate", "horrible", "annoying", "weak", "mess", "never",
             "not", "ugly")


def lexicon_positiveness(prompts, responses, rows=None) -> list:
    """Positiveness in [0, 1] of prompt + response from a fixed word list (used when neither a
    sentiment model nor ``vaderSentiment`` is available): ``(1 + (n_pos - n_neg) / (n_pos +
    n_neg + 1)) / 2``, 0.5 for a text with no listed word."""
    out = []
    for p, r in zip(prompts, responses):
        words = [w.strip(".,!?;:\"'()").lower() for w in (p + r).split()]
        pos = sum(w in _POSITIVE for w in words)
        neg = sum(w in _NEGATIVE for w in words)
        out.append((1.0 + (pos - neg) / (pos + neg + 1.0)) / 2.0)
    return out


def build_gpt2_small(folder, seed: int = 0):
    """A randomly initialised GPT-2 with ``gpt2``'s architecture and the in-process BPE
    tokenizer of :mod:`simulator.llm.tiny`, saved to ``folder`` (reused when present)."""
    from transformers import GPT2LMHeadModel

    from .seeding import seeded_torch
    from .tiny import tiny_gpt2_config, tiny_tokenizer

    folder = pathlib.Path(folder)
    if (folder / "config.json").exists():
        return folder
    tok = tiny_tokenizer(seed=seed)
    cfg = tiny_gpt2_config(len(tok), n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    cfg.bos_token_id = cfg.eos_token_id = cfg.pad_token_id = tok.eos_token_id
    with seeded_torch(seed, "gpt2-small-init"):
        model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = model.generation_config.eos_token_id = tok.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def plan(args) -> tuple:
    """The config of the run and the lines that say what it will load (nothing loaded yet).

    Returns
    -------
    cfg : PipelineConfig
    lines : list of str
    """
    from .cli import method_overrides
    from .config import load_config
    from .config import merge_tables as _merge

    if args.build_models and (args.policy or args.reward_backbone):
        raise ValueError("give --build-models or --policy / --reward-backbone, not both")
    out = pathlib.Path(args.output_dir)
    over = _merge(SIZES[args.size], method_overrides(args.methods or METHODS))
    over = _merge(over, {"run": {"output_dir": str(out), "device": args.device,
                                 "name": f"IMDb pipeline, gpu-run size {args.size}"}})
    lines = []
    if args.build_models == "tiny":
        policy = backbone = "tiny:gpt2"
        lines.append("policy and reward backbone: tiny GPT-2 built from GPT2Config in-process "
                     "(tiny:gpt2; random weights)")
    elif args.build_models == "gpt2":
        policy = backbone = str(out / "models" / "gpt2-small-random")
        lines.append(f"policy and reward backbone: GPT-2 (12 layers, width 768) built from "
                     f"GPT2Config with random weights, saved to {policy}")
    else:
        base = load_config("imdb").models
        policy, backbone = args.policy or base.policy, args.reward_backbone or base.reward_backbone
        lines.append(f"policy: {policy}" + ("" if pathlib.Path(policy).exists() else
                                            " (not a local folder: loaded from the hub or its cache)"))
        lines.append(f"reward backbone: {backbone}" + ("" if pathlib.Path(backbone).exists() else
                                                       " (not a local folder: hub or its cache)"))
    over = _merge(over, {"models": {"policy": policy, "reward_backbone": backbone}})
    if args.sentiment_model:
        traits = [{"name": "positiveness", "kind": "hf_sentiment", "model": args.sentiment_model,
                   "label": "POSITIVE", "include_prompt": True},
                  {"name": "conciseness", "kind": "length", "unit": "tokens",
                   "model": args.sentiment_model, "max_length": 100, "invert": True,
                   "include_prompt": True}]
        lines.append(f"traits: positiveness = P(POSITIVE) of {args.sentiment_model}, "
                     f"conciseness = 1 - its tokens / 100 (the paper's)")
    else:
        if importlib.util.find_spec("vaderSentiment") is not None:
            pos = {"name": "positiveness", "kind": "vader", "include_prompt": True}
            what = "VADER compound (vaderSentiment)"
        else:
            pos = {"name": "positiveness", "kind": "callable",
                   "function": "simulator.llm.gpu_run:lexicon_positiveness"}
            what = "a built-in word list (vaderSentiment is not installed)"
        traits = [pos, {"name": "conciseness", "kind": "length", "unit": "words",
                        "max_length": 100, "invert": True, "include_prompt": True}]
        lines.append(f"traits: positiveness = {what}, conciseness = 1 - words / 100 "
                     "(--sentiment-model PATH for the paper's distilbert-imdb)")
    over["traits"] = traits
    if args.imdb:
        over = _merge(over, {"prompts": {"source": "imdb", "dataset": args.imdb}})
        lines.append(f"prompts: IMDb review prefixes from {args.imdb}")
    else:
        over = _merge(over, {"prompts": {"source": "templates", "dataset": ""}})
        lines.append("prompts: review openers generated in code (--imdb PATH for IMDb prefixes)")
    cfg = load_config("imdb", over)
    s = cfg.rl.ppo
    n_pol = len(cfg.run.seeds) * (1 + len(cfg.pairs.minority_proportions)
                                  * (len(cfg.rl.methods) - 1))
    lines.append(f"size {args.size}: seeds {cfg.run.seeds}, p {cfg.pairs.minority_proportions}, "
                 f"{cfg.prompts.n_train} train / {cfg.prompts.n_test} test prompts, reward "
                 f"methods {cfg.reward.methods}, {n_pol} policies x "
                 f"{max(1, s.total_episodes // s.batch_size)} PPO iterations of {s.batch_size}")
    lines.append(f"device: {cfg.run.device}; outputs in {out}")
    return cfg, lines


def run(args) -> dict:
    """Run the pipeline of :func:`plan`; returns ``{"table", "timings"}`` (seconds per stage)."""
    from .records import write_json
    from .stages import STAGES, _say

    t_start = time.perf_counter()
    cfg, lines = plan(args)
    print("gpu-run will load:\n  " + "\n  ".join(lines), flush=True)
    if args.dry_run:
        return {"table": "", "timings": {}, "config": dataclasses.asdict(cfg)}
    import torch

    cuda = cfg.run.device == "cuda" or (cfg.run.device == "auto" and torch.cuda.is_available())
    if cuda:
        # TF32 matrix products: the GPU's fast fp32 path (the run measures speed, not digits)
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"  GPU: {torch.cuda.get_device_name(0)}", flush=True)
    timings = {}
    t0 = time.perf_counter()
    if args.build_models == "gpt2":
        build_gpt2_small(cfg.models.policy)
    elif args.build_models == "tiny":
        from .models import resolve_spec

        resolve_spec("tiny:gpt2")
    timings["build models"] = time.perf_counter() - t0
    table = ""
    for name, stage in STAGES.items():
        t0 = time.perf_counter()
        res = stage(cfg)
        if cuda:
            torch.cuda.synchronize()
        timings[name] = time.perf_counter() - t0
        _say(f"stage {name} done in {timings[name]:.1f} s")
        write_json(cfg.output_path / "timings.json", timings)  # kept if a timeout stops the run
        if name == "evaluate":
            table = res
    timings["total"] = time.perf_counter() - t_start
    report = "\n".join(f"| {k} | {v:.1f} |" for k, v in timings.items())
    text = (f"{table}\n\n(columns: the papers' names, Uniform = pooled, MaxMin = separate)\n\n"
            f"| stage | seconds |\n|---|---|\n{report}\n")
    (cfg.output_path / "table.md").write_text(text)
    write_json(cfg.output_path / "timings.json", timings)
    print("\n" + text, flush=True)
    return {"table": table, "timings": timings}


def _run_command(args) -> int:
    run(args)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``llm gpu-run`` (module docstring)."""
    parser.add_argument("--size", choices=sorted(SIZES), default="reduced",
                        help="reduced: the GPU run (~4 min on one H200, estimate); tiny: a smoke "
                             "run of seconds on a CPU")
    parser.add_argument("--build-models", choices=("tiny", "gpt2"), default=None,
                        help="build policy and reward backbone from a config in-process "
                             "(random weights) instead of loading them")
    parser.add_argument("--policy", default=None, help="local policy folder (default: imdb.toml's)")
    parser.add_argument("--reward-backbone", default=None,
                        help="local reward-backbone folder (default: imdb.toml's)")
    parser.add_argument("--sentiment-model", default=None,
                        help="local lvwerra/distilbert-imdb folder for the paper's traits")
    parser.add_argument("--imdb", default=None, help="local IMDb dataset for the paper's prompts")
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help="reward methods (default: pooled separate sharedrep; the papers' "
                             "uniform / maxmin are accepted)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--output-dir", default="results/llm/gpu-run")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be loaded and run, then stop")
    parser.set_defaults(func=_run_command)
    return parser


def main(argv=None) -> int:
    """``python -m simulator.llm.gpu_run [options]``."""
    parser = argparse.ArgumentParser(prog="simulator.llm.gpu_run",
                                     description=__doc__.splitlines()[0])
    return _run_command(add_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
