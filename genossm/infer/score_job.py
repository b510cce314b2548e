"""`genossm score` as a library call: stream a VCF, score every ALT, write VCF (+ TSV/Parquet).

Memory is constant in the number of records: records are read in chunks of `chunk_size`, the
chunk's scorable ALTs are scored together (`genossm.infer.scoring.VariantScorer`), the chunk is
written, and the next one is read. Every record comes out, in input order, with its original
fields; each ALT gets `GENOSSM_LLR`, `GENOSSM_EMBDIST` and `GENOSSM_STATUS` (`ok` or why it was
not scored: ref_mismatch, unknown_contig (with skip_unknown), out_of_bounds, symbolic, star,
missing_alt, too_long).

Resume: with an output file, the scores of each finished chunk are appended to a log beside it
(`OUT.genossm-resume.tsv`, see `genossm.infer.writers.ResumeLog`). Chunks start at fixed record
indices (multiples of `chunk_size`), so a rerun with `resume=True` reads the scores of the
finished chunks back (bit-exact), recomputes the rest in the same chunks (the same batches, the
same numbers) and writes the same bytes as an uninterrupted run. The log is removed on success.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field


from genossm import __version__
from genossm.errors import InputError, UsageError
from genossm.infer.scoring import VariantScorer
from genossm.infer.windows import TileCache, TileLayout, allele_pair
from genossm.infer.writers import (ParquetScoreWriter, ResumeLog, ScoreRow, TsvScoreWriter, fingerprint,
                                   resume_log_path)
from genossm.io import vcf
from genossm.progress import progress
from genossm.tokenizer import encode

log = logging.getLogger("genossm.infer.score")

OK = "ok"
SYMBOLIC = "symbolic"
STAR = "star"
MISSING_ALT = "missing_alt"
TOO_LONG = "too_long"
UNKNOWN_CONTIG = vcf.UNKNOWN_CONTIG
OUT_OF_BOUNDS = vcf.OUT_OF_BOUNDS
REF_MISMATCH = vcf.REF_MISMATCH

INFO_FIELDS = [
    ("GENOSSM_LLR", "A", "Float", "genossm log-likelihood ratio log P(alt) - log P(ref) of the "
     "model (causal: alt window vs ref window; masked: masked marginal), mean of both strands"),
    ("GENOSSM_EMBDIST", "A", "Float", "genossm Euclidean distance between the mean final hidden "
     "states of the alt and ref windows, mean of both strands"),
    ("GENOSSM_STATUS", "A", "String", "genossm scoring status per ALT: ok, or why it was not scored "
     "(ref_mismatch, unknown_contig, out_of_bounds, symbolic, star, missing_alt, too_long)"),
]

WINDOW_CAP = 2048  # the default window: the model's max_length, but no more (CPU cost grows with it)
DEFAULT_CHUNK_SIZE = 256


@dataclass(frozen=True)
class ScoreSettings:
    window: int
    both_strands: bool = True
    batch_size: int = 16
    max_allele_length: int = 100
    skip_unknown: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def check(self) -> None:
        layout = TileLayout(self.window)
        if self.max_allele_length < 1:
            raise UsageError(f"--max-allele-length must be at least 1, got {self.max_allele_length}")
        if self.max_allele_length > layout.max_allele_length:
            raise UsageError(
                f"--max-allele-length {self.max_allele_length} does not fit a {self.window}-base window "
                f"(at most window/4 = {layout.max_allele_length}); lower it or raise --window")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise UsageError("--chunk-size and --batch-size must be at least 1")


def default_max_allele_length(window: int, requested: int | None) -> int:
    """The requested limit, or 100 bases capped to what the window fits (window/4)."""
    return requested if requested is not None else min(100, TileLayout(window).max_allele_length)


def default_window(model, requested: int | None) -> int:
    if requested is not None:
        if requested < 8:
            raise UsageError(f"--window must be at least 8 bases, got {requested}")
        return requested
    return min(int(model.config.max_length), WINDOW_CAP)


@dataclass
class ScoreOutputs:
    vcf: str = "-"
    tsv: str | None = None
    parquet: str | None = None
    resume: bool = False
    header_lines: list[str] = field(default_factory=list)


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
            rows.append(row_for(index, record, variant,
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


def row_for(index: int, record: vcf.VcfRecord, variant: vcf.Variant, llr, embdist, status) -> ScoreRow:
    pysam_record = record.record
    return ScoreRow(record=index, chrom=pysam_record.contig, pos=pysam_record.pos,
                    id=pysam_record.id or ".", ref=pysam_record.ref, alt=variant.alt,
                    llr=llr, embdist=embdist, status=status)


def count_records(path: str) -> int | None:
    """Records in a VCF file, for the progress bar's ETA (None for stdin)."""
    if path == "-":
        return None
    with vcf.VcfReader(path) as reader:
        return sum(1 for _ in reader)


