#!/usr/bin/env bash
# The quickstart's numbers in docs/results.md (issue #15 targets): the full-budget quickstart with the second
# recipe screen's best lever (docs/recipes.md: autoencoder.scale=0.25, the default since 2026-11-30; the
# override is kept so the script reproduces the same run on any version), then ode at K = 4, 32 with the AR
# twin's row, sde at γ = 0.25, 0.5 (γ = 1.5 collapses a soft latent) and the K x γ grid of sde.
# TWIN: a checkpoint of `python train.py experiment=ar_twin`.
#   TWIN=<twin run>/checkpoints/final.ckpt bash docs/bench/quickstart_scale025_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart_scale0.25}
TWIN=${TWIN:?set TWIN to an experiment=ar_twin checkpoint}
mkdir -p "$OUT"
[ -f "$OUT/run/checkpoints/final.ckpt" ] || /usr/bin/time -v python train.py experiment=quickstart_embed \
  autoencoder.scale=0.25 hydra.run.dir="$OUT/run" > "$OUT/train.log" 2>&1
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=ode sampler.steps=4,32 num_samples=64 \
  batch_size=64 print_samples=2 ar_twin="$TWIN" hydra.sweep.dir="$OUT/ode" > "$OUT/ode.log" 2>&1
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=sde sampler.steps=4,32 \
  sampler.gamma=0.25,0.5 num_samples=64 batch_size=64 print_samples=2 hydra.sweep.dir="$OUT/sde" > "$OUT/sde.log" 2>&1
# the K x γ grid (γ = 0 is the ode bit for bit)
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=sde sampler.steps=1,2,4,8,16,32 \
  sampler.gamma=0,0.1,0.25,0.35 num_samples=64 batch_size=64 print_samples=0 hydra.sweep.dir="$OUT/grid" > "$OUT/grid.log" 2>&1
