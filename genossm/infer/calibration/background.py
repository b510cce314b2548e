"""Random background variants across genomes, as the allele pairs `genossm score` would build.

Tiles are drawn at random positions (genomes and contigs in proportion to their length); in each,
`per_tile` variants are placed at random in the tile's middle half (where `genossm score` puts a
variant it scores in that tile), so the variants of a tile share its reference pass. A site is
kept only when the bases it reads (the REF allele, with its VCF padding base for indels) are all
A, C, G or T. SNVs take one of the three other bases at random; deletions remove 1 to 20 bases,
insertions add 1 to 20 random bases, the lengths drawn so that every length class
(`distribution.LENGTH_CLASSES`) gets the same number of each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genossm.infer.calibration.distribution import LENGTH_CLASSES, MAX_INDEL_LENGTH, variant_class
from genossm.infer.score.tiles import TileLayout, allele_pair
from genossm.tokenizer import encode

BASES = "ACGT"


@dataclass(frozen=True)
class BackgroundVariant:
    genome: int  # index into the genomes
    contig: str
    position0: int  # 0-based POS
    ref: str  # as a VCF writes it (indels: padding base first)
    alt: str

    @property
    def klass(self) -> str:
        return variant_class(self.ref, self.alt)


def variant_kinds(snvs: int, indels: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """(kind, length) for every variant to draw: SNVs, then indels balanced over the length classes."""
    kinds = [("snv", 1)] * snvs
    classes = [(kind, low, high) for kind in ("del", "ins") for _, low, high in LENGTH_CLASSES]
    for number in range(indels):
        kind, low, high = classes[number % len(classes)]
        kinds.append((kind, int(rng.integers(low, high + 1))))
    order = rng.permutation(len(kinds))
    return [kinds[i] for i in order]


def draw_background(genomes: list, window: int, snvs: int, indels: int, *, seed: int = 0,
                    per_tile: int = 8, max_attempts: int = 50):
    """[(BackgroundVariant, AllelePair)] for `snvs` SNVs and `indels` indels, in tile order."""
    rng = np.random.default_rng(seed)
    layout = TileLayout(window)
    contigs = [(g, name, length) for g, genome in enumerate(genomes) for name, length in genome.contigs.items()]
    lengths = np.array([length for _, _, length in contigs], dtype=np.float64)
    weights = lengths / lengths.sum()
    wanted = variant_kinds(snvs, indels, rng)
    drawn = []
    attempts = 0
    while wanted:
        g, contig, length = contigs[int(rng.choice(len(contigs), p=weights))]
        tile_start = layout.tile_start(int(rng.integers(0, length)))
        middle = tile_start + layout.margin
        tokens_end = tile_start + window + MAX_INDEL_LENGTH + 2  # room for the longest deletion
        sequence = genomes[g].fetch(contig, tile_start, tokens_end, pad=True).upper()
        tile_tokens = encode(sequence)
        placed = 0
        for offset in rng.integers(0, layout.stride, size=per_tile * 4):
            if placed == per_tile or not wanted:
                break
            kind, size = wanted[-1]
            position0 = middle + int(offset)
            variant = _variant(sequence, position0 - tile_start, kind, size, rng)
            if variant is None or position0 + size >= length:
                continue
            ref, alt = variant
            wanted.pop()
            placed += 1
            pair = allele_pair(tile_tokens, position0 - tile_start, len(ref), encode(alt), window)
            drawn.append((BackgroundVariant(g, contig, position0, ref, alt), pair))
        attempts = 0 if placed else attempts + 1
        if attempts > max_attempts:
            raise ValueError("cannot place background variants: the genomes are mostly N or too short")
    return drawn


def _variant(sequence: str, offset: int, kind: str, size: int, rng) -> tuple[str, str] | None:
    """(REF, ALT) of a `kind` variant at `offset` of the tile's sequence, or None if it reads a non-ACGT base."""
    if kind == "snv":
        ref = sequence[offset]
        if ref not in BASES:
            return None
        return ref, BASES.replace(ref, "")[int(rng.integers(0, 3))]
    if kind == "del":
        ref = sequence[offset:offset + size + 1]
        if len(ref) != size + 1 or not set(ref) <= set(BASES):
            return None
        return ref, ref[0]
    ref = sequence[offset]
    if ref not in BASES:
        return None
    return ref, ref + "".join(BASES[i] for i in rng.integers(0, 4, size=size))
