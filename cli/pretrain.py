"""Pretrain a DNA language model on genomes (FASTA) and/or sequencing reads (BAM).

Windows are drawn from the FASTA files in proportion to contig length (N-heavy ones skipped,
reverse complements as augmentation); validation and test windows come from held-out files
(--val-fasta, --test-fasta) or, without them, from the held-out tail of every contig. The run
writes Lightning checkpoints to OUT/checkpoints (resume with --resume after a kill: no step is
repeated or lost), the final model to OUT/model (load with genossm.load_model or any genossm
command's --model), and OUT/metrics.json (held-out loss, bits per base, accuracy, tokens/s).

examples:
  genossm pretrain --config tiny-cpu --fasta lambda.fa --out runs/lambda
  genossm pretrain --config bacteria --fasta train/*.fa.gz --val-fasta val.fa.gz \\
      --test-fasta test.fa.gz --out runs/bacteria --set trainer.max_steps=20000
  genossm pretrain --config hyena-1m --fasta hg38.fa --bed train.bed --devices 8 \\
      --strategy ddp --out runs/hg38 --resume
  srun genossm pretrain --config hyena-1m --fasta hg38.fa --devices 4 --num-nodes 2 \\
      --strategy fsdp --out runs/hg38   (in an sbatch script: pipelines/slurm/pretrain.sbatch)
  genossm pretrain --config tiny-cpu --fasta ref.fa --bam reads.bam --set data.read_fraction=0.3 \\
      --out runs/mixed
"""

from __future__ import annotations

from genossm.cli import options
from genossm.cli.main import subcommand_parser


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "pretrain", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("--config", required=True, metavar="RECIPE",
                        help="training recipe: a name in configs/train (tiny-cpu, bacteria, "
                        "hyena-1m) or a YAML file")
    inputs.add_argument("--fasta", nargs="+", default=[], metavar="FASTA",
                        help="training genome(s): FASTA, plain or bgzipped (indexed if needed)")
    inputs.add_argument("--bed", metavar="BED", help="train only on these regions of --fasta")
    inputs.add_argument("--bam", nargs="+", default=[], metavar="BAM",
                        help="sequencing reads as training data (alone or mixed with --fasta "
                        "windows by data.read_fraction)")
    inputs.add_argument("--val-fasta", nargs="+", default=[], metavar="FASTA",
                        help="whole genomes held out for validation")
    inputs.add_argument("--test-fasta", nargs="+", default=[], metavar="FASTA",
                        help="whole genomes held out for testing")
    outputs.add_argument("--out", required=True, metavar="DIR", help="output directory")
    outputs.add_argument("--resume", action="store_true",
                         help="continue from OUT/checkpoints/last.ckpt when it exists")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, dotted key and YAML value "
                        "(e.g. --set optim.lr=3e-4 --set trainer.max_steps=500; --set "
                        "trainer.max_time_s=3600 stops after an hour of training and still saves, tests "
                        "and exports); repeatable")
    parser.add_argument("--val-fraction", type=float, metavar="F",
                        help="without --val-fasta: share of every contig held out for validation")
    parser.add_argument("--test-fraction", type=float, metavar="F",
                        help="without --test-fasta: share of every contig held out for testing")
    parser.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    # Not the inference jobs' --devices/--num-nodes (options.add_ranks): unset here means "the
    # recipe's value", and --devices also takes Lightning's `auto`.
    compute.add_argument("--devices", metavar="N", help="devices to train on (e.g. 1, 8, auto)")
    compute.add_argument("--strategy", metavar="NAME", help="auto, ddp or fsdp (docs/distributed.md: "
                         "data.batch_size is per device, the learning rate is not rescaled)")
    compute.add_argument("--num-nodes", type=int, metavar="M",
                         help="machines to train on (SLURM/torchrun launch one process per device)")
    parser.set_defaults(func=run)


def recipe_overrides(args) -> list[str]:
    """The command-line options as recipe overrides, applied after the recipe's own values and
    before --set (so --set wins)."""
    import json

    overrides = []

    def put(key, value):
        if value is not None and value != []:
            overrides.append(f"{key}={json.dumps(value)}")  # JSON is YAML: typed round trip

    put("data.fasta", args.fasta)
    put("data.bed", args.bed)
    put("data.bam", args.bam)
    put("data.val_fasta", args.val_fasta)
    put("data.test_fasta", args.test_fasta)
    put("data.val_fraction", args.val_fraction)
    put("data.test_fraction", args.test_fraction)
    if args.devices is not None:
        put("trainer.devices", int(args.devices) if args.devices.isdigit() else args.devices)
    put("trainer.strategy", args.strategy)
    put("trainer.num_nodes", args.num_nodes)
    put("seed", args.seed)
    return overrides + list(args.overrides)


def run(args) -> int:
    from genossm.errors import UsageError
    from genossm.train.recipe import load_recipe
    from genossm.train.run import pretrain

    if not args.fasta and not args.bam:
        raise UsageError("give training data: --fasta FILE [FILE ...] and/or --bam FILE")
    recipe = load_recipe(args.config, recipe_overrides(args))
    pretrain(recipe, args.out, resume=args.resume)
    return 0
