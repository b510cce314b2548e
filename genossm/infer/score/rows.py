"""What `genossm score` computes per ALT allele: one `ScoreRow`, and the statuses it can carry.

Every writer (VCF, TSV, Parquet, the resume log) takes these rows in input order. `values` holds
the run's scores by definition name (`genossm.infer.score.definitions`); `status` is `ok`, or
why the ALT was not scored (then `values` is empty: every score is missing).
"""

from __future__ import annotations

from dataclasses import dataclass

from genossm.infer.score.definitions import ScoreValues
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
class ScoreRow(ScoreValues):
    """One ALT allele of one input record (`record` is the 0-based record index in the input)."""

    record: int
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    values: dict  # score name -> float
    status: str

    def value(self, name: str) -> float | None:
        """The score `name`, None when the ALT was not scored."""
        return self.values.get(name)


def score_row(index: int, record: vcf.VcfRecord, variant: vcf.Variant, values: dict | None,
              status: str) -> ScoreRow:
    """The row of `variant` (one ALT of `record`, the input's record number `index`, 0-based);
    `values`: its scores by name (None or empty: not scored)."""
    pysam_record = record.record
    return ScoreRow(record=index, chrom=pysam_record.contig, pos=pysam_record.pos,
                    id=pysam_record.id or ".", ref=pysam_record.ref, alt=variant.alt,
                    values=dict(values or {}), status=status)
