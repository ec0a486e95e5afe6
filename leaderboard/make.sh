#!/usr/bin/env bash
# Regenerates the official quick-tier leaderboard: records, rendered tables/page/plots, and the
# CI regression reference. CPU, seed 0, the offline datasets; about 5 minutes per run on 2 cores.
# The reference pins conditional coherence only (band +-0.05): at the quick tier's few epochs the
# unconditional coherence of these barely trained models has no measured spread across CPUs yet.
#   bash leaderboard/make.sh            # runs what is missing, then renders
set -euo pipefail
cd "$(dirname "$0")/.."
models="${MODELS:-unimodal mvae mmvae mopoe mmvaeplus}"
datasets="${DATASETS:-polymnist translated_polymnist}"
for dataset in $datasets; do
  for model in $models; do
    out="leaderboard/records/$model-$dataset-quick-seed0"
    [ -f "$out/result.json" ] || mmbench run --model "$model" --dataset "$dataset" --tier quick --seed 0 --device cpu --quiet --out "$out"
  done
done
mmbench leaderboard --results leaderboard/records --render leaderboard/
mmbench regress --results leaderboard/records --dataset polymnist --tier quick \
  --write-reference leaderboard/reference-quick.json --abs-tol 0.05 --metric coherence/conditional
