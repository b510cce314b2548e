"""A chunk of VCF records -> one `ScoreRow` per ALT: which ALTs can be scored, their windows, their scores.

Records are scored a chunk at a time (`numbered_chunks`): chunks start at fixed record indices
(multiples of `chunk_size`) and scoring batches never cross a chunk, so a chunk's numbers do not
depend on which run, resumed or not, or which rank computes it.
"""

from __future__ import annotations

import itertools
import threading

from genossm.errors import InputError
from genossm.infer.ranks import check_stop
from genossm.infer.score.rows import (AMBIGUOUS_ALLELE, INVALID_ALLELE, MASKED_REFERENCE, MISSING_ALT,
                                      NO_CHANGE, OK, STAR, SYMBOLIC, TOO_LONG, UNKNOWN_CONTIG, ScoreRow,
                                      score_row)
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.settings import ScoreSettings
from genossm.infer.score.tiles import TileCache, TileLayout, allele_pair
from genossm.io import vcf
from genossm.tokenizer import BASES, IUPAC_AMBIGUOUS, encode

_NUCLEOTIDE_CODES = frozenset(BASES + IUPAC_AMBIGUOUS)


def allele_status(variant: vcf.Variant, genome, settings: ScoreSettings, source: str) -> str | None:
    """Why `variant` cannot be scored, or None. An unknown contig is an error unless skip_unknown.

    Only alleles of A, C, G and T over a reference of A, C, G and T get a score: a number for an
    N, an ambiguity code or an unchanged allele would look like a real effect to a filter on the
    score, so those get a status of their own (and a letter that is no nucleotide code flags its
    record instead of stopping the run).
    """
    if variant.kind == vcf.SYMBOLIC:
        return SYMBOLIC
    if variant.kind == vcf.STAR:
        return STAR
    if variant.kind == vcf.MISSING:
        return MISSING_ALT
    if not set(variant.ref + variant.alt) <= _NUCLEOTIDE_CODES:
        return INVALID_ALLELE
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
    if not set(variant.ref) <= _BASE_SET or not set(_genome_bases(variant, genome)) <= _BASE_SET:
        return MASKED_REFERENCE
    if not set(variant.alt) <= _BASE_SET:
        return AMBIGUOUS_ALLELE
    if variant.norm_ref == variant.norm_alt:
        return NO_CHANGE
    if max(len(variant.ref), len(variant.alt)) > settings.max_allele_length:
        return TOO_LONG
    return None


_BASE_SET = frozenset(BASES)


def _genome_bases(variant: vcf.Variant, genome) -> str:
    """The genome's bases under REF (upper case); `check_ref` has resolved the contig and bounds."""
    contig = genome.resolve(variant.contig)
    return genome.fetch(contig, variant.pos - 1, variant.pos - 1 + len(variant.ref)).upper()


class ChunkScorer:
    """Turns a chunk of VcfRecords into ScoreRows (and the ALT index of each row)."""

    def __init__(self, model, genome, settings: ScoreSettings, device, source: str):
        self.genome, self.settings, self.source = genome, settings, source
        # Chunks may be scored by several threads (`LocalRunner(workers=N)`); the genome handle
        # and the tile cache are not thread-safe, so reading them is one thread at a time.
        self._genome_lock = threading.Lock()
        self.layout = TileLayout(settings.window)
        self.tiles = TileCache(genome, settings.window + settings.max_allele_length)
        self.scorer = VariantScorer(model, both_strands=settings.both_strands,
                                    batch_size=settings.batch_size, device=device, scores=settings.scores)
        # The writer's `genossm.progress.PieceProgress` (None: no bar): a chunk's records move the
        # bar as its tiles are scored, not all at once when the chunk is written.
        self.progress = None

    def score(self, records: list[tuple[int, vcf.VcfRecord]]) -> tuple[list[ScoreRow], list[int]]:
        with self._genome_lock:
            pending, pairs = self._pairs(records)
        check_stop()
        report = _check_stop_between_model_calls
        if self.progress is not None and records:
            progress, piece = self.progress, records[0][0]

            def report(fraction: float) -> None:
                check_stop()
                progress.advance(piece, int(fraction * len(records)))
        scores = self.scorer.score(pairs, progress=report)
        rows = []
        for index, record, variant, status, pair_index in pending:
            score = scores[pair_index] if pair_index is not None else None
            rows.append(score_row(index, record, variant, score.values if score else None, status or OK))
        return rows, [p[2].alt_index for p in pending]

    def _pairs(self, records):
        """(pending rows: (record index, record, variant, status, pair index), AllelePairs to score)."""
        pending = []
        pairs = []
        for index, record in records:
            for variant in record.variants:
                status = allele_status(variant, self.genome, self.settings, self.source)
                pair_index = None
                if status is None:
                    pair_index = len(pairs)
                    pairs.append(self._pair(variant))
                pending.append((index, record, variant, status, pair_index))
        return pending, pairs

    def _pair(self, variant: vcf.Variant):
        contig = self.genome.resolve(variant.contig)
        position = variant.pos - 1
        tile_start = self.layout.tile_start(position)
        tile = self.tiles.get(contig, tile_start)
        alt_tokens = encode(variant.alt, source=f"ALT of {variant.contig}:{variant.pos}")
        return allele_pair(tile, position - tile_start, len(variant.ref), alt_tokens, self.settings.window)


def _check_stop_between_model_calls(fraction: float) -> None:
    check_stop()


def numbered_chunks(reader, size: int):
    """(chunk index, [(record index, record), ...]) for consecutive chunks of `size` records."""
    iterator = zip(itertools.count(), reader)
    return enumerate(iter(lambda: list(itertools.islice(iterator, size)), []))