def run_score(input_path: str, genome, model, settings: ScoreSettings, outputs: ScoreOutputs, *,
              device="cpu", model_sha256: str = "", chunk_runner=None) -> dict:
    """Score every record of `input_path`; returns counts by status.

    `chunk_runner(chunks, score)`, given (chunk index, chunk) pairs and the function that scores
    one chunk, yields (chunk index, chunk, score(chunk)) in input order; the default scores each
    chunk here, `genossm.infer.sharded.ShardedRunner` spreads the chunks over ranks.
    """
    settings.check()
    if outputs.resume and outputs.vcf == "-":
        raise UsageError("--resume needs an output file (-o OUT.vcf.gz): stdout cannot be resumed")
    total = count_records(input_path)
    chunk_scorer = ChunkScorer(model, genome, settings, device, source=input_path)
    resume_log = None
    if outputs.vcf != "-":
        key = fingerprint(os.path.abspath(input_path), model_sha256, settings, outputs.header_lines)
        resume_log = ResumeLog(resume_log_path(outputs.vcf), key, outputs.resume)
        if resume_log.completed_chunks:
            log.info("resuming: %d chunk(s) of %d records already scored", resume_log.completed_chunks,
                     settings.chunk_size)
    side_writers = []
    counts: dict[str, int] = {}
    failed = True
    try:
        if outputs.tsv:
            side_writers.append(TsvScoreWriter(outputs.tsv))
        if outputs.parquet:
            side_writers.append(ParquetScoreWriter(outputs.parquet))
        with vcf.VcfReader(input_path) as reader, \
                vcf.VcfWriter(outputs.vcf, reader.header, INFO_FIELDS, outputs.header_lines) as writer, \
                progress(total=total, desc="scoring", unit="rec") as bar:
            chunks = numbered_chunks(reader, settings.chunk_size)
            completed = resume_log.completed_chunks if resume_log is not None else 0

            def emit(chunk, rows):
                _write_chunk(writer, chunk, rows)
                for side in side_writers:
                    side.write(rows)
                for row in rows:
                    counts[row.status] = counts.get(row.status, 0) + 1
                bar.update(len(chunk))

            for _, chunk in itertools.islice(chunks, completed):
                emit(chunk, _rows_from_log(chunk, resume_log))
            scored = (chunk_runner(chunks, chunk_scorer.score) if chunk_runner is not None
                      else ((index, chunk, chunk_scorer.score(chunk)) for index, chunk in chunks))
            for chunk_index, chunk, (rows, alt_indices) in scored:
                if resume_log is not None:
                    resume_log.append_chunk(chunk_index, rows, alt_indices)
                emit(chunk, rows)
        failed = False
    finally:
        for side in side_writers:
            side.close(failed=failed)
        if resume_log is not None:
            resume_log.close(remove=not failed)
    return counts


def numbered_chunks(reader, size: int):
    """(chunk index, [(record index, record), ...]) for consecutive chunks of `size` records."""
    return enumerate(_chunks(zip(itertools.count(), reader), size))


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _rows_from_log(chunk, resume_log: ResumeLog) -> list[ScoreRow]:
    saved = resume_log.saved_chunk()
    rows = []
    for index, record in chunk:
        for variant in record.variants:
            values = saved.get(index, {}).get(variant.alt_index)
            if values is None:
                raise InputError(f"the resume log has no score for record {index + 1}; was the input "
                                 "changed? Delete the log to start over", path=resume_log.path)
            rows.append(row_for(index, record, variant, *values))
    return rows


def _write_chunk(writer, chunk, rows: list[ScoreRow]) -> None:
    by_record: dict[int, list[ScoreRow]] = {}
    for row in rows:
        by_record.setdefault(row.record, []).append(row)
    for index, record in chunk:
        record_rows = by_record[index]
        writer.write(record, {
            "GENOSSM_LLR": [row.llr for row in record_rows],
            "GENOSSM_EMBDIST": [row.embdist for row in record_rows],
            "GENOSSM_STATUS": [row.status for row in record_rows],
        })


def header_lines(model_path: str, model_sha256: str, command: str, settings: ScoreSettings,
                 objective: str) -> list[str]:
    strands = "forward,reverse" if settings.both_strands else "forward"
    return [
        f"##genossm_version={__version__}",
        f"##genossm_model={model_path}",
        f"##genossm_model_sha256={model_sha256}",
        f"##genossm_scoring=objective:{objective};window:{settings.window};strands:{strands}",
        f"##genossm_command={command}",
    ]
