#!/usr/bin/env bash
# Issue #17 on this CPU, the fifth block of docs/benchmarks.md ("Sampling at the machine's limit"): how the
# share of the matmul peak that K = 4 sampling reaches varies from run to run on a shared host, and why.
# 0. the contention probe: the peak GEMM and an ode K = 4 batch alternated in one process, 20 rounds
#    (docs/bench/contention_probe.py): the GEMM holds while the batch moves;
# 1. bench sampling, ode / sde / student / commit / adaptive at K = 4, 5 rounds each, RUNS times eager and
#    COMPILED times with --compile, in fresh processes, alternated;
# 2. the distribution over those runs of each sampler's share of the peak, how many runs reach 75 %, and
#    commit's and adaptive's time per network call against ode's in the same run.
# Run from the repository root (about 10 minutes with the defaults):
#   bash docs/bench/sampling_share_runs.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}
RUNS=${RUNS:-8}
COMPILED=${COMPILED:-4}
OUT=${BENCH_OUT:-outputs/bench}/share-runs-$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p "$OUT"

python docs/bench/contention_probe.py "$CKPT" 20
for run in $(seq 1 "$RUNS"); do
  modes=(eager)
  if [ "$run" -le "$COMPILED" ]; then modes+=(compiled); fi
  for mode in "${modes[@]}"; do
    flag=()
    if [ "$mode" = compiled ]; then flag=(--compile); fi
    python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 \
      --repeats 5 "${flag[@]}" --out "$OUT" >/dev/null 2>&1
    echo "run $run ($mode) done"
  done
done

python docs/bench/share_summary.py "$OUT"
echo "raw rows: $OUT"
