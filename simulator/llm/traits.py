"""Pluggable trait scorers tau_i(y | x).

A scorer is a callable ``f(prompts, responses, rows) -> np.ndarray`` of raw scores, built from a
:class:`~simulator.llm.config.TraitConfig` by :func:`make_scorer`.  Kinds:

``vader``             VADER compound sentiment mapped to [0, 1]: ``(c + 1) / 2``.
``hf_sentiment``      softmax probability of ``label`` under a sequence classifier
                      (``lvwerra/distilbert-imdb``, label ``POSITIVE``): the paper's positiveness.
``length``            ``min(count, max_length) / max_length`` (raw clipped count when a
                      normalisation is set); ``invert`` gives conciseness.
``gsm8k_correctness`` 1 if the extracted final number equals the row's ``reference``.
``reward_model``      raw logit of a sequence-classification reward model (HH helpful /
                      harmless, GSM8K socratic oracle), optional LoRA ``adapter``.
``callable``          ``"package.module:function"``, same signature as a scorer.

:func:`normalise_scores` applies the optional ``sigmoid_zscore`` normalisation and then
``invert`` (``1 - score``), so GSM8K conciseness is ``1 - sigmoid((len - mu) / sd)``.
"""

from __future__ import annotations

import importlib
import re

import numpy as np

_NUM = r"-?\d[\d,]*\.?\d*"


def extract_answer(text: str) -> str | None:
    """Final numeric answer of a GSM8K completion, or ``None``.

    Order: ``\\boxed{...}``, ``#### x``, ``The answer is x``, ``Final answer: x``, last number.
    """
    for pat in (r"\\boxed\{([^}]*)\}", r"####\s*(" + _NUM + ")",
                r"[Tt]he answer is[:\s]*\$?(" + _NUM + ")",
                r"[Ff]inal [Aa]nswer[:\s]*\$?(" + _NUM + ")"):
        m = re.search(pat, text)
        if m:
            nums = re.findall(_NUM, m.group(1))
            if nums:
                return nums[-1].replace(",", "").rstrip(".")
    nums = re.findall(_NUM, text)
    return nums[-1].replace(",", "").rstrip(".") if nums else None


def _same_number(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return abs(float(a) - float(b.replace(",", ""))) < 1e-6
    except ValueError:
        return a.strip() == b.strip()


def _texts(cfg, prompts, responses):
    return [p + r for p, r in zip(prompts, responses)] if cfg.include_prompt else list(responses)


def _vader(cfg, device):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()

    def score(prompts, responses, rows=None):
        return np.array([(sia.polarity_scores(t)["compound"] + 1.0) / 2.0
                         for t in _texts(cfg, prompts, responses)])
    return score


def _length(cfg, device):
    tok = None
    if cfg.unit == "tokens":
        from .models import load_tokenizer

        tok = load_tokenizer(cfg.model, "right")

    def count(t):
        if cfg.unit == "tokens":
            return len(tok(t, add_special_tokens=True, truncation=True,
                           max_length=cfg.max_length)["input_ids"])
        return len(t.split()) if cfg.unit == "words" else len(t)

    scale = cfg.max_length if cfg.normalise == "none" else 1.0

    def score(prompts, responses, rows=None):
        return np.array([min(count(t), cfg.max_length) / scale
                         for t in _texts(cfg, prompts, responses)], dtype=float)
    return score


def _classifier(cfg, device, kind):
    import torch
    from transformers import AutoModelForSequenceClassification

    from .models import load_tokenizer, resolve_device, resolve_spec

    dev = resolve_device(device)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_spec(cfg.model))
    if cfg.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.adapter)
    model = model.to(dev).eval()
    tok = load_tokenizer(cfg.model, "right")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    label_id = 0
    if kind == "hf_sentiment":
        labels = {v.upper(): int(k) for k, v in model.config.id2label.items()}
        if cfg.label.upper() not in labels:
            raise ValueError(f"bad config value traits.label={cfg.label!r}; allowed: "
                             f"{sorted(labels)}")
        label_id = labels[cfg.label.upper()]

    @torch.no_grad()
    def score(prompts, responses, rows=None):
        texts, out = _texts(cfg, prompts, responses), []
        for i in range(0, len(texts), cfg.batch_size):
            enc = tok(texts[i:i + cfg.batch_size], return_tensors="pt", padding=True,
                      truncation=True, max_length=512).to(dev)
            logits = model(**enc).logits.float()
            if kind == "hf_sentiment":
                out.append(logits.softmax(-1)[:, label_id].cpu().numpy())
            else:
                out.append(logits[:, 0].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)
    return score


