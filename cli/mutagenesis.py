"""Saturation mutagenesis of a region: the LLR of every position x every alternative base.

Writes P.tsv (chrom, pos, ref, alt, llr), P.bedGraph (mean or min LLR per position, a track) and
P.png for --out-prefix P: rows of --wrap bases, each a logo of the reference (letter height: mean
loss of log-likelihood when the base is mutated) over a heat map of alternative base x position
(blue where the model prefers the reference), with the reference bases and genomic coordinates on
the axis. --format svg,pdf (or repeated) writes P.svg / P.pdf as well or instead. Regions are
limited to --max-length bases (default 10,000).

examples:
  genossm mutagenesis --region N315:5201-5230 --fasta sample --out-prefix demo   # bundled data
  genossm mutagenesis --region chr1:1,000,001-1,000,200 --fasta hg38.fa --out-prefix promoter --format png,pdf
  genossm mutagenesis --region NC_001416.1:101-160 --fasta lambda.fa --model my_model/ --out-prefix lam
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli import options
from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.mutagenesis")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "mutagenesis", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("--region", required=True, help="chr:start-end, 1-based inclusive")
    options.add_fasta(inputs)
    options.add_model(inputs)
    outputs.add_argument("--out-prefix", required=True,
                         help="writes PREFIX.tsv, PREFIX.bedGraph and the figure PREFIX.png (see --format)")
    outputs.add_argument("--track-stat", default="mean", choices=("mean", "min"),
                         help="per-position value of the bedGraph track (default mean)")
    outputs.add_argument("--no-plot", dest="plot", action="store_false", help="skip the figure")
    outputs.add_argument("--format", dest="formats", action="append", metavar="png|svg|pdf",
                         help="figure format(s), comma-separated or repeated (default png)")
    outputs.add_argument("--wrap", type=int, default=None, metavar="BASES",
                         help="bases per figure row (default 100, widened past 1,000 bases to keep "
                              "at most 10 rows; 0: one row)")
    options.add_window(parser)
    options.add_no_rc(parser)
    parser.add_argument("--max-length", type=int, default=10_000, help="longest region allowed (default 10000)")
    options.add_batch_size(compute)
    options.add_device(compute)
    options.add_threads(compute)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer.mutagenesis import MutagenesisJob, run_mutagenesis
    from genossm.infer.runtime import sample_or_path

    written = run_mutagenesis(MutagenesisJob(
        region=args.region, fasta=sample_or_path(args.fasta, "fasta"), out_prefix=args.out_prefix,
        model=args.model, window=args.window, both_strands=args.both_strands, track_stat=args.track_stat,
        max_length=args.max_length, plot=args.plot, formats=tuple(args.formats or ("png",)), wrap=args.wrap,
        batch_size=args.batch_size, device=args.device,
        threads=args.threads))
    log.info("wrote %s", ", ".join(written))
    return 0
