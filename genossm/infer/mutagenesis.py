"""In-silico saturation mutagenesis of a region: every position x every alternative base.

Each of the 3L single-base substitutions is scored as a variant (`genossm.infer.score.scorer`: same
windows, same LLR, both strands averaged by default), through `VariantScorer`, so the reference
pass of each tile is shared by all the substitutions inside it and the alternatives are batched.
Positions whose reference base is N have no defined alternatives and are left out.
`run_mutagenesis(job)` is the whole `genossm mutagenesis` command: options and region are checked
before the model is loaded.

Outputs for a prefix P:
    P.tsv       chrom, pos (1-based), ref, alt, llr: one line per substitution
    P.bedGraph  one value per position (the mean, or with stat="min" the minimum, of its three
                LLRs): a genome-browser track
    P.png       (and/or P.svg, P.pdf: `formats`) the figure of `mutagenesis_plot`: rows of `wrap`
                bases, each a logo track (reference letters scaled by the mean loss of
                log-likelihood when mutated) over a heat map of alternative base x position,
                diverging colours centred at 0, reference bases and genomic coordinates on the axis
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np

from genossm.atomic import atomic_path, check_output_path
from genossm.errors import InputError, UsageError
from genossm.infer import runtime
from genossm.infer.mutagenesis_plot import check_formats, resolve_wrap, write_figure
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.settings import default_window
from genossm.infer.score.tiles import TileCache, TileLayout, allele_pair
from genossm.io.fasta import open_fasta
from genossm.io.intervals import Region, check_regions, parse_region
from genossm.progress import progress
from genossm.tokenizer import BASES, NUM_BASES

log = logging.getLogger("genossm.infer.mutagenesis")

DEFAULT_MAX_LENGTH = 10_000


@dataclass
class MutagenesisResult:
    """LLRs as a (4, L) matrix (rows A, C, G, T; NaN where the base is the reference or N)."""

    region: Region
    reference: str  # the region's bases, upper case
    llr: np.ndarray  # (4, L) float64

    def per_position(self, stat: str = "mean") -> np.ndarray:
        """(L,) the mean or min of each position's alternatives (NaN where none)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (N positions)
            return np.nanmin(self.llr, axis=0) if stat == "min" else np.nanmean(self.llr, axis=0)


def check_region_length(region: Region, max_length: int = DEFAULT_MAX_LENGTH) -> None:
    if region.length > max_length:
        raise InputError(f"region {region} is {region.length:,} bases; saturation mutagenesis scores 3 "
                         f"variants per base and is limited to {max_length:,} bases (--max-length); "
                         "split the region or raise the limit")
    if region.length == 0:
        raise InputError(f"region {region} is empty")


def saturation_mutagenesis(genome, region: Region, model, *, window: int, both_strands: bool = True,
                           batch_size: int = 16, device="cpu", max_length: int = DEFAULT_MAX_LENGTH,
                           tile_group: int = 64) -> MutagenesisResult:
    """Score every substitution of `region` (forward-strand coordinates)."""
    check_region_length(region, max_length)
    layout = TileLayout(window)
    scorer = VariantScorer(model, both_strands=both_strands, batch_size=batch_size, device=device)
    contig = genome.resolve(region.contig)
    reference = genome.fetch(contig, region.start, region.end).upper()
    llr = np.full((NUM_BASES, region.length), np.nan)
    positions = [i for i in range(region.length) if reference[i] in BASES]
    tiles = TileCache(genome, window + 1, capacity=2)
    # Group positions so that a whole tile's substitutions go to the scorer together.
    with progress(total=len(positions), desc="mutagenesis", unit="pos") as bar:
        for group_start in range(0, len(positions), tile_group):
            group = positions[group_start:group_start + tile_group]
            pairs, cells = [], []
            for i in group:
                position = region.start + i
                start = layout.tile_start(position)
                ref_token = BASES.index(reference[i])
                for alt_token in range(NUM_BASES):
                    if alt_token == ref_token:
                        continue
                    pairs.append(allele_pair(tiles.get(contig, start), position - start, 1,
                                             np.array([alt_token], dtype=np.uint8), window))
                    cells.append((alt_token, i))
            for (row, column), score in zip(cells, scorer.score(pairs)):
                llr[row, column] = score.llr
            bar.update(len(group))
    return MutagenesisResult(region=region.with_contig(contig), reference=reference, llr=llr)


