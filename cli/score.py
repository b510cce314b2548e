"""Score variants with a DNA language model: GENOSSM_LLR, GENOSSM_EMBDIST, GENOSSM_STATUS per ALT.

Every input record comes out, in order, with its fields; each ALT gets, by default, a
log-likelihood ratio (GENOSSM_LLR, log P(alt) - log P(ref), averaged over both strands), an
embedding distance (GENOSSM_EMBDIST) (other definitions: --score, one INFO field each) and a status (`ok`, or why it was not scored: ref_mismatch, unknown_contig,
out_of_bounds, symbolic, star, missing_alt, too_long). How windows and scores are defined:
`python -c "import genossm.infer.score.scorer as s; help(s)"` and the README.

examples:
  genossm score sample --fasta sample -o scored.vcf.gz     # bundled model, genome and VCF
  genossm score calls.vcf.gz --fasta hg38.fa -o scored.vcf.gz      # bgzip + tabix index
  genossm score calls.vcf --fasta ref.fa | bcftools query -f '%ID\\t%INFO/GENOSSM_LLR\\n'
  bcftools view -r chr1 calls.vcf.gz | genossm score - --fasta ref.fa --model my_model/ -o -
  genossm score big.vcf.gz --fasta ref.fa -o out.vcf.gz --tsv out.tsv --resume
  genossm score calls.bcf --fasta ref.fa -O b -W -o scored.bcf           # BCF + CSI index
  genossm score calls.vcf.gz --fasta ref.fa -r chr1:1000000-2000000 -o part.vcf.gz   # indexed input
  genossm score - --fasta ref.fa -R exons.bed < calls.vcf > scored.vcf    # filtered while reading
  genossm score big.vcf.gz --fasta ref.fa -o out.vcf.gz --devices 4     # 4 GPUs, same output
  genossm score calls.vcf.gz --fasta ref.fa --score site --window 256 -o fast.vcf.gz  # 7-15x faster
  genossm score phased.vcf.gz --fasta ref.fa --samples all -o hap.vcf.gz  # per-haplotype FORMAT scores
"""

from __future__ import annotations

import argparse
import logging

from genossm.cli import options
from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.score")

