#!/usr/bin/env bash
# Build the example fine-tuning task "gene start or not" from the genomes of fetch_genomes.sh.
#
# Prodigal (Debian package `prodigal`, fetched with `apt-get download` and unpacked with `dpkg -x`
# when it is not on PATH; no root needed) predicts the genes of every genome; then
# scripts/gene_start_windows.py writes data/gene_starts/regions.tsv: 200 bases upstream of each
# predicted gene start (label `start`, on the gene's strand) and as many random 200-base intergenic
# windows (label `background`, random strand), with the genome's split from manifest.tsv (whole
# genomes held out: the split of the bundled model's pretraining, so its test genomes were never
# seen). tests/fixtures/finetune/gene_starts.tsv is a small sample of this table, as sequences.
#
# Usage: scripts/make_gene_start_task.sh [GENOMES_DIR] [OUT_DIR]   (default data/genomes data/gene_starts)
set -euo pipefail

genomes="${1:-data/genomes}"
out_dir="${2:-data/gene_starts}"
[[ -f "$genomes/manifest.tsv" ]] || { echo "make_gene_start_task: $genomes/manifest.tsv missing; run scripts/fetch_genomes.sh first" >&2; exit 1; }
mkdir -p "$out_dir/prodigal"

prodigal_bin="$(command -v prodigal || true)"
if [[ -z "$prodigal_bin" ]]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download prodigal >/dev/null && dpkg -x prodigal_*.deb root)
    prodigal_bin="$work/root/usr/bin/prodigal"
fi

tail -n +2 "$genomes/manifest.tsv" | while IFS=$'\t' read -r name species split fasta source; do
    gff="$out_dir/prodigal/$name.gff"
    [[ -s "$gff" ]] && continue
    echo "make_gene_start_task: prodigal on $name ($species, $split)" >&2
    gzip -dc "$genomes/$fasta" | "$prodigal_bin" -q -f gff -o "$gff.tmp" -p single
    mv "$gff.tmp" "$gff"
done
python "$(dirname "$0")/gene_start_windows.py" --genomes "$genomes" --gff-dir "$out_dir/prodigal" \
    --out "$out_dir/regions.tsv"
