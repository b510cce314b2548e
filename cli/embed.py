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

from genossm.cli.main import subcommand_parser
from genossm.cli.score import add_device_options
from genossm.errors import UsageError

log = logging.getLogger("genossm.embed")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "embed", __doc__)
    parser.add_argument("--regions", nargs="+", default=None,
                        help="BED files and/or region strings chr:start-end (1-based inclusive)")
    parser.add_argument("--fasta", default=None,
                        help="reference FASTA (plain or bgzip); `sample`: the bundled sample genome")
    parser.add_argument("--model", default=None,
                        help="checkpoint directory (default: the model bundled with genossm)")
    parser.add_argument("-o", "--output", required=True, help="output HDF5 file")
    parser.add_argument("--per-position", action="store_true", help="also store per-position embeddings")
    parser.add_argument("--no-rc", dest="both_strands", action="store_false",
                        help="forward strand only (default: average both strands)")
    parser.add_argument("--max-pass-length", type=int, default=65536,
                        help="longest region computed in one pass; longer ones go in exact chunks")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its partial file (one device only)")
    add_device_options(parser)
    parser.add_argument("--merge", nargs="+", default=None, metavar="H5",
                        help="instead of embedding: concatenate these embedding files into -o")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer import embedding

    if args.merge:
        if args.regions:
            raise UsageError("--merge and --regions cannot be used together")
        embedding.merge_embedding_files(args.merge, args.output)
        return 0
    if not args.regions or not args.fasta:
        raise UsageError("genossm embed needs --regions and --fasta (or --merge FILES)")
    from genossm.infer import sharded

    if sharded.wants_sharding(args.devices, args.num_nodes):
        sharded.check_sharded_options(resume=args.resume)
        return sharded.launch(args.devices, args.num_nodes, args.device, lambda fabric: embed(args, fabric))
    return embed(args, None)


def embed(args: argparse.Namespace, fabric) -> int:
    """One run of `genossm embed`: the whole job, or one rank's part of it under `fabric`."""
    from genossm.infer import embedding, runtime, sharded
    from genossm.io.fasta import open_fasta
    from genossm.io.intervals import check_regions, read_regions

    runtime.set_threads(args.threads)
    device = fabric.device if fabric is not None else runtime.resolve_device(args.device)
    model, model_path, model_sha = runtime.load_inference_model(args.model, device)
    settings = embedding.EmbedSettings(both_strands=args.both_strands, per_position=args.per_position,
                                       max_pass_length=args.max_pass_length)
    attributes = {"model": model_path, "model_sha256": model_sha,
                  "command": runtime.command_line("embed", args, negated={"both_strands": "--no-rc"})}
    with open_fasta(runtime.sample_or_path(args.fasta, "fasta")) as genome:
        regions = check_regions(read_regions(args.regions, genome.contigs), genome)
        if fabric is not None and fabric.global_rank != 0:
            sharded.serve_embed(regions, genome, model, settings, device, fabric)
            return 0
        computed = embedding.run_embed(regions, genome, model, settings, args.output, device=device,
                                       attributes=attributes, resume=args.resume,
                                       region_runner=sharded.ShardedRunner(fabric) if fabric is not None else None)
    log.info("embedded %d region(s) (%d computed in this run) into %s", len(regions), computed, args.output)
    return 0
