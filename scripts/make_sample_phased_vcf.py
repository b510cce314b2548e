"""Write genossm/resources/sample/sample_phased.vcf: 4 synthetic samples over the bundled genome.

Clusters of variants that share a scoring window, so that haplotype scores differ from per-ALT
scores: S1 carries pairs in cis, S2 the same pairs in trans, S3 is unphased, S4 is homozygous
reference except for one homozygous ALT and one missing call. REF bases are read from the genome.
Run: python scripts/make_sample_phased_vcf.py
"""

from __future__ import annotations

from genossm.io.fasta import open_fasta
from genossm.resources import RESOURCES

# (POS, length of REF, ALT builder, genotypes S1..S4, PS of S1/S2): ALT "snv:X" or "del" or "ins:SEQ"
SITES = [
    (5210, "snv:A", ("0|1", "0|1", "0/1", "0|0")),
    (5260, "snv:T", ("0|1", "1|0", "0/1", "0|0")),
    (5330, "snv:C", ("1|1", "0|1", "0|0", "1|1")),
    (20000, "del:3", ("1|0", "1|0", "0/1", "0|0")),
    (20040, "snv:G", ("1|0", "0|1", "0/1", "./.")),
    (20101, "ins:TTGA", ("0|0", "0|1", "1/1", "0|0")),
    (45000, "snv:T", ("0|1", "1|0", "0/1", "0|0")),
    (60000, "snv:C", ("1|0", "0|0", "0/0", "0|0")),
]


def main() -> None:
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=N315,length=80000>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "##genossm_note=synthetic genotypes for examples and tests (scripts/make_sample_phased_vcf.py)",
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                        "S1", "S2", "S3", "S4"])]
    with open_fasta(RESOURCES / "sample" / "sample_genome.fa.gz") as genome:
        for number, (pos, alt_spec, genotypes) in enumerate(SITES, 1):
            kind, _, value = alt_spec.partition(":")
            base = genome.fetch("N315", pos - 1, pos).upper()
            if kind == "snv":
                ref, alt = base, value if value != base else "ACGT".replace(base, "")[0]
            elif kind == "del":
                ref = genome.fetch("N315", pos - 1, pos + int(value)).upper()
                alt = ref[0]
            else:
                ref, alt = base, base + value
            lines.append("\t".join(["N315", str(pos), f"hp{number}", ref, alt, ".", "PASS", ".", "GT",
                                    *genotypes]))
    (RESOURCES / "sample" / "sample_phased.vcf").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
