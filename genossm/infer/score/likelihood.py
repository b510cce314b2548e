"""Per-position log-likelihoods and pooled embeddings from one model pass (no parameters).

Log-probabilities are taken over the four bases only (the first `NUM_BASES` logits,
renormalised): the special tokens (N, MASK, PAD) are not outcomes a genome can have. A target
that is not a base (an N of the genome or of the padding past a contig end) contributes 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genossm.tokenizer import NUM_BASES


def base_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """(..., V) logits -> (..., 4) log-probabilities of A, C, G, T, in float32."""
    return torch.log_softmax(logits[..., :NUM_BASES].float(), dim=-1)


def causal_token_log_likelihood(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Entry t = log P(x_t | x_<t) for a causal model (logits at t predict t+1).

    logits (B, L, V), tokens (B, L) -> (B, L) float32; entry 0 (nothing predicts it) and
    non-base targets are 0.
    """
    log_probs = base_log_probs(logits[:, :-1])  # (B, L-1, 4): predictions of positions 1..L-1
    targets = tokens[:, 1:]  # (B, L-1)
    is_base = targets < NUM_BASES
    picked = log_probs.gather(-1, targets.clamp(max=NUM_BASES - 1).unsqueeze(-1)).squeeze(-1)
    return F.pad(picked * is_base, (1, 0))  # (B, L)


def allele_log_likelihood(log_probs_at_mask: np.ndarray, bases: np.ndarray) -> float:
    """Sum of log P(base) over masked positions: (k, 4) log-probs, (k,) target tokens."""
    is_base = bases < NUM_BASES
    picked = log_probs_at_mask[np.arange(len(bases)), np.minimum(bases, NUM_BASES - 1)]
    return float(np.sum(picked * is_base, dtype=np.float64))


def causal_llr(ref_ll: np.ndarray, alt_ll: np.ndarray, start: int) -> float:
    """sum over t >= start of alt_ll[t] - ref_ll[t], in float64: (W,) token log-likelihoods of the
    two windows, `start` their first difference (the same reduction in every scorer keeps them equal)."""
    return float(np.sum((alt_ll - ref_ll)[start:], dtype=np.float64))


def causal_site_llr(ref_ll: np.ndarray, alt_ll: np.ndarray, start: int, ref_end: int, alt_end: int) -> float:
    """The site log-ratio: sum of alt_ll over [start, max(alt_end, start + 1)) minus sum of ref_ll
    over [start, max(ref_end, start + 1)), in float64.

    `start` is the windows' first difference, `ref_end`/`alt_end` the ends of the two alleles. For
    an SNV this is log P(alt | prefix) - log P(ref | prefix) at the variant. Bases of an allele
    before the first difference (the VCF padding base) cancel and are left out; when the first
    difference lies past an allele (a deletion in a repeat shifts it right) the one position where
    the windows start to differ is compared instead, so no indel scores 0 by construction. The
    rule is the same with REF and ALT swapped, so the score is antisymmetric."""
    window = len(ref_ll)
    alt_stop, ref_stop = min(max(alt_end, start + 1), window), min(max(ref_end, start + 1), window)
    return float(np.sum(alt_ll[start:alt_stop], dtype=np.float64) - np.sum(ref_ll[start:ref_stop], dtype=np.float64))
