#!/usr/bin/env bash
# Train genossm's bundled model (genossm/resources/model) on one GPU within a time budget.
#
#   scripts/fetch_genomes.sh                       # data/genomes/*.fa.gz + manifest*.tsv
#   GENOSSM_KERNELS=reference TRAIN_SECONDS=250 scripts/train_bundled_model.sh runs/bundled
#   STEPS=9400 MANIFEST=data/genomes/manifest.tsv scripts/train_bundled_model.sh runs/x \
#       --set model_overrides={n_layers: 5}         # extra arguments go to genossm pretrain
#
# The default manifest is manifest-species.tsv: the test genomes' species are held out of training
# (docs/bundled_model.md says why). The last step stores the model's weights in float16
# ($out/bundled, what genossm/resources/model holds).
#
# Unless STEPS is given, a short probe run measures tokens per second on this machine and the
# real run gets as many optimizer steps as fit in TRAIN_SECONDS (the cosine schedule needs its
# length up front). The sequence-length warm-up spans the first fifth (256 -> 512 -> 1024 bases).
# Train, validation and test genomes come from the manifest: whole genomes are held out.
set -euo pipefail

out="${1:-runs/bundled}"
shift || true
genomes="${GENOMES:-data/genomes}"
budget="${TRAIN_SECONDS:-250}"
manifest="${MANIFEST:-$genomes/manifest-species.tsv}"
[[ -f "$manifest" ]] || { echo "train_bundled_model: $manifest missing; run scripts/fetch_genomes.sh" >&2; exit 1; }

split_files() { awk -F'\t' -v s="$1" -v d="$genomes" 'NR > 1 && $3 == s { print d "/" $4 }' "$manifest"; }
mapfile -t train < <(split_files train)
mapfile -t val < <(split_files val)
mapfile -t test < <(split_files test)

common=(--config bacteria --fasta "${train[@]}" --val-fasta "${val[@]}" --test-fasta "${test[@]}")

steps="${STEPS:-}"
if [[ -z "$steps" ]]; then
    # Probe: 120 steps at the final window length, no validation, to measure throughput.
    genossm -q pretrain "${common[@]}" --out "$out/probe" --set trainer.max_steps=120 \
        --set trainer.val_every=100000 --set trainer.checkpoint_every=100000 --set length_warmup=[] \
        --set data.test_windows=64 "$@"
    tokens_per_second="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_second"])' "$out/probe/metrics.json")"
    tokens_per_step=$((64 * 1024))
    steps="$(python3 -c "print(max(200, int($budget * $tokens_per_second / $tokens_per_step) // 100 * 100))")"
    echo "train_bundled_model: probe ${tokens_per_second} tokens/s -> ${steps} steps in ${budget} s" >&2
fi
warmup=$((steps / 10))

genossm pretrain "${common[@]}" --out "$out/run" --set trainer.max_steps="$steps" \
    --set trainer.val_every=$((steps / 4)) --set trainer.checkpoint_every=$((steps / 4)) \
    --set "length_warmup=[{steps: $warmup, window_length: 256}, {steps: $warmup, window_length: 512}]" \
    --set optim.warmup_steps=$((steps / 40)) "$@"
genossm convert "$out/run/model" "$out/bundled" --weights-dtype float16
