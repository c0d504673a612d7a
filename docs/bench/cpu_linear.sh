#!/usr/bin/env bash
# Issue #17 on this CPU: the oneDNN inference linears (textflow/kernels/linear.py) against PyTorch's own.
# 0. ode K = 4, batch 32 x 64, in fresh processes alternating TEXTFLOW_CPU_LINEAR=aten / onednn, three
#    rounds of 12 batches each (median of the last 10);
# 1. bench sampling with --cpu-linear aten and onednn, alternated twice at K = 4 (every sampler) and once
#    at K = 16, each row against both matmul peaks (PyTorch's GEMM and oneDNN's, timed in the same run);
# 2. what the kernel changes in the samples: the same sampler from the same noise on both kernels, on the
#    Muon quickstart and the one-hot quickstart (fidelity, --reference-cpu-linear aten).
# 3. the compiled path and dit_small training against the same peak; 4. bench matched on both kernels.
# Run on an idle machine; docs/benchmarks.md, "Sampling at the machine's limit".
#   bash docs/bench/cpu_linear.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}
OUT=${BENCH_OUT:-outputs/bench}
for round in 1 2 3; do
  for kernel in aten onednn; do
    TEXTFLOW_CPU_LINEAR=$kernel python docs/bench/ode_batch_times.py "$CKPT" "$kernel"
  done
done
for round in 1 2; do
  for kernel in aten onednn; do
    python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 \
      --repeats 5 --cpu-linear "$kernel" --out "$OUT"
  done
done
for kernel in aten onednn; do
  python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,commit,adaptive --steps 16 --repeats 3 \
    --cpu-linear "$kernel" --out "$OUT"
done
for run in quickstart quickstart_onehot; do
  for spec in ode sde:gamma=0.25; do
    python -m textflow.sampling.fidelity "outputs/$run/run/checkpoints/final.ckpt" --sampler "$spec" \
      --reference "$spec" --reference-steps same --reference-cpu-linear aten --steps 4 16 \
      --out "outputs/$run/cpu_linear_${spec/:/_}"
  done
done
# 3. the compiled path (inductor: PyTorch's GEMM, its own fusions) and training (PyTorch's kernels, which
#    need gradients), both against the same two-GEMM peak
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 --repeats 5 \
  --compile --out "$OUT"
python -m textflow.bench train --preset dit_small --steps 30 --out "$OUT"
# 4. speed at matched quality on the one-hot quickstart's sweeps (the sweeps of
#    docs/bench/quickstart_onehot_cpu.sh), the flow's picks and the AR twin on each kernel, alternated twice
for round in 1 2; do
  for kernel in aten onednn; do
    TEXTFLOW_CPU_LINEAR=$kernel python -m textflow.bench matched --report outputs/quickstart_onehot/sweep/report.csv \
      --report outputs/quickstart_onehot/gamma/report.csv --out "$OUT/matched-$kernel"
  done
done
