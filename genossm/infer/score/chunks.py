"""A chunk of VCF records -> one `ScoreRow` per ALT: which ALTs can be scored, their windows, their scores.

Records are scored a chunk at a time (`numbered_chunks`): chunks start at fixed record indices
(multiples of `chunk_size`) and scoring batches never cross a chunk, so a chunk's numbers do not
depend on which run, resumed or not, or which rank computes it.
"""

from __future__ import annotations

import itertools

from genossm.errors import InputError
from genossm.infer.score.rows import (MISSING_ALT, OK, STAR, SYMBOLIC, TOO_LONG, UNKNOWN_CONTIG, ScoreRow,
                                      score_row)
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.settings import ScoreSettings
from genossm.infer.score.tiles import TileCache, TileLayout, allele_pair
from genossm.io import vcf
from genossm.tokenizer import encode


def allele_status(variant: vcf.Variant, genome, settings: ScoreSettings, source: str) -> str | None:
    """Why `variant` cannot be scored, or None. An unknown contig is an error unless skip_unknown."""
    if variant.kind == vcf.SYMBOLIC:
        return SYMBOLIC
    if variant.kind == vcf.STAR:
        return STAR
    if variant.kind == vcf.MISSING:
        return MISSING_ALT
    try:
        genome.resolve(variant.contig)
    except InputError as err:
        if settings.skip_unknown:
            return UNKNOWN_CONTIG
        raise InputError(f"{err.message} (in the FASTA {err.path}); pass --skip-unknown to keep such "
                         "records with GENOSSM_STATUS=unknown_contig", path=source, line=variant.line) from None
    status = vcf.check_ref(variant, genome)
    if status is not None:
        return status
    if max(len(variant.ref), len(variant.alt)) > settings.max_allele_length:
        return TOO_LONG
    return None


class ChunkScorer:
    """Turns a chunk of VcfRecords into ScoreRows (and the ALT index of each row)."""

    def __init__(self, model, genome, settings: ScoreSettings, device, source: str):
        self.genome, self.settings, self.source = genome, settings, source
        self.layout = TileLayout(settings.window)
        self.tiles = TileCache(genome, settings.window + settings.max_allele_length)
        self.scorer = VariantScorer(model, both_strands=settings.both_strands,
                                    batch_size=settings.batch_size, device=device)

    def score(self, records: list[tuple[int, vcf.VcfRecord]]) -> tuple[list[ScoreRow], list[int]]:
        pending = []  # (record index, record, variant, status, pair index)
        pairs = []
        for index, record in records:
            for variant in record.variants:
                status = allele_status(variant, self.genome, self.settings, self.source)
                pair_index = None
                if status is None:
                    pair_index = len(pairs)
                    pairs.append(self._pair(variant))
                pending.append((index, record, variant, status, pair_index))
        scores = self.scorer.score(pairs)
        rows = []
        for index, record, variant, status, pair_index in pending:
            score = scores[pair_index] if pair_index is not None else None
            rows.append(score_row(index, record, variant,
                                  score.llr if score else None, score.embdist if score else None,
                                  status or OK))
        return rows, [p[2].alt_index for p in pending]

    def _pair(self, variant: vcf.Variant):
        contig = self.genome.resolve(variant.contig)
        position = variant.pos - 1
        tile_start = self.layout.tile_start(position)
        tile = self.tiles.get(contig, tile_start)
        alt_tokens = encode(variant.alt, source=f"ALT of {variant.contig}:{variant.pos}")
        return allele_pair(tile, position - tile_start, len(variant.ref), alt_tokens, self.settings.window)


def numbered_chunks(reader, size: int):
    """(chunk index, [(record index, record), ...]) for consecutive chunks of `size` records."""
    iterator = zip(itertools.count(), reader)
    return enumerate(iter(lambda: list(itertools.islice(iterator, size)), []))
