"""`genossm score` as one library call: check the options, load the model, stream, score, write.

`score_vcf(job)` is the whole command. It checks every option first, against the checkpoint's
config but before its weights are loaded and hashed (a bad option costs no model load), then
runs `run_score` in this process or on every rank of a sharded run (`genossm.infer.ranks`): the
same function everywhere; only the writer (the one process, or rank 0) opens the outputs.

Memory is constant in the number of records: records are read in chunks of `chunk_size`, the
chunk's scorable ALTs are scored together (`genossm.infer.score.chunks.ChunkScorer`), the chunk
is written, and the next one is read. Every record comes out, in input order, with its original
fields; each ALT gets `GENOSSM_LLR`, `GENOSSM_EMBDIST` and `GENOSSM_STATUS` (`ok` or why it was
not scored: ref_mismatch, unknown_contig (with skip_unknown), out_of_bounds, symbolic, star,
missing_alt, too_long).

Regions (-r/-R, `genossm.infer.score.regions`): only records overlapping them are read (through
the index when the input has one), scored and written; the others are left out, as in
`bcftools view -r`.

Resume: with an output file, the scores of each finished chunk are appended to a log beside it
(`OUT.genossm-resume.tsv`, see `genossm.infer.score.resume_log.ResumeLog`). Chunks start at fixed
record indices (multiples of `chunk_size`), so a rerun with `resume=True` reads the scores of the
finished chunks back (bit-exact), recomputes the rest in the same chunks (the same batches, the
same numbers) and writes the same bytes as an uninterrupted run. The log is removed on success.
The log's fingerprint covers the input's header and the FASTA (names, lengths, size and
modification time), and each saved chunk is checked against the records read now, so a changed
input is refused rather than given another file's scores.

Threads: on a CPU, `--threads N` scores N chunks at a time, each with one torch thread
(`run_job(..., chunk_workers=True)`). A chunk's numbers then never depend on the thread count
(torch splits its reductions differently with more intra-op threads), so the output has the same
bytes whatever `--threads` says, and a resumed or sharded run matches it too.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
from dataclasses import dataclass, field

from genossm.errors import UsageError
from genossm.infer import runtime
from genossm.infer.ranks import Compute, LocalRunner, ShardedRunner, check_compute, run_job
from genossm.infer.score.annotations import Annotations, plan_annotations
from genossm.infer.score.chunks import ChunkScorer, numbered_chunks
from genossm.infer.score.outputs import ScoreOutputs, ScoreWriter, count_records, header_lines, info_fields
from genossm.infer.score.regions import Regions, check_regions, selected_records
from genossm.infer.score.resume_log import fingerprint
from genossm.infer.score.definitions import DEFAULT_SCORES
from genossm.infer.score.settings import (DEFAULT_CHUNK_SIZE, ScoreSettings, default_max_allele_length,
                                          default_window, training_window)
from genossm.io import vcf
from genossm.io.fasta import open_fasta
from genossm.models.checkpoint import read_checkpoint_config

log = logging.getLogger("genossm.infer.score")


@dataclass(frozen=True)
class ScoreJob:
    """The options of one `genossm score` run, as plain values (the command line's, parsed)."""

    input: str  # VCF, VCF.gz or BCF; `-` reads stdin
    fasta: str
    model: str | None = None  # checkpoint directory; None: the model bundled with genossm
    outputs: ScoreOutputs = field(default_factory=ScoreOutputs)
    window: int | None = None  # None: the training window the checkpoint records, else max_length (<= 2048)
    max_allele_length: int | None = None  # None: 100, or window/4 if less
    both_strands: bool = True
    skip_unknown: bool = False
    batch_size: int = 16
    chunk_size: int = DEFAULT_CHUNK_SIZE
    compute: Compute = field(default_factory=Compute)
    command: str = ""  # the command line for the output header (##genossm_command)
    regions: Regions | None = None  # -r/-R: only records overlapping these (genossm.infer.score.regions)
    scores: tuple[str, ...] = DEFAULT_SCORES  # --score: definitions computed (genossm.infer.score.definitions)
    samples: object | None = None  # --samples/-S: a genossm.infer.haplotype.SampleSelection (FORMAT fields)


def score_vcf(job: ScoreJob) -> dict[str, int]:
    """Run `job`; returns the scored ALTs by status (on the writer; {} on the other ranks)."""
    check_job(job)
    model_path = runtime.checkpoint_dir(job.model)
    config = runtime.read_model_config(model_path)
    settings = score_settings(job, config.max_length, training_window(read_checkpoint_config(model_path)))
    annotation_plan = plan_annotations(job, model_path, config.objective, settings)

    def score_on_rank(runner: LocalRunner | ShardedRunner) -> dict[str, int]:
        records = None
        if runner.writes:
            records = count_records(job.input) if job.regions is None else None
            log.info("%s", plan_line(job, settings, runner, records))
        model, model_sha = runtime.load_inference_model(model_path, runner.device)
        header = header_lines(os.fspath(model_path), model_sha, job.command, settings, config.objective)
        header += annotation_plan.header_lines()
        with open_fasta(job.fasta) as genome, contextlib.ExitStack() as stack:
            annotations = (stack.enter_context(annotation_plan.open(job, model, settings, runner.device))
                           if runner.writes else None)
            return run_score(job.input, genome, model, settings, job.outputs, header=header,
                             model_sha256=model_sha, runner=runner, regions=job.regions, records=records,
                             annotations=annotations)

    return run_job(job.compute, score_on_rank, chunk_workers=True)


def plan_line(job: ScoreJob, settings: ScoreSettings, runner, records: int | None) -> str:
    """The first log line: what the run will do, so that a slow run can be told from a hung one."""
    import torch

    workers = getattr(runner, "workers", 1)
    threads = (f"{workers} chunk workers x 1 torch thread" if workers > 1
               else f"{torch.get_num_threads()} torch thread(s)")
    counted = (f"{records} records" if records is not None
               else "records not counted (" + ("regions" if job.regions is not None else "stdin or BCF") + ")")
    strands = "both strands" if settings.both_strands else "forward strand"
    return (f"scoring {counted} of {'stdin' if job.input == '-' else job.input}: scores "
            f"{','.join(settings.scores)}, window {settings.window}, {strands}, device {runner.device}, "
            f"{threads}, batch size {settings.batch_size}, "
            f"chunks of {settings.chunk_size} records" + (f", {runner.world} ranks" if getattr(runner, "world", 1) > 1 else ""))


def score_settings(job: ScoreJob, max_length: int, trained_window: int | None = None) -> ScoreSettings:
    """The job's settings (the window from the model's training window, else its `max_length`),
    checked."""
    window = default_window(max_length, job.window, trained_window)
    settings = ScoreSettings(
        window=window, both_strands=job.both_strands, batch_size=job.batch_size,
        max_allele_length=default_max_allele_length(window, job.max_allele_length),
        skip_unknown=job.skip_unknown, chunk_size=job.chunk_size, scores=tuple(job.scores),
    )
    settings.check()
    return settings


def check_job(job: ScoreJob) -> None:
    """Usage errors of the outputs and compute options (exit code 2)."""
    job.outputs.check(inputs=(job.input, job.fasta))
    check_regions(job.regions, job.input)
    check_compute(job.compute, resume=job.outputs.resume)
    if job.compute.sharded:
        if job.input == "-":
            raise UsageError("with --devices/--num-nodes every rank reads the input: give a VCF file, not stdin")
        if job.outputs.vcf == "-":
            raise UsageError("with --devices/--num-nodes give an output file (-o OUT.vcf.gz): the "
                             "ranks share one terminal")


def run_score(input_path: str, genome, model, settings: ScoreSettings, outputs: ScoreOutputs, *,
              header: list[str], model_sha256: str = "",
              runner: LocalRunner | ShardedRunner = LocalRunner("cpu"),
              regions: Regions | None = None, records: int | None = None,
              annotations: Annotations | None = None) -> dict[str, int]:
    """Score every record of `input_path` on this rank; returns the writer's counts by status.

    Every rank reads the input and walks the same chunks; `runner` gives each chunk to a rank,
    and the writer writes them all, in order, with `header` (`header_lines`) in the VCF. With
    `regions`, only the records that overlap them are read, scored and written. `annotations`
    (the writer's): GENOSSM_PCT and --samples FORMAT fields (`genossm.infer.score.annotations`). `records`: how
    many will be read, for the progress bar's ETA (None: a bar with the rate only).
    """
    chunk_scorer = ChunkScorer(model, genome, settings, runner.device, source=input_path)
    with vcf.VcfReader(input_path) as reader:
        chunks = numbered_chunks(selected_records(reader, input_path, regions), settings.chunk_size)
        if not runner.writes:
            collections.deque(runner(chunks, chunk_scorer.score), maxlen=0)  # this rank's share
            return {}
        key = fingerprint(os.path.abspath(input_path), model_sha256, settings, header, reader.header,
                          genome_identity(genome))
        score_info = info_fields(settings.scores, model.config.objective, settings.both_strands,
                                 getattr(model.config, "n_layers", None))
        with ScoreWriter(outputs, reader.header, header, key, total=records, annotations=annotations,
                         scores=settings.scores, score_info=score_info) as writer:
            chunk_scorer.progress = writer.progress
            if writer.completed_chunks:
                log.info("resuming: %d chunk(s) of %d records already scored", writer.completed_chunks,
                         settings.chunk_size)
            for _, chunk in itertools.islice(chunks, writer.completed_chunks):
                writer.write_saved(chunk)
            for chunk_index, chunk, (rows, alt_indices) in runner(chunks, chunk_scorer.score):
                writer.write(chunk_index, chunk, rows, alt_indices)
    return writer.counts


def genome_identity(genome) -> str:
    """What the resume log records of the FASTA: contig names and lengths, size and mtime."""
    try:
        stat = os.stat(genome.path)
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    except (OSError, TypeError, AttributeError):
        stamp = ""
    return f"{stamp};{sorted(dict(getattr(genome, 'contigs', {})).items())}"
