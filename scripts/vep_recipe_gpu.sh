#!/usr/bin/env bash
# Train a zero-shot VEP recipe within a wall-clock budget, then put the model through the VEP
# benchmark (`python benchmarks/vep compare`: every score definition, pooled and within
# substitution classes, beside the Markov baseline at its best k) on the prebuilt SNV set.
#
#   scripts/vep_recipe_data.sh                    # once, with network: .vep_gpu/ (sets, Chr1 < 25 Mb)
#   scripts/vep_recipe_gpu.sh plant 6 OUTDIR      # on a GPU: configs/train/plant.yaml
#   scripts/vep_recipe_gpu.sh bacteria 6 OUTDIR   # configs/train/bacteria-vep.yaml; needs data/genomes
#   scripts/vep_recipe_gpu.sh plant 1 OUTDIR --set model_overrides.n_layers=2   # extra args: recipe overrides
#
# MINUTES is the whole run's wall clock: dependency check, a throughput probe, training, the
# held-out test pass and the benchmark. The cosine schedule needs its length up front, so the
# probe (scripts/training_probe.py: model steps alone, compilation absorbed by its warm-up)
# turns the seconds left for training into optimizer steps; trainer.max_time_s stops a slower
# run anyway. plant trains on Chr1 bases 1..25,000,000 (the set's own reference; the recipe holds
# out its last 4% for validation and test); bacteria on the 11 training genomes of
# data/genomes/manifest-species.tsv, validated and tested on the held-out genomes.
#
# OUTDIR gets vep_<set>_recipe.json (the benchmark, the training metrics, the probe, the command
# and the wall time of each stage), vep_<set>_recipe.md (the tables), pretrain.log, compare.log
# and model/ (config.json + model.safetensors).
#
# Environment: VEP_DATA (.vep_gpu), VEP_DEVICE (cuda), VEP_LIMIT (SNVs per class scored; all),
# EVAL_SECONDS (kept for the test pass and the benchmark; 80), STARTUP_SECONDS (pretrain's
# start before its first step; 30), PROBE_SECONDS (10).
set -euo pipefail

set_name="${1:?usage: vep_recipe_gpu.sh plant|bacteria MINUTES OUTDIR [--set KEY=VALUE ...]}"
minutes="${2:?MINUTES}"
out="${3:?OUTDIR}"
shift 3
overrides=("$@")  # recipe overrides, to the probe and to pretrain
started=$SECONDS
data="${VEP_DATA:-.vep_gpu}"
device="${VEP_DEVICE:-cuda}"
eval_seconds="${EVAL_SECONDS:-80}"
startup_seconds="${STARTUP_SECONDS:-30}"
case "$set_name" in
    plant) recipe=plant ;;
    bacteria) recipe=bacteria-vep ;;
    *) echo "vep_recipe_gpu: set must be plant or bacteria, found '$set_name'" >&2; exit 2 ;;
