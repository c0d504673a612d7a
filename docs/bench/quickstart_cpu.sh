#!/usr/bin/env bash
# The Muon quickstart at embedding scale 1.0 (the default until 2026-11-30; docs/results.md, "The
# quickstart at scale 1.0"): train it on the whole 2-core CPU, then one sampler sweep with the AR twin's row. TWIN: a checkpoint of
# `python train.py experiment=ar_twin` (trained the same way, for the same budget).
#   TWIN=<twin run>/checkpoints/final.ckpt bash docs/bench/quickstart_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart}
TWIN=${TWIN:?set TWIN to an experiment=ar_twin checkpoint}
[ -f "$OUT/run/checkpoints/final.ckpt" ] || /usr/bin/time -v python train.py experiment=quickstart_embed \
  autoencoder.scale=1.0 hydra.run.dir="$OUT/run" > "$OUT.train.log" 2>&1
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=ode,sde,adaptive,commit \
  sampler.steps=1,4,8,16,32 num_samples=64 batch_size=64 print_samples=2 ar_twin="$TWIN" \
  hydra.sweep.dir="$OUT/sweep" > "$OUT.sweep.log" 2>&1
# the SDE's γ on this model (γ = 1.5 collapses it): K = 4 and 32
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=sde sampler.steps=4,32 \
  sampler.gamma=0.25,0.5,0.75,1 num_samples=64 batch_size=64 print_samples=2 \
  hydra.sweep.dir="$OUT/gamma" > "$OUT.gamma.log" 2>&1
# adaptive against sde at the γ that do not collapse this model (K = 4 and 8; sde K = 4 is in $OUT/gamma)
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=adaptive,sde sampler.steps=4,8 \
  sampler.gamma=0.5,0.75,1 num_samples=64 batch_size=64 print_samples=0 \
  hydra.sweep.dir="$OUT/adaptive" > "$OUT.adaptive.log" 2>&1
python -m textflow.sampling.report "$OUT"   # every run of the three sweeps on one plane (docs/results.md figure)
