"""What `genossm score` computes per ALT allele: one `ScoreRow`, and the statuses it can carry.

Every writer (VCF, TSV, Parquet, the resume log) takes these rows in input order. `status` is
`ok`, or why the ALT was not scored (then `llr` and `embdist` are None).
"""

from __future__ import annotations

from dataclasses import dataclass

from genossm.io import vcf

OK = "ok"
SYMBOLIC = "symbolic"
STAR = "star"
MISSING_ALT = "missing_alt"
TOO_LONG = "too_long"
INVALID_ALLELE = "invalid_allele"  # a letter that is no nucleotide code (ALT `AXT`)
AMBIGUOUS_ALLELE = "ambiguous_allele"  # an IUPAC ambiguity code or N in ALT
NO_CHANGE = "no_change"  # ALT equal to REF
MASKED_REFERENCE = "masked_reference"  # N or an ambiguity code in REF or in the genome under it
UNKNOWN_CONTIG = vcf.UNKNOWN_CONTIG
OUT_OF_BOUNDS = vcf.OUT_OF_BOUNDS
REF_MISMATCH = vcf.REF_MISMATCH


@dataclass(frozen=True)
class ScoreRow:
    """One ALT allele of one input record (`record` is the 0-based record index in the input)."""

    record: int
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    llr: float | None
    embdist: float | None
    status: str


def score_row(index: int, record: vcf.VcfRecord, variant: vcf.Variant, llr: float | None,
              embdist: float | None, status: str) -> ScoreRow:
    """The row of `variant` (one ALT of `record`, the input's record number `index`, 0-based)."""
    pysam_record = record.record
    return ScoreRow(record=index, chrom=pysam_record.contig, pos=pysam_record.pos,
                    id=pysam_record.id or ".", ref=pysam_record.ref, alt=variant.alt,
                    llr=llr, embdist=embdist, status=status)
