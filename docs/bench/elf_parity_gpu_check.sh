#!/bin/bash
# The device run behind "The ELF-parity paths on the H200" (docs/benchmarks.md) and the H200-trained
# models of docs/samplers.md, docs/conditioning.md and docs/training.md. Run from the repo root on a GPU
# machine with textflow importable (PYTHONPATH=. or pip install -e .) and the corpus cache in
# $TEXTFLOW_CACHE (the Shakespeare texts, the trained BPE and the cached token ids travel with the repo
# when the machine has no network); OUT = results folder. Checkpoints are brought back for CPU judging.
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${OUT:-outputs/elf_gpu}; mkdir -p "$OUT"
Q="experiment=quickstart_embed trainer=gpu trainer.precision=32 backbone.self_condition=true module.self_cond_prob=0.5"
python train.py $Q backbone.scale_tokens=2 hydra.run.dir=$OUT/tok                  # one-pass SC-CFG
python train.py $Q condition@module.condition=masks hydra.run.dir=$OUT/cond         # conditional
python train.py $Q hydra.run.dir=$OUT/sc &                                          # the GPU-trained control
python train.py $Q module.decoder_prob=0.5 hydra.run.dir=$OUT/dec &                 # ELF's decoder objective
wait
S="evaluation=diversity reference=false num_samples=256 batch_size=256 print_samples=2 device=cuda diagnostics=false"
for P in 32 bf16; do for C in false true; do                                          # CUDA / bf16 / compile paths
  python sample.py ckpt_path=$OUT/tok/checkpoints/final.ckpt $S precision=$P compile=$C sampler=sde \
    sampler.steps=32 sampler.sc_scale=3 hydra.run.dir=$OUT/s_tok_${P}_$C
done; done
python sample.py ckpt_path=$OUT/cond/checkpoints/final.ckpt $S precision=bf16 compile=true sampler=sde sampler.steps=32 \
  sampler.cfg_scale=2 prompt_source=heldout prompt_tokens=16 num_samples=64 batch_size=64 hydra.run.dir=$OUT/s_cond
python sample.py ckpt_path=$OUT/cond/checkpoints/final.ckpt $S precision=bf16 sampler=commit sampler.rule=schedule \
  sampler.steps=8 prompt="ROMEO: __6__ the king" num_samples=4 batch_size=4 hydra.run.dir=$OUT/s_cond_infill
