"""The allele each haplotype of a sample carries at a record (the rules of `genossm.infer.haplotype`).

`haplotype_alleles(gt, phased, same_phase_set)` turns a GT (allele indices, None for missing)
into one allele index per haplotype: phased genotypes as written, homozygous ones on every
haplotype, the others (unphased, or phased in another phase set than the window's) with their
non-reference alleles first in ascending order, so that their ALTs land on haplotype 1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Genotype:
    """One sample's GT at one record: allele indices (None: missing), phasing, phase set."""

    alleles: tuple[int | None, ...]
    phased: bool
    phase_set: object = None  # FORMAT/PS (None when absent: all such phased genotypes are one set)

    @property
    def heterozygous(self) -> bool:
        called = [allele for allele in self.alleles if allele is not None]
        return len(set(called)) > 1

    @property
    def ploidy(self) -> int:
        return len(self.alleles)


def haplotype_alleles(genotype: Genotype, known_phase: bool) -> tuple[int | None, ...]:
    """One allele index per haplotype (None: missing).

    `known_phase`: the genotype is phased in the phase set the window uses (see `window_phase_set`).
    """
    alleles = genotype.alleles
    if len(alleles) <= 1 or not genotype.heterozygous or known_phase:
        return alleles
    # Unknown phase: non-reference alleles first (ascending), then REF, then missing ones.
    return tuple(sorted(alleles, key=lambda allele: (allele is None, allele == 0, allele or 0)))


def window_phase_set(genotypes: list[Genotype]) -> object:
    """The phase set of the first phased heterozygous genotype (None if there is none, or it has no PS)."""
    for genotype in genotypes:
        if genotype.phased and genotype.heterozygous:
            return genotype.phase_set
    return None


def read_genotype(pysam_record, sample: str) -> Genotype:
    """The GT (and PS) of `sample` in a pysam record; a record without GT reads as missing."""
    call = pysam_record.samples[sample]
    alleles = call.get("GT") if "GT" in pysam_record.format else None
    if alleles is None:
        alleles = (None,)
    phase_set = call.get("PS") if "PS" in pysam_record.format else None
    return Genotype(tuple(alleles), bool(call.phased), phase_set)
