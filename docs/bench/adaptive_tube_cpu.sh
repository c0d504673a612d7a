#!/usr/bin/env bash
# Issue #16 on the shipped diag_tube model (docs/samplers.md, "adaptive" on experiment=diag_tube): train it
# for its 2,000 steps (the 28-minute cap lifted so that a shared CPU still gives the shipped step count),
# then ode, sde, adaptive (closeness margin, scale 0.25) and commit at K = 4 and 8, sde and adaptive at
# γ = 0.1, 0.25, 0.5, 1, 1.5, each point over seeds 0, 1, 2 (64 samples of 64 tokens per point).
#   bash docs/bench/adaptive_tube_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${TUBE_OUT:-outputs/tube_adaptive}
CKPT="$OUT/run/checkpoints/final.ckpt"
mkdir -p "$OUT"
[ -f "$CKPT" ] || /usr/bin/time -v python train.py experiment=diag_tube trainer.max_time=null \
  hydra.run.dir="$OUT/run" > "$OUT/train.log" 2>&1
COMMON="sampler.steps=4,8 seed=0,1,2 num_samples=64 batch_size=64 print_samples=0"
python sample.py -m ckpt_path="$CKPT" sampler=sde,adaptive sampler.gamma=0.5,1,1.5 $COMMON \
  hydra.sweep.dir="$OUT/churn" > "$OUT/churn.log" 2>&1
python sample.py -m ckpt_path="$CKPT" sampler=ode,commit $COMMON hydra.sweep.dir="$OUT/plain" > "$OUT/plain.log" 2>&1
# γ >= 0.5 collapses this soft latent (as γ = 1.5 does the embedding at scale 0.25): the small γ
python sample.py -m ckpt_path="$CKPT" sampler=sde,adaptive sampler.gamma=0.1,0.25 $COMMON \
  hydra.sweep.dir="$OUT/small_gamma" > "$OUT/small_gamma.log" 2>&1
python -m textflow.sampling.report "$OUT"   # both sweeps on one plane: quality against injected noise
