"""Predict labels of regions or sequences with a fine-tuned model (`genossm finetune`).

Sequences are cropped as in training and predicted on both strands, averaged (--no-rc: the
forward strand only); strand '-' regions are read as their reverse complement. Sequence heads
write a TSV (`#chrom start end name strand p_<class>...`, one row per input, input order);
per-position heads write a bedGraph of one class's probability per base (--class), or, for
an output ending in .bed (or --format bed), BED6 intervals of the runs of bases whose
probability is >= --threshold (name = the input region, score = 1000 x the run's highest
probability). Streamed in batches; written to OUT.genossm-partial and renamed at the end;
--resume continues an interrupted run; --devices N shards the batches over N GPUs (or CPU
processes) and rank 0 writes the same file as one device would.

examples:
  genossm predict --model runs/gene_starts/model --regions new.bed --fasta genome.fa -o preds.tsv
  genossm predict --model runs/tiny/model --regions tests/fixtures/finetune/gene_starts.tsv -o -
  genossm predict --model runs/splice/model --regions genes.bed --fasta ref.fa -o sites.bedgraph \\
      --class 1 --resume
  genossm predict --model runs/splice/model --regions genes.bed --fasta ref.fa -o sites.bed --threshold 0.8
  genossm predict --model runs/gene_starts/model --regions big.bed --fasta genome.fa -o big.tsv --devices 4
"""

from __future__ import annotations

from genossm.cli import options
from genossm.cli.main import subcommand_parser


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "predict", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("--model", required=True, help="fine-tuned model directory (OUT/model of finetune)")
    inputs.add_argument("--regions", nargs="+", required=True, metavar="FILE",
                        help="BED/TSV of regions (with --fasta), TSV of sequences or FASTA")
    inputs.add_argument("--fasta", nargs="+", default=[], metavar="FASTA", help="genome(s) of the regions")
    outputs.add_argument("-o", "--output", required=True, help="output TSV / bedGraph, or - for stdout")
    outputs.add_argument("--resume", action="store_true", help="continue from OUTPUT.genossm-partial")
    parser.add_argument("--class", dest="token_class", metavar="NAME",
                        help="per-position models: the class whose probability is written (default: the last)")
    outputs.add_argument("--format", dest="output_format", choices=("bedgraph", "bed"),
                         help="per-position models: bedgraph (one line per base) or bed (runs of bases "
                              "with probability >= --threshold); default: bed for a .bed output, else bedgraph")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="per-position BED: the probability a base needs to be called (default 0.5)")
    options.add_no_rc(parser)
    options.add_device(compute)
    options.add_threads(compute)
    options.add_ranks(compute)
    compute.add_argument("--batch-size", type=int, default=64, help="sequences per model call (default 64)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import logging

    from genossm.finetune.predict import PredictJob, predict

    count = predict(PredictJob(model=args.model, regions=tuple(args.regions), output=args.output,
                               fasta=tuple(args.fasta), both_strands=args.both_strands, batch_size=args.batch_size,
                               device=args.device, threads=args.threads, resume=args.resume,
                               token_class=args.token_class, output_format=args.output_format,
                               threshold=args.threshold, devices=args.devices, num_nodes=args.num_nodes))
    if count:  # 0 on the ranks of a sharded run that do not write
        logging.getLogger("genossm.predict").info("predicted %d input(s) -> %s", count, args.output)
    return 0
