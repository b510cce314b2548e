"""A balanced sample of the gene-start task (scripts/gene_start_windows.py), per split and label.

    python scripts/sample_gene_starts.py data/gene_starts/regions.tsv --train 5000 --val 1000 \
        --test 2000 --out data/gene_starts/sample.tsv                 # regions (read with --fasta)
    python scripts/sample_gene_starts.py data/gene_starts/regions.tsv --train 60 --val 20 --test 20 \
        --sequences data/genomes --out tests/fixtures/finetune/gene_starts.tsv   # sequences inline

Counts are per label (so --train 5000 gives 10,000 training windows). With --sequences the output
holds the bases themselves (column `sequence`, on the window's strand) instead of coordinates:
the tiny CI fixture needs no genome.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("regions")
    parser.add_argument("--train", type=int, required=True)
    parser.add_argument("--val", type=int, required=True)
    parser.add_argument("--test", type=int, required=True)
    parser.add_argument("--sequences", metavar="GENOMES_DIR", help="write sequences read from these genomes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.regions), delimiter="\t"))
    rng = np.random.default_rng(args.seed)
    chosen = []
    for split in ("train", "val", "test"):
        for label in ("start", "background"):
            pool = [r for r in rows if r["split"] == split and r["label"] == label]
            picks = rng.choice(len(pool), size=min(getattr(args, split), len(pool)), replace=False)
            chosen += [pool[i] for i in sorted(picks)]
    genomes = {}
    if args.sequences:
        from genossm.io.fasta import open_fasta
        from genossm.tokenizer import reverse_complement

        genomes = {name: open_fasta(Path(args.sequences) / f"{name}.fa.gz")
                   for name in sorted({r["genome"] for r in chosen})}
    with open(args.out, "w") as handle:
        columns = ["name", "sequence", "label", "split", "genome"] if args.sequences else list(rows[0])
        handle.write("\t".join(columns) + "\n")
        for row in chosen:
            if args.sequences:
                bases = genomes[row["genome"]].fetch(row["chrom"], int(row["start"]), int(row["end"])).upper()
                row = {**row, "sequence": reverse_complement(bases) if row["strand"] == "-" else bases}
            handle.write("\t".join(row[c] for c in columns) + "\n")
    print(f"sample_gene_starts: {len(chosen)} rows -> {args.out}")


if __name__ == "__main__":
    main()
