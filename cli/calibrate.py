"""Calibrate a model's scores: the distribution of GENOSSM_LLR over random variants, stored with the model.

Scores a background of random SNVs (and insertions and deletions of 1 to 20 bases, the same number
in each length class) drawn across the genome(s), in the window and strands `genossm score` uses
for this model by default, and stores the distribution in the model directory (calibration.json,
named in config.json). From then on `genossm score` with this model adds GENOSSM_PCT per ALT: the
percentile of its llr among background variants of its class (SNV; indel type and length), i.e.
100 x an empirical lower-tail p-value. The same --seed gives the same file.

examples:
  genossm calibrate --model my_model/ --fasta ref.fa                  # 100,000 SNVs + 12,000 indels
  genossm calibrate --model my_model/ --fasta a.fa.gz b.fa.gz -n 20000 --indels 2400 --seed 1
  genossm calibrate --model copy_of_bundled/ --fasta sample -n 2000 --indels 600 --device cpu
  genossm calibrate --model my_model/ --fasta ref.fa --device cuda --batch-size 256 --max-seconds 600
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli import options
from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.calibrate")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "calibrate", __doc__)
    inputs, _, compute = options.groups(parser)
    options.add_model(inputs)
    inputs.add_argument("--fasta", nargs="+", required=True,
                        help="genome(s) to draw the background from (plain or bgzip FASTA; `sample`: the "
                             "bundled sample genome); contigs are drawn in proportion to their length")
    parser.add_argument("-n", "--snvs", type=int, default=100_000, help="background SNVs (default 100000)")
    parser.add_argument("--indels", type=int, default=12_000,
                        help="background indels, spread evenly over deletions and insertions of 1, 2, 3, 4-6, "
                             "7-10 and 11-20 bases (default 12000; 0: SNVs only)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the background (default 0)")
    parser.add_argument("--per-tile", type=int, default=8,
                        help="background variants placed in each random tile; they share its reference pass "
                             "(default 8)")
    parser.add_argument("--window", type=int, default=None,
                        help="window length in bases (default: the one `genossm score` uses for this model; "
                             "score adds GENOSSM_PCT only in the calibrated window)")
    options.add_no_rc(parser)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop with an error, writing nothing, once the run is seen to take longer than "
                             "this (checked from a tenth of the background on, at the measured rate; "
                             "default: no limit)")
    options.add_batch_size(compute)
    options.add_device(compute)
    options.add_threads(compute)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer.calibration import CalibrateJob, calibrate
    from genossm.infer.runtime import sample_or_path

    job = CalibrateJob(
        fastas=tuple(sample_or_path(path, "fasta") for path in args.fasta), model=args.model, snvs=args.snvs,
        indels=args.indels, seed=args.seed, window=args.window, both_strands=args.both_strands,
        batch_size=args.batch_size, per_tile=args.per_tile, max_seconds=args.max_seconds,
        compute=options.compute_from(args),
    )
    source = calibrate(job)
    log.info("calibrated on %s", ", ".join(source["fasta"]))
    return 0
