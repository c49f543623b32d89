"""Compact PPO for language models, readable top to bottom (CleanRL style).

TRL removed ``PPOTrainer`` (gone in trl 1.13), so the IMDb experiment's PPO lives here.  It
follows TRL's PPOv2 recipe that the SharedRep IMDb runs used:

1. roll out: sample a response for each prompt from the policy;
2. score: scalar reward from the reward callable (pointwise min or Algorithm-1 group reward),
   minus ``missing_eos_penalty`` for responses that did not end;
3. per-token rewards: ``-kl_coef * (log pi - log pi_ref)`` on every response token, plus the
   score on the last token (k1 KL estimator);
4. optional reward whitening, then GAE(gamma, lam) with a value head on the policy's hidden
   states, advantage whitening;
5. ``ppo_epochs`` passes of clipped policy loss + ``vf_coef`` * clipped value loss over
   mini-batches.

All hyperparameters are in :class:`PPOConfig`.  Sampling draws from a seeded torch RNG.

Data parallel through Hugging Face ``accelerate`` (``accelerate launch --num_processes N ...``):
every process rolls out and scores its own ``batch_size / N`` prompts of the global batch with
its own sampling stream, whitening uses statistics over all processes' tokens, DDP averages the
gradients of each ``mini_batch_size / N`` local mini-batch, and logged statistics are averaged
over processes.  Without a launcher the :class:`~accelerate.Accelerator` is single-process and
the algorithm is exactly the one above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import PPOSection
from .seeding import rng, seeded_torch, torch_generator


@dataclass
class PPOConfig(PPOSection):
    """All PPO hyperparameters (defaults: TRL PPOv2 / SharedRep IMDb where they apply).

    Attributes
    ----------
    total_episodes : int
        Number of prompts consumed (50,000 in the paper).
    batch_size : int
        Rollouts per PPO iteration, over all processes (each process rolls out
        ``batch_size / num_processes``).
    mini_batch_size : int
        Rollouts per gradient step, over all processes (divides ``batch_size``; each process
        contributes ``mini_batch_size / num_processes``).
    ppo_epochs : int
        Passes over each batch (3 in the paper).
    learning_rate : float
    lr_schedule : {"constant", "linear", "cosine"}
    kl_coef : float
        beta of the per-token KL penalty (0.05 in the paper).
    cliprange, cliprange_value : float
    vf_coef : float
    gamma, lam : float
        GAE discount and lambda (1.0 and 0.95).
    whiten_rewards : bool
    missing_eos_penalty : float
        Subtracted from the score of responses with no EOS token (1.0 in the paper).
    max_grad_norm : float
    max_new_tokens, temperature, top_p, top_k : sampling of the rollouts
        (paper: 53 tokens, T = 0.7).
    seed : int

    The fields other than ``seed`` are those of the config file's ``[rl.ppo]`` table
    (:class:`simulator.llm.config.PPOSection`, defined there so that reading a config does not
    import torch).
    """

    seed: int = 0


class PolicyWithValue(nn.Module):
    """Causal LM plus a scalar value head on its last hidden state."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        d = lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.n_embd
        self.value_head = nn.Linear(d, 1)
        with torch.no_grad():
            self.value_head.weight.zero_()
            self.value_head.bias.zero_()
        self.value_head.to(next(lm.parameters()).device, next(lm.parameters()).dtype)

    def forward(self, input_ids, attention_mask):
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=position_ids, output_hidden_states=True)
        return out.logits, self.value_head(out.hidden_states[-1]).squeeze(-1)


def response_logprobs(logits, sequences, context_length, temperature):
    """log pi(y_t | ...) of the response tokens: logits (b, L, V) -> (b, L - context_length)."""
    logits = logits[:, context_length - 1:-1].float() / temperature
    labels = sequences[:, context_length:]
    return torch.gather(F.log_softmax(logits, -1), 2, labels.unsqueeze(-1)).squeeze(-1)


def response_mask(responses, eos_token_id):
    """1 on response tokens up to and including the first EOS; also returns whether one ended."""
    is_eos = responses == eos_token_id
    has_eos = is_eos.any(1)
    first = torch.where(has_eos, is_eos.float().argmax(1), responses.shape[1] - 1)
    pos = torch.arange(responses.shape[1], device=responses.device).unsqueeze(0)
    return (pos <= first.unsqueeze(1)).long(), has_eos


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp_min(1)


def masked_whiten(x, mask, shift_mean=True, accelerator=None):
    """Whiten the masked entries of ``x``; with an ``accelerator``, mean and variance are over
    the masked entries of every process (sums and counts all-reduced)."""
    def mean_of(v):
        if accelerator is None:
            return masked_mean(v, mask)
        total = accelerator.reduce(torch.stack([(v * mask).sum(), mask.sum()]), "sum")
        return total[0] / total[1].clamp_min(1)

    mean = mean_of(x)
    var = mean_of((x - mean) ** 2)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def compute_gae(rewards, values, mask, gamma, lam):
    """Generalised advantage estimates and returns over response tokens (b, T)."""
    T = rewards.shape[1]
    values = values * mask
    adv, last = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = delta + gamma * lam * last * (mask[:, t + 1] if t + 1 < T else 0.0)
        adv[:, t] = last
    adv = adv * mask
    return adv, adv + values


