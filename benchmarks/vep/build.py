"""Labelled SNV sets: every candidate SNV of each class enumerated, then `count` drawn per class.

Classes (damaging first, then their neutral-ish controls):
- coding (`codons.coding_snvs`): start_lost, stop_gained, missense, synonymous, from the
  transcripts of an `annotation.Annotation`; positions covered by the CDS of two transcripts of
  the set (overlapping genes) are left out, so each SNV has one consequence.
- splice_donor / splice_acceptor: the intron's first two bases (GT) and last two (AG), on the
  transcript's strand, canonical introns only; deep_intronic: intron bases at least
  `deep_margin` from both intron ends. None of them inside any annotated exon or CDS of any
  transcript (an alternative isoform's exon is not intronic).
- intergenic: outside every annotated gene, exon and CDS.
Every SNV has A/C/G/T and no N within `context` bases on either side, so every scorer sees the
same clean context. Draws are deterministic from (seed, class): the same seed gives the same
set, and changing one class's count leaves the other classes' draws alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .annotation import Annotation, Transcript
from .codons import CLASSES as CODING_CLASSES
from .codons import BASES, GeneticCode, check_cds, codon_name, coding_snvs

log = logging.getLogger("genossm.benchmarks.vep")

SPLICE_CLASSES = ("splice_donor", "splice_acceptor", "deep_intronic")
ALL_CLASSES = ("start_lost", "stop_gained", "missense", "synonymous", "splice_donor", "splice_acceptor",
               "deep_intronic", "intergenic")
WEAK, STRONG = {"A", "T"}, {"C", "G"}


def substitution_class(ref: str, alt: str) -> str:
    """S (G/C) or W (A/T) of the reference base, '>', of the alternative: S>W, W>S, S>S or W>W."""
    return ("S" if ref in STRONG else "W") + ">" + ("S" if alt in STRONG else "W")


@dataclass
class SNV:
    contig: str
    pos: int  # 0-based
    ref: str
    alt: str
    label: str
    feature: str = "."  # transcript or gene name
    strand: str = "."
    detail: str = "."  # codon change, splice site, distance to the intron's ends

    @property
    def substitution(self) -> str:
        return substitution_class(self.ref, self.alt)


class Genome:
    """Contig token arrays (uint8, genossm ids) laid end to end, so one int64 indexes any base."""

    def __init__(self, contigs: dict[str, np.ndarray], context: int):
        self.names = list(contigs)
        self.tokens = contigs
        lengths = [len(t) for t in contigs.values()]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.context = context
        self.clean = {name: clean_mask(t, context) for name, t in contigs.items()}

    def locate(self, global_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.searchsorted(self.offsets, global_pos, side="right") - 1
        return index, global_pos - self.offsets[index]


def clean_mask(tokens: np.ndarray, context: int) -> np.ndarray:
    """True where the base and `context` bases either side are A/C/G/T (inside the contig)."""
    bad = np.concatenate([np.ones(context, bool), tokens > 3, np.ones(context, bool)]).astype(np.int64)
    window = np.convolve(bad, np.ones(2 * context + 1, dtype=np.int64), mode="valid")  # (L,)
    return window == 0


def interval_mask(length: int, intervals: list[tuple[int, int]]) -> np.ndarray:
    depth = np.zeros(length + 1, dtype=np.int32)
    for start, end in intervals:
        depth[max(start, 0)] += 1
        depth[min(end, length)] -= 1
    return np.cumsum(depth[:-1])


def coding_positions(transcript: Transcript) -> np.ndarray:
    """Genomic positions of the coding sequence, in transcript order."""
    ranges = [np.arange(s, e) for s, e in sorted(transcript.cds)]
    positions = np.concatenate(ranges)
    return positions if transcript.strand == "+" else positions[::-1]


def complement(tokens: np.ndarray) -> np.ndarray:
    return np.where(tokens < 4, 3 - tokens.astype(np.int64), tokens)


class Candidates:
    """Per class: global positions and, for coding classes, the alt base and a description."""

    def __init__(self):
        self.positions: dict[str, list[np.ndarray]] = {c: [] for c in ALL_CLASSES}
        self.alts: dict[str, list[np.ndarray]] = {c: [] for c in ALL_CLASSES}
        self.info: dict[str, list[np.ndarray]] = {c: [] for c in ALL_CLASSES}

    def add(self, label: str, positions: np.ndarray, alts: np.ndarray | None, info: np.ndarray) -> None:
        """alts None: all three alternative bases of each position are candidates."""
        if alts is None:
            positions, info = np.repeat(positions, 3), np.repeat(info, 3)
            alts = np.tile(np.arange(1, 4), len(positions) // 3)  # resolved as (ref + k) % 4
            alts = -alts  # negative: an offset from the reference base, not a base
        self.positions[label].append(positions.astype(np.int64))
        self.alts[label].append(alts.astype(np.int64))
        self.info[label].append(info.astype(np.int64))

    def arrays(self, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.positions[label]:
            return (np.zeros(0, np.int64),) * 3
        positions, alts, info = (np.concatenate(part[label]) for part in (self.positions, self.alts, self.info))
        # One candidate per (position, alt): introns of overlapping transcripts list a base twice.
        _, first = np.unique(positions * 8 + alts + 4, return_index=True)
        return positions[first], alts[first], info[first]


def enumerate_candidates(genome: Genome, annotation: Annotation, code: GeneticCode, classes: set[str],
                         deep_margin: int = 50) -> tuple[Candidates, list[Transcript], Counter]:
    """Every candidate SNV of the wanted classes. `info` per candidate: transcript index, times
    4096 the ref codon and alt codon (coding), or the signed distance to the intron end
    (splice / deep intronic)."""
    candidates, skipped = Candidates(), Counter()
    transcripts = [t for t in annotation.transcripts if t.contig in genome.tokens]
    masks = {}
    for name, tokens in genome.tokens.items():
        chosen_cds = [iv for t in transcripts if t.contig == name for iv in t.cds]
        masks[name] = (interval_mask(len(tokens), chosen_cds),
                       interval_mask(len(tokens), annotation.exons.get(name, [])) > 0,
                       interval_mask(len(tokens), annotation.genes.get(name, [])) > 0)
    for index, transcript in enumerate(transcripts):
        name = transcript.contig
        tokens, offset, clean = genome.tokens[name], genome.offsets[genome.names.index(name)], genome.clean[name]
        cds_depth, in_exon, _ = masks[name]
        if transcript.cds and classes & set(CODING_CLASSES):
            positions = coding_positions(transcript)
            coding = tokens[positions] if transcript.strand == "+" else complement(tokens[positions])
            reason = check_cds(coding.astype(np.uint8), code)
            if reason:
                skipped[reason] += 1
            else:
                snvs = coding_snvs(coding.astype(np.uint8), code)
                genomic = positions[snvs.offset]
                keep = (cds_depth[genomic] == 1) & clean[genomic]
                alt = snvs.alt if transcript.strand == "+" else complement(snvs.alt)
                info = index * 4096 * 64 + snvs.ref_codon * 64 + snvs.alt_codon
                for k, label in enumerate(CODING_CLASSES):
                    if label in classes:
                        pick = keep & (snvs.consequence == k)
                        candidates.add(label, offset + genomic[pick], alt[pick], info[pick])
        if classes & set(SPLICE_CLASSES):
            add_intron_candidates(candidates, transcript, index, tokens, offset, clean, in_exon, classes,
                                  deep_margin, skipped)
    if "intergenic" in classes:
        for name, tokens in genome.tokens.items():
            cds_depth, in_exon, in_gene = masks[name]
            free = np.flatnonzero(genome.clean[name] & ~in_exon & ~in_gene & (cds_depth == 0))
            candidates.add("intergenic", genome.offsets[genome.names.index(name)] + free, None,
                           np.full(len(free), -1))
    return candidates, transcripts, skipped


def add_intron_candidates(candidates: Candidates, transcript: Transcript, index: int, tokens: np.ndarray,
                          offset: int, clean: np.ndarray, in_exon: np.ndarray, classes: set[str],
                          deep_margin: int, skipped: Counter) -> None:
    for start, end in transcript.introns():
        if end - start < 20:
            skipped["intron shorter than 20"] += 1
            continue
        low = "".join(BASES[b] if b < 4 else "N" for b in tokens[start:start + 2])
        high = "".join(BASES[b] if b < 4 else "N" for b in tokens[end - 2:end])
        # Transcript strand GT..AG; on the minus strand the genome reads CT..AC.
        canonical = (low, high) == (("GT", "AG") if transcript.strand == "+" else ("CT", "AC"))
        if not canonical:
            skipped["non-canonical intron"] += 1
        donor = np.array([start, start + 1]) if transcript.strand == "+" else np.array([end - 1, end - 2])
        acceptor = np.array([end - 2, end - 1]) if transcript.strand == "+" else np.array([start + 1, start])
        for label, sites in (("splice_donor", donor), ("splice_acceptor", acceptor)):
            if label in classes and canonical:
                keep = clean[sites] & ~in_exon[sites]
                # info: the intron base, +1/+2 from the donor end, -2/-1 from the acceptor end
                info = np.array([1, 2]) if label == "splice_donor" else np.array([-2, -1])
                candidates.add(label, offset + sites[keep], None, index * 4096 * 64 + 64 + info[keep])
        if "deep_intronic" in classes and end - start > 2 * deep_margin:
            sites = np.arange(start + deep_margin, end - deep_margin)
            keep = clean[sites] & ~in_exon[sites]
            # capped so the packed info never spills into the transcript index (4096 * 64 per transcript)
            distance = np.minimum(np.minimum(sites - start, end - 1 - sites), 250_000)
            candidates.add("deep_intronic", offset + sites[keep], None, index * 4096 * 64 + 64 + 1000 + distance[keep])


def draw(genome: Genome, candidates: Candidates, transcripts: list[Transcript], counts: dict[str, int],
         seed: int) -> tuple[list[SNV], dict[str, int]]:
    """`counts[label]` SNVs per class without replacement (all of them when fewer exist), sorted
    by contig and position; also the number of candidates per class."""
    snvs, available = [], {}
    for class_index, label in enumerate(ALL_CLASSES):
        if label not in counts:
            continue
        positions, alts, info = candidates.arrays(label)
        available[label] = len(positions)
        rng = np.random.default_rng([seed, class_index])
        picked = np.sort(rng.choice(len(positions), size=min(counts[label], len(positions)), replace=False))
        contig_index, local = genome.locate(positions[picked])
        for i, c, p in zip(picked, contig_index, local):
            name = genome.names[c]
            ref = int(genome.tokens[name][p])
            alt = int(alts[i]) if alts[i] >= 0 else (ref - int(alts[i])) % 4
            snvs.append(describe(SNV(name, int(p), BASES[ref], BASES[alt], label), int(info[i]), transcripts))
    snvs.sort(key=lambda v: (genome.names.index(v.contig), v.pos, v.alt))
    return snvs, available


def describe(snv: SNV, info: int, transcripts: list[Transcript]) -> SNV:
    if info < 0:
        return snv
    transcript = transcripts[info // (4096 * 64)]
    snv.feature, snv.strand = transcript.name, transcript.strand
    rest = info % (4096 * 64)
    if snv.label in CODING_CLASSES:
        snv.detail = f"{codon_name(rest // 64)}>{codon_name(rest % 64)}"
    elif snv.label in ("splice_donor", "splice_acceptor"):
        snv.detail = f"intron{rest - 64:+d}"
    else:
        snv.detail = f"distance={rest - 64 - 1000}"
    return snv
