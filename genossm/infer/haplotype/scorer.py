"""Haplotype window scores: GENOSSM_HLLR per haplotype window and each allele's share (GENOSSM_HVAR).

For a strand's reference window r and haplotype window h (both W long, causal model):
    diff_t = log P(h_t | h_<t) - log P(r_t | r_<t),  zero before the first position where they differ
    llr    = sum_t diff_t = log P(h) - log P(r)
    share_j = sum of diff_t over allele j's segment (`windows.segment_bounds`)
and both are averaged over the forward and the reverse-complement strand. The shares of a window
add up to its llr (per strand, hence also on average).

`HaplotypeScorer` computes every distinct window once (the reference of a tile is shared by all
its haplotypes, equal haplotypes of different samples are one window), in batches; a haplotype
window equal to its reference needs no pass (llr 0); on a CPU, a causal Hyena computes each
haplotype window from its first difference on, from a cache of the reference pass. `score_haplotypes_naive` is the reference:
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
from genossm.tokenizer import N, reverse_complement_tokens


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
    """Scores the haplotype windows of many tiles with deduplicated, batched passes.

    On a CPU, a causal Hyena computes each haplotype window only from one position before its
    first difference from the reference on (`prefix_cache` / `forward_suffix`, as `VariantScorer`
    does for ALT windows): the positions before it are the reference's, already computed.
    Elsewhere (GPU, other models) every distinct window gets a full batched pass.
    """

    def __init__(self, model, *, both_strands: bool = True, batch_size: int = 16, device="cpu",
                 reuse_reference: bool | None = None):
        check_causal(model)
        self.model, self.both_strands = model, both_strands
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        # As `genossm.infer.score.scorer.VariantScorer`: CPU calls past a few thousand tokens leave
        # the caches and get slower per row, so CPU batches are capped in tokens; and the suffix
        # reuse, a win on a compute-bound CPU, trades a GPU's cheap batched passes for more calls.
        self.max_batch_tokens = CPU_MAX_BATCH_TOKENS if self.device.type == "cpu" else 1 << 62
        if reuse_reference is None:
            reuse_reference = self.device.type == "cpu"
        self.reuse_reference = reuse_reference and bool(getattr(model, "supports_suffix_cache", False))
        self.passes = 0  # windows run through the model, full or from a cut (for benchmarks and tests)

    def score(self, tiles: list[tuple[np.ndarray, list[HaplotypeWindow]]], report=None) -> list[list[HaplotypeScore]]:
        """Per tile (reference window (W,), its haplotype windows): one score per haplotype window.

        `report(fraction)`, when given, hears the share of the model work done after each call.
        """
        chosen = strands(self.both_strands)
        per_strand = {}
        for number, reverse in enumerate(chosen):
            strand_report = None if report is None else (
                lambda fraction, number=number: report((number + fraction) / len(chosen)))
            per_strand[reverse] = self._strand_lls(tiles, reverse, strand_report)
        results = []
        for reference, haplotypes in tiles:
            tile_scores = []
            for haplotype in haplotypes:
                if np.array_equal(haplotype.tokens, reference):
                    tile_scores.append(HaplotypeScore(0.0, tuple(0.0 for _ in haplotype.starts)))
                    continue
                ref_lls, hap_lls = {}, {}
                for reverse in chosen:
                    ref_key = oriented(reference, reverse).tobytes()
                    ref_lls[reverse] = per_strand[reverse][0][ref_key]
                    hap_lls[reverse] = per_strand[reverse][1][ref_key, oriented(haplotype.tokens, reverse).tobytes()]
                tile_scores.append(combine(ref_lls, hap_lls, reference, haplotype))
            results.append(tile_scores)
        return results

    def _strand_lls(self, tiles, reverse: bool, report):
        """({reference key: token lls (W,)}, {(reference key, haplotype key): token lls (W,)}) on one
        strand; haplotype lls are exact from the first difference on (what `combine` reads)."""
        references: dict[bytes, np.ndarray] = {}
        haplotypes: dict[bytes, dict[bytes, np.ndarray]] = {}
        for reference, windows in tiles:
            ref_tokens = oriented(reference, reverse)
            references.setdefault(ref_tokens.tobytes(), ref_tokens)
            group = haplotypes.setdefault(ref_tokens.tobytes(), {})
            for window in windows:
                if not np.array_equal(window.tokens, reference):
                    tokens = oriented(window.tokens, reverse)
                    group.setdefault(tokens.tobytes(), tokens)
        if self.reuse_reference:
            return self._cached_lls(references, haplotypes, report)
        unique: OrderedDict[bytes, np.ndarray] = OrderedDict(references)
        for group in haplotypes.values():
            for key, tokens in group.items():
                unique.setdefault(key, tokens)
        by_key = dict(zip(unique.keys(), self._run(list(unique.values()), report)))
        return ({key: by_key[key] for key in references},
                {(ref_key, key): by_key[key] for ref_key, group in haplotypes.items() for key in group})

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

    @torch.no_grad()
    def _cached_lls(self, references: dict, haplotypes: dict, report):
        """`_strand_lls` from one cached pass per reference and each haplotype from its cut on."""
        ref_keys = list(references)
        if not ref_keys:
            return {}, {}
        window = len(references[ref_keys[0]])
        per_pass = max(1, min(self.batch_size, self.max_batch_tokens // window))
        ref_lls, hap_lls = {}, {}
        for first in range(0, len(ref_keys), per_pass):
            if report is not None:
                report(first / len(ref_keys))
            keys = ref_keys[first:first + per_pass]
            tokens = torch.from_numpy(np.stack([references[key] for key in keys]).astype(np.int64)).to(self.device)
            logits, _, cache = self.model.prefix_cache(tokens)  # (B, W, V)
            ref_lls.update(zip(keys, causal_token_log_likelihood(logits, tokens).cpu().numpy()))
            self.passes += len(keys)
            # (reference key, haplotype key, cut, cached row), shorter suffixes together (less padding)
            jobs = sorted(((ref_key, key, max(first_difference(references[ref_key], hap) - 1, 0), row)
                           for row, ref_key in enumerate(keys) for key, hap in haplotypes[ref_key].items()),
                          key=lambda job: job[2])
            rows = max(1, min(self.batch_size, self.max_batch_tokens // window))
            for start in range(0, len(jobs), rows):
                batch = jobs[start:start + rows]
                suffixes = [haplotypes[ref_key][key][cut:] for ref_key, key, cut, _ in batch]
                padded = np.full((len(batch), max(len(s) for s in suffixes)), N, dtype=np.int64)  # (B, l)
                for row, suffix in enumerate(suffixes):
                    padded[row, :len(suffix)] = suffix
                suffix_tokens = torch.from_numpy(padded).to(self.device)
                logits, _ = self.model.forward_suffix(cache, suffix_tokens, [job[2] for job in batch],
                                                      [job[3] for job in batch])
                lls = causal_token_log_likelihood(logits, suffix_tokens).cpu().numpy()  # (B, l), entry 0 = 0
                for (ref_key, key, cut, _), suffix, suffix_ll in zip(batch, suffixes, lls):
                    hap_lls[ref_key, key] = np.concatenate([np.zeros(cut, np.float32), suffix_ll[:len(suffix)]])
                self.passes += len(batch)
        return ref_lls, hap_lls
