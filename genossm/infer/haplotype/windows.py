"""Haplotype windows: a reference window with a haplotype's alleles applied in cis (numpy only).

An allele here is the changed part of an ALT (`genossm.io.vcf.normalise`: shared prefix and
suffix removed): `offset` (window position of the first changed reference base), `ref_length`
bases replaced by `alt` tokens. Alleles are applied left to right; the haplotype sequence is cut
to the window's length, as the ALT window of `genossm.infer.score.tiles.allele_pair` is (so one
allele gives exactly that ALT window). Each applied allele keeps where it lies in the haplotype
window, `[start, end)`, which `segment_bounds` turns into the positions whose log-likelihood
differences are its share (chain rule, per strand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Allele:
    offset: int  # window position of the first changed reference base (may be >= W for context past the end)
    ref_length: int
    alt: np.ndarray  # (k,) uint8 tokens, k >= 0


@dataclass(frozen=True)
class HaplotypeWindow:
    tokens: np.ndarray  # (W,) uint8
    starts: tuple[int, ...]  # per applied allele: its first position in the haplotype window
    ends: tuple[int, ...]  # per applied allele: start + len(alt)


def apply_alleles(tile_tokens: np.ndarray, window: int, alleles: list[Allele]) -> tuple[HaplotypeWindow, list[bool]]:
    """The haplotype window of `alleles` (sorted by offset) over `tile_tokens` (the reference from
    the window start, at least `window` + the deleted bases long), and which alleles were applied.

    An allele starting before the window (offset < 0), or overlapping the reference span of an
    allele applied before it, is not applied. Two insertions at the same offset do not overlap and
    are applied in the order given.
    """
    pieces, starts, ends, applied = [], [], [], []
    reference_at = 0  # next reference position (window coordinates) not yet copied
    length = 0  # haplotype bases emitted so far
    for allele in alleles:
        if allele.offset < reference_at or allele.offset < 0:
            applied.append(False)
            continue
        if allele.offset + allele.ref_length > len(tile_tokens):
            raise ValueError(f"tile tokens too short for an allele at {allele.offset} "
                             f"(+{allele.ref_length}): {len(tile_tokens)}")
        pieces.append(tile_tokens[reference_at:allele.offset])
        length += allele.offset - reference_at
        starts.append(length)
        pieces.append(allele.alt)
        length += len(allele.alt)
        ends.append(length)
        reference_at = allele.offset + allele.ref_length
        applied.append(True)
    pieces.append(tile_tokens[reference_at:])
    tokens = np.concatenate(pieces).astype(np.uint8)[:window]
    if len(tokens) < window:
        raise ValueError(f"tile tokens too short: the haplotype window has {len(tokens)} < {window} bases")
    return HaplotypeWindow(np.ascontiguousarray(tokens), tuple(starts), tuple(ends)), applied


def segment_bounds(haplotype: HaplotypeWindow, reverse: bool) -> list[tuple[int, int]]:
    """Per applied allele (in `starts` order): the strand's window positions that are its share.

    Forward: allele j owns [start_j, start_{j+1}), the last one up to the window end, the first one
    from position 0 (positions before the first difference add nothing). Reverse (the window
    reverse-complemented): allele j begins at W - end_j and the alleles come in reverse order, so
    the last allele owns [0, W - end_{last-1}) and so on; the positions at the start of the
    reverse strand, where indels shift the window's far end, go to the allele met first there.
    All bounds are clipped to [0, W]; the segments tile [0, W) exactly.
    """
    window = len(haplotype.tokens)
    count = len(haplotype.starts)
    if count == 0:
        return []
    clip = lambda position: min(max(position, 0), window)  # noqa: E731
    if not reverse:
        cuts = [0] + [clip(start) for start in haplotype.starts[1:]] + [window]
        cuts = list(np.maximum.accumulate(cuts))
        return [(cuts[j], cuts[j + 1]) for j in range(count)]
    # Reverse strand order: allele count-1 first.
    firsts = [clip(window - haplotype.ends[j]) for j in reversed(range(count))]
    cuts = [0] + firsts[1:] + [window]
    cuts = list(np.maximum.accumulate(cuts))
    bounds_reversed = [(cuts[i], cuts[i + 1]) for i in range(count)]
    return list(reversed(bounds_reversed))
