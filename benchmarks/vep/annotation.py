"""Gene models read from GFF3: prodigal's gene calls (bacteria) and RefSeq's annotation (plant).

Coordinates are 0-based half-open throughout, as in genossm.io; GFF's 1-based inclusive
[start, end] becomes [start - 1, end).
"""

from __future__ import annotations

import gzip
import logging
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

log = logging.getLogger("genossm.benchmarks.vep")


@dataclass
class Transcript:
    """One coding transcript: CDS segments (and exons) in genomic order, 0-based half-open."""

    name: str
    contig: str
    strand: str  # "+" or "-"
    cds: list[tuple[int, int]]
    exons: list[tuple[int, int]] = field(default_factory=list)

    @property
    def start(self) -> int:
        return min(s for s, _ in self.exons or self.cds)

    @property
    def end(self) -> int:
        return max(e for _, e in self.exons or self.cds)

    @property
    def cds_length(self) -> int:
        return sum(e - s for s, e in self.cds)

    def introns(self) -> list[tuple[int, int]]:
        """Gaps between consecutive exons, genomic order."""
        exons = sorted(self.exons)
        return [(a_end, b_start) for (_, a_end), (b_start, _) in zip(exons, exons[1:]) if b_start > a_end]


@dataclass
class Annotation:
    """Transcripts to draw coding and splice SNVs from, and every annotated interval per contig
    (any gene, exon or CDS of any transcript) so that control classes can avoid them all."""

    transcripts: list[Transcript]
    genes: dict[str, list[tuple[int, int]]]  # contig -> gene-level intervals (any biotype)
    exons: dict[str, list[tuple[int, int]]]  # contig -> every exon and CDS of every transcript


def gff_rows(path: str | Path):
    """(contig, type, start0, end, strand, phase, attributes dict) per feature line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                continue
            attributes = {}
            for item in fields[8].split(";"):
                if "=" in item:
                    key, value = item.split("=", 1)
                    attributes[key] = unquote(value)
            yield fields[0], fields[2], int(fields[3]) - 1, int(fields[4]), fields[6], fields[7], attributes


def run_prodigal(fasta: str | Path, out_gff: Path) -> Path:
    """Call genes with prodigal (single-genome mode, table 11) unless `out_gff` exists."""
    if out_gff.exists():
        return out_gff
    out_gff.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_gff.with_suffix(".tmp")
    opener = gzip.open if str(fasta).endswith(".gz") else open
    with opener(fasta, "rb") as handle:
        sequence = handle.read()
    try:
        subprocess.run(["prodigal", "-q", "-p", "single", "-g", "11", "-f", "gff", "-o", str(tmp)],
                       input=sequence, check=True)
    except FileNotFoundError:
        raise SystemExit("prodigal not found: apt-get install prodigal (Debian package)") from None
    tmp.rename(out_gff)
    return out_gff


def read_prodigal(path: str | Path, rename: dict[str, str] | None = None) -> Annotation:
    """Prodigal's complete genes (partial=00); contigs renamed through `rename` (prodigal keeps
    the FASTA header's first word)."""
    rename = rename or {}
    transcripts, genes = [], defaultdict(list)
    for contig, kind, start, end, strand, _, attributes in gff_rows(path):
        if kind != "CDS":
            continue
        contig = rename.get(contig, contig)
        genes[contig].append((start, end))
        if attributes.get("partial", "00") != "00":
            continue
        transcripts.append(Transcript(f"{contig}_{attributes['ID'].split('_')[-1]}", contig, strand,
                                      [(start, end)], [(start, end)]))
    return Annotation(transcripts, dict(genes), dict(genes))


def read_refseq(path: str | Path, below: int | None = None) -> Annotation:
    """RefSeq GFF3: for every protein-coding gene the mRNA with the longest CDS (first listed on a
    tie); all genes, pseudogenes, exons and CDS of every transcript as intervals. With `below`,
    only features that end at or before it are read at all."""
    parents: dict[str, str] = {}  # transcript id -> gene id
    cds, exons = defaultdict(list), defaultdict(list)
    where: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    genes, annotated = defaultdict(list), defaultdict(list)
    for contig, kind, start, end, strand, _, attributes in gff_rows(path):
        if below is not None and end > below:
            continue
        if kind in ("region", "sequence_feature"):
            continue
        identifier, parent = attributes.get("ID", ""), attributes.get("Parent", "")
        if "Parent" not in attributes:  # gene-level features: gene, pseudogene
            genes[contig].append((start, end))
            continue
        if kind == "mRNA":
            parents[identifier] = parent
            where[identifier] = (contig, strand)
            order.append(identifier)
        elif kind == "CDS":
            cds[parent].append((start, end))
            annotated[contig].append((start, end))
        elif kind == "exon":
            exons[parent].append((start, end))
            annotated[contig].append((start, end))
    best: dict[str, Transcript] = {}
    for identifier in order:
        if identifier not in cds:
            continue
        contig, strand = where[identifier]
        transcript = Transcript(identifier.removeprefix("rna-"), contig, strand, sorted(cds[identifier]),
                                sorted(exons[identifier]))
        gene = parents[identifier]
        if gene not in best or transcript.cds_length > best[gene].cds_length:
            best[gene] = transcript
    return Annotation(list(best.values()), dict(genes), dict(annotated))
