"""Reward heads, the group-routed BT loss, training on a learnable toy signal, EM, and the
reward model on the tiny GPT-2."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulator.llm.reward_heads import (
    PooledHead,
    SeparateHeads,
    SharedRepHead,
    make_head,
    min_over_heads,
)
from simulator.llm.reward_losses import bt_loss, route
from simulator.llm.reward_training import FitConfig, em_fit, fit_head, pair_accuracy

pytestmark = pytest.mark.llm


def _toy(n=600, d=8, p=0.3, seed=0, n_users=0):
    """Features of chosen / rejected with deterministic labels from two linear rewards."""
    g = np.random.default_rng(seed)
    theta = np.stack([np.eye(d)[0] * 3 + np.eye(d)[1] * 3, np.eye(d)[2] * 3])  # (U, d)
    a, b = g.normal(size=(n, d)), g.normal(size=(n, d))
    if n_users:
        user = np.arange(n) % n_users
        group_of_user = (np.arange(n_users) >= max(1, int(n_users * p))).astype(int)
        gid = group_of_user[user]
    else:
        gid, user = (g.random(n) >= p).astype(int), None
    ra, rb = (a * theta[gid]).sum(1), (b * theta[gid]).sum(1)
    prefer_b = rb > ra
    fc = np.where(prefer_b[:, None], b, a)
    fr = np.where(prefer_b[:, None], a, b)
    t = lambda x: torch.tensor(x, dtype=torch.float32)
    return t(fc), t(fr), torch.tensor(gid), user


def test_head_shapes_and_parameterisation():
    h = torch.randn(5, 16)
    assert PooledHead(16)(h).shape == (5, 1)
    mm = SeparateHeads(16, 3)
    assert mm(h).shape == (5, 3)
    assert all(lin.bias is None for lin in mm.heads)
    sr = SharedRepHead(16, 4, 3)
    assert sr(h).shape == (5, 3)
    assert sr.shared.weight.shape == (4, 16) and sr.shared.bias is not None
    assert sr.groups.weight.shape == (3, 4) and sr.groups.bias is None
    # r_u = w_u^T (B^T h + b)
    manual = (h @ sr.shared.weight.T + sr.shared.bias) @ sr.groups.weight.T
    torch.testing.assert_close(sr(h), manual)
    with pytest.raises(ValueError, match="reward.methods"):
        make_head("dpo", 16, 2)


def test_seeded_head_init():
    from simulator.llm.seeding import torch_generator

    a = SharedRepHead(8, 2, 2, torch_generator(1, "x"))
    b = SharedRepHead(8, 2, 2, torch_generator(1, "x"))
    c = SharedRepHead(8, 2, 2, torch_generator(2, "x"))
    torch.testing.assert_close(a.shared.weight, b.shared.weight)
    assert not torch.equal(a.shared.weight, c.shared.weight)


def test_min_over_heads():
    r = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 4.0]])
    assert min_over_heads(r).tolist() == [-2.0, 0.0]


def test_bt_loss_routes_gradient_to_own_group_only():
    head = SeparateHeads(4, 2)
    fc, fr = torch.randn(6, 4), torch.randn(6, 4)
    gid = torch.zeros(6, dtype=torch.long)  # all pairs from group 0
    bt_loss(head(fc), head(fr), gid).backward()
    assert head.heads[0].weight.grad.abs().sum() > 0
    assert head.heads[1].weight.grad is None or head.heads[1].weight.grad.abs().sum() == 0


def test_bt_loss_values():
    rc, rr = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 5.0]])
    gid0, gid1 = torch.tensor([0]), torch.tensor([1])
    assert torch.isclose(bt_loss(rc, rr, gid0), -torch.nn.functional.logsigmoid(torch.tensor(1.0)))
    assert torch.isclose(bt_loss(rc, rr, gid1), -torch.nn.functional.logsigmoid(torch.tensor(-5.0)))
    tanh = bt_loss(rc, rr, gid0, use_tanh=True)
    expect = -torch.nn.functional.logsigmoid(torch.tanh(torch.tensor(2.0)) - torch.tanh(torch.tensor(1.0)))
    assert torch.isclose(tanh, expect)
    assert route(torch.tensor([[7.0]]), gid1).item() == 7.0  # single head serves every group


@pytest.mark.parametrize("method, use_tanh", [("pooled", False), ("separate", False),
                                              ("sharedrep", True), ("sharedrep", False)])
def test_losses_decrease_on_learnable_signal(method, use_tanh):
    fc, fr, gid, _ = _toy()
    head = make_head(method, fc.shape[1], 2, k=2)
    before = bt_loss(head(fc), head(fr), gid, use_tanh).item()
    hist = fit_head(head, fc, fr, gid, FitConfig(lr=3e-2, epochs=15, batch_size=32,
                                                 use_tanh=use_tanh), seed=0)
    curves = list(hist.values())
    assert all(c[-1] < c[0] for c in curves)
    after = bt_loss(head(fc), head(fr), gid, use_tanh).item()
    assert after < before - 0.1
    acc = pair_accuracy(head, fc, fr, gid)
    if method == "pooled":  # one reward cannot serve two disagreeing groups
        assert acc[1] > 0.8 and min(acc.values()) < 0.9
    else:
        assert min(acc.values()) > 0.85


def test_separate_heads_use_only_their_groups_data():
    fc, fr, gid, _ = _toy(p=0.3)
    head = SeparateHeads(fc.shape[1], 2)
    w1 = head.heads[1].weight.detach().clone()
    only0 = gid == 0
    fit_head(head, fc[only0], fr[only0], gid[only0], FitConfig(lr=1e-2, epochs=3), seed=0)
    torch.testing.assert_close(head.heads[1].weight, w1)  # no group-1 pairs: untouched


def test_em_recovers_latent_users():
    fc, fr, _, user = _toy(n=1200, p=0.3, n_users=20)
    truth = (np.arange(20) >= 6).astype(int)
    head = SeparateHeads(fc.shape[1], 2)
    res = em_fit(head, fc, fr, user, FitConfig(lr=3e-2, epochs=3, batch_size=32), iterations=5,
                 seed=0, init="random", true_group_of_user=truth)
    cl = res["cluster_of_user"]
    assert res["history"][-1]["purity"] == 1.0
    assert len(set(cl[truth == 0])) == 1 and len(set(cl[truth == 1])) == 1
    assert cl[truth == 0][0] != cl[truth == 1][0]


def test_reward_model_on_tiny_gpt2(tiny, tmp_path):
    from transformers import GPT2Model

    from simulator.llm.reward_model import build_reward_model, load_reward_model, pool

    _, tok, folder = tiny
    backbone = GPT2Model.from_pretrained(folder)
    rm = build_reward_model(str(folder), "sharedrep", 2, k=3, backbone=backbone, tokenizer=tok)
    assert rm.pooling == "last" and tok.padding_side == "right"
    texts = ["the film was great.", "boring", "i loved this movie and the music."]
    feats = rm.encode(texts)
    assert feats.shape == (3, 64)
    # last-token pooling equals the unpadded last hidden state
    one = tok([texts[1]], return_tensors="pt")
    h = backbone(**one).last_hidden_state[0, -1]
    torch.testing.assert_close(feats[1], h, atol=1e-5, rtol=1e-4)
    assert rm.rewards(texts).shape == (3, 2)
    rm.save(tmp_path / "rm")
    again = load_reward_model(tmp_path / "rm", "cpu", backbone=backbone, tokenizer=tok)
    torch.testing.assert_close(again.rewards(texts), rm.rewards(texts))
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    hid = torch.arange(12.0).view(2, 3, 2)
    assert pool(hid, mask, "last").tolist() == [[4.0, 5.0], [8.0, 9.0]]
    assert pool(hid, mask, "mean").tolist() == [[3.0, 4.0], [7.0, 8.0]]


def test_train_reward_model_with_lora_changes_adapter(tiny):
    pytest.importorskip("peft")
    from transformers import GPT2Model

    from simulator.llm.reward_model import build_reward_model
    from simulator.llm.reward_training import train_reward_model

    _, tok, folder = tiny
    rm = build_reward_model(str(folder), "separate", 2, backbone=GPT2Model.from_pretrained(folder),
                            tokenizer=tok, lora={"r": 2, "alpha": 4, "dropout": 0.0,
                                                 "target_modules": ["c_attn"]})
    lora_b = [p for n, p in rm.backbone.named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.detach().abs().sum()) == 0 for p in lora_b)
    pairs = [{"prompt": "x ", "chosen": "good " * (i % 3 + 1), "rejected": "bad", "group_id": i % 2,
              "user_id": -1, "split": "train"} for i in range(8)]
    rep = train_reward_model(rm, pairs, FitConfig(lr=1e-2, epochs=2, batch_size=4), seed=0,
                             end_to_end=True)
    assert len(rep["loss"]) == 2
    assert any(float(p.abs().sum()) > 0 for p in lora_b)
