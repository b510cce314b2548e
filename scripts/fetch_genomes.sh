#!/usr/bin/env bash
# Fetch the bacterial genomes used to pretrain genossm's bundled model.
#
# Source: the Debian packages `ragout-examples` (E. coli, S. aureus, H. pylori, V. cholerae
# reference assemblies) and `kleborate-examples` (four Klebsiella pneumoniae assemblies), fetched
# with `apt-get download` (no root needed) and unpacked with `dpkg -x`. Each genome is written as
# a bgzipped FASTA with its .fai/.gzi index into data/genomes/ (gitignored), and
# data/genomes/manifest.tsv lists every genome with its split.
#
# Splits hold out WHOLE genomes: test = one Klebsiella and one S. aureus strain, validation =
# another pair of the same species, train = the other 16 genomes (manifest.tsv). A second
# manifest, manifest-species.tsv, also leaves the other Klebsiella and S. aureus strains out of
# training (species held out; see docs/bundled_model.md for why both exist). Draft contig sets in
# ragout-examples (*_contigs.fasta.gz) are assemblies of strains already present as references,
# so they are left out rather than leak a held-out strain into training.
#
# Usage: scripts/fetch_genomes.sh [OUT_DIR]      (default data/genomes)
#   DEB_DIR=/path/with/debs scripts/fetch_genomes.sh   reuses .deb files already downloaded.
set -euo pipefail

out_dir="${1:-data/genomes}"
packages=(ragout-examples kleborate-examples)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in dpkg bgzip samtools; do
    command -v "$tool" >/dev/null || { echo "fetch_genomes: '$tool' not found; install it (apt-get install dpkg tabix samtools)" >&2; exit 1; }
done

mkdir -p "$work/debs" "$work/root" "$out_dir"
for package in "${packages[@]}"; do
    local_deb=""
    if [[ -n "${DEB_DIR:-}" ]]; then
        local_deb="$(ls "$DEB_DIR"/"${package}"_*.deb 2>/dev/null | head -n 1 || true)"
    fi
    if [[ -n "$local_deb" ]]; then
        cp "$local_deb" "$work/debs/"
    else
        (cd "$work/debs" && apt-get download "$package")
    fi
done
for deb in "$work"/debs/*.deb; do
    dpkg -x "$deb" "$work/root"
done

doc="$work/root/usr/share/doc"
# name <tab> species <tab> split <tab> source path (relative to /usr/share/doc of the packages)
manifest_rows=(
    "NTUH-K2044	Klebsiella pneumoniae	test	kleborate/examples/data/NTUH-K2044.fna.xz"
    "N315	Staphylococcus aureus	test	ragout/examples/S.Aureus/references/N315.fasta.gz"
    "MGH78578	Klebsiella pneumoniae	val	kleborate/examples/data/MGH78578.fna.xz"
    "COL	Staphylococcus aureus	val	ragout/examples/S.Aureus/references/COL.fasta.gz"
    "Kp1084	Klebsiella pneumoniae	train	kleborate/examples/data/Klebs_Kp1084.fna.xz"
    "HS11286	Klebsiella pneumoniae	train	kleborate/examples/data/Klebs_HS11286.fna.xz"
    "RF122	Staphylococcus aureus	train	ragout/examples/S.Aureus/references/RF122.fasta.gz"
    "JKD6008	Staphylococcus aureus	train	ragout/examples/S.Aureus/references/JKD6008.fasta.gz"
    "USA300_FPR3757	Staphylococcus aureus	train	ragout/examples/S.Aureus/references/USA300_FPR3757.fasta.gz"
    "DH1	Escherichia coli	train	ragout/examples/E.Coli/references/DH1.fasta.gz"
    "MG1655-K12	Escherichia coli	train	ragout/examples/E.Coli/references/MG1655-K12.fasta.gz"
    "ELS37	Helicobacter pylori	train	ragout/examples/H.Pylori/references/ELS37.fasta.gz"
    "G27	Helicobacter pylori	train	ragout/examples/H.Pylori/references/G27.fasta.gz"
    "Gambia94_24	Helicobacter pylori	train	ragout/examples/H.Pylori/references/Gambia94_24.fasta.gz"
    "Puno120	Helicobacter pylori	train	ragout/examples/H.Pylori/references/Puno120.fasta.gz"
    "SJM180	Helicobacter pylori	train	ragout/examples/H.Pylori/references/SJM180.fasta.gz"
    "H1	Vibrio cholerae	train	ragout/examples/V.Cholerae/references/H1.fasta.gz"
    "O1_Inaba	Vibrio cholerae	train	ragout/examples/V.Cholerae/references/O1_Inaba.fasta.gz"
    "O1_biovar	Vibrio cholerae	train	ragout/examples/V.Cholerae/references/O1_biovar.fasta.gz"
    "O395	Vibrio cholerae	train	ragout/examples/V.Cholerae/references/O395.fasta.gz"
)

manifest="$out_dir/manifest.tsv"
printf 'name\tspecies\tsplit\tfasta\tsource\n' > "$manifest.tmp"
for row in "${manifest_rows[@]}"; do
    IFS=$'\t' read -r name species split source <<< "$row"
    src="$doc/$source"
    [[ -f "$src" ]] || { echo "fetch_genomes: $source missing from the unpacked packages" >&2; exit 1; }
    fasta="$name.fa.gz"
    case "$src" in
        *.xz) xz -dc "$src" ;;
        *.gz) gzip -dc "$src" ;;
    esac | bgzip -c > "$out_dir/$fasta.tmp"
    mv "$out_dir/$fasta.tmp" "$out_dir/$fasta"
    samtools faidx "$out_dir/$fasta"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$species" "$split" "$fasta" "$source" >> "$manifest.tmp"
done
mv "$manifest.tmp" "$manifest"
# A harder split for comparing models with the Markov baseline: the test and validation species
# (Klebsiella, S. aureus) are absent from training, so neither model can look up near-identical
# strains. Same test and validation genomes; their species' other strains are left out.
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 && $3 == "train" && ($2 == "Klebsiella pneumoniae" ||
    $2 == "Staphylococcus aureus") { $3 = "unused" } { print }' "$manifest" > "$out_dir/manifest-species.tsv"
echo "fetch_genomes: wrote ${#manifest_rows[@]} genomes and $manifest" >&2
