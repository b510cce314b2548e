"""A built set on disk: variants.vcf, labels.tsv, set.json and the reference FASTA beside them.

labels.tsv columns: id, chrom, pos (1-based, as in the VCF), ref, alt, class, substitution
(S>W, W>S, S>S, W>W), feature (transcript), strand, detail (codon change ref>alt on the coding
strand, the intron base of a splice site, or the distance of a deep-intronic base to the nearer
intron end).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .build import SNV

LABEL_COLUMNS = ("id", "chrom", "pos", "ref", "alt", "class", "substitution", "feature", "strand", "detail")


def snv_id(index: int) -> str:
    return f"vep{index + 1:06d}"


def write_set(out: Path, snvs: list[SNV], contigs: dict[str, int], record: dict) -> None:
    """variants.vcf, labels.tsv and set.json (`record`: seed, counts, provenance, command)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "variants.vcf.tmp", "w") as vcf:
        vcf.write("##fileformat=VCFv4.2\n##source=genossm benchmarks/vep\n##reference=reference.fa\n")
        for name, length in contigs.items():
            vcf.write(f"##contig=<ID={name},length={length}>\n")
        vcf.write('##INFO=<ID=VEP_CLASS,Number=1,Type=String,Description="benchmark class of the SNV">\n')
        vcf.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for i, v in enumerate(snvs):
            vcf.write(f"{v.contig}\t{v.pos + 1}\t{snv_id(i)}\t{v.ref}\t{v.alt}\t.\t.\tVEP_CLASS={v.label}\n")
    with open(out / "labels.tsv.tmp", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        for i, v in enumerate(snvs):
            writer.writerow([snv_id(i), v.contig, v.pos + 1, v.ref, v.alt, v.label, v.substitution, v.feature,
                             v.strand, v.detail])
    (out / "set.json.tmp").write_text(json.dumps(record, indent=2) + "\n")
    for name in ("variants.vcf", "labels.tsv", "set.json"):
        (out / f"{name}.tmp").rename(out / name)


def read_labels(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
