#!/usr/bin/env bash
# Issue #17: does adaptive's closeness resolution (sampler.levels=16, at most 17 times per step: its
# network call costs about what sde's does) change its quality or its noise? The Muon quickstart of
# docs/bench/quickstart_cpu.sh, gamma 0.75, K = 4 and 8, seeds 0, 1, 2, 64 samples each: compare with the
# continuous-closeness points of docs/bench/adaptive_seeds_cpu.sh (docs/samplers.md, "adaptive").
#   bash docs/bench/adaptive_levels_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart}
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=adaptive sampler.steps=4,8 \
  sampler.gamma=0.75 sampler.levels=16 seed=0,1,2 num_samples=64 batch_size=64 print_samples=0 \
  hydra.sweep.dir="$OUT/adaptive_levels" > "$OUT.adaptive_levels.log" 2>&1
python -m textflow.sampling.report "$OUT"   # the seeds table gains the levels=16 rows beside the continuous ones
