"""Fixtures of the LLM-module tests: offline hub, a tiny GPT-2 and its tokenizer."""

import os

# A stray hub call must fail at once instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Keep built models (tiny:gpt2) out of the user's cache."""
    os.environ["PLURALRLHF_CACHE"] = str(tmp_path_factory.mktemp("pluralrlhf-cache"))
    yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(model, tokenizer, folder) of a tiny GPT-2 (GPT2Config) with an in-test BPE tokenizer."""
    pytest.importorskip("transformers")
    import torch

    torch.set_num_threads(2)
    from simulator.llm.tiny import build_tiny_gpt2

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model, tok = build_tiny_gpt2(folder, seed=0)
    tok.padding_side = "left"
    return model, tok, folder