def write_tsv(result: MutagenesisResult, path: str | os.PathLike) -> None:
    region = result.region
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write("chrom\tpos\tref\talt\tllr\n")
        for i, ref in enumerate(result.reference):
            for row, alt in enumerate(BASES):
                value = result.llr[row, i]
                if not np.isnan(value):
                    out.write(f"{region.contig}\t{region.start + i + 1}\t{ref}\t{alt}\t{value:.6g}\n")


def write_bedgraph(result: MutagenesisResult, path: str | os.PathLike, stat: str = "mean") -> None:
    region = result.region
    values = result.per_position(stat)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write(f'track type=bedGraph name="genossm {stat} LLR {region}" '
                  f'description="genossm saturation mutagenesis, {stat} LLR per position"\n')
        for i, value in enumerate(values):
            if not np.isnan(value):
                start = region.start + i
                out.write(f"{region.contig}\t{start}\t{start + 1}\t{value:.6g}\n")


def check_stat(stat: str) -> str:
    if stat not in ("mean", "min"):
        raise UsageError(f"--track-stat must be mean or min, got {stat!r}")
    return stat


@dataclass(frozen=True)
class MutagenesisJob:
    """The options of one `genossm mutagenesis` run, as plain values (the command line's, parsed)."""

    region: str  # chr:start-end, 1-based inclusive
    fasta: str
    out_prefix: str  # writes PREFIX.tsv, PREFIX.bedGraph and, with plot, PREFIX.<format> per format
    model: str | None = None  # checkpoint directory; None: the model bundled with genossm
    window: int | None = None  # None: the model's max_length, at most 2048
    both_strands: bool = True
    track_stat: str = "mean"
    max_length: int = DEFAULT_MAX_LENGTH
    plot: bool = True
    formats: tuple[str, ...] = ("png",)  # of the figure: png, svg, pdf
    wrap: int | None = None  # bases per figure row; None: 100 (wider past 1,000 bases); 0: one row
    batch_size: int = 16
    device: str = "auto"
    threads: int | None = None


def run_mutagenesis(job: MutagenesisJob) -> list[str]:
    """Run `job`; returns the files written. Options and the region are checked before the
    model is loaded."""
    check_stat(job.track_stat)
    formats = check_formats(job.formats) if job.plot else ()
    if job.plot and job.wrap is not None:
        resolve_wrap(1, job.wrap)  # a negative width fails here, before the model loads
    suffixes = (".tsv", ".bedGraph") + tuple(f".{fmt}" for fmt in formats)
    for suffix in suffixes:
        check_output_path(f"{job.out_prefix}{suffix}", "--out-prefix", inputs=(job.fasta,))
    model_path = runtime.checkpoint_dir(job.model)
    window = default_window(runtime.read_model_config(model_path).max_length, job.window)
    runtime.set_threads(job.threads)
    device = runtime.resolve_device(job.device)
    with open_fasta(job.fasta) as genome:
        region = check_regions([parse_region(job.region, genome.contigs)], genome)[0]
        check_region_length(region, job.max_length)
        model, _ = runtime.load_inference_model(model_path, device)
        result = saturation_mutagenesis(genome, region, model, window=window, both_strands=job.both_strands,
                                        batch_size=job.batch_size, device=device, max_length=job.max_length)
    prefix = job.out_prefix
    write_tsv(result, f"{prefix}.tsv")
    write_bedgraph(result, f"{prefix}.bedGraph", job.track_stat)
    written = [f"{prefix}.tsv", f"{prefix}.bedGraph"]
    if job.plot:
        model_name = "bundled model" if job.model is None else os.fspath(model_path)
        written += write_figure(result, [f"{prefix}.{fmt}" for fmt in formats], wrap=job.wrap,
                                title=f"genossm saturation mutagenesis {result.region} ({model_name})")
    return written
