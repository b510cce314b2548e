"""Task heads on a genossm backbone: pooling, sequence / per-position heads, losses, strands.

`SequenceTaskModel(backbone, spec, pooling, dropout)`: backbone = a DNALanguageModel (or the
vocabulary view of a converted one), whose per-position embeddings `(B, L, d_model)` feed
- a sequence head: pooled over the real (unpadded) positions, then dropout + linear to
  `spec.outputs` logits `(B, C)`;
- a token head (spec.kind == "token"): dropout + linear at every position, `(B, L, C)`.

Pooling: "mean" over real positions; "last": the embedding at the last real base (for causal
models the one that has read the whole sequence); "attention": softmax over positions of a learnt
score (one linear layer), padded positions excluded.

`predict` returns probabilities (classification) or standardised values (regression), by
default averaged over both strands: the reverse complement of each sequence's real bases goes
through the same model and, for token heads, its outputs are put back in forward coordinates.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genossm import tokenizer
from genossm.finetune.data import IGNORE

POOLINGS = ("mean", "last", "attention")


class Pooling(nn.Module):
    def __init__(self, kind: str, width: int):
        super().__init__()
        if kind not in POOLINGS:
            raise ValueError(f"pooling {kind!r}: expected one of {', '.join(POOLINGS)}")
        self.kind = kind
        self.score = nn.Linear(width, 1) if kind == "attention" else None

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, D), mask (B, L) bool -> (B, D)"""
        if self.kind == "mean":
            weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        if self.kind == "last":
            last = mask.long().sum(1).clamp(min=1) - 1  # (B,)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        scores = self.score(hidden).squeeze(-1).float()  # (B, L)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
        return (hidden * weights).sum(1)


def reverse_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) long: position j of a row's reverse complement reads position idx[b, j] of the
    row (its real bases reversed, pads left in place). The map is its own inverse."""
    lengths = mask.long().sum(1, keepdim=True)  # (B, 1)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)


def reverse_complement_batch(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Right-padded tokens (B, L) -> the reverse complement of each row's real bases, right-padded."""
    return _complement(tokens.gather(1, reverse_index(mask)))


def _complement(tokens: torch.Tensor) -> torch.Tensor:
    # genossm ids: A<->T, C<->G; N, [MASK] and [PAD] map to themselves.
    table = torch.tensor([tokenizer.T, tokenizer.G, tokenizer.C, tokenizer.A, tokenizer.N, tokenizer.MASK,
                          tokenizer.PAD], device=tokens.device, dtype=tokens.dtype)
    return table[tokens]


class SequenceTaskModel(nn.Module):
    def __init__(self, backbone: nn.Module, spec, pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        width = backbone.config.d_model
        self.token_task = spec.kind == "token"
        self.pooling = None if self.token_task else Pooling(pooling, width)
        self.pooling_kind = None if self.token_task else pooling
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, spec.outputs))

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The head's tensors (pooling + linear), saved beside the backbone's."""
        return {name: t for name, t in self.state_dict().items() if not name.startswith("backbone.")}

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, L), mask (B, L) -> logits (B, C), or (B, L, C) for token tasks."""
        hidden = self.backbone.embed(tokens)  # (B, L, d_model)
        if self.token_task:
            return self.head(hidden)
        return self.head(self.pooling(hidden, mask))

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> what is predicted: probabilities, or standardised regression values."""
        kind = self.spec.kind
        logits = logits.float()
        if kind in ("binary", "multilabel"):
            return torch.sigmoid(logits)
        if kind in ("multiclass", "token"):
            return torch.softmax(logits, dim=-1)
        return logits

    def predict(self, tokens: torch.Tensor, mask: torch.Tensor, both_strands: bool = True,
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C) or (B, L, C) outputs, averaged over both strands unless `both_strands` is False.
        `logits`: the forward strand's, when the caller already has them (the held-out loss
        needs them too: a third of the evaluation's model calls saved)."""
        forward = self.outputs(self(tokens, mask) if logits is None else logits)
        if not both_strands:
            return forward
        reverse = self.outputs(self(reverse_complement_batch(tokens, mask), mask))
        if self.token_task:
            index = reverse_index(mask).unsqueeze(-1).expand_as(reverse)
            reverse = reverse.gather(1, index)  # back to forward coordinates
        return (forward + reverse) / 2


def task_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor, positive_weight: float = 1.0) -> torch.Tensor:
    """The training loss of a batch: BCE (binary, multilabel), cross-entropy (multiclass, token),
    MSE on standardised targets (regression); missing (NaN) targets and padded positions skipped.
    `positive_weight` scales the loss of positive examples of binary tasks and of the last class
    of token tasks (rare positives, e.g. splice sites: 2 bases in 200)."""
    logits = logits.float()
    if kind == "binary":
        weight = torch.tensor(positive_weight, device=logits.device) if positive_weight != 1.0 else None
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets[:, 0], pos_weight=weight)
    if kind == "multiclass":
        return F.cross_entropy(logits, targets[:, 0].long())
    if kind == "token":
        weight = None
        if positive_weight != 1.0:
            weight = torch.ones(logits.shape[-1], device=logits.device)
            weight[-1] = positive_weight
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(),
                               weight=weight, ignore_index=IGNORE)
    present = ~torch.isnan(targets)
    if not present.any():
        return logits.sum() * 0.0
    if kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits[present], targets[present])
    return F.mse_loss(logits[present], targets[present])
