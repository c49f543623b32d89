"""Prompt sources.

Each builder returns a list of records ``{"prompt_id", "prompt", ...}``; extra columns (e.g.
GSM8K's reference ``answer``) travel with the prompt to the trait scorers.

* ``imdb``: review prefixes of ``lo..hi`` policy tokens, extended to a word boundary, from reviews
  longer than ``min_chars`` characters (SharedRep IMDb preprocessing).
* ``gsm8k``: a fixed two-example few-shot prefix + question + instruction to end with
  ``#### <answer>``.
* ``hh``: the first human turn of an Anthropic HH dialogue, in HH's own
  ``\\n\\nHuman: ...\\n\\nAssistant:`` format.
* ``templates``: review-style openers generated in code (offline default).
* ``jsonl``: a local JSON-lines file with a ``prompt`` column.
"""

from __future__ import annotations

from .seeding import rng

_TITLES = ["The Last Harbor", "Midnight Express Line", "Paper Moons", "The Glass Garden",
           "Iron Valley", "A Quiet Summer", "Neon Saints", "The Long Road Home", "Cold Orbit",
           "Sister Winter", "The Clockmaker", "Red Lanterns", "Echo Park Nights", "Dust and Gold"]
_OPENERS = [
    "I watched {t} last night and", "{t} is a movie that", "The acting in {t}",
    "Honestly, {t}", "My friends told me {t} was", "The plot of {t}", "After two hours of {t}, I",
    "The director of {t} clearly", "I went into {t} expecting", "The soundtrack of {t}",
    "This film", "The first half of the movie", "I rented this movie because", "This review of {t}",
    "The ending of {t}", "Compared to the book, {t}",
]

GSM8K_FEW_SHOT = (
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?\n"
    "Answer: In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 72 clips.\n#### 72\n\n"
    "Question: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?\n"
    "Answer: Weng earns 12 / 60 = $0.2 per minute. For 50 minutes she earned 0.2 x 50 = $10.\n"
    "#### 10\n\n"
)


def template_prompts(n: int, seed: int, stream: str = "prompts") -> list:
    """``n`` review-style prompts generated in code from a seeded stream."""
    g = rng(seed, stream)
    out = []
    for i in range(n):
        opener = _OPENERS[int(g.integers(len(_OPENERS)))]
        title = _TITLES[int(g.integers(len(_TITLES)))]
        out.append({"prompt_id": i, "prompt": opener.format(t=title)})
    return out


def imdb_prefix(text: str, tokenizer, n_tokens: int) -> str:
    """First ``n_tokens`` tokens of ``text``, extended to the end of the current word."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    prefix = tokenizer.decode(ids)
    rest = text[len(prefix):] if text.startswith(prefix) else ""
    cut = 0
    while cut < len(rest) and not rest[cut].isspace():
        cut += 1
    return (prefix + rest[:cut]).strip()


def gsm8k_prompt(question: str) -> str:
    """Few-shot GSM8K prompt ending with an answer cue."""
    return (GSM8K_FEW_SHOT + f"Question: {question}\nGive your final answer after '####'.\n"
            "Answer:")


def hh_first_turn(dialogue: str) -> str:
    """``\\n\\nHuman: <first turn>\\n\\nAssistant:`` from an HH ``chosen`` dialogue."""
    start = dialogue.find("Human:")
    end = dialogue.find("\n\nAssistant:", start)
    if start < 0 or end < 0:
        return ""
    return "\n\n" + dialogue[start:end].strip() + "\n\nAssistant:"


def _load_split(cfg, split: str):
    from datasets import load_dataset

    args = [cfg.dataset] + ([cfg.dataset_config] if cfg.dataset_config else [])
    return load_dataset(*args, split=split)


def build_prompts(cfg, split: str, n: int, seed: int, tokenizer=None) -> list:
    """Prompt records for ``split`` (``"train"`` or ``"test"``) following ``cfg`` (PromptsConfig).

    Parameters
    ----------
    cfg : PromptsConfig
    split : {"train", "test"}
    n : int
        Number of prompts (0 = all available).
    seed : int
        Seed of the sub-sampling and of the IMDb prefix lengths.
    tokenizer : optional
        Policy tokenizer (IMDb prefixes are counted in policy tokens).
    """
    g = rng(seed, f"prompts-{split}")
    if cfg.source == "templates":
        return template_prompts(n or 64, seed, stream=f"templates-{split}")
    if cfg.source == "jsonl":
        from .records import read_jsonl

        rows = read_jsonl(cfg.dataset)
        rows = [r for r in rows if r.get("split", split) == split] or rows
        idx = g.permutation(len(rows))[: n or len(rows)]
        return [{**rows[i], "prompt_id": int(j)} for j, i in enumerate(idx)]
    ds = _load_split(cfg, cfg.train_split if split == "train" else cfg.test_split)
    if cfg.source == "imdb":
        texts = [t for t in ds["text"] if len(t) > cfg.min_chars]
        idx = g.permutation(len(texts))[: n or len(texts)]
        lo, hi = cfg.prefix_tokens
        lens = g.integers(lo, hi + 1, size=len(idx))
        return [{"prompt_id": j, "prompt": imdb_prefix(texts[i], tokenizer, int(k))}
                for j, (i, k) in enumerate(zip(idx, lens))]
    if cfg.source == "gsm8k":
        idx = g.permutation(len(ds))[: n or len(ds)]
        return [{"prompt_id": j, "prompt": gsm8k_prompt(ds[int(i)]["question"]),
                 "reference": ds[int(i)]["answer"].split("####")[-1].strip()}
                for j, i in enumerate(idx)]
    if cfg.source == "hh":
        prompts = [p for p in (hh_first_turn(d) for d in ds["chosen"]) if p]
        idx = g.permutation(len(prompts))[: n or len(prompts)]
        return [{"prompt_id": j, "prompt": prompts[i]} for j, i in enumerate(idx)]
    raise ValueError(f"bad config value prompts.source={cfg.source!r}")
