#!/usr/bin/env bash
# Prepare, on a machine with network, everything scripts/vep_recipe_gpu.sh needs on a GPU machine
# without it, into one git-ignored folder (default .vep_gpu/) to carry there:
#
#   scripts/vep_recipe_data.sh [DEST]
#
#   DEST/plant/     the A. thaliana SNV set (labels.tsv, variants.vcf, set.json) and its reference,
#                   Chr1 bases 1..25,000,000 only (reference.fa.gz): the plant recipe's training
#                   data and the Markov baseline's counts too
#   DEST/bacteria/  the held-out bacterial SNV set and its reference (the training genomes are
#                   data/genomes/, scripts/fetch_genomes.sh: carry that folder as well)
#   DEST/wheels/    the `lightning` wheel (this venv's version), installed there only if missing
#
# The sets are built with `python benchmarks/vep build --count 250 --seed 0` into runs/vep/<set>
# unless already there (bacteria needs prodigal and scripts/fetch_genomes.sh's genomes).
set -euo pipefail

dest="${1:-.vep_gpu}"
count="${COUNT:-250}"
for set in plant bacteria; do
    work="runs/vep/$set"
    if [[ ! -f "$work/labels.tsv" ]]; then
        python benchmarks/vep build --set "$set" --count "$count" --seed 0 --out "$work"
    fi
    mkdir -p "$dest/$set"
    cp "$work/labels.tsv" "$work/variants.vcf" "$work/set.json" "$dest/$set/"
    gzip -6 -c "$work/reference.fa" > "$dest/$set/reference.fa.gz"
done
version="$(python -c 'import lightning; print(lightning.__version__)')"
python -m pip download -q --no-deps --only-binary=:all: "lightning==$version" -d "$dest/wheels"
grep -qxF "/$dest/" .git/info/exclude || echo "/$dest/" >> .git/info/exclude
du -sh "$dest" "$dest"/*
