"""One PPO step and one GRPO step on the tiny GPT-2 change the policy; GAE arithmetic."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from simulator.llm.ppo import (
    PolicyWithValue,
    PPOConfig,
    compute_gae,
    ppo_step,
    response_mask,
    train_ppo,
)

pytestmark = pytest.mark.llm


def test_gae_matches_hand_computation():
    r = torch.tensor([[0.0, 0.0, 1.0]])
    v = torch.tensor([[0.5, 0.2, 0.1]])
    m = torch.ones(1, 3)
    adv, ret = compute_gae(r, v, m, gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.1
    d1 = 0.0 + 0.1 - 0.2
    d0 = 0.0 + 0.2 - 0.5
    a2, a1 = d2, d1 + 0.5 * d2
    a0 = d0 + 0.5 * a1
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2]]))
    torch.testing.assert_close(ret, adv + v)
    # masked tail: no bootstrap past the last valid token
    adv2, _ = compute_gae(torch.tensor([[1.0, 9.0]]), torch.tensor([[0.0, 9.0]]),
                          torch.tensor([[1.0, 0.0]]), 1.0, 1.0)
    assert adv2.tolist() == [[1.0, 0.0]]


def test_response_mask_stops_after_first_eos():
    resp = torch.tensor([[5, 0, 7, 0], [5, 6, 7, 8]])
    mask, has_eos = response_mask(resp, eos_token_id=0)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert has_eos.tolist() == [True, False]


def _reward_prefers_short(prompts, completions, rows=None):
    return np.array([-len(c) / 10 for c in completions])


def test_ppo_step_changes_policy(tiny):
    model, tok, _ = tiny
    lm = copy.deepcopy(model)
    ref = copy.deepcopy(model).eval()
    policy = PolicyWithValue(lm)
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    cfg = PPOConfig(batch_size=4, mini_batch_size=2, ppo_epochs=1, max_new_tokens=6,
                    temperature=1.0, seed=0)
    stats = ppo_step(policy, ref, tok, opt, ["the film", "i loved", "this movie", "the plot"],
                     _reward_prefers_short, cfg)
    changed = sum(not torch.equal(before[n], p) for n, p in lm.named_parameters())
    assert changed > 0
    assert np.isfinite([stats["pg_loss"], stats["vf_loss"], stats["score_mean"]]).all()
    assert policy.value_head.weight.abs().sum() > 0  # value head learned too
    for n, p in ref.named_parameters():  # reference untouched
        torch.testing.assert_close(p, before[n])


def test_train_ppo_is_seeded(tiny):
    model, tok, _ = tiny
    cfg = PPOConfig(total_episodes=4, batch_size=2, mini_batch_size=1, ppo_epochs=1,
                    max_new_tokens=4, temperature=1.0, seed=3)
    runs = []
    for _ in range(2):
        _, hist = train_ppo(copy.deepcopy(model), tok, ["a", "b", "c"], _reward_prefers_short,
                            cfg, log=lambda s: None)
        runs.append([h["score_mean"] for h in hist])
    assert runs[0] == runs[1] and len(runs[0]) == 2
    with pytest.raises(ValueError, match="mini_batch_size"):
        train_ppo(model, tok, ["a"], _reward_prefers_short,
                  PPOConfig(batch_size=4, mini_batch_size=3), log=lambda s: None)


def test_grpo_step_with_min_over_heads_changes_policy(tiny, tmp_path):
    pytest.importorskip("trl")
    from transformers import GPT2LMHeadModel

    from simulator.llm.config import GRPOSection
    from simulator.llm.group_rewards import GroupNormaliser, GroupRewardFunction
    from simulator.llm.grpo import train_grpo

    _, tok, folder = tiny
    lm = GPT2LMHeadModel.from_pretrained(folder)  # TRL loads the reference from its path
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    calls = []

    def two_groups(prompts, completions, rows):
        calls.append(len(completions))
        return np.stack([[len(c) / 10, -len(c) / 10 + 0.3 * (i % 2)]
                         for i, c in enumerate(completions)])

    reward_fn = GroupRewardFunction(two_groups, GroupNormaliser.identity(2), "pointwise_min")
    section = GRPOSection(max_steps=1, per_device_train_batch_size=4, num_generations=2,
                          max_completion_length=8, learning_rate=1e-2, beta=0.05, logging_steps=1)
    trainer = train_grpo(lm, tok, ["the film", "i loved", "this movie", "the plot"] * 2,
                         reward_fn, section, str(tmp_path / "grpo"), seed=0)
    assert calls and trainer.state.global_step == 1
    changed = sum(not torch.equal(before[n], p.detach().cpu())
                  for n, p in trainer.model.named_parameters())
    assert changed > 0
    with pytest.raises(ValueError, match="rl.grpo.beta"):
        train_grpo(lm, tok, ["a"], reward_fn, GRPOSection(beta=0.0), str(tmp_path / "x"))
