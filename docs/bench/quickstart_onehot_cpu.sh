#!/usr/bin/env bash
# The quickstart's numbers in docs/results.md since it adopted the one-hot recipe (2026-11-30, issue #15):
# train it with the README's command on the idle 2-core CPU, then, on FLM's time grid, one sampler sweep
# (ode, sde at its default γ 1.5, adaptive and commit at K = 1 ... 32) with the AR twin's row, and the
# γ grid of sde at K = 4 ... 32 (γ = 0 is the sweep's ode, bit for bit). 64 samples of 64 tokens per point.
# TWIN: a checkpoint of `python train.py experiment=ar_twin`.
#   TWIN=<twin run>/checkpoints/final.ckpt bash docs/bench/quickstart_onehot_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart_onehot}
TWIN=${TWIN:?set TWIN to an experiment=ar_twin checkpoint}
CKPT="$OUT/run/checkpoints/final.ckpt"
mkdir -p "$OUT"
[ -f "$CKPT" ] || /usr/bin/time -v python train.py experiment=quickstart hydra.run.dir="$OUT/run" > "$OUT/train.log" 2>&1
COMMON="time@sampler.time=flm num_samples=64 batch_size=64"
python sample.py -m ckpt_path="$CKPT" sampler=ode,sde,adaptive,commit sampler.steps=1,4,8,16,32 $COMMON \
  print_samples=2 ar_twin="$TWIN" hydra.sweep.dir="$OUT/sweep" > "$OUT/sweep.log" 2>&1
python sample.py -m ckpt_path="$CKPT" sampler=sde sampler.steps=4,8,16,32 sampler.gamma=0.1,0.25,0.5,1 $COMMON \
  print_samples=2 hydra.sweep.dir="$OUT/gamma" > "$OUT/gamma.log" 2>&1
python -m textflow.sampling.report "$OUT"   # every run of both sweeps on one plane
