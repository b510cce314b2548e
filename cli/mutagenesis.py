"""Saturation mutagenesis of a region: the LLR of every position x every alternative base.

Writes P.tsv (chrom, pos, ref, alt, llr), P.bedGraph (mean or min LLR per position, a track) and
P.png (a heat map: bases x positions, blue where the model prefers the reference) for
--out-prefix P. Regions are limited to --max-length bases (default 10,000).

examples:
  genossm mutagenesis --region N315:5201-5230 --fasta sample --out-prefix demo   # bundled data
  genossm mutagenesis --region chr1:1,000,001-1,000,200 --fasta hg38.fa --out-prefix promoter
  genossm mutagenesis --region NC_001416.1:101-160 --fasta lambda.fa --model my_model/ --out-prefix lam
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.mutagenesis")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "mutagenesis", __doc__)
    parser.add_argument("--region", required=True, help="chr:start-end, 1-based inclusive")
    parser.add_argument("--fasta", required=True,
                        help="reference FASTA (plain or bgzip); `sample`: the bundled sample genome")
    parser.add_argument("--model", default=None,
                        help="checkpoint directory (default: the model bundled with genossm)")
    parser.add_argument("--out-prefix", required=True, help="writes PREFIX.tsv, PREFIX.bedGraph, PREFIX.png")
    parser.add_argument("--window", type=int, default=None,
                        help="window length in bases (default: the model's max_length, at most 2048)")
    parser.add_argument("--no-rc", dest="both_strands", action="store_false",
                        help="forward strand only (default: average both strands)")
    parser.add_argument("--track-stat", default="mean", choices=("mean", "min"),
                        help="per-position value of the bedGraph track (default mean)")
    parser.add_argument("--max-length", type=int, default=10_000, help="longest region allowed (default 10000)")
    parser.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per model call (default 16)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer import mutagenesis, runtime
    from genossm.infer.score_job import default_window
    from genossm.io.fasta import open_fasta
    from genossm.io.intervals import check_regions, parse_region

    runtime.set_threads(args.threads)
    device = runtime.resolve_device(args.device)
    model, model_path, _ = runtime.load_inference_model(args.model, device)
    window = default_window(model, args.window)
    with open_fasta(runtime.sample_or_path(args.fasta, "fasta")) as genome:
        region = check_regions([parse_region(args.region, genome.contigs)], genome)[0]
        result = mutagenesis.saturation_mutagenesis(
            genome, region, model, window=window, both_strands=args.both_strands,
            batch_size=args.batch_size, device=device, max_length=args.max_length)
    prefix = args.out_prefix
    mutagenesis.write_tsv(result, f"{prefix}.tsv")
    mutagenesis.write_bedgraph(result, f"{prefix}.bedGraph", args.track_stat)
    written = [f"{prefix}.tsv", f"{prefix}.bedGraph"]
    if args.plot:
        mutagenesis.write_heatmap(result, f"{prefix}.png",
                                  title=f"genossm saturation mutagenesis {result.region} "
                                        f"({'bundled model' if args.model is None else model_path})")
        written.append(f"{prefix}.png")
    log.info("wrote %s", ", ".join(written))
    return 0
