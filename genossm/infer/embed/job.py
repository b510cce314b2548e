"""`genossm embed` as one library call: check the options, read the regions, load the model,
embed every region into one HDF5 file.

`embed_regions(job)` is the whole command. It checks the options, then on every rank (one
process, or each rank of a sharded run: `genossm.infer.ranks`) opens the genome and checks the
regions before the model is loaded, and runs `run_embed`: the same function everywhere; only
the writer (the one process, or rank 0) opens the output (`genossm.infer.embed.store`).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from dataclasses import dataclass, field

from genossm.errors import InputError, UsageError
from genossm.infer import runtime
from genossm.infer.embed.embedder import EmbedSettings, embed_tokens_region, embedding_width, region_tokens
from genossm.infer.embed.store import EmbeddingWriter, check_embedding_output, sequence_digest
from genossm.infer.ranks import Compute, LocalRunner, ShardedRunner, check_compute, check_stop, run_job
from genossm.io.fasta import open_fasta
from genossm.io.intervals import Region, check_regions, read_regions

log = logging.getLogger("genossm.infer.embed")


@dataclass(frozen=True)
class EmbedJob:
    """The options of one `genossm embed` run, as plain values (the command line's, parsed)."""

    regions: list[str]  # BED files and/or region strings chr:start-end (1-based inclusive)
    fasta: str
    output: str
    model: str | None = None  # checkpoint directory; None: the model bundled with genossm
    settings: EmbedSettings = field(default_factory=EmbedSettings)
    resume: bool = False
    compute: Compute = field(default_factory=Compute)
    command: str = ""  # the command line for the file's `command` attribute


@dataclass(frozen=True)
class EmbedResult:
    regions: int  # rows in the output file
    computed: int  # rows embedded by this run (the others came from an interrupted run)


def embed_regions(job: EmbedJob) -> EmbedResult:
    """Run `job`; returns what the writer wrote (on the other ranks of a sharded run: zeros)."""
    check_settings(job.settings)
    check_compute(job.compute, resume=job.resume)
    check_embedding_output(job.output, inputs=(job.fasta, *(r for r in job.regions if os.path.isfile(r))))
    model_path = runtime.checkpoint_dir(job.model)

    def embed_on_rank(runner: LocalRunner | ShardedRunner) -> EmbedResult:
        with open_fasta(job.fasta) as genome:
            regions = check_regions(read_regions(job.regions, genome.contigs), genome)
            check_regions_embeddable(regions)
            model, model_sha = runtime.load_inference_model(model_path, runner.device)
            attributes = {"model": os.fspath(model_path), "model_sha256": model_sha, "command": job.command}
            computed = run_embed(regions, genome, model, job.settings, job.output, attributes=attributes,
                                 resume=job.resume, runner=runner)
        return EmbedResult(len(regions) if runner.writes else 0, computed)

    return run_job(job.compute, embed_on_rank, chunk_workers=True)


def check_settings(settings: EmbedSettings) -> None:
    if settings.max_pass_length < 1:
        raise UsageError(f"--max-pass-length must be at least 1, got {settings.max_pass_length}")


def check_regions_embeddable(regions: list[Region]) -> None:
    """An embedding needs at least one base: an empty region is an input error naming its line."""
    empty = next((region for region in regions if region.length == 0), None)
    if empty is not None:
        raise InputError(f"region {empty} is empty: an embedding needs at least one base",
                         path=empty.source, line=empty.line)


def run_embed(regions: list[Region], genome, model, settings: EmbedSettings, output: str | os.PathLike, *,
              attributes: dict | None = None, resume: bool = False,
              runner: LocalRunner | ShardedRunner = LocalRunner("cpu")) -> int:
    """Embed `regions` into the HDF5 file `output` on this rank; returns the rows the writer
    computed in this run (0 on the other ranks).

    Every rank walks the same regions; `runner` gives each region to a rank, and the writer
    writes them all, in order.
    """
    check_settings(settings)
    check_regions_embeddable(regions)
    genome_lock = threading.Lock()  # regions may be embedded by several worker threads

    def embed(region: Region):
        check_stop()
        with genome_lock:
            tokens = region_tokens(genome, region)
        return embed_tokens_region(model, tokens, settings, runner.device)
    if not runner.writes:
        collections.deque(runner(enumerate(regions), embed), maxlen=0)  # this rank's share
        return 0
    if not regions:
        log.warning("no regions to embed: writing a file with no rows")
    with EmbeddingWriter(output, regions, settings, d_model=embedding_width(model, runner.device),
                         attributes=attributes, resume=resume,
                         input_digest=sequence_digest(genome, regions)) as writer:
        pending = ((index, regions[index]) for index in range(writer.completed, len(regions)))
        for index, _, (mean, per_position) in runner(pending, embed):
            writer.write(index, mean, per_position)
    return writer.computed
