"""LLM reproduction of SharedRep-RLHF and MaxMin-RLHF (optional extra ``[llm]``).

The pipeline has six stages, each a function in :mod:`simulator.llm.stages` and a CLI
sub-command ``python -m simulator llm STAGE --config FILE``:

``generate`` -> ``score`` -> ``pairs`` -> ``reward`` -> ``rl`` -> ``evaluate``

Every stage reads and writes plain local files (JSON lines, safetensors, JSON) under the
run's ``output_dir`` so any stage can be rerun on its own.  Heavy libraries (torch,
transformers, trl, peft) are imported inside functions only; importing this package is cheap.

Modules
-------
methods          the reward-method vocabulary (pooled, separate, sharedrep; the papers' aliases)
config           dataclass configs for every stage, TOML loading and validation
seeding          explicit seeds: numpy SeedSequence children and torch Generators
records          JSON-lines I/O for the plain local datasets
models           loading policies, tokenizers and backbones (hub id, local path, GGUF, packages)
tiny             a tiny GPT-2 and a byte-level BPE tokenizer built in-process (tests, smoke runs)
prompts          prompt sources: IMDb prefixes, GSM8K few-shot, HH first turns, code templates
traits           pluggable trait scorers (sentiment, length, correctness, reward-model logits)
pairs            group scores, minority assignment, tie rule, BT-noise labels, synthetic users
reward_heads     pooled head, separate per-group linear heads, SharedRep bilinear head
reward_losses    group-routed Bradley-Terry loss with optional tanh
reward_model     backbone + head, last-token features, optional LoRA, save/load
reward_training  head training on cached features or end to end, EM over latent users
group_rewards    per-group normalisation, pointwise min, Algorithm-1 group selection (simulator's)
ppo              compact PPO (policy + value head, GAE, clipping, KL penalty), one file
grpo             TRL GRPOTrainer with one min-over-groups reward callable
evaluation       per-group scores, win rate vs the gold policy, paper tables, plots
stages           the six stage functions plus the offline demo
cli              the ``llm`` sub-command
gpu_run          the IMDb pipeline at a reduced size for one GPU (``llm gpu-run``; gpu_check.sh)
"""