# Written out here so that --help needs no heavy import; tests/cli checks it against
# genossm.infer.score.definitions (the names, the default). The INFO header says each in full.
SCORE_HELP = (
    "score definitions, comma-separated, each written as INFO/GENOSSM_<NAME> (default: llr,embdist). "
    "llr: log P(alt window) - log P(ref window), summed from the variant to the window end (masked "
    "model: masked marginal); site: log P(ALT) - log P(REF) at the variant position(s) only (an SNV of "
    "a causal model needs only the reference pass: the fastest); embdist / embcos: Euclidean / cosine "
    "distance of the window-mean final hidden states, alt vs ref; embdist_mid / embcos_mid: the same "
    "for the output of the middle block")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "score", __doc__)
    inputs, outputs, compute = options.groups(parser)
    inputs.add_argument("input", help="VCF, VCF.gz or BCF; `-` reads stdin; `sample`: the bundled sample VCF; "
                        "`sample_phased`: the bundled VCF with 4 phased samples (for --samples)")
    options.add_fasta(inputs)
    where = inputs.add_mutually_exclusive_group()
    where.add_argument("-r", "--regions", default=None,
                       help="only records overlapping these regions: chr, chr:pos, chr:beg-end, "
                            "comma-separated (1-based; needs an indexed input); others are not written")
    where.add_argument("-R", "--regions-file", default=None,
                       help="the same from a file: BED (.bed, .bed.gz) or tab-separated CHROM POS [END]; "
                            "uses the index when there is one, else filters records while reading")
    options.add_model(inputs)
    who = inputs.add_mutually_exclusive_group()
    who.add_argument("--samples", default=None, metavar="S1,S2|all",
                     help="also score these samples' haplotypes (GT, PS): FORMAT/GENOSSM_HLLR (haplotype "
                          "window vs reference, per haplotype) and GENOSSM_HVAR (this ALT's share); needs a "
                          "position-sorted VCF file and a causal model; unphased heterozygous ALTs go on "
                          "haplotype 1 (see README)")
    who.add_argument("-S", "--samples-file", default=None, metavar="FILE",
                     help="the same, sample names read from FILE (one per line)")
    outputs.add_argument("-o", "--output", default="-",
                         help="output VCF: `-` (default) writes plain VCF to stdout; without -O the "
                              "type follows the name: .vcf plain, .bcf BCF, any other (.vcf.gz) "
                              "bgzip-compressed and tabix-indexed")
    outputs.add_argument("-O", "--output-type", choices=("v", "z", "b", "u"), default=None,
                         help="v: VCF, z: bgzip VCF (tabix-indexed), b: BCF, u: uncompressed BCF, "
                              "as in bcftools (default: from the -o name)")
    outputs.add_argument("-W", "--write-index", action="store_true",
                         help="index the output as bcftools does: .tbi for a bgzip VCF, .csi for BCF "
                              "or when a contig is longer than 512 Mb (needs -O z or b and -o FILE)")
    outputs.add_argument("--tsv", default=None, help="also write the scores as TSV (one line per ALT)")
    outputs.add_argument("--parquet", default=None, help="also write the scores as Parquet (needs pyarrow)")
    outputs.add_argument("--resume", action="store_true",
                         help="continue an interrupted run from OUT.genossm-resume.tsv (needs -o FILE; "
                              "one device only: resume a --devices N run without --devices)")
    parser.add_argument("--score", default=None, metavar="NAME[,NAME...]", help=SCORE_HELP)
    parser.add_argument("--window", type=int, default=None,
                        help="window length in bases (default: the window the model was trained on, as its "
                             "checkpoint records; else its max_length, at most 2048; a larger one is warned about)")
    options.add_no_rc(parser)
    parser.add_argument("--max-allele-length", type=int, default=None,
                        help="longer REF/ALT alleles get status too_long (default 100, or window/4 if less)")
    parser.add_argument("--skip-unknown", action="store_true",
                        help="records on contigs missing from the FASTA get status unknown_contig "
                             "instead of stopping with an error")
    parser.add_argument("--chunk-size", type=int, default=256,
                        help="records read, scored and written at a time (default 256)")
    options.add_batch_size(compute)
    options.add_device(compute)
    options.add_threads(compute)
    options.add_ranks(compute)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genossm.infer.haplotype.samples import SampleSelection
    from genossm.infer.runtime import sample_or_path
    from genossm.infer.score import ScoreJob, ScoreOutputs, score_vcf
    from genossm.infer.score.definitions import parse_scores
    from genossm.infer.score.regions import parse_regions, read_regions_file

    job = ScoreJob(
        input=sample_or_path(args.input, "vcf"), fasta=sample_or_path(args.fasta, "fasta"), model=args.model,
        outputs=ScoreOutputs(vcf=args.output, tsv=args.tsv, parquet=args.parquet, resume=args.resume,
                             output_type=args.output_type, write_index=args.write_index),
        window=args.window, max_allele_length=args.max_allele_length, both_strands=args.both_strands,
        skip_unknown=args.skip_unknown, batch_size=args.batch_size, chunk_size=args.chunk_size,
        compute=options.compute_from(args), command=options.command_line("score", args, positional=("input",)),
        regions=(parse_regions(args.regions) if args.regions else
                 read_regions_file(args.regions_file) if args.regions_file else None),
        scores=parse_scores(args.score),
        samples=(SampleSelection.from_option(args.samples) if args.samples else
                 SampleSelection.from_file(args.samples_file) if args.samples_file else None),
    )
    counts = score_vcf(job)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    log.info("scored ALT alleles: %s", summary or "none")
    return 0
