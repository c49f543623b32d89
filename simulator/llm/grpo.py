"""GRPO through TRL's ``GRPOTrainer`` with one reward callable returning the group aggregate.

TRL sums several ``reward_funcs``; it never takes a min.  The MaxMin objective therefore goes
in as ONE callable (:class:`~simulator.llm.group_rewards.GroupRewardFunction`) that computes all
group rewards, normalises them per group and returns the pointwise min (or the Algorithm-1
active group's reward for the batch).  ``beta > 0`` keeps the KL-regularised RLHF objective.
"""

from __future__ import annotations

import numpy as np


def trl_reward(reward_fn):
    """Adapt ``reward_fn(prompts, completions, rows)`` to TRL's ``f(prompts, completions, **kw)``.

    Extra dataset columns arrive as keyword lists and are passed on as ``rows``.
    """
    def maxmin_reward(prompts, completions, **kwargs):
        cols = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(prompts)}
        rows = [{k: v[i] for k, v in cols.items()} for i in range(len(prompts))]
        return np.asarray(reward_fn(prompts, completions, rows), float).tolist()
    maxmin_reward.__name__ = "maxmin_reward"
    return maxmin_reward


def grpo_args(section, output_dir: str, seed: int, use_cpu: bool):
    """``trl.GRPOConfig`` from a :class:`~simulator.llm.config.GRPOSection`."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(output_dir), seed=seed, use_cpu=use_cpu, report_to="none",
        save_strategy="no", num_train_epochs=section.num_train_epochs, max_steps=section.max_steps,
        per_device_train_batch_size=section.per_device_train_batch_size,
        gradient_accumulation_steps=section.gradient_accumulation_steps,
        num_generations=section.num_generations,
        max_completion_length=section.max_completion_length,
        learning_rate=section.learning_rate, beta=section.beta,
        temperature=section.temperature, epsilon=section.epsilon,
        scale_rewards=False if section.scale_rewards == "none" else section.scale_rewards,
        loss_type=section.loss_type, bf16=section.bf16, logging_steps=section.logging_steps,
    )


def train_grpo(model, tokenizer, prompts: list, reward_fn, section, output_dir: str,
               seed: int = 0, rows: list | None = None, peft_config=None):
    """Run GRPO on ``prompts`` with the min-over-groups reward.

    Parameters
    ----------
    model : PreTrainedModel or str
        Policy (the reference model is TRL's frozen copy when ``beta > 0``).
    tokenizer : tokenizer (left padding)
    prompts : list of str
    reward_fn : callable
        ``(prompts, completions, rows) -> array (n,)``.
    section : GRPOSection
    output_dir : str
    seed : int
    rows : list of dict, optional
        Extra columns per prompt (e.g. GSM8K ``reference``) forwarded to the reward.
    peft_config : peft.PeftConfig, optional

    Returns
    -------
    trainer : trl.GRPOTrainer (trained; ``trainer.model`` is the policy)
    """
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    if section.beta <= 0:
        raise ValueError(f"bad config value rl.grpo.beta={section.beta}; allowed: a number > 0")
    if not isinstance(model, str) and not getattr(model.config, "_name_or_path", ""):
        raise ValueError("GRPO needs a policy loaded from a hub id or folder: TRL reloads the "
                         "reference model from model.config._name_or_path")
    data = {"prompt": list(prompts)}
    for key in sorted({k for r in (rows or []) for k in r} - {"prompt", "prompt_id"}):
        data[key] = [r.get(key) for r in rows]
    use_cpu = not torch.cuda.is_available()
    trainer = GRPOTrainer(model=model, reward_funcs=trl_reward(reward_fn),
                          args=grpo_args(section, output_dir, seed, use_cpu),
                          train_dataset=Dataset.from_dict(data), processing_class=tokenizer,
                          peft_config=peft_config)
    trainer.train()
    return trainer
