"""One vocabulary: pooled / separate / sharedrep and k, with the papers' names as aliases."""

import argparse
import dataclasses
import re

import pytest

from simulator.llm.config import CONFIG_DIR, config_from_dict, load_config, merge_tables
from simulator.llm.methods import canonical_keys, canonical_method

pytestmark = pytest.mark.llm

BUNDLED = ["tiny", "demo", "imdb", "gsm8k", "hh"]


def _old_style(text: str) -> str:
    """A bundled TOML rewritten in the papers' vocabulary (method lists and tables, k -> rank)."""
    out = []
    for line in text.splitlines():
        if re.match(r"^(methods|lr|use_tanh)\s*=", line):
            line = re.sub(r"\bseparate\b", "maxmin", re.sub(r"\bpooled\b", "uniform", line))
        line = re.sub(r"^k\s*=", "rank =", line)
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", BUNDLED)
def test_old_config_loads_to_the_same_normalised_config(name, tmp_path):
    text = (CONFIG_DIR / f"{name}.toml").read_text()
    old = _old_style(text)
    assert old != text and "maxmin" in old and "rank =" in old  # the rewrite did something
    path = tmp_path / f"{name}-old.toml"
    path.write_text(old)
    assert dataclasses.asdict(load_config(path)) == dataclasses.asdict(load_config(name))


def test_bundled_configs_use_the_modules_names():
    for name in BUNDLED:
        text = (CONFIG_DIR / f"{name}.toml").read_text()
        assert not re.search(r"^(methods|lr|use_tanh)\s*=.*\b(maxmin|uniform)\b", text, re.M), name
        cfg = load_config(name)
        assert set(cfg.reward.methods) <= {"pooled", "separate", "sharedrep"}
        assert set(cfg.reward.lr) <= {"pooled", "separate", "sharedrep"}


def test_aliases_in_a_dict_config_and_after_assignment():
    base = {"traits": [{"name": "pos", "kind": "vader"}],
            "groups": [{"name": "a", "weights": {"pos": 1.0}}, {"name": "b", "weights": {"pos": 1.0}}]}
    cfg = config_from_dict({**base, "reward": {"methods": ["uniform", "maxmin"], "rank": 3,
                                               "lr": {"maxmin": 1e-2}},
                            "rl": {"methods": ["gold", "maxmin"]}, "evaluate": {"baseline": "maxmin"}})
    assert cfg.reward.methods == ["pooled", "separate"] and cfg.reward.k == 3
    # the alias overrides the default of the same method, the other defaults stay
    assert cfg.reward.lr == {"pooled": 5e-5, "separate": 1e-2, "sharedrep": 5e-4}
    assert cfg.rl.methods == ["gold", "separate"] and cfg.evaluate.baseline == "separate"
    cfg.rl.methods = ["gold", "uniform"]  # assigned in code, normalised by validate
    assert cfg.validate().rl.methods == ["gold", "pooled"]
    same = config_from_dict({**base, "reward": {"k": 3, "rank": 3}})
    assert same.reward.k == 3


def test_canonical_method_names_the_key():
    assert canonical_method("maxmin") == "separate" and canonical_method("uniform") == "pooled"
    assert canonical_method("sharedrep") == "sharedrep" and canonical_method("gold") == "gold"
    with pytest.raises(ValueError, match=r"rl\.methods='dpo'.*allowed"):
        canonical_method("dpo", "rl.methods")
    assert canonical_keys({"maxmin": 1, "separate": 1}, "reward.lr") == {"separate": 1}


def test_merge_tables_keeps_the_files_other_keys():
    cfg = load_config("imdb", {"rl": {"ppo": {"total_episodes": 256}}})
    assert cfg.rl.ppo.total_episodes == 256
    assert cfg.rl.ppo.batch_size == 128 and cfg.rl.ppo.learning_rate == 3e-6  # from imdb.toml
    assert merge_tables({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


def test_cli_methods_accept_the_papers_names():
    from simulator.llm.cli import _load, add_subparser

    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["llm", "reward", "--config", "tiny", "--methods", "uniform", "maxmin"])
    cfg = _load(args)
    assert cfg.reward.methods == ["pooled", "separate"]
    assert cfg.rl.methods == ["gold", "pooled", "separate"]
    args = parser.parse_args(["llm", "demo", "--seeds", "3", "--methods", "separate", "sharedrep"])
    cfg = _load(args)
    assert cfg.run.seeds == [0, 1, 2] and cfg.reward.methods == ["separate", "sharedrep"]
    with pytest.raises(ValueError, match="--methods"):
        _load(parser.parse_args(["llm", "rl", "--config", "tiny", "--methods", "dpo"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["llm", "demo", "--seeds", "0"])


def test_heads_accept_aliases_and_keep_their_seed_streams():
    torch = pytest.importorskip("torch")
    from simulator.llm.reward_heads import make_head
    from simulator.llm.seeding import torch_generator

    for alias, name in (("maxmin", "separate"), ("uniform", "pooled"), ("sharedrep", "sharedrep")):
        a = make_head(alias, 8, 2, generator=torch_generator(3, "x"))
        b = make_head(name, 8, 2, generator=torch_generator(3, "x"))
        assert a.method == b.method == name
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)
    # the stream names are the ones the seeds were fixed with, so every seed draws as before
    assert make_head("separate", 8, 2).stream == "maxmin"
    assert make_head("pooled", 8, 2).stream == "uniform"


def test_reward_model_init_stream_and_old_meta(tiny, tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import GPT2Model

    from simulator.llm.records import read_json, write_json
    from simulator.llm.reward_heads import make_head
    from simulator.llm.reward_model import build_reward_model, load_reward_model
    from simulator.llm.seeding import torch_generator

    _, tok, folder = tiny
    backbone = GPT2Model.from_pretrained(folder)
    rm = build_reward_model(str(folder), "maxmin", 2, seed=5, backbone=backbone, tokenizer=tok)
    assert rm.head.method == "separate" and rm.meta["method"] == "separate"
    # initialised from the stream "head-maxmin", as before the renaming
    ref = make_head("separate", 64, 2, generator=torch_generator(5, "head-maxmin"))
    for pa, pb in zip(rm.head.parameters(), ref.parameters()):
        assert torch.equal(pa, pb)
    rm.save(tmp_path / "rm")
    meta = read_json(tmp_path / "rm" / "meta.json")
    assert meta["method"] == "separate"
    write_json(tmp_path / "rm" / "meta.json", {**meta, "method": "maxmin"})  # a pre-rename save
    again = load_reward_model(tmp_path / "rm", "cpu", backbone=backbone, tokenizer=tok)
    assert again.head.method == "separate"
    torch.testing.assert_close(again.rewards(["a film", "bad"]), rm.rewards(["a film", "bad"]))
