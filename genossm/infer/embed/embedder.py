"""Embeddings of one sequence or region: per-position final hidden states, both strands averaged.

With both strands (the default) the per-position embedding is the mean of the forward pass and
of the pass over the reverse complement, flipped back so that row j is the same base in both:
the pooled mean is then the mean over both strands. Strand '-' regions embed the reverse
complement of the region, so their rows run 5'->3' on the minus strand. A sequence longer than
`max_pass_length` goes through `model.forward_chunked`, which gives the same numbers as one
pass, in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genossm.infer.ranks import check_stop
from genossm.io.intervals import Region
from genossm.tokenizer import reverse_complement_tokens


@dataclass(frozen=True)
class EmbedSettings:
    both_strands: bool = True
    per_position: bool = False
    max_pass_length: int = 65536


@torch.no_grad()
def embed_tokens(model, tokens: np.ndarray, settings: EmbedSettings, device) -> torch.Tensor:
    """Per-position embeddings of one sequence: (L,) uint8 -> (L, d_model) float32 on CPU."""
    hidden = _embed_one_strand(model, tokens, settings.max_pass_length, device)
    if settings.both_strands:
        check_stop()  # an interrupted multi-thread run stops here rather than after the region
        reverse = _embed_one_strand(model, reverse_complement_tokens(tokens), settings.max_pass_length, device)
        hidden = (hidden + reverse.flip(0)) / 2  # row j of the flipped pass is base j again
    return hidden


def _embed_one_strand(model, tokens: np.ndarray, max_pass_length: int, device) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64))[None].to(device)  # (1, L)
    if batch.shape[1] <= max_pass_length:
        _, hidden = model(batch, return_embeddings=True)
    else:
        _, hidden = model.forward_chunked(batch, max_pass_length, return_embeddings=True)
    return hidden[0].float().cpu()  # (L, D)


def region_tokens(genome, region: Region) -> np.ndarray:
    tokens = genome.fetch_tokens(region.contig, region.start, region.end)
    return reverse_complement_tokens(tokens) if region.strand == "-" else tokens


def embed_region(model, genome, region: Region, settings: EmbedSettings, device):
    """(mean embedding (D,), per-position embeddings (L, D) or None) of one region, float32 numpy."""
    return embed_tokens_region(model, region_tokens(genome, region), settings, device)


def embed_tokens_region(model, tokens: np.ndarray, settings: EmbedSettings, device):
    """`embed_region` of tokens already read: (mean (D,), per-position (L, D) or None)."""
    hidden = embed_tokens(model, tokens, settings, device)  # (L, D)
    return hidden.mean(0).numpy(), hidden.numpy() if settings.per_position else None


def embedding_width(model, device) -> int:
    """d_model of the model's embeddings, from a two-token pass."""
    with torch.no_grad():
        _, hidden = model(torch.zeros(1, 2, dtype=torch.long, device=device), return_embeddings=True)
    return int(hidden.shape[-1])
