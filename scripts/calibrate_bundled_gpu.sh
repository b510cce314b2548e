#!/usr/bin/env bash
# The bundled model's calibration background on a GPU: 100,000 SNVs + 12,000 indels drawn from its
# 11 training genomes and scored by `genossm calibrate` (issue 19).
#
#   scripts/calibrate_bundled_gpu.sh prepare     (here, once) copy the training genomes, bgzip FASTA
#                                                with .fai/.gzi, from data/genomes (scripts/fetch_genomes.sh)
#                                                into .calib_data/ (git-ignored; 9.1 MB), so a machine
#                                                without samtools/bgzip can read them
#   OUT=dir scripts/calibrate_bundled_gpu.sh     (on the GPU machine) calibrate a temporary copy of the
#                                                bundled model; on success its calibration.json and
#                                                config.json land in $OUT, beside calibrate.log and
#                                                calibration_build.json (the figure: device, seconds, rate)
#
# Then copy $OUT/calibration.json and $OUT/config.json into genossm/resources/model/ (config.json
# gains only its "calibration" entry; the weights are not touched). A failed run leaves only the log.
#
# The training genomes are the ones the model's config.json records (training.training.recipe.data
# .fasta), read in that order, so the background is the same for the same seed wherever it runs.
# Settings (environment): DEVICE (cuda), SNVS (100000), INDELS (12000, 1,000 per length class),
# SEED (0), BATCH (256 windows per model call), MAX_SECONDS (300: `genossm calibrate
# --max-seconds`, which stops with an error and writes nothing once a tenth of the background shows
# that the run would take longer), GENOMES_DIR (.calib_data), MODEL (genossm/resources/model),
# PYTHON (python3). Expected on one H200: 112,000 variants at 750 variants/s or more (the measured
# rate of `genossm score` at batch 16 on dense VCFs; larger batches fill the GPU better), so under
# 3 minutes with model load and the draw.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
model="${MODEL:-$repo/genossm/resources/model}"
genomes_dir="${GENOMES_DIR:-$repo/.calib_data}"

# The training genomes' file names, from the model's own training record.
training_genomes() {
    "$python" - "$model/config.json" <<'EOF'
import json, os, sys
recipe = json.load(open(sys.argv[1]))["training"]["training"]["recipe"]
print("\n".join(os.path.basename(path) for path in recipe["data"]["fasta"]))
EOF
}

mapfile -t names < <(training_genomes)
[[ ${#names[@]} -gt 0 ]] || { echo "calibrate_bundled_gpu: $model/config.json records no training genomes" >&2; exit 1; }

if [[ "${1:-}" == "prepare" ]]; then
    source_dir="${SOURCE_DIR:-$repo/data/genomes}"
    mkdir -p "$genomes_dir"
    for name in "${names[@]}"; do
        for file in "$name" "$name.fai" "$name.gzi"; do
            [[ -f "$source_dir/$file" ]] || { echo "calibrate_bundled_gpu: $source_dir/$file missing; run scripts/fetch_genomes.sh" >&2; exit 1; }
        done
        # FASTA first, then its indexes, times kept: genossm trusts an index no older than its FASTA.
        cp -p "$source_dir/$name" "$source_dir/$name.fai" "$source_dir/$name.gzi" "$genomes_dir/"
    done
    echo "calibrate_bundled_gpu: ${#names[@]} training genomes in $genomes_dir ($(du -sh "$genomes_dir" | cut -f1))" >&2
    exit 0
fi

out="${OUT:?set OUT to the directory for the calibrated model copy and the log}"
fastas=()
for name in "${names[@]}"; do
    [[ -f "$genomes_dir/$name" ]] || { echo "calibrate_bundled_gpu: $genomes_dir/$name missing; run '$0 prepare' where data/genomes exists and carry $genomes_dir" >&2; exit 1; }
    fastas+=("$genomes_dir/$name")
done
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$model" "$work/model"
chmod -R u+w "$work/model"
echo "calibrate_bundled_gpu: ${SNVS:-100000} SNVs + ${INDELS:-12000} indels from ${#fastas[@]} genomes on ${DEVICE:-cuda}, batch ${BATCH:-256}, at most ${MAX_SECONDS:-300} s" >&2
started=$(date +%s)
"$python" -m genossm.cli.main calibrate --model "$work/model" --fasta "${fastas[@]}" \
    -n "${SNVS:-100000}" --indels "${INDELS:-12000}" --seed "${SEED:-0}" --device "${DEVICE:-cuda}" \
    --batch-size "${BATCH:-256}" --max-seconds "${MAX_SECONDS:-300}" 2>&1 | tee "$out/calibrate.log" >&2
cp "$work/model/calibration.json" "$work/model/config.json" "$out/"
seconds=$(( $(date +%s) - started ))
# The build's figure, for benchmarks/results/: what calibration.json records of the run, the device's
# name and the whole command's seconds (process start, model load and the draw included).
"$python" - "$out" "$seconds" "${DEVICE:-cuda}" > "$out/calibration_build.json" <<'EOF'
import json, sys, torch
out, seconds, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
source = json.load(open(f"{out}/calibration.json"))["source"]
name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
print(json.dumps({"benchmark": "bundled model calibration background (scripts/calibrate_bundled_gpu.sh)",
                  "device_name": name, "torch": torch.__version__, "command_seconds": seconds, **source}, indent=2))
EOF
echo "calibrate_bundled_gpu: done in $seconds s; copy $out/calibration.json and $out/config.json into genossm/resources/model/" >&2