esac
[[ -f "$data/$set_name/labels.tsv" ]] || { echo "vep_recipe_gpu: $data/$set_name missing; run scripts/vep_recipe_data.sh" >&2; exit 1; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export PYTHONUNBUFFERED=1
stage() { echo "vep_recipe_gpu: $((SECONDS - started)) s: $*" >&2; }

# What the GPU image may lack, installed without network into /tmp/site: pysam, pyfaidx and
# biopython (.whl/), lightning (its image has pytorch-lightning; DATA/wheels); then genossm
# itself, editable (kernels/ and cli/ map into the package).
wheels=()
python3 -c "import pysam, pyfaidx, Bio" 2>/dev/null || wheels+=(.whl/*.whl)
python3 -c "import lightning" 2>/dev/null || wheels+=("$data"/wheels/lightning-*.whl)
if ((${#wheels[@]})); then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
check='import pysam, lightning, genossm.kernels, genossm.cli.main'
python3 -c "$check" 2>/dev/null || { python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
                                     python3 -c "$check"; }
stage "dependencies ready"

work="${TMPDIR:-/tmp}/vep_recipe_$set_name"
rm -rf "$work"
mkdir -p "$work/set"
cp "$data/$set_name"/{labels.tsv,variants.vcf,set.json} "$work/set/"
gzip -dc "$data/$set_name/reference.fa.gz" > "$work/set/reference.fa"
if [[ "$set_name" == plant ]]; then
    inputs=(--fasta "$work/set/reference.fa")  # Chr1 below 25 Mb: the set's reference holds nothing else
else
    manifest=data/genomes/manifest-species.tsv
    [[ -f "$manifest" ]] || { echo "vep_recipe_gpu: $manifest missing; carry data/genomes (scripts/fetch_genomes.sh)" >&2; exit 1; }
    split_files() { awk -F'\t' -v s="$1" 'NR > 1 && $3 == s { print "data/genomes/" $4 }' "$manifest"; }
    mapfile -t train < <(split_files train)
    mapfile -t val < <(split_files val)
    mapfile -t test < <(split_files test)
    inputs=(--fasta "${train[@]}" --val-fasta "${val[@]}" --test-fasta "${test[@]}")
fi
set_args=()
for ((i = 0; i + 1 < ${#overrides[@]}; i++)); do
    if [[ "${overrides[i]}" == --set ]]; then set_args+=(--set "${overrides[i + 1]}"); fi
done

stage "probe"
python3 scripts/training_probe.py --config "$recipe" --seconds "${PROBE_SECONDS:-10}" "${set_args[@]}" > "$work/probe.json"
cat "$work/probe.json" >&2
read -r tokens_per_step train_seconds steps < <(python3 -c '
import json, sys
probe = json.load(open(sys.argv[1]))
minutes, spent, eval_seconds, startup = map(float, sys.argv[2:])
tokens_per_step = probe["batch_size"] * probe["window_length"]
train_seconds = max(10.0, minutes * 60 - spent - eval_seconds - startup)
# 0.9: data loading, logging and the end-of-run validation are not in the probe figure.
steps = max(20, int(0.9 * train_seconds * probe["tokens_per_second"] / tokens_per_step))
print(tokens_per_step, int(train_seconds), steps)
' "$work/probe.json" "$minutes" "$((SECONDS - started))" "$eval_seconds" "$startup_seconds")
stage "training: $steps steps of $tokens_per_step tokens in about $train_seconds s"
python3 -m genossm.cli.main pretrain --config "$recipe" "${inputs[@]}" --out "$work/run" \
    --set trainer.max_steps="$steps" --set trainer.val_every="$steps" --set trainer.checkpoint_every="$steps" \
    --set optim.warmup_steps="$(((steps + 29) / 30))" --set trainer.max_time_s="$((train_seconds + 30))" \
    "${overrides[@]}" 2>&1 | tee "$out/pretrain.log" >&2
train_done=$SECONDS

stage "benchmark"
limit=()
if [[ -n "${VEP_LIMIT:-}" ]]; then limit=(--limit "$VEP_LIMIT"); fi
python3 benchmarks/vep compare "$work/set" --model "$work/run/model" --device "$device" --batch-size 64 \
    "${limit[@]}" --json "$out/vep_${set_name}_recipe.json" > "$out/vep_${set_name}_recipe.md" 2> "$out/compare.log" \
    || { tail -20 "$out/compare.log" >&2; exit 1; }
rm -rf "$out/model"
cp -r "$work/run/model" "$out/model"

RUN_COMMAND="scripts/vep_recipe_gpu.sh $set_name $minutes OUTDIR ${overrides[*]}" python3 -c '
import json, os, sys
path, metrics, probe, recipe = sys.argv[1:5]
minutes, total, until_trained, planned_seconds, planned_steps = map(float, sys.argv[5:])
result = json.load(open(path))
result["recipe_run"] = {
    "command": os.environ["RUN_COMMAND"].strip(), "recipe": recipe, "minutes_budget": minutes,
    "wall_seconds_total": total, "wall_seconds_until_trained": until_trained,
    "planned_train_seconds": planned_seconds, "planned_steps": int(planned_steps),
    "probe": json.load(open(probe)), "pretrain_metrics": json.load(open(metrics)),
}
with open(path, "w") as handle:
    handle.write(json.dumps(result, indent=1) + "\n")
' "$out/vep_${set_name}_recipe.json" "$work/run/metrics.json" "$work/probe.json" "$recipe" "$minutes" \
    "$((SECONDS - started))" "$((train_done - started))" "$train_seconds" "$steps"
stage "done: $out/vep_${set_name}_recipe.json"
