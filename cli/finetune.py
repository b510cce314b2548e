"""Fine-tune a genossm model on labelled regions or sequences (classification or regression).

Input: a TSV/BED of regions with a header (chrom start end [name] [strand] LABEL... [split])
plus --fasta, a TSV of sequences (column `sequence`), or a FASTA whose headers carry labels
(`>id label=X split=train`). Held-out data by chromosome (--val-chroms, --test-chroms; names or
patterns) or by a split column (train / val / test); never random rows. The task (binary,
multiclass, multilabel, regression, per-position `token`) is read from the labels unless --task
says it. Per-position labels can also come from an interval file: --positions sites.bed labels
every base of the --data regions that overlaps an interval 1 and the others 0 (splice sites, gene
starts, binding sites; `genossm predict` then writes a bedGraph or a BED of called bases).
Sequences longer than the input length are cropped (recipe `crop`: center, start, end),
shorter ones padded and masked; training draws a random strand, held-out metrics average both.

Writes OUT/model (the fine-tuned checkpoint: `genossm predict --model OUT/model`, `genossm info`),
OUT/metrics.json (per-epoch validation AUROC, AUPRC, accuracy, MCC or Pearson, Spearman, MSE;
test metrics of the best epoch) and OUT/checkpoints (--resume continues after a kill).

Recipe keys (YAML via --config, or --set KEY=VALUE): pooling (mean|last|attention), mode
(full|frozen|lora), lora_rank, lora_alpha, dropout, length, crop, rc_augment, batch_size,
positive_weight (loss weight of rare positives: binary, per-position), lr,
head_lr, weight_decay, warmup_steps, max_epochs, max_steps, monitor, patience, val_every_steps,
checkpoint_every_steps, precision, accelerator, devices, strategy, num_nodes, from_scratch, seed.

examples:
  genossm finetune --data data/gene_starts/regions.tsv --fasta data/genomes/*.fa.gz \\
      --split-column split --out runs/gene_starts
  genossm finetune --data peaks.tsv --fasta hg38.fa --labels active --val-chroms chr8 \\
      --test-chroms chr9 --set pooling=attention --set mode=lora --out runs/peaks
  genossm finetune --data expression.tsv --fasta hg38.fa --labels liver,brain --task regression \\
      --val-chroms chr8 --out runs/expr --devices 4 --strategy ddp
  genossm finetune --data tests/fixtures/finetune/gene_starts.tsv --split-column split \\
      --set max_epochs=1 --out runs/tiny --resume
  genossm finetune --data windows.bed --positions donors.bed --fasta TAIR10.fa --val-chroms Chr4 \\
      --test-chroms Chr5 --out runs/donors
"""

from __future__ import annotations

from genossm.cli import options
from genossm.cli.main import subcommand_parser


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "finetune", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("--data", nargs="+", required=True, metavar="FILE",
                        help="labelled regions (TSV/BED + --fasta), sequences (TSV) or labelled FASTA")
    inputs.add_argument("--fasta", nargs="+", default=[], metavar="FASTA",
                        help="genome(s) that region rows are read from (plain or bgzip)")
    options.add_model(inputs)
    parser.add_argument("--positions", nargs="+", default=[], metavar="BED",
                        help="per-position task: bases of the --data regions overlapping these intervals "
                             "are labelled 1, the others 0 (no label column needed; BED strand honoured)")
    parser.add_argument("--labels", type=_list, default=("label",), metavar="COL[,COL...]",
                        help="label column(s) (default: label)")
    parser.add_argument("--task", choices=("binary", "multiclass", "multilabel", "regression", "token"),
                        help="task kind (default: read from the labels)")
    parser.add_argument("--classes", type=_list, metavar="A,B,...",
                        help="class order; for binary tasks the second is the positive class")
    parser.add_argument("--split-column", metavar="COL", help="column with train / val / test")
    parser.add_argument("--val-chroms", type=_list, default=(), metavar="CHR[,CHR...]",
                        help="chromosomes (or patterns, e.g. 'NZ_CP01*') held out for validation")
    parser.add_argument("--test-chroms", type=_list, default=(), metavar="CHR[,CHR...]",
                        help="chromosomes held out for testing")
    parser.add_argument("--config", metavar="YAML", help="fine-tuning recipe (keys above)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key (e.g. --set pooling=attention); repeatable")
    parser.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    outputs.add_argument("--out", required=True, metavar="DIR", help="output directory")
    outputs.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    compute.add_argument("--devices", metavar="N", help="devices to train on (Lightning: 1, 4, auto)")
    compute.add_argument("--strategy", metavar="NAME", help="auto or ddp")
    compute.add_argument("--num-nodes", type=int, metavar="M", help="machines (torchrun/srun launch)")
    compute.add_argument("--precision", metavar="P", help="auto (bf16-mixed on GPU), 32-true, 16-mixed")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from genossm.finetune.job import FinetuneJob, finetune
    from genossm.finetune.recipe import load_finetune_recipe

    overrides = list(args.overrides)
    for key, value in (("seed", args.seed), ("strategy", args.strategy), ("num_nodes", args.num_nodes),
                       ("precision", args.precision),
                       ("devices", None if args.devices is None else
                        int(args.devices) if args.devices.isdigit() else args.devices)):
        if value is not None:
            overrides.insert(0, f"{key}={json.dumps(value)}")
    job = FinetuneJob(
        data=tuple(args.data), out_dir=args.out, fasta=tuple(args.fasta), model=args.model, labels=args.labels,
        positions=tuple(args.positions),
        task=args.task, classes=args.classes, split_column=args.split_column, val_chroms=args.val_chroms,
        test_chroms=args.test_chroms, recipe=load_finetune_recipe(args.config, overrides), resume=args.resume,
        command=options.command_line("finetune", args),
    )
    finetune(job)
    return 0
