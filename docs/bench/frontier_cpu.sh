#!/usr/bin/env bash
# Issue #19's table (docs/samplers.md, "The few-step frontier"): one teacher, its progressive (PD) students
# and its flow-map student at K = 1, 2, 4, 8, ODE (γ = 0) and SDE (γ = 0.25) steps, 64 samples of 64 tokens.
# The two students get the same budget: 750 optimizer steps at batch 32 (PD: 5 rounds of 150 steps).
# TEACHER: a quickstart checkpoint (the embedding latent: docs/bench/quickstart_scale025_cpu.sh's run).
#   TEACHER=outputs/quickstart_scale0.25/run/checkpoints/final.ckpt OUT=outputs/frontier bash docs/bench/frontier_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
TEACHER=${TEACHER:?set TEACHER to a flow checkpoint}
OUT=${OUT:-outputs/frontier}
mkdir -p "$OUT"
SHORT="data.batch_size=32 trainer.max_time=null trainer.val_check_interval=150 callbacks.samples=null"
[ -f "$OUT/pd/checkpoints/distilled.ckpt" ] || /usr/bin/time -v python train.py experiment=quickstart_embed stage=distill \
  teacher_ckpt="$TEACHER" stage.steps_per_round=150 $SHORT hydra.run.dir="$OUT/pd" > "$OUT/pd.log" 2>&1
[ -f "$OUT/fm/checkpoints/flow_map.ckpt" ] || /usr/bin/time -v python train.py experiment=quickstart_embed stage=flow_map \
  teacher_ckpt="$TEACHER" stage.levels=4 trainer.max_steps=750 $SHORT hydra.run.dir="$OUT/fm" > "$OUT/fm.log" 2>&1
COMMON="sampler.steps=1,2,4,8 sampler.gamma=0,0.25 num_samples=64 batch_size=64 print_samples=0"
python sample.py -m ckpt_path="$TEACHER" sampler=sde $COMMON hydra.sweep.dir="$OUT/teacher" > "$OUT/teacher.log" 2>&1
python sample.py -m ckpt_path="$OUT/pd/checkpoints/distilled.ckpt" sampler=student $COMMON \
  hydra.sweep.dir="$OUT/pd_sweep" > "$OUT/pd_sweep.log" 2>&1
python sample.py -m ckpt_path="$OUT/fm/checkpoints/flow_map.ckpt" sampler=flow_map $COMMON \
  hydra.sweep.dir="$OUT/fm_sweep" > "$OUT/fm_sweep.log" 2>&1
python -m textflow.sampling.fidelity "$TEACHER" --sampler ode --steps 1 2 4 8 --out "$OUT/fidelity/teacher"
python -m textflow.sampling.fidelity "$OUT/pd/checkpoints/distilled.ckpt" --sampler student --steps 1 2 4 8 --out "$OUT/fidelity/pd"
python -m textflow.sampling.fidelity "$OUT/fm/checkpoints/flow_map.ckpt" --sampler flow_map --steps 1 2 4 8 --out "$OUT/fidelity/fm"

# The one-hot latent (docs/samplers.md, "The few-step frontier"): its teacher at the quickstart's 800 steps
# (beyond the 15-minute budget: a one-hot step costs about twice as much), sampled on the uniform and on
# FLM's grid, then the same two students.
OH="$OUT/onehot"
[ -f "$OH/run/checkpoints/final.ckpt" ] || /usr/bin/time -v python train.py experiment=onehot trainer.max_time=null \
  hydra.run.dir="$OH/run" > "$OH.train.log" 2>&1
OHT="$OH/run/checkpoints/final.ckpt"
[ -f "$OH/pd/checkpoints/distilled.ckpt" ] || python train.py experiment=onehot stage=distill teacher_ckpt="$OHT" \
  stage.steps_per_round=150 $SHORT hydra.run.dir="$OH/pd" > "$OH.pd.log" 2>&1
[ -f "$OH/fm/checkpoints/flow_map.ckpt" ] || python train.py experiment=onehot stage=flow_map teacher_ckpt="$OHT" \
  stage.levels=4 trainer.max_steps=750 $SHORT hydra.run.dir="$OH/fm" > "$OH.fm.log" 2>&1
FLM="time@sampler.time=flm sampler.time.vocab_size=4096"
python sample.py -m ckpt_path="$OHT" sampler=sde $COMMON hydra.sweep.dir="$OH/teacher" > "$OH.teacher.log" 2>&1
python sample.py -m ckpt_path="$OHT" sampler=sde $COMMON $FLM hydra.sweep.dir="$OH/teacher_flm" > "$OH.teacher_flm.log" 2>&1
python sample.py -m ckpt_path="$OHT" sampler=sde sampler.steps=16,32 sampler.gamma=0,0.25 num_samples=64 batch_size=64 \
  print_samples=0 $FLM hydra.sweep.dir="$OH/teacher_flm_long" > "$OH.teacher_flm_long.log" 2>&1
python sample.py -m ckpt_path="$OH/pd/checkpoints/distilled.ckpt" sampler=student $COMMON hydra.sweep.dir="$OH/pd_sweep" \
  > "$OH.pd_sweep.log" 2>&1
python sample.py -m ckpt_path="$OH/fm/checkpoints/flow_map.ckpt" sampler=flow_map $COMMON hydra.sweep.dir="$OH/fm_sweep" \
  > "$OH.fm_sweep.log" 2>&1
python -m textflow.sampling.fidelity "$OHT" --sampler ode --steps 1 2 4 8 --out "$OUT/fidelity/onehot_teacher"
python -m textflow.sampling.fidelity "$OH/pd/checkpoints/distilled.ckpt" --sampler student --steps 1 2 4 8 --out "$OUT/fidelity/onehot_pd"
python -m textflow.sampling.fidelity "$OH/fm/checkpoints/flow_map.ckpt" --sampler flow_map --steps 1 2 4 8 --out "$OUT/fidelity/onehot_fm"
