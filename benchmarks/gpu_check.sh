#!/usr/bin/env bash
# The GPU checks and figures, in one go on a CUDA machine with mmbench installed:
#   1. the CUDA tests (tests/test_cuda.py: GPU loss = CPU loss, plugin checks, a run that repeats
#      itself and resumes to the same scores);
#   2. the README's quick run on the GPU;
#   3. the training-step benchmarks on the GPU (benchmarks/bench_training.py, batch 256);
#   4. a cpu-tier MoPoE run, its time and scores to set beside the 2-core CPU's records.
# Roughly shortest first, so a device session that ends early still brings back the most.
# Each step is time-boxed and runs even where one before it failed. Data and classifiers come from
# MMBENCH_DATA (the PolyMNIST build takes under a minute where it is missing).
# Usage: bash benchmarks/gpu_check.sh OUTDIR [RUNDIR]   (OUTDIR gets the logs and result records)
set -u
out=${1:?usage: gpu_check.sh OUTDIR [RUNDIR]}
runs=${2:-$(mktemp -d)}
mkdir -p "$out" "$runs"
export PYTHONUNBUFFERED=1
step() { local name=$1 limit=$2; shift 2; local began=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1; local rc=$?
  echo "$name: rc=$rc in $((SECONDS - began)) s" | tee -a "$out/summary.txt"; }
keep_result() { [ -f "$runs/$1/result.json" ] && cp "$runs/$1/result.json" "$out/result-$1.json"; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >> "$out/summary.txt" 2>&1
step cuda-tests 180 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/test_cuda.py
step data 90 python3 -m mmbench.cli data build polymnist
step run-quick 240 python3 -m mmbench.cli run --model mopoe --dataset polymnist --device cuda --quiet --out "$runs/quick"
keep_result quick
step bench-cuda 150 env BENCH_DEVICE=cuda BENCH_ROUNDS=20 python3 -m pytest -q -s -p no:cacheprovider \
  benchmarks/bench_training.py --benchmark-only -k "matmul or training_step or mopoe_step or bf16 or compiled"
step run-cpu-tier 300 python3 -m mmbench.cli run --model mopoe --dataset polymnist --tier cpu --device cuda --out "$runs/cpu-tier"
keep_result cpu-tier
