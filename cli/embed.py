"""Embed genomic regions with a DNA language model into one HDF5 file.

/embeddings (n_regions, d_model) holds the mean embedding of each region (both strands averaged
unless --no-rc); --per-position adds /per_position/<row> (length, d_model); /regions holds chrom,
start, end, name, strand. Strand '-' regions are embedded as their reverse complement. Regions
longer than --max-pass-length are computed in exact chunks (same numbers as one pass).

examples:
  genossm embed --regions peaks.bed --fasta hg38.fa -o peaks.h5
  genossm embed --regions chr1:1,000,001-1,010,000 chr2:5001-6000 --fasta hg38.fa -o two.h5 --per-position
  genossm embed --regions big.bed --fasta hg38.fa -o big.h5 --resume
  genossm embed --merge part1.h5 part2.h5 -o all.h5
  genossm embed --regions big.bed --fasta hg38.fa -o big.h5 --devices 4      # 4 GPUs, same file
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli import options
from genossm.cli.main import subcommand_parser
from genossm.errors import UsageError

log = logging.getLogger("genossm.embed")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "embed", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("--regions", nargs="+", default=None,
                        help="BED files and/or region strings chr:start-end (1-based inclusive)")
    options.add_fasta(inputs, required=False)
    options.add_model(inputs)
    outputs.add_argument("-o", "--output", required=True, help="output HDF5 file")
    outputs.add_argument("--per-position", action="store_true", help="also store per-position embeddings")
    outputs.add_argument("--resume", action="store_true",
                         help="continue an interrupted run from its partial file (one device only)")
    outputs.add_argument("--merge", nargs="+", default=None, metavar="H5",
                         help="instead of embedding: concatenate these embedding files into -o")
    options.add_no_rc(parser)
    parser.add_argument("--max-pass-length", type=int, default=65536,
                        help="longest region computed in one pass; longer ones go in exact chunks")
    options.add_device(compute)
    options.add_threads(compute)
    options.add_ranks(compute)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer.embed import EmbedJob, EmbedSettings, embed_regions, merge_embedding_files
    from genossm.infer.runtime import sample_or_path

    if args.merge:
        if args.regions:
            raise UsageError("--merge and --regions cannot be used together")
        merge_embedding_files(args.merge, args.output)
        return 0
    if not args.regions or not args.fasta:
        raise UsageError("genossm embed needs --regions and --fasta (or --merge FILES)")
    job = EmbedJob(
        regions=args.regions, fasta=sample_or_path(args.fasta, "fasta"), output=args.output, model=args.model,
        settings=EmbedSettings(both_strands=args.both_strands, per_position=args.per_position,
                               max_pass_length=args.max_pass_length),
        resume=args.resume, compute=options.compute_from(args), command=options.command_line("embed", args),
    )
    result = embed_regions(job)
    log.info("embedded %d region(s) (%d computed in this run) into %s", result.regions, result.computed,
             args.output)
    return 0