def _lr_factor(schedule, step, total):
    frac = min(step / max(total, 1), 1.0)
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return 1.0


@torch.no_grad()
def rollout(model, tokenizer, prompts, cfg, seed, step, rank=0):
    """Sample one response per prompt with the (unwrapped) ``model``.  Process ``rank`` draws
    from its own stream.  Returns sequences, context length, attention mask, response mask,
    has-EOS flags and the decoded responses."""
    dev = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True).to(dev)
    stream = f"ppo-rollout-{step}" + (f"-rank{rank}" if rank else "")
    with seeded_torch(seed, stream):
        seq = model.lm.generate(**enc, do_sample=True, max_new_tokens=cfg.max_new_tokens,
                                temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                pad_token_id=tokenizer.pad_token_id)
    ctx = enc["input_ids"].shape[1]
    resp = seq[:, ctx:]
    rmask, has_eos = response_mask(resp, tokenizer.eos_token_id)
    attn = torch.cat([enc["attention_mask"], rmask], dim=1)
    texts = [tokenizer.decode(r[m.bool()], skip_special_tokens=True) for r, m in zip(resp, rmask)]
    return seq, ctx, attn, rmask, has_eos, texts


def ppo_step(model, ref_lm, tokenizer, optimizer, prompts, reward_fn, cfg: PPOConfig,
             step: int = 0, rows=None, accelerator=None) -> dict:
    """One PPO iteration on this process's share of the batch of prompts.

    ``model`` and ``optimizer`` are the ones returned by ``accelerator.prepare``; without an
    ``accelerator`` a single-process one is made.  Returns logging statistics (averaged over
    processes).
    """
    if accelerator is None:
        accelerator = _default_accelerator(model)
    dev = next(model.parameters()).device
    policy = accelerator.unwrap_model(model)  # plain module for generation and no-grad passes
    # 1. roll out
    seq, ctx, attn, rmask, has_eos, texts = rollout(policy, tokenizer, prompts, cfg, cfg.seed,
                                                    step, rank=accelerator.process_index)
    maskf = rmask.float()
    # 2. score
    scores = torch.as_tensor(np.asarray(reward_fn(list(prompts), texts, rows), float),
                             dtype=torch.float32, device=dev)
    scores = scores - cfg.missing_eos_penalty * (~has_eos).float()
    # 3. per-token rewards with the KL penalty
    with torch.no_grad():
        logits, values = policy(seq, attn)
        old_logp = response_logprobs(logits, seq, ctx, cfg.temperature)
        values = values[:, ctx - 1:-1].float()
        pos = (attn.long().cumsum(-1) - 1).clamp_min(0)
        ref_logits = ref_lm(input_ids=seq, attention_mask=attn, position_ids=pos).logits
        ref_logp = response_logprobs(ref_logits, seq, ctx, cfg.temperature)
    kl = (old_logp - ref_logp) * maskf
    rewards = -cfg.kl_coef * kl
    last = rmask.sum(1) - 1
    rewards[torch.arange(len(last)), last] += scores
    # 4. advantages (whitening statistics over every process's tokens)
    if cfg.whiten_rewards:
        rewards = masked_whiten(rewards, maskf, shift_mean=False, accelerator=accelerator) * maskf
    adv, returns = compute_gae(rewards, values, maskf, cfg.gamma, cfg.lam)
    adv = masked_whiten(adv, maskf, accelerator=accelerator) * maskf
    # 5. clipped policy and value updates; each process takes its share of every mini-batch
    #    and DDP averages the gradients
    gen = torch_generator(cfg.seed, f"ppo-minibatch-{step}")
    stats = {"pg_loss": [], "vf_loss": [], "clipfrac": [], "approx_kl": []}
    n = seq.shape[0]
    local_mini_batch = cfg.mini_batch_size // accelerator.num_processes
    for _ in range(cfg.ppo_epochs):
        for idx in torch.randperm(n, generator=gen).split(local_mini_batch):
            idx = idx.to(dev)
            m = maskf[idx]
            new_logits, new_values = model(seq[idx], attn[idx])
            new_logp = response_logprobs(new_logits, seq[idx], ctx, cfg.temperature)
            vpred = new_values[:, ctx - 1:-1].float()
            v_clip = values[idx] + (vpred - values[idx]).clamp(-cfg.cliprange_value,
                                                               cfg.cliprange_value)
            vf_loss = 0.5 * masked_mean(torch.max((vpred - returns[idx]) ** 2,
                                                  (v_clip - returns[idx]) ** 2), m)
            ratio = torch.exp(new_logp - old_logp[idx])
            pg = torch.max(-adv[idx] * ratio,
                           -adv[idx] * ratio.clamp(1 - cfg.cliprange, 1 + cfg.cliprange))
            pg_loss = masked_mean(pg, m)
            loss = pg_loss + cfg.vf_coef * vf_loss
            optimizer.zero_grad()
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats["pg_loss"].append(float(pg_loss))
                stats["vf_loss"].append(float(vf_loss))
                stats["clipfrac"].append(float(masked_mean(
                    ((ratio - 1).abs() > cfg.cliprange).float(), m)))
                stats["approx_kl"].append(float(masked_mean(0.5 * (new_logp - old_logp[idx]) ** 2,
                                                            m)))
    # every process has the same number of rollouts and mini-batches: mean of means = global mean
    local = {k: float(np.mean(v)) for k, v in stats.items()}
    local.update(score_mean=float(scores.mean()), kl_mean=float(kl.sum(1).mean()),
                 eos_rate=float(has_eos.float().mean()),
                 response_length=float(rmask.sum(1).float().mean()))
    if accelerator.num_processes == 1:
        return {**local, "step": step}
    means = accelerator.reduce(torch.tensor(list(local.values()), dtype=torch.float64,
                                            device=dev), "mean")
    return {**dict(zip(local, means.tolist())), "step": step}


