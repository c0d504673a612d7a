#!/usr/bin/env bash
# `python -m textflow.bench sampling` on each CPU inference-linear backend (textflow/kernels/linear.py),
# alternated in fresh processes, ROUNDS times each (default 2), eager and compiled, so every backend sees
# the shared host in the same states. Rows and progress logs go to $BENCH_OUT/backends-ab-<time>/<backend>/
# (eager) and .../<backend>-compiled/; the table lines to stdout, prefixed with the backend.
# Run from the repository root (docs/benchmarks.md, "Sampling at the machine's limit", tenth block):
#   CKPT=outputs/reproduce/fast/distill/checkpoints/distilled.ckpt bash docs/bench/backends_ab.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
: "${CKPT:?set CKPT=<checkpoint>}"
OUT=${BENCH_OUT:-outputs/bench}/backends-ab-$(date -u +%Y-%m-%dT%H-%M-%SZ)
for round in $(seq "${ROUNDS:-2}"); do
  for compile in "" "--compile"; do
    for backend in ${BACKENDS:-onednn mkl}; do
      dir="$OUT/$backend${compile:+-compiled}"
      mkdir -p "$dir"
      python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student --steps 4 --repeats 7 \
        --cpu-linear "$backend" $compile --out "$dir" 2>>"$dir/progress.log" \
        | grep -E '^ *(ode|sde|student) ' | sed "s/^/$backend${compile:+ compiled}: /"
    done
  done
done
echo "raw rows: $OUT"