def _correctness(cfg, device):
    def score(prompts, responses, rows):
        return np.array([float(_same_number(extract_answer(r), (row or {}).get("reference")))
                         for r, row in zip(responses, rows)])
    return score


def _callable(cfg, device):
    module, _, name = cfg.function.partition(":")
    fn = getattr(importlib.import_module(module), name)
    return lambda prompts, responses, rows=None: np.asarray(fn(prompts, responses, rows), float)


def make_scorer(cfg, device: str = "auto"):
    """Build the raw scorer of one trait (see module docstring)."""
    if cfg.kind == "vader":
        return _vader(cfg, device)
    if cfg.kind == "length":
        return _length(cfg, device)
    if cfg.kind in ("hf_sentiment", "reward_model"):
        return _classifier(cfg, device, cfg.kind)
    if cfg.kind == "gsm8k_correctness":
        return _correctness(cfg, device)
    if cfg.kind == "callable":
        return _callable(cfg, device)
    raise ValueError(f"bad config value traits.kind={cfg.kind!r}")


def normalise_scores(cfg, raw: np.ndarray, stats: dict | None = None) -> tuple:
    """Apply the trait's normalisation.

    Returns
    -------
    scores : np.ndarray
    stats : dict
        ``{"mean", "std"}`` used (estimated from ``raw`` unless given in ``cfg`` or ``stats``),
        so RL and evaluation can reuse exactly the same map.
    """
    raw = np.asarray(raw, float)
    flip = (lambda x: 1.0 - x) if cfg.invert else (lambda x: x)
    if cfg.normalise == "none":
        return flip(raw), {}
    mean = cfg.mean if cfg.mean is not None else (stats or {}).get("mean", float(raw.mean()))
    std = cfg.std if cfg.std is not None else (stats or {}).get("std", float(raw.std()) or 1.0)
    z = 1.0 / (1.0 + np.exp(-(raw - mean) / std))
    return flip(z), {"mean": float(mean), "std": float(std)}


class TraitPanel:
    """All traits of an experiment, scored together with fixed normalisation statistics.

    Parameters
    ----------
    traits : list of TraitConfig
    stats : dict, optional
        ``{trait name: {"mean", "std"}}`` from the ``score`` stage.
    device : str
    """

    def __init__(self, traits, stats=None, device="auto"):
        self.traits = list(traits)
        self.stats = dict(stats or {})
        self.device = device
        self._scorers = {}

    def scorer(self, name):
        if name not in self._scorers:
            cfg = next(t for t in self.traits if t.name == name)
            self._scorers[name] = make_scorer(cfg, self.device)
        return self._scorers[name]

    def score(self, prompts, responses, rows=None) -> dict:
        """``{trait name: np.ndarray}``; estimates and stores missing normalisation stats."""
        rows = rows if rows is not None else [{} for _ in prompts]
        out = {}
        for t in self.traits:
            raw = self.scorer(t.name)(list(prompts), list(responses), rows)
            out[t.name], st = normalise_scores(t, raw, self.stats.get(t.name))
            if st:
                self.stats.setdefault(t.name, st)
        return out


def group_scores(trait_scores: dict, groups) -> np.ndarray:
    """Group scores ``S[u, i] = sum_t lambda_t^u tau_t(i)``, shape (U, n)."""
    return np.stack([sum(w * np.asarray(trait_scores[t], float) for t, w in g.weights.items())
                     for g in groups])
