"""Per-sample haplotype scores (`genossm score --samples`), as a library.

What is scored. Every record is owned by one scoring tile (`genossm.infer.score.tiles`: window W,
the record's first base in the tile's middle half). For each selected sample and each of its
haplotypes, the tile's *haplotype window* is the reference window with every ALT allele that
haplotype carries in the window applied in cis (SNVs, MNVs and indels; the window keeps its left
flank and its length W, as an ALT window of `genossm score` does). Two FORMAT fields are written
per record and sample, one value per haplotype (`Number=.`: two for a diploid genotype, one for
a haploid one):

    GENOSSM_HLLR  log P(haplotype window) - log P(reference window) of the record's tile, summed
                  over positions from the first difference (causal models), mean of both strands.
                  A haplotype that carries nothing in the window scores exactly 0. Every record of
                  a sample in the same tile shows the same values: they describe the window.
    GENOSSM_HVAR  the record's ALT's share of GENOSSM_HLLR on that haplotype (chain rule): the
                  per-position log-likelihood differences from where the allele starts in the
                  haplotype window up to where the next applied allele of the haplotype starts
                  (on the reverse strand, in that strand's order). The shares of the alleles of a
                  haplotype window add up to its GENOSSM_HLLR; with one allele in the window the
                  share is the whole window's ratio, GENOSSM_LLR of `genossm score`. 0 on a
                  haplotype carrying REF here; `.` when the allele was not applied (its ALT has a
                  GENOSSM_STATUS other than ok, or it overlaps an earlier allele of the haplotype).

Cost: one pass per distinct haplotype window and strand (plus the tile's reference pass, shared
by every sample): a haplotype with k variants in a window costs one window pass, not k, and equal
haplotypes (common in cohorts) are computed once.

Genotype rules (`genossm.infer.haplotype.genotypes`):
  - phased genotypes (`0|1`) put allele i on haplotype i;
  - homozygous genotypes are on every haplotype, whatever the separator;
  - an unphased heterozygous genotype (`0/1`, `1/0`, `1/2`), and a phased one whose phase set
    (FORMAT/PS) differs from that of the window's first phased heterozygous site, has no known
    phase relative to the others: its non-reference alleles go to the first haplotypes in
    ascending order (`0/1` and `1/0`: ALT on haplotype 1; `1/2`: 1 on haplotype 1, 2 on 2). So
    unphased heterozygous ALTs in one window are scored together, in cis, on haplotype 1 (the
    joint effect if they were on one chromosome), and haplotype 2 carries none of them;
  - a missing allele (`.`) is the reference for the other records' windows; at its own record
    that haplotype's values are `.` (both haplotypes for `./.`);
  - an allele whose first base lies before the window start is not applied (the window cannot
    show it); neither is an ALT that overlaps one applied before it on the same haplotype.

Records that no tile can hold (unknown contig with --skip-unknown, past the contig end) and
unscorable ALTs get `.` and change no window. Haplotype scores need a causal model.

    genotypes.py  the alleles each haplotype carries at a record (the rules above)
    windows.py    haplotype windows with their allele boundaries (numpy, no model)
    scorer.py     HaplotypeScorer (dedup, batched) and score_haplotypes_naive (reference)
    annotator.py  HaplotypeAnnotator: the FORMAT values of each record of a sorted VCF, in order
    samples.py    --samples / --samples-file parsing and checks
"""

from genossm.infer.haplotype.annotator import HaplotypeAnnotator
from genossm.infer.haplotype.samples import SampleSelection

__all__ = ["HaplotypeAnnotator", "SampleSelection"]
