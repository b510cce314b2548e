"""Low-rank adapters (LoRA, Hu et al. 2021) on the backbone's linear projections.

In-house rather than `peft`: genossm's mixers do not call their projections as modules.
Hyena's in_proj/out_proj go through `genossm.models.layout`'s channels-first GEMMs, which read
`linear.weight` directly, so peft's approach (replace each nn.Linear by a layer whose forward
adds the low-rank path) would be bypassed silently on exactly the projections that matter; and
peft would add transformers and accelerate to genossm's dependencies. A weight
*parametrization* (torch.nn.utils.parametrize) adds `scale * B @ A` wherever `.weight` is read,
so every code path (GEMM layout, chunked, recurrent) sees the adapted weight, and merging is
`remove_parametrizations(leave_parametrized=True)`: the exported checkpoint is a plain genossm
model, loadable without any adapter code.

Targets: linear layers whose name ends with one of `targets` (default: the mixers' in_proj and
out_proj and the MLPs' fc1/fc2). B starts at zero, so step 0 is the pretrained model exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

DEFAULT_TARGETS = ("in_proj", "out_proj", "fc1", "fc2")


class LowRankDelta(nn.Module):
    """Parametrization W -> W + scale * B @ A (A: (r, in), B: (out, r))."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float):
        super().__init__()
        self.lora_a = nn.Parameter(torch.empty(rank, in_features))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.lora_b @ self.lora_a).to(weight.dtype)


def lora_targets(model: nn.Module, targets=DEFAULT_TARGETS) -> list[tuple[str, nn.Linear]]:
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]


def add_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, targets=DEFAULT_TARGETS) -> int:
    """Freeze `model` and add adapters to its target projections; returns how many were adapted."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    chosen = lora_targets(model, targets)
    if not chosen:
        raise ValueError(f"no linear layer named {', '.join(targets)} in the model to adapt")
    for _, linear in chosen:
        delta = LowRankDelta(linear.out_features, linear.in_features, rank, alpha)
        delta.to(device=linear.weight.device)
        parametrize.register_parametrization(linear, "weight", delta)
    return len(chosen)


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its weight (in place): a plain model again."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
