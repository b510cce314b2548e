"""Windows for the example fine-tuning task: 200 bases upstream of a gene start vs intergenic.

Reads prodigal's GFF for every genome of manifest.tsv (scripts/make_gene_start_task.sh runs
prodigal) and writes a TSV of regions with a header:

    chrom  start  end  name  strand  label  split  genome

- `start`: the `--width` bases immediately upstream of each complete gene's start codon, on the
  gene's strand (for a '-' strand gene, the bases after its end, read reverse-complemented);
- `background`: as many windows (per genome) lying wholly in intergenic space (no gene on either
  strand), strand drawn at random, and whose 3' end is not within `--exclusion` bases of a
  gene start on that strand (so no background window is a shifted copy of a `start` one).
`split` is the genome's split in manifest.tsv (whole genomes held out). Deterministic (--seed).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def read_genes(gff: Path):
    """{contig: [(start0, end0, strand)]} of complete genes (partial=00)."""
    genes: dict[str, list[tuple[int, int, str]]] = {}
    for line in gff.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if fields[2] != "CDS" or "partial=00" not in fields[8]:
            continue
        genes.setdefault(fields[0], []).append((int(fields[3]) - 1, int(fields[4]), fields[6]))
    return genes


def contig_lengths(fasta: Path) -> dict[str, int]:
    fai = Path(str(fasta) + ".fai")
    return {row[0]: int(row[1]) for row in csv.reader(fai.open(), delimiter="\t")}


def genome_windows(genes, lengths, width: int, exclusion: int, rng):
    positives, negatives = [], []
    for contig, length in lengths.items():
        rows = genes.get(contig, [])
        coding = np.zeros(length, dtype=bool)
        starts = {"+": [], "-": []}
        for start, end, strand in rows:
            coding[start:end] = True
            if strand == "+" and start - width >= 0:
                positives.append((contig, start - width, start, "+"))
            elif strand == "-" and end + width <= length:
                positives.append((contig, end, end + width, "-"))
            starts[strand].append(start if strand == "+" else end)
        # window [s, s + width) is intergenic when no coding base lies inside it
        coding_before = np.concatenate([[0], np.cumsum(coding)])
        free = np.flatnonzero(coding_before[width:] - coding_before[:-width] == 0)
        plus, minus = np.array(sorted(starts["+"])), np.array(sorted(starts["-"]))
        for s in rng.permutation(free):
            strand = "+" if rng.random() < 0.5 else "-"
            three_prime = s + width if strand == "+" else s
            near = plus if strand == "+" else minus
            if len(near) and np.min(np.abs(near - three_prime)) <= exclusion:
                continue
            negatives.append((contig, int(s), int(s) + width, strand))
            if len(negatives) >= 4 * len(positives) + 10:  # plenty to draw from
                break
    return positives, negatives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genomes", default="data/genomes", help="fetch_genomes.sh output (manifest.tsv)")
    parser.add_argument("--gff-dir", required=True, help="prodigal GFF files, GENOME.gff")
    parser.add_argument("--out", required=True, help="output TSV")
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--exclusion", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    genomes = Path(args.genomes)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    total = {"start": 0, "background": 0}
    with tmp.open("w") as handle:
        handle.write("chrom\tstart\tend\tname\tstrand\tlabel\tsplit\tgenome\n")
        for row in csv.DictReader((genomes / "manifest.tsv").open(), delimiter="\t"):
            genes = read_genes(Path(args.gff_dir) / f"{row['name']}.gff")
            positives, negatives = genome_windows(genes, contig_lengths(genomes / row["fasta"]), args.width,
                                                  args.exclusion, rng)
            chosen = rng.permutation(len(negatives))[:len(positives)]
            labelled = [(p, "start") for p in positives] + [(negatives[i], "background") for i in sorted(chosen)]
            for number, ((contig, start, end, strand), label) in enumerate(labelled):
                handle.write(f"{contig}\t{start}\t{end}\t{row['name']}_{label}{number}\t{strand}\t{label}\t"
                             f"{row['split']}\t{row['name']}\n")
                total[label] += 1
    tmp.replace(out)
    print(f"gene_start_windows: {total['start']} start and {total['background']} background windows -> {out}")


if __name__ == "__main__":
    main()
