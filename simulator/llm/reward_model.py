"""Group reward model: a transformer backbone, a pooled feature h(x, y) and a reward head.

The paper's reward models use a frozen GPT-2 and the hidden state of the right-most non-pad
token; sentence encoders (MiniLM) are better served by mean pooling.  With a frozen backbone the
features are computed once (:meth:`GroupRewardModel.encode`) and only the head is trained.
Optional LoRA adapters (peft) make the backbone trainable.
"""

from __future__ import annotations

import pathlib

import torch
from torch import nn

from .methods import REWARD_METHODS, SEED_STREAMS, canonical_method
from .records import read_json, write_json
from .reward_heads import make_head


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool (n, T, d) hidden states with an attention mask (n, T) into (n, d).

    ``last``: the right-most position with ``mask == 1`` (works with left or right padding);
    ``mean``: mask-weighted mean; ``cls``: position 0.
    """
    if pooling == "last":
        pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        idx = (pos * mask.long()).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    if pooling == "cls":
        return hidden[:, 0]
    raise ValueError(f"bad config value reward.pooling={pooling!r}; allowed: ['last', 'mean', 'cls']")


def auto_pooling(backbone) -> str:
    """``last`` for decoder-only backbones, ``mean`` for encoders."""
    cfg = backbone.config
    decoder = getattr(cfg, "is_decoder", False) or any(
        a.endswith(("LMHeadModel", "ForCausalLM")) for a in (cfg.architectures or [])
    ) or cfg.model_type in ("gpt2", "llama", "qwen2", "mistral", "gpt_neox", "opt")
    return "last" if decoder else "mean"


class GroupRewardModel(nn.Module):
    """Backbone + pooling + head; ``forward`` returns rewards of shape (n, U).

    Parameters
    ----------
    backbone : PreTrainedModel
        Bare transformer (``AutoModel``), possibly wrapped by peft.
    tokenizer : PreTrainedTokenizerBase
    head : nn.Module
        From :func:`simulator.llm.reward_heads.make_head`.
    pooling : {"last", "mean", "cls"}
    max_length : int
    meta : dict
        Stored with the head on :meth:`save` (method, k, backbone spec, ...).
    """

    def __init__(self, backbone, tokenizer, head, pooling="last", max_length=128, meta=None):
        super().__init__()
        self.backbone, self.tokenizer, self.head = backbone, tokenizer, head
        self.pooling, self.max_length = pooling, max_length
        self.meta = dict(meta or {})

    @property
    def device(self):
        return next(self.head.parameters()).device

    def tokenize(self, texts):
        return self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True,
                              max_length=self.max_length).to(self.device)

    def features(self, input_ids, attention_mask):
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, self.pooling)

    def forward(self, input_ids, attention_mask):
        return self.head(self.features(input_ids, attention_mask).to(self.head_dtype))

    @property
    def head_dtype(self):
        return next(self.head.parameters()).dtype

    @torch.no_grad()
    def encode(self, texts, batch_size: int = 32) -> torch.Tensor:
        """Pooled features (n, d) of ``texts``, no gradient (frozen-backbone training cache)."""
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenize(texts[i:i + batch_size])
            out.append(self.features(enc["input_ids"], enc["attention_mask"]).float())
        return torch.cat(out) if out else torch.zeros(0, self.head.d)

    @torch.no_grad()
    def rewards(self, texts, batch_size: int = 32) -> torch.Tensor:
        """Group rewards (n, U) of ``texts``."""
        return self.head(self.encode(texts, batch_size).to(self.device, self.head_dtype))

    def save(self, folder: str | pathlib.Path) -> pathlib.Path:
        """Write ``head.pt`` and ``meta.json`` (plus the LoRA adapter if any) to ``folder``."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.head.state_dict(), folder / "head.pt")
        if hasattr(self.backbone, "peft_config"):
            self.backbone.save_pretrained(folder / "adapter")
        meta = {**self.meta, "pooling": self.pooling, "max_length": self.max_length,
                "d": self.head.d, "n_groups": self.head.n_groups,
                "k": getattr(self.head, "k", None), "lora": hasattr(self.backbone, "peft_config")}
        write_json(folder / "meta.json", meta)
        return folder


def build_reward_model(backbone_spec: str, method: str, n_groups: int, k: int = 2,
                       pooling: str = "auto", max_length: int = 128, seed: int = 0,
                       device: str = "auto", backbone=None, tokenizer=None, lora=None):
    """Fresh :class:`GroupRewardModel` on a (frozen unless ``lora``) backbone.

    Parameters
    ----------
    backbone_spec : str
        Model spec (see :mod:`simulator.llm.models`); ignored if ``backbone`` is given.
    method : {"pooled", "separate", "sharedrep"}
        The papers' names "uniform" / "maxmin" are accepted (:mod:`simulator.llm.methods`).
    n_groups, k : int
    pooling : {"auto", "last", "mean", "cls"}
    seed : int
        Seeds the head initialisation.
    backbone, tokenizer : optional
        Pre-loaded objects (shared across methods to save memory and time).
    lora : dict, optional
        ``{"r", "alpha", "dropout", "target_modules"}``: wrap the backbone with LoRA.
    """
    from .models import hidden_size, load_backbone
    from .seeding import torch_generator

    if backbone is None:
        backbone, tokenizer = load_backbone(backbone_spec, device)
    if tokenizer.padding_side != "right":
        tokenizer.padding_side = "right"
    for prm in backbone.parameters():
        prm.requires_grad_(False)
    if lora:
        from peft import LoraConfig, get_peft_model

        backbone = get_peft_model(backbone, LoraConfig(
            r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
            target_modules=lora.get("target_modules") or None))
    method = canonical_method(method, "reward.methods", REWARD_METHODS)
    pooling = auto_pooling(backbone) if pooling == "auto" else pooling
    head = make_head(method, hidden_size(backbone), n_groups, k,
                     torch_generator(seed, f"head-{SEED_STREAMS[method]}"))
    head = head.to(next(backbone.parameters()).device)
    meta = {"method": method, "backbone": backbone_spec}
    return GroupRewardModel(backbone, tokenizer, head, pooling, max_length, meta)


def load_reward_model(folder: str | pathlib.Path, device: str = "auto", backbone=None,
                      tokenizer=None) -> GroupRewardModel:
    """Load a reward model written by :meth:`GroupRewardModel.save` (a ``meta.json`` with the
    papers' method name, from before the renaming, loads too)."""
    from .models import load_backbone

    folder = pathlib.Path(folder)
    meta = read_json(folder / "meta.json")
    meta["method"] = canonical_method(meta["method"], "meta.json method", REWARD_METHODS)
    if backbone is None:
        backbone, tokenizer = load_backbone(meta["backbone"], device)
    if meta.get("lora"):
        from peft import PeftModel

        backbone = PeftModel.from_pretrained(backbone, folder / "adapter")
    head = make_head(meta["method"], meta["d"], meta["n_groups"], meta.get("k") or 2)
    head.load_state_dict(torch.load(folder / "head.pt", map_location="cpu"))
    head = head.to(next(backbone.parameters()).device)
    tokenizer.padding_side = "right"
    rm = GroupRewardModel(backbone, tokenizer, head, meta["pooling"], meta["max_length"], meta)
    return rm.eval()
