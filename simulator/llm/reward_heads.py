"""Reward heads on backbone features h(x, y) in R^d.  Every head maps (n, d) -> (n, U).

``PooledHead``     ``pooled``: one Linear(d, 1, no bias), a single reward shared by all groups
                   (U = 1; the papers' "uniform").
``SeparateHeads``  ``separate``: U independent Linear(d, 1, no bias), one reward model per group
                   on a frozen backbone (MaxMin-RLHF's reward step, the papers' "maxmin";
                   SharedRep's baseline).
``SharedRepHead``  ``sharedrep``: Linear(d, k, bias) then Linear(k, U, no bias):
                   r_u = w_u^T (B^T h + b) (SharedRep-RLHF, ``SharedRepGPT2RM``).

Each head class names its method (``method``) and the name of its seed streams (``stream``,
:data:`simulator.llm.methods.SEED_STREAMS`).

Initialisation follows GPT-2 / HF: weights N(0, 0.02), biases 0, drawn from an explicit
``torch.Generator``.
"""

from __future__ import annotations

import torch
from torch import nn

from .methods import REWARD_METHODS, SEED_STREAMS, canonical_method


def _init_(module: nn.Module, generator: torch.Generator | None) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()


class PooledHead(nn.Module):
    """Single reward r(x, y) = theta^T h; output shape (n, 1)."""

    method = "pooled"
    stream = SEED_STREAMS[method]

    def __init__(self, d: int, generator: torch.Generator | None = None):
        super().__init__()
        self.d, self.n_groups = d, 1
        self.score = nn.Linear(d, 1, bias=False)
        _init_(self, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.score(h)


class SeparateHeads(nn.Module):
    """One linear reward per group, r_u = theta_u^T h; output shape (n, U)."""

    method = "separate"
    stream = SEED_STREAMS[method]

    def __init__(self, d: int, n_groups: int, generator: torch.Generator | None = None):
        super().__init__()
        self.d, self.n_groups = d, n_groups
        self.heads = nn.ModuleList(nn.Linear(d, 1, bias=False) for _ in range(n_groups))
        _init_(self, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(h) for head in self.heads], dim=-1)


class SharedRepHead(nn.Module):
    """Shared k-dim representation and group weights, r_u = w_u^T (B^T h + b); (n, U)."""

    method = "sharedrep"
    stream = SEED_STREAMS[method]

    def __init__(self, d: int, k: int, n_groups: int, generator: torch.Generator | None = None):
        super().__init__()
        self.d, self.k, self.n_groups = d, k, n_groups
        self.shared = nn.Linear(d, k, bias=True)      # B^T and b
        self.groups = nn.Linear(k, n_groups, bias=False)  # rows w_u
        _init_(self, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.groups(self.shared(h))


def make_head(method: str, d: int, n_groups: int, k: int = 2,
              generator: torch.Generator | None = None) -> nn.Module:
    """Head for ``method`` in {"pooled", "separate", "sharedrep"} (or the papers' aliases
    "uniform", "maxmin")."""
    method = canonical_method(method, "reward.methods", REWARD_METHODS)
    if method == "pooled":
        return PooledHead(d, generator)
    if method == "separate":
        return SeparateHeads(d, n_groups, generator)
    return SharedRepHead(d, k, n_groups, generator)


def min_over_heads(rewards: torch.Tensor) -> torch.Tensor:
    """Pointwise min over groups: (n, U) -> (n,) (SharedRep's ``enable_maxmin`` mode)."""
    return rewards.min(dim=-1).values
