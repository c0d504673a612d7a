#!/usr/bin/env bash
# Issue #16: the adaptive-vs-sde comparison of docs/samplers.md on the Muon quickstart at scale 1.0 (the run of
# docs/bench/quickstart_cpu.sh, whose adaptive sweep is seed 0) repeated with seeds 1 and 2, so that the
# noise saving at equal quality is read over three seeds. 64 samples of 64 tokens per point.
#   bash docs/bench/adaptive_seeds_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart}
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=adaptive,sde sampler.steps=4,8 \
  sampler.gamma=0.5,0.75,1 seed=1,2 num_samples=64 batch_size=64 print_samples=0 \
  hydra.sweep.dir="$OUT/adaptive_seeds" > "$OUT.adaptive_seeds.log" 2>&1
python -m textflow.sampling.report "$OUT"   # every sweep of the model; the seeds table: mean ± std over seeds
