import pytest

from simulator.llm.config import config_from_dict, load_config

pytestmark = pytest.mark.llm


def _minimal():
    return {
        "traits": [{"name": "pos", "kind": "vader"},
                   {"name": "short", "kind": "length", "invert": True}],
        "groups": [{"name": "minority", "weights": {"pos": 0.7, "short": 0.3}},
                   {"name": "majority", "weights": {"short": 1.0}}],
    }


@pytest.mark.parametrize("name", ["tiny", "demo", "imdb", "gsm8k", "hh"])
def test_bundled_configs_load(name):
    cfg = load_config(name)
    assert cfg.group_names[0] == "minority"
    assert len(cfg.groups) == 2


def test_official_hyperparameters():
    imdb, gsm8k, hh = load_config("imdb"), load_config("gsm8k"), load_config("hh")
    assert imdb.rl.algorithm == "ppo" and imdb.rl.ppo.kl_coef == 0.05
    assert imdb.rl.ppo.ppo_epochs == 3 and imdb.rl.ppo.learning_rate == 3e-6
    assert imdb.reward.epochs == 3  # not 6: the official MaxMin script trained twice
    assert imdb.reward.lr == {"pooled": 5e-5, "separate": 5e-5, "sharedrep": 5e-4}
    assert imdb.reward.use_tanh["sharedrep"] and not imdb.reward.use_tanh["separate"]
    assert gsm8k.rl.algorithm == "grpo" and gsm8k.rl.grpo.beta == 0.05
    assert gsm8k.reward.k == 16 and gsm8k.rl.grpo.num_generations == 2
    assert hh.prompts.n_train == 10000 and hh.evaluate.greedy


@pytest.mark.parametrize("patch, key", [
    ({"rl": {"algorithm": "dpo"}}, "rl.algorithm"),
    ({"rl": {"aggregation": "mean"}}, "rl.aggregation"),
    ({"rl": {"grpo": {"beta": 0.0}}}, "rl.grpo.beta"),
    ({"rl": {"ppo": {"batch_size": 8, "mini_batch_size": 3}}}, "rl.ppo.mini_batch_size"),
    ({"rl": {"ppo": {"nonsense": 1}}}, "rl.ppo.nonsense"),
    ({"pairs": {"minority_proportions": [0.0]}}, "pairs.minority_proportions"),
    ({"pairs": {"label_mode": "soft"}}, "pairs.label_mode"),
    ({"reward": {"methods": ["maxmin", "dpo"]}}, "reward.methods"),
    ({"reward": {"lr": {"maxmin": 1e-3, "separate": 1e-2}}}, "reward.lr.separate"),
    ({"reward": {"lr": {"dpo": 1e-3}}}, "reward.lr key"),
    ({"reward": {"k": 2, "rank": 4}}, "reward.rank"),
    ({"rl": {"methods": ["gold", "dpo"]}}, "rl.methods"),
    ({"evaluate": {"baseline": "best"}}, "evaluate.baseline"),
    ({"reward": {"lora_r": 4}}, "reward.freeze_backbone"),
    ({"reward": {"pooling": "max"}}, "reward.pooling"),
    ({"run": {"device": "tpu"}}, "run.device"),
    ({"prompts": {"source": "imdb"}}, "prompts.dataset"),
    ({"bogus": {}}, "bogus"),
])
def test_bad_values_name_the_key(patch, key):
    data = _minimal()
    data.update(patch)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as err:
        config_from_dict(data)
    assert "allowed" in str(err.value)


def test_group_weights_must_be_convex():
    data = _minimal()
    data["groups"][0]["weights"] = {"pos": 0.7, "short": 0.7}
    with pytest.raises(ValueError, match=r"groups\[0\]\.weights.*summing to 1"):
        config_from_dict(data)
    data["groups"][0]["weights"] = {"pos": 0.5, "nope": 0.5}
    with pytest.raises(ValueError, match=r"groups\[0\]\.weights key"):
        config_from_dict(data)


def test_trait_validation():
    data = _minimal()
    data["traits"][0] = {"name": "pos", "kind": "hf_sentiment"}
    with pytest.raises(ValueError, match=r"traits\[0\]\.model"):
        config_from_dict(data)
    data["traits"][0] = {"name": "pos", "kind": "telepathy"}
    with pytest.raises(ValueError, match=r"traits\[0\]\.kind"):
        config_from_dict(data)


def test_missing_file_lists_bundled_configs():
    with pytest.raises(ValueError, match="imdb"):
        load_config("no-such-config")
