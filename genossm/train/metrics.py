"""Language-model metrics over the bases a batch predicts, as sums (exact over any split).

Bits per base are taken from the four base logits renormalised (log-softmax over A, C, G, T),
the distribution the Markov baseline also gives, so the two are comparable; the training loss
is the cross-entropy over the full vocabulary (which teaches the model to put no mass on N,
MASK and PAD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genossm.data.masking import IGNORE
from genossm.tokenizer import NUM_BASES


@dataclass
class MetricSums:
    """Summed over predicted positions: full-vocab NLL (nats), base NLL (nats), correct, count."""

    nll: torch.Tensor
    base_nll: torch.Tensor
    correct: torch.Tensor
    count: torch.Tensor

    def as_vector(self) -> torch.Tensor:
        return torch.stack([self.nll, self.base_nll, self.correct, self.count]).double()


def metric_sums(logits: torch.Tensor, targets: torch.Tensor) -> MetricSums:
    """logits (B, L, V), targets (B, L) with IGNORE where nothing is predicted."""
    logits = logits.float()
    flat_logits = logits.reshape(-1, logits.shape[-1])  # (B*L, V)
    flat_targets = targets.reshape(-1)  # (B*L,)
    keep = flat_targets != IGNORE
    nll = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE, reduction="sum")
    base_logits = flat_logits[keep, :NUM_BASES]  # (P, 4)
    base_targets = flat_targets[keep]  # (P,)
    base_nll = F.cross_entropy(base_logits, base_targets, reduction="sum")
    correct = (base_logits.argmax(-1) == base_targets).sum()
    return MetricSums(nll, base_nll.detach(), correct.float(), keep.sum().float())


def summarise(vector: torch.Tensor) -> dict[str, float]:
    """loss, perplexity, bits_per_base, accuracy from summed [nll, base_nll, correct, count].
    No bases (an evaluation set with no scorable window): NaN for each, never a 0 that reads as
    a perfect model."""
    nll, base_nll, correct, count = (float(x) for x in vector)
    if count <= 0:
        return dict.fromkeys(("loss", "perplexity", "bits_per_base", "accuracy"), math.nan) | {"bases": 0.0}
    loss = nll / count
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "bits_per_base": base_nll / count / math.log(2),
        "accuracy": correct / count,
        "bases": count,
    }
