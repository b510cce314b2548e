"""Haplotype window scores: GENOSSM_HLLR per haplotype window and each allele's share (GENOSSM_HVAR).

For a strand's reference window r and haplotype window h (both W long, causal model):
    diff_t = log P(h_t | h_<t) - log P(r_t | r_<t),  zero before the first position where they differ
    llr    = sum_t diff_t = log P(h) - log P(r)
    share_j = sum of diff_t over allele j's segment (`windows.segment_bounds`)
and both are averaged over the forward and the reverse-complement strand. The shares of a window
add up to its llr (per strand, hence also on average).

`HaplotypeScorer` computes every distinct window once (the reference of a tile is shared by all
its haplotypes, equal haplotypes of different samples are one window), in batches; a haplotype
window equal to its reference needs no pass (llr 0). `score_haplotypes_naive` is the reference:
two separate full passes per haplotype and strand, one window at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from genossm.infer.haplotype.windows import HaplotypeWindow, segment_bounds
from genossm.infer.score.likelihood import causal_token_log_likelihood
from genossm.infer.score.scorer import CPU_MAX_BATCH_TOKENS
from genossm.infer.score.tiles import first_difference
from genossm.tokenizer import reverse_complement_tokens


@dataclass(frozen=True)
class HaplotypeScore:
    llr: float
    shares: tuple[float, ...]  # per applied allele, in the window's `starts` order


def strands(both_strands: bool) -> tuple[bool, ...]:
    return (False, True) if both_strands else (False,)


def oriented(tokens: np.ndarray, reverse: bool) -> np.ndarray:
    return np.ascontiguousarray(reverse_complement_tokens(tokens)) if reverse else tokens


def combine(reference_lls: dict[bool, np.ndarray], haplotype_lls: dict[bool, np.ndarray],
            reference: np.ndarray, haplotype: HaplotypeWindow) -> HaplotypeScore:
    """The score of one haplotype window from per-strand token log-likelihoods (W,) of both windows."""
    llrs, shares = [], []
    for reverse in reference_lls:
        ref_tokens, hap_tokens = oriented(reference, reverse), oriented(haplotype.tokens, reverse)
        diff = haplotype_lls[reverse].astype(np.float64) - reference_lls[reverse].astype(np.float64)
        diff[:first_difference(ref_tokens, hap_tokens)] = 0.0  # equal prefixes: equal by definition
        llrs.append(float(diff.sum()))
        shares.append([float(diff[start:end].sum()) for start, end in segment_bounds(haplotype, reverse)])
    return HaplotypeScore(llr=float(np.mean(llrs)),
                          shares=tuple(float(np.mean(values)) for values in zip(*shares)))


@torch.no_grad()
def token_log_likelihoods(model, windows: np.ndarray, device) -> np.ndarray:
    """(B, W) uint8 -> (B, W) float32 log P(x_t | x_<t) (entry 0 and non-base targets 0)."""
    tokens = torch.from_numpy(np.ascontiguousarray(windows).astype(np.int64)).to(device)
    logits = model(tokens)
    return causal_token_log_likelihood(logits, tokens).cpu().numpy()


def check_causal(model) -> None:
    if model.config.objective != "causal":
        raise ValueError("haplotype scores need a causal model (next-base prediction); this one is "
                         f"{model.config.objective!r}")


def score_haplotypes_naive(model, reference: np.ndarray, haplotypes: list[HaplotypeWindow], *,
                           both_strands: bool = True, device="cpu") -> list[HaplotypeScore]:
    """The obviously correct scorer: separate full passes of both windows, per haplotype and strand."""
    check_causal(model)
    scores = []
    for haplotype in haplotypes:
        ref_lls, hap_lls = {}, {}
        for reverse in strands(both_strands):
            ref_lls[reverse] = token_log_likelihoods(model, oriented(reference, reverse)[None], device)[0]
            hap_lls[reverse] = token_log_likelihoods(model, oriented(haplotype.tokens, reverse)[None], device)[0]
        scores.append(combine(ref_lls, hap_lls, reference, haplotype))
    return scores


class HaplotypeScorer:
    """Scores the haplotype windows of many tiles with deduplicated, batched passes."""

    def __init__(self, model, *, both_strands: bool = True, batch_size: int = 16, device="cpu"):
        check_causal(model)
        self.model, self.both_strands = model, both_strands
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        # As `genossm.infer.score.scorer.VariantScorer`: CPU calls past a few thousand tokens leave
        # the caches and get slower per row, so CPU batches are capped in tokens.
        self.max_batch_tokens = CPU_MAX_BATCH_TOKENS if self.device.type == "cpu" else 1 << 62
        self.passes = 0  # windows run through the model (for benchmarks and tests of the reuse)

    def score(self, tiles: list[tuple[np.ndarray, list[HaplotypeWindow]]], report=None) -> list[list[HaplotypeScore]]:
        """Per tile (reference window (W,), its haplotype windows): one score per haplotype window.

        `report(fraction)`, when given, hears the share of the model passes done after each one.
        """
        chosen = strands(self.both_strands)
        needed: OrderedDict[bytes, np.ndarray] = OrderedDict()
        for reference, haplotypes in tiles:
            for window in [reference] + [h.tokens for h in haplotypes if not np.array_equal(h.tokens, reference)]:
                for reverse in chosen:
                    tokens = oriented(window, reverse)
                    needed.setdefault(tokens.tobytes(), tokens)
        lls = self._run(list(needed.values()), report)
        by_key = dict(zip(needed.keys(), lls))
        results = []
        for reference, haplotypes in tiles:
            ref_lls = {reverse: by_key[oriented(reference, reverse).tobytes()] for reverse in chosen}
            tile_scores = []
            for haplotype in haplotypes:
                if np.array_equal(haplotype.tokens, reference):
                    tile_scores.append(HaplotypeScore(0.0, tuple(0.0 for _ in haplotype.starts)))
                    continue
                hap_lls = {reverse: by_key[oriented(haplotype.tokens, reverse).tobytes()] for reverse in chosen}
                tile_scores.append(combine(ref_lls, hap_lls, reference, haplotype))
            results.append(tile_scores)
        return results

    def _run(self, windows: list[np.ndarray], report) -> list[np.ndarray]:
        if not windows:
            return []
        rows = max(1, min(self.batch_size, self.max_batch_tokens // len(windows[0])))
        out: list[np.ndarray] = []
        for first in range(0, len(windows), rows):
            out.extend(token_log_likelihoods(self.model, np.stack(windows[first:first + rows]), self.device))
            if report is not None:
                report(len(out) / len(windows))
        self.passes += len(windows)
        return out
