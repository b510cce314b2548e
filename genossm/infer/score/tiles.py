"""Scoring tiles: where a variant's windows lie, and the ref/alt window pair of one allele.

Tiles. A contig is cut into windows of `window` bases that start every `stride = window // 2`
bases, shifted left by `margin = window // 4` (tile k covers `[k*stride - margin,
k*stride - margin + window)`; positions outside the contig read as N). A variant whose first
REF base is at 0-based position p is scored in tile `k = p // stride`, so it sits at offset
`f = p - tile_start` in `[margin, margin + stride)`: at least a quarter window of context on each
side, and every variant of the same tile shares one reference pass. Tiles depend only on the
coordinate, never on the contig length or on the other variants, so a variant's score does not
depend on what else is in the file (and scoring ALT->REF on a genome carrying ALT uses the same
tile, which is what makes the scores antisymmetric).

Allele windows (aligned at the left flank). With the REF allele (length r) at offset f:
    ref window = genome[tile_start : tile_start + window]
    alt window = (genome[tile_start : p] + ALT + genome[p + r : ...])[:window]
Both windows have the same length and the same left flank; the alt window reads the ALT bases
and then the reference after the REF allele, truncated (deletions pull in more reference bases
from beyond the tile's end, insertions push bases out of it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from genossm.tokenizer import MASK, reverse_complement_tokens


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of a contig start, for windows of `window` bases."""

    window: int

    def __post_init__(self):
        if self.window < 8:
            raise ValueError(f"window must be at least 8 bases, got {self.window}")

    @property
    def stride(self) -> int:
        return self.window // 2

    @property
    def margin(self) -> int:
        return self.window // 4

    @property
    def max_allele_length(self) -> int:
        """Longest allele that always fits in the window after its offset (right context >= 1)."""
        return self.window - self.margin - self.stride

    def tile_start(self, position0: int) -> int:
        """0-based genome coordinate of window position 0 for a variant at `position0`."""
        return (position0 // self.stride) * self.stride - self.margin


class TileCache:
    """Genome tokens of recently used tiles (variants come sorted in practice: a small LRU does)."""

    def __init__(self, genome, length: int, capacity: int = 64):
        self.genome, self.length, self.capacity = genome, length, capacity
        self._tiles: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def get(self, contig: str, start: int) -> np.ndarray:
        key = (contig, start)
        if key in self._tiles:
            self._tiles.move_to_end(key)
            return self._tiles[key]
        tokens = self.genome.fetch_tokens(contig, start, start + self.length, pad=True)
        self._tiles[key] = tokens
        if len(self._tiles) > self.capacity:
            self._tiles.popitem(last=False)
        return tokens


@dataclass(frozen=True)
class AllelePair:
    """The reference and alternative windows of one ALT, forward strand, as token ids.

    `offset` is the window position of the first REF base; the REF allele occupies
    `[offset, offset + ref_length)` of `ref`, the ALT allele `[offset, offset + alt_length)` of
    `alt`.
    """

    ref: np.ndarray  # (W,) uint8
    alt: np.ndarray  # (W,) uint8
    offset: int
    ref_length: int
    alt_length: int

    def strand(self, reverse: bool) -> "StrandPair":
        """The pair as one strand sees it (reverse: both windows reverse-complemented)."""
        window = len(self.ref)
        ref_span = (self.offset, self.offset + self.ref_length)
        alt_span = (self.offset, self.offset + self.alt_length)
        if not reverse:
            return StrandPair(self.ref, self.alt, ref_span, alt_span)
        flip = lambda span: (window - span[1], window - span[0])  # noqa: E731
        return StrandPair(
            reverse_complement_tokens(self.ref), reverse_complement_tokens(self.alt),
            flip(ref_span), flip(alt_span),
        )


@dataclass(frozen=True)
class StrandPair:
    """Ref and alt windows on one strand, with the window spans of their alleles."""

    ref: np.ndarray  # (W,) uint8
    alt: np.ndarray  # (W,) uint8
    ref_span: tuple[int, int]
    alt_span: tuple[int, int]

    @property
    def first_difference(self) -> int:
        """First window position where ref and alt differ (the window length if none).

        Positions before it have identical prefixes, so a causal model gives them identical
        log-likelihoods: sums start here, and a recurrent model's prefix state is shared.
        """
        return first_difference(self.ref, self.alt)

    def masked(self, which: str) -> np.ndarray:
        """The ref or alt window with its allele positions replaced by the MASK token."""
        window, (start, end) = (self.ref, self.ref_span) if which == "ref" else (self.alt, self.alt_span)
        masked = window.copy()
        masked[start:end] = MASK
        return masked


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    differs = np.flatnonzero(a != b)
    return int(differs[0]) if differs.size else len(a)


def allele_pair(
    tile_tokens: np.ndarray, offset: int, ref_length: int, alt_tokens: np.ndarray, window: int
) -> AllelePair:
    """Build the windows of one ALT from the tile's tokens.

    `tile_tokens` holds the genome from the tile start over at least `window + ref_length`
    bases (N past the contig end), so a deletion can pull reference bases in from beyond the
    window.
    """
    if len(tile_tokens) < window + ref_length:
        raise ValueError(f"tile tokens too short: {len(tile_tokens)} < {window} + {ref_length}")
    ref = np.ascontiguousarray(tile_tokens[:window])
    alt = np.concatenate([tile_tokens[:offset], alt_tokens, tile_tokens[offset + ref_length:]])[:window]
    return AllelePair(ref=ref, alt=np.ascontiguousarray(alt), offset=offset,
                      ref_length=ref_length, alt_length=len(alt_tokens))
