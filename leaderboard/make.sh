#!/usr/bin/env bash
# Regenerates the committed leaderboard and the CI regression reference from result records.
#   bash leaderboard/make.sh      # runs what is missing (finished runs are kept), then renders
# PolyMNIST boards: the cpu tier (about an hour per model on 2 CPU cores; MODELS, DATASETS and
# SEEDS choose what to run). The CI gate: every baseline on the synthetic set (quick tier, seeds
# 0-2, about a minute each), where models learn in seconds and a broken one is far outside the
# bands; each band is the mean over the 3 seeds +- max(4 std, 0.02) (`regress --spread`).
set -euo pipefail
cd "$(dirname "$0")/.."
baselines="unimodal mvae mmvae mopoe mmvaeplus"
run() {  # model dataset tier seed
  local out="leaderboard/records/$1-$2-$3-seed$4"
  [ -f "$out/result.json" ] || mmbench run --model "$1" --dataset "$2" --tier "$3" --seed "$4" --device cpu --quiet \
    --out "$out" $([ -f "$out/config.json" ] && echo --resume)
}
for seed in 0 1 2; do
  for model in $baselines; do run "$model" synthetic quick "$seed"; done
done
for seed in ${SEEDS:-0}; do
  for dataset in ${DATASETS:-polymnist}; do
    for model in ${MODELS:-mopoe}; do run "$model" "$dataset" cpu "$seed"; done
  done
done
mmbench leaderboard --results leaderboard/records --render leaderboard/
mmbench regress --results leaderboard/records --dataset synthetic --tier quick \
  --write-reference leaderboard/reference-quick.json --spread 4 --abs-tol 0.02 --metric latent_probe --metric likelihood
