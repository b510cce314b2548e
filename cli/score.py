"""Score variants with a DNA language model: GENOSSM_LLR, GENOSSM_EMBDIST, GENOSSM_STATUS per ALT.

Every input record comes out, in order, with its fields; each ALT gets a log-likelihood ratio
(GENOSSM_LLR, log P(alt) - log P(ref), averaged over both strands), an embedding distance
(GENOSSM_EMBDIST) and a status (`ok`, or why it was not scored: ref_mismatch, unknown_contig,
out_of_bounds, symbolic, star, missing_alt, too_long). How windows and scores are defined:
`python -c "import genossm.infer.scoring as s; help(s)"` and the README.

examples:
  genossm score sample --fasta sample -o scored.vcf.gz     # bundled model, genome and VCF
  genossm score calls.vcf.gz --fasta hg38.fa -o scored.vcf.gz      # bgzip + tabix index
  genossm score calls.vcf --fasta ref.fa | bcftools query -f '%ID\\t%INFO/GENOSSM_LLR\\n'
  bcftools view -r chr1 calls.vcf.gz | genossm score - --fasta ref.fa --model my_model/ -o -
  genossm score big.vcf.gz --fasta ref.fa -o out.vcf.gz --tsv out.tsv --resume
  genossm score big.vcf.gz --fasta ref.fa -o out.vcf.gz --devices 4     # 4 GPUs, same output
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli.main import subcommand_parser
from genossm.errors import UsageError

log = logging.getLogger("genossm.score")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "score", __doc__)
    parser.add_argument("input", help="VCF, VCF.gz or BCF; `-` reads stdin; `sample`: the bundled sample VCF")
    parser.add_argument("--fasta", required=True,
                        help="reference FASTA (plain or bgzip; .fai built if missing); `sample`: the "
                             "bundled sample genome")
    parser.add_argument("--model", default=None,
                        help="checkpoint directory (default: the model bundled with genossm)")
    parser.add_argument("-o", "--output", default="-",
                        help="output VCF: `-` (default) writes plain VCF to stdout; a file name "
                             "ending in .vcf.gz is bgzip-compressed and tabix-indexed")
    parser.add_argument("--tsv", default=None, help="also write the scores as TSV (one line per ALT)")
    parser.add_argument("--parquet", default=None, help="also write the scores as Parquet (needs pyarrow)")
    parser.add_argument("--window", type=int, default=None,
                        help="window length in bases (default: the model's max_length, at most 2048)")
    parser.add_argument("--no-rc", dest="both_strands", action="store_false",
                        help="score the forward strand only (default: average both strands)")
    parser.add_argument("--max-allele-length", type=int, default=None,
                        help="longer REF/ALT alleles get status too_long (default 100, or window/4 if less)")
    parser.add_argument("--skip-unknown", action="store_true",
                        help="records on contigs missing from the FASTA get status unknown_contig "
                             "instead of stopping with an error")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per model call (default 16)")
    parser.add_argument("--chunk-size", type=int, default=256,
                        help="records read, scored and written at a time (default 256)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUT.genossm-resume.tsv (needs -o FILE; "
                             "one device only: resume a --devices N run without --devices)")
    add_device_options(parser)
    parser.set_defaults(func=run)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1,
                        help="devices (GPUs, or CPU processes) per node to shard the work over; rank 0 "
                             "writes the output, the same bytes as one device (default 1)")
    parser.add_argument("--num-nodes", type=int, default=1,
                        help="nodes, each started by torchrun or srun (default 1; docs/distributed.md)")


def run(args: argparse.Namespace) -> int:
    from genossm.infer import sharded

    if sharded.wants_sharding(args.devices, args.num_nodes):
        sharded.check_sharded_options(resume=args.resume, input_path=args.input)
        if args.output == "-":
            raise UsageError("with --devices/--num-nodes give an output file (-o OUT.vcf.gz): the "
                             "ranks share one terminal")
        return sharded.launch(args.devices, args.num_nodes, args.device, lambda fabric: score(args, fabric))
    return score(args, None)


def score(args: argparse.Namespace, fabric) -> int:
    """One run of `genossm score`: the whole job, or one rank's part of it under `fabric`."""
    from genossm.infer import runtime, sharded
    from genossm.infer.score_job import (ScoreOutputs, ScoreSettings, default_max_allele_length,
                                         default_window, header_lines, run_score)
    from genossm.io.fasta import open_fasta

    runtime.set_threads(args.threads)
    device = fabric.device if fabric is not None else runtime.resolve_device(args.device)
    model, model_path, model_sha = runtime.load_inference_model(args.model, device)
    window = default_window(model, args.window)
    settings = ScoreSettings(
        window=window, both_strands=args.both_strands, batch_size=args.batch_size,
        max_allele_length=default_max_allele_length(window, args.max_allele_length),
        skip_unknown=args.skip_unknown, chunk_size=args.chunk_size,
    )
    command = runtime.command_line("score", args, positional=("input",),
                                   negated={"both_strands": "--no-rc"})
    outputs = ScoreOutputs(
        vcf=args.output, tsv=args.tsv, parquet=args.parquet, resume=args.resume,
        header_lines=header_lines(model_path, model_sha, command, settings, model.config.objective),
    )
    input_path = runtime.sample_or_path(args.input, "vcf")
    with open_fasta(runtime.sample_or_path(args.fasta, "fasta")) as genome:
        if fabric is not None and fabric.global_rank != 0:
            sharded.serve_score(input_path, genome, model, settings, device, fabric)
            return 0
        counts = run_score(input_path, genome, model, settings, outputs, device=device, model_sha256=model_sha,
                           chunk_runner=sharded.ShardedRunner(fabric) if fabric is not None else None)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    log.info("scored ALT alleles: %s", summary or "none")
    return 0
