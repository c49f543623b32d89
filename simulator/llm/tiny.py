"""A tiny GPT-2 and a byte-level BPE tokenizer built in-process, with no files or network.

Used by the tests and by smoke-run configs (model id ``tiny:gpt2``).  Everything is
deterministic given ``seed``.
"""

from __future__ import annotations

import pathlib

_WORDS = ["the", "film", "movie", "was", "great", "good", "bad", "awful", "boring", "lovely", "plot", "acting", "story", "actor", "scene", "i", "loved", "hated", "this", "it", "a", "an", "and", "but", "very", "really", "so", "not", "ending", "music", "director", "long", "short", "fun", "dull", "brilliant", "terrible", "wonderful", "slow", "fast", "funny", "sad", "happy", "review", "watch", "again", "never"]


def tiny_corpus(n: int = 2000, seed: int = 0) -> list:
    """Synthetic review-like sentences for training the tiny tokenizer."""
    from .seeding import rng

    g = rng(seed, "tiny-corpus")
    return [" ".join(g.choice(_WORDS, size=int(g.integers(3, 12)))) + "." for _ in range(n)]


def tiny_tokenizer(vocab_size: int = 300, seed: int = 0):
    """Byte-level BPE tokenizer trained on :func:`tiny_corpus`, wrapped for transformers.

    bos = eos = pad = ``<|endoftext|>`` (GPT-2 convention).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(tiny_corpus(seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    return fast


def tiny_gpt2_config(vocab_size: int, n_positions: int = 128, n_embd: int = 64,
                     n_layer: int = 2, n_head: int = 2):
    """``GPT2Config`` of the tiny model (~0.1 M parameters)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                      n_layer=n_layer, n_head=n_head, bos_token_id=0, eos_token_id=0,
                      pad_token_id=0)


def build_tiny_gpt2(folder: str | pathlib.Path | None = None, seed: int = 0):
    """Build (and optionally save) a tiny GPT-2 LM with its tokenizer.

    Parameters
    ----------
    folder : path, optional
        If given and it already holds a model, load it; otherwise build and save there.
    seed : int
        Seed of the weight initialisation and of the tokenizer corpus.

    Returns
    -------
    model : GPT2LMHeadModel
    tokenizer : PreTrainedTokenizerFast
    """
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from .seeding import seeded_torch

    if folder is not None and (pathlib.Path(folder) / "config.json").exists():
        return GPT2LMHeadModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    tok = tiny_tokenizer(seed=seed)
    eos = tok.eos_token_id
    cfg = tiny_gpt2_config(len(tok))
    cfg.bos_token_id = cfg.eos_token_id = cfg.pad_token_id = eos
    with seeded_torch(seed, "tiny-init"):
        model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = eos
    model.generation_config.eos_token_id = eos
    if folder is not None:
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return model, tok
