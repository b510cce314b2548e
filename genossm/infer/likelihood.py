"""Per-position log-likelihoods and variant scores of in-memory sequences: the Python API.

`genossm score` reads a VCF and a FASTA; these functions take a sequence string and a list of
variants, and use the same windows and scores (`genossm.infer.score`):

    from genossm.infer.likelihood import load, base_log_probabilities, position_log_likelihoods, score_variants
    model = load()                                   # the bundled model (or load("my_model/"))
    log_probs = base_log_probabilities(model, seq)   # (L, 4): log P(A|C|G|T at t | context)
    per_base = position_log_likelihoods(model, seq)  # (L,): log P(the base of seq at t | context)
    scores = score_variants(model, seq, [(101, "A", "G")], scores=("site", "llr"))  # VCF positions

Context. Causal model: the bases before t (row 0 has no context: NaN). Masked model: the whole
sequence with position t masked (one masked copy per position, batched: L passes).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from genossm.errors import InputError
from genossm.infer.score.definitions import DEFAULT_SCORES, parse_scores
from genossm.infer.score.likelihood import base_log_probs
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.settings import default_window, training_window
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.tokenizer import MASK, N, NUM_BASES, encode


def load(model: str | os.PathLike | None = None, device: str = "cpu"):
    """A checkpoint directory (None: the bundled model) as an inference model on `device`, with
    `training_window` (the window it was trained on, None if not recorded) for `score_variants`."""
    from genossm.infer import runtime
    from genossm.models.checkpoint import read_checkpoint_config

    path = runtime.checkpoint_dir(model)
    loaded, _ = runtime.load_inference_model(path, torch.device(device))
    loaded.training_window = training_window(read_checkpoint_config(path))
    return loaded


def _tokens(sequence: str | np.ndarray) -> np.ndarray:
    return encode(sequence) if isinstance(sequence, str) else np.asarray(sequence, dtype=np.uint8)


@torch.no_grad()
def base_log_probabilities(model, sequence: str | np.ndarray, batch_size: int = 16) -> np.ndarray:
    """(L, 4) float32: row t = log P(A, C, G, T at t | context), NaN where there is no context
    (row 0 of a causal model). One pass for a causal model, L masked passes for a masked one."""
    tokens = _tokens(sequence)  # (L,)
    device = next(model.parameters()).device
    if model.config.objective == "causal":
        logits = model(torch.from_numpy(tokens.astype(np.int64))[None].to(device))  # (1, L, V)
        out = np.full((len(tokens), NUM_BASES), np.nan, dtype=np.float32)
        out[1:] = base_log_probs(logits[0, :-1]).cpu().numpy()  # logits at t - 1 predict t
        return out
    out = np.empty((len(tokens), NUM_BASES), dtype=np.float32)
    for first in range(0, len(tokens), batch_size):
        positions = np.arange(first, min(first + batch_size, len(tokens)))
        masked = np.repeat(tokens[None], len(positions), axis=0)  # (B, L)
        masked[np.arange(len(positions)), positions] = MASK
        logits = model(torch.from_numpy(masked.astype(np.int64)).to(device))  # (B, L, V)
        rows = logits[torch.arange(len(positions)), torch.from_numpy(positions)]  # (B, V)
        out[positions] = base_log_probs(rows).cpu().numpy()
    return out


def position_log_likelihoods(model, sequence: str | np.ndarray, batch_size: int = 16) -> np.ndarray:
    """(L,) float32: log P(the sequence's own base at t | context); NaN at N (and at row 0 of a
    causal model). Their sum over t >= 1 is the causal model's log-likelihood of the sequence."""
    tokens = _tokens(sequence)
    log_probs = base_log_probabilities(model, tokens, batch_size)
    is_base = tokens < NUM_BASES
    picked = log_probs[np.arange(len(tokens)), np.minimum(tokens, NUM_BASES - 1)]
    return np.where(is_base, picked, np.nan).astype(np.float32)


def score_variants(model, sequence: str, variants, *, scores: tuple[str, ...] | str = DEFAULT_SCORES,
                   window: int | None = None, both_strands: bool = True, batch_size: int = 16) -> list[dict]:
    """Scores of in-memory variants, as `genossm score` computes them for a contig `sequence`.

    variants: (pos, ref, alt) with pos 1-based as in a VCF, REF and ALT of A, C, G, T (REF must
    match the sequence). scores: names or a comma-separated string (`genossm score --score`).
    window: default the training window recorded with the model (`genossm score`'s default).
    Returns one {score name: value} per variant."""
    names = parse_scores(scores) if isinstance(scores, str) else tuple(scores)
    window = window or default_window(model.config.max_length, None, getattr(model, "training_window", None))
    layout = TileLayout(window)
    tokens = encode(sequence)
    longest = max((len(ref) for _, ref, _ in variants), default=1)
    pairs = []
    for pos, ref, alt in variants:
        start = pos - 1
        if sequence[start:start + len(ref)].upper() != ref.upper():
            raise InputError(f"REF {ref} does not match the sequence at {pos} "
                             f"({sequence[start:start + len(ref)]!r}); positions are 1-based")
        tile_start = layout.tile_start(start)
        tile = _padded(tokens, tile_start, window + longest)
        pairs.append(allele_pair(tile, start - tile_start, len(ref), encode(alt), window))
    scorer = VariantScorer(model, both_strands=both_strands, batch_size=batch_size,
                           device=next(model.parameters()).device, scores=names)
    return [dict(score.values) for score in scorer.score(pairs)]


def _padded(tokens: np.ndarray, start: int, length: int) -> np.ndarray:
    """tokens[start : start + length], N outside the sequence (as the FASTA reader pads)."""
    out = np.full(length, N, dtype=np.uint8)
    lo, hi = max(start, 0), min(start + length, len(tokens))
    if hi > lo:
        out[lo - start:hi - start] = tokens[lo:hi]
    return out
