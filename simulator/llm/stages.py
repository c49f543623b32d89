"""The six pipeline stages and the offline demo.

Every stage takes a :class:`~simulator.llm.config.PipelineConfig`, reads the previous stage's
files under ``run.output_dir`` and writes its own:

==========  ===========================================================================
generate    ``prompts_train.jsonl``, ``prompts_test.jsonl``, ``generations.jsonl``
score       ``scored.jsonl`` (trait scores of both responses), ``trait_stats.json``
pairs       ``pairs/p{p}-seed{s}.jsonl``, ``pairs/summary.json``
reward      ``rewards/{method}-p{p}-seed{s}/`` (head.pt, meta.json, normaliser.json, report.json),
            method in ``pooled`` / ``separate`` / ``sharedrep`` (:mod:`simulator.llm.methods`)
rl          ``policies/{method}-p{p}-seed{s}/`` and ``policies/gold-seed{s}/`` (+ history.json)
evaluate    ``eval/*.jsonl``, ``table.md``, ``table.csv``, ``scores_vs_p.png``
==========  ===========================================================================
"""

from __future__ import annotations

import csv
import pathlib
import time

import numpy as np

from .records import read_json, read_jsonl, write_json, write_jsonl
from .seeding import seeded_torch


def _say(msg: str) -> None:
    print(f"[llm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _setup_torch(cfg) -> None:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)


def _tag(p: float, seed: int) -> str:
    return f"p{p:g}-seed{seed}"


def generate_completions(model, tokenizer, prompts: list, n_per_prompt: int, gen, seed: int,
                         stream: str, greedy: bool = False, max_new_tokens: int = 0) -> list:
    """Sample ``n_per_prompt`` completions per prompt; returns a list of lists of strings.

    Parameters
    ----------
    gen : GenerateConfig
        Sampling settings (batch size, temperature, top-p, top-k, max new tokens).
    seed, stream : seed of the sampling (one seeded torch stream per batch)
    greedy : bool
        Greedy decoding instead of sampling.
    """
    import torch

    dev = next(model.parameters()).device
    out = [[] for _ in prompts]
    flat = [(i, p) for i, p in enumerate(prompts) for _ in range(n_per_prompt)]
    for b in range(0, len(flat), gen.batch_size):
        chunk = flat[b:b + gen.batch_size]
        enc = tokenizer([p for _, p in chunk], return_tensors="pt", padding=True).to(dev)
        kw = {"max_new_tokens": max_new_tokens or gen.max_new_tokens,
              "pad_token_id": tokenizer.pad_token_id}
        if greedy:
            kw.update(do_sample=False)
        else:
            kw.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
        with torch.no_grad(), seeded_torch(seed, f"{stream}-{b}"):
            seq = model.generate(**enc, **kw)
        for (i, _), row in zip(chunk, seq[:, enc["input_ids"].shape[1]:]):
            out[i].append(tokenizer.decode(row, skip_special_tokens=True))
    return out


# --------------------------------------------------------------------------- 1. generate
def stage_generate(cfg) -> pathlib.Path:
    """Two responses per training prompt from the SFT/base policy."""
    from .models import load_policy
    from .prompts import build_prompts

    _setup_torch(cfg)
    out, seed = cfg.output_path, cfg.run.seeds[0]
    model, tok = load_policy(cfg.models.policy, cfg.models.dtype, cfg.run.device,
                             cfg.models.policy_gguf_file)
    train = build_prompts(cfg.prompts, "train", cfg.prompts.n_train, seed, tok)
    test = build_prompts(cfg.prompts, "test", cfg.prompts.n_test, seed, tok)
    write_jsonl(out / "prompts_train.jsonl", train)
    write_jsonl(out / "prompts_test.jsonl", test)
    _say(f"generate: {len(train)} prompts x 2 responses with {cfg.models.policy}")
    resp = generate_completions(model, tok, [r["prompt"] for r in train], 2, cfg.generate, seed,
                                "generate")
    rows = [{**r, "response_0": a, "response_1": b} for r, (a, b) in zip(train, resp)]
    return write_jsonl(out / "generations.jsonl", rows)


# --------------------------------------------------------------------------- 2. score
def stage_score(cfg) -> pathlib.Path:
    """Trait scores of both responses; normalisation statistics estimated on all responses."""
    from .traits import TraitPanel, normalise_scores

    _setup_torch(cfg)
    out = cfg.output_path
    rows = read_jsonl(out / "generations.jsonl")
    panel = TraitPanel(cfg.traits, device=cfg.run.device)
    prompts = [r["prompt"] for r in rows]
    scores, stats = {0: {}, 1: {}}, {}
    for t in cfg.traits:
        raw = {j: panel.scorer(t.name)(prompts, [r[f"response_{j}"] for r in rows], rows)
               for j in (0, 1)}
        _, stats[t.name] = normalise_scores(t, np.concatenate([raw[0], raw[1]]))
        for j in (0, 1):
            scores[j][t.name], _ = normalise_scores(t, raw[j], stats[t.name])
    write_json(out / "trait_stats.json", stats)
    for i, r in enumerate(rows):
        for j in (0, 1):
            r[f"traits_{j}"] = {k: float(v[i]) for k, v in scores[j].items()}
    _say(f"score: {len(rows)} pairs of responses, traits {[t.name for t in cfg.traits]}")
    return write_jsonl(out / "scored.jsonl", rows)


# --------------------------------------------------------------------------- 3. pairs
def stage_pairs(cfg) -> pathlib.Path:
    """Preference pairs for every (minority proportion, seed)."""
    from .pairs import build_pairs

    out = cfg.output_path
    scored = read_jsonl(out / "scored.jsonl")
    write_json(out / "config_used.json", __import__("dataclasses").asdict(cfg))
    summary = []
    for p in cfg.pairs.minority_proportions:
        for seed in cfg.run.seeds:
            pairs = build_pairs(scored, cfg.groups, p, seed, cfg.pairs.label_mode,
                                cfg.pairs.bt_temperature, cfg.pairs.n_users,
                                cfg.pairs.eval_fraction)
            write_jsonl(out / "pairs" / f"{_tag(p, seed)}.jsonl", pairs)
            gid = np.array([r["group_id"] for r in pairs])
            summary.append({"p": p, "seed": seed, "n": len(pairs),
                            "minority_fraction": float((gid == 0).mean()),
                            "response_1_chosen": float(np.mean([r["chosen_index"] for r in pairs]))})
    _say(f"pairs: {summary}")
    return write_json(out / "pairs" / "summary.json", summary)


# --------------------------------------------------------------------------- 4. reward
def _fit_config(cfg, method):
    from .reward_training import FitConfig

    r = cfg.reward
    return FitConfig(lr=r.lr[method], epochs=r.epochs, batch_size=r.batch_size,
                     weight_decay=r.weight_decay, use_tanh=bool(r.use_tanh.get(method, False)))


def stage_reward(cfg) -> pathlib.Path:
    """Train every reward method for every (p, seed); store heads and normalisers."""
    from .group_rewards import GroupNormaliser
    from .models import load_backbone
    from .reward_model import build_reward_model
    from .reward_training import train_reward_model

    _setup_torch(cfg)
    out, r = cfg.output_path, cfg.reward
    gens = read_jsonl(out / "generations.jsonl")
    ref_texts = [g["prompt"] + g[f"response_{j}"] for g in gens for j in (0, 1)]
    shared = None if r.lora_r else load_backbone(cfg.models.reward_backbone, cfg.run.device)
    reports = []
    for p in cfg.pairs.minority_proportions:
        for seed in cfg.run.seeds:
            pairs = read_jsonl(out / "pairs" / f"{_tag(p, seed)}.jsonl")
            for method in r.methods:
                lora = ({"r": r.lora_r, "alpha": r.lora_alpha, "dropout": r.lora_dropout,
                         "target_modules": r.lora_target_modules} if r.lora_r else None)
                bb, tok = shared if shared else (None, None)
                rm = build_reward_model(cfg.models.reward_backbone, method, len(cfg.groups),
                                        r.k, r.pooling, r.max_length, seed, cfg.run.device,
                                        backbone=bb, tokenizer=tok, lora=lora)
                t0 = time.time()
                rep = train_reward_model(rm, pairs, _fit_config(cfg, method), seed,
                                         r.latent_groups, r.em_iterations, r.em_init,
                                         r.em_epochs, end_to_end=bool(r.lora_r))
                rep.update(p=p, seed=seed, seconds=round(time.time() - t0, 2))
                folder = rm.save(out / "rewards" / f"{method}-{_tag(p, seed)}")
                norm = GroupNormaliser.fit(rm.rewards(ref_texts).float().cpu().numpy())
                write_json(folder / "normaliser.json", norm.to_dict())
                write_json(folder / "report.json", rep)
                reports.append(rep)
                _say(f"reward {method} p={p:g} seed={seed}: acc {rep.get('eval_accuracy')} "
                     f"({rep['seconds']} s)")
    return write_json(out / "rewards" / "summary.json", reports)


# --------------------------------------------------------------------------- 5. rl
def _reward_function(cfg, method, p, seed, panel):
    """GroupRewardFunction for ``method`` (gold: true traits; else the learned heads)."""
    from .group_rewards import (
        GroupNormaliser,
        GroupRewardFunction,
        gold_source,
        reward_model_source,
    )
    from .reward_model import load_reward_model

    if method == "gold":
        return GroupRewardFunction(gold_source(panel, cfg.groups),
                                   GroupNormaliser.identity(len(cfg.groups)), cfg.rl.aggregation)
    folder = cfg.output_path / "rewards" / f"{method}-{_tag(p, seed)}"
    rm = load_reward_model(folder, cfg.run.device)
    U = rm.head.n_groups
    norm = (GroupNormaliser(**read_json(folder / "normaliser.json"))
            if cfg.rl.normalise == "zscore" else GroupNormaliser.identity(U))
    return GroupRewardFunction(reward_model_source(rm), norm, cfg.rl.aggregation)


def _policy_runs(cfg):
    """(method, p, seed, folder name) of every policy the rl stage trains."""
    runs = []
    for seed in cfg.run.seeds:
        if "gold" in cfg.rl.methods:
            runs.append(("gold", None, seed, f"gold-seed{seed}"))
        for p in cfg.pairs.minority_proportions:
            runs += [(m, p, seed, f"{m}-{_tag(p, seed)}") for m in cfg.rl.methods if m != "gold"]
    return runs


def stage_rl(cfg) -> pathlib.Path:
    """PPO (compact, in-project) or GRPO (TRL) for every method, p and seed."""
    from accelerate import PartialState

    from .models import load_policy
    from .ppo import PPOConfig, train_ppo
    from .traits import TraitPanel

    _setup_torch(cfg)
    out = cfg.output_path
    prompt_rows = read_jsonl(out / "prompts_train.jsonl")
    prompts = [r["prompt"] for r in prompt_rows]
    panel = TraitPanel(cfg.traits, read_json(out / "trait_stats.json"), cfg.run.device)
    summary = []
    state = PartialState()  # single process unless started by `accelerate launch`
    for method, p, seed, name in _policy_runs(cfg):
        folder = out / "policies" / name
        reward_fn = _reward_function(cfg, method, p, seed, panel)
        lm, tok = load_policy(cfg.models.policy, cfg.models.dtype, cfg.run.device,
                              cfg.models.policy_gguf_file)
        t0 = time.time()
        _say(f"rl {cfg.rl.algorithm} {name}")
        if cfg.rl.algorithm == "ppo":
            s = cfg.rl.ppo
            pcfg = PPOConfig(**{k: getattr(s, k) for k in s.__dataclass_fields__}, seed=seed)
            model, history = train_ppo(lm, tok, prompts, reward_fn, pcfg, log=_say)
            trained = model.lm
        else:
            from .grpo import train_grpo

            trainer = train_grpo(lm, tok, prompts, reward_fn, cfg.rl.grpo, str(folder / "trl"),
                                 seed, rows=prompt_rows)
            trained = trainer.model
            history = trainer.state.log_history
        # Under `accelerate launch` every process reaches this point: one writes, all wait.
        if state.is_main_process:
            trained.save_pretrained(folder)
            tok.save_pretrained(folder)
            write_json(folder / "history.json", {"history": history, "reward_log": reward_fn.log})
        state.wait_for_everyone()
        summary.append({"policy": name, "seconds": round(time.time() - t0, 1)})
    path = out / "policies" / "summary.json"
    if state.is_main_process:
        write_json(path, summary)
    state.wait_for_everyone()
    return path


# --------------------------------------------------------------------------- 6. evaluate
def stage_evaluate(cfg) -> str:
    """Generate on test prompts with every trained policy, score, tabulate, plot.

    Returns the markdown table (also written to ``table.md``).
    """
    from .evaluation import format_table, plot_scores_vs_p, summarise
    from .models import load_policy
    from .traits import TraitPanel, group_scores

    _setup_torch(cfg)
    out = cfg.output_path
    test = read_jsonl(out / "prompts_test.jsonl")
    prompts = [r["prompt"] for r in test]
    panel = TraitPanel(cfg.traits, read_json(out / "trait_stats.json"), cfg.run.device)
    runs = []
    for method, p, seed, name in _policy_runs(cfg):
        lm, tok = load_policy(str(out / "policies" / name), cfg.models.dtype, cfg.run.device)
        comps = [c[0] for c in generate_completions(
            lm, tok, prompts, 1, cfg.generate, seed, "evaluate", cfg.evaluate.greedy,
            cfg.evaluate.max_new_tokens)]
        S = group_scores(panel.score(prompts, comps, test), cfg.groups).T
        recs = [{"prompt_id": r["prompt_id"], "prompt": r["prompt"], "completion": c,
                 "group_scores": s.tolist()} for r, c, s in zip(test, comps, S)]
        write_jsonl(out / "eval" / f"{name}.jsonl", recs)
        runs.append({"method": method, "p": p, "seed": seed, "records": recs})
    rows = summarise(runs, cfg.group_names, cfg.evaluate.baseline)
    table = format_table(rows, cfg.group_names, cfg.evaluate.baseline)
    (out / "table.md").write_text(table + "\n")
    with open(out / "table.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    plot_scores_vs_p(rows, cfg.group_names, out / "scores_vs_p.png", cfg.run.name)
    return table


def load_eval_runs(cfg) -> list:
    """The evaluation records of every trained policy (``eval/{name}.jsonl``), as the ``runs``
    of :func:`simulator.llm.evaluation.summarise` / :func:`~simulator.llm.evaluation.seed_win_rates`."""
    return [{"method": method, "p": p, "seed": seed,
             "records": read_jsonl(cfg.output_path / "eval" / f"{name}.jsonl")}
            for method, p, seed, name in _policy_runs(cfg)]


STAGES = {"generate": stage_generate, "score": stage_score, "pairs": stage_pairs,
          "reward": stage_reward, "rl": stage_rl, "evaluate": stage_evaluate}


def run_pipeline(cfg, stages=tuple(STAGES)) -> str:
    """Run ``stages`` in order; returns the evaluation table if it ran."""
    table = ""
    for name in stages:
        t0 = time.time()
        res = STAGES[name](cfg)
        _say(f"stage {name} done in {time.time() - t0:.1f} s")
        if name == "evaluate":
            table = res
    return table