def _default_accelerator(model):
    """``Accelerator()``: single-process unless started by ``accelerate launch``.  A model on
    the CPU keeps the run on the CPU (unless the process already committed to an accelerator)."""
    from accelerate import Accelerator

    if next(model.parameters()).device.type == "cpu":
        try:
            return Accelerator(cpu=True)
        except ValueError:  # AcceleratorState already initialised on a GPU in this process
            pass
    return Accelerator()


def train_ppo(lm, tokenizer, prompts, reward_fn, cfg: PPOConfig, ref_lm=None, log=print,
              accelerator=None):
    """Run PPO for ``cfg.total_episodes`` prompts (cycled in a seeded order).

    Data parallel under ``accelerate launch``: every process calls this with the same arguments;
    each iteration's global batch of ``cfg.batch_size`` prompts is split between the processes.

    Parameters
    ----------
    lm : PreTrainedModel
        Policy; trained in place (dropout stays off: the model is kept in eval mode).
    tokenizer : left-padding tokenizer
    prompts : list of str
    reward_fn : callable
        ``(prompts, completions, rows) -> array (n,)``.
    cfg : PPOConfig
    ref_lm : PreTrainedModel, optional
        Frozen reference policy; a copy of ``lm`` if not given.
    log : callable
        Receives one line per iteration (main process only).
    accelerator : accelerate.Accelerator, optional
        Made here if not given (single-process unless launched with ``accelerate launch``).

    Returns
    -------
    model : PolicyWithValue
        Unwrapped (identical on every process).
    history : list of dict
        Statistics averaged over processes (identical on every process).
    """
    import copy

    if cfg.batch_size % cfg.mini_batch_size:
        raise ValueError(f"bad config value rl.ppo.mini_batch_size={cfg.mini_batch_size}; "
                         f"allowed: a divisor of batch_size={cfg.batch_size}")
    if accelerator is None:
        accelerator = _default_accelerator(lm)
    n_proc, rank = accelerator.num_processes, accelerator.process_index
    for key in ("batch_size", "mini_batch_size"):
        if getattr(cfg, key) % n_proc:
            raise ValueError(f"bad config value rl.ppo.{key}={getattr(cfg, key)}; allowed: a "
                             f"multiple of the number of processes ({n_proc}); it is global")
    lm.to(accelerator.device)
    if ref_lm is None:
        ref_lm = copy.deepcopy(lm)
    ref_lm.to(accelerator.device).eval().requires_grad_(False)
    lm.eval()
    model = PolicyWithValue(lm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, eps=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    n_iters = max(1, cfg.total_episodes // cfg.batch_size)
    order = rng(cfg.seed, "ppo-prompt-order").permutation(
        np.resize(np.arange(len(prompts)), n_iters * cfg.batch_size))
    per_proc = cfg.batch_size // n_proc
    history = []
    for it in range(n_iters):
        batch = [prompts[i] for i in order[it * cfg.batch_size:(it + 1) * cfg.batch_size]]
        shard = batch[rank * per_proc:(rank + 1) * per_proc]  # this process's share
        for g in optimizer.param_groups:  # schedule stepped once per PPO iteration
            g["lr"] = cfg.learning_rate * _lr_factor(cfg.lr_schedule, it, n_iters)
        stats = ppo_step(model, ref_lm, tokenizer, optimizer, shard, reward_fn, cfg, step=it,
                         accelerator=accelerator)
        history.append(stats)
        if accelerator.is_main_process:
            log(f"ppo iter {it + 1}/{n_iters} score {stats['score_mean']:+.3f} "
                f"kl {stats['kl_mean']:.3f} pg {stats['pg_loss']:+.4f} "
                f"vf {stats['vf_loss']:.4f}")
    return accelerator.unwrap_model(model), history
