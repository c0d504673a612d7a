#!/usr/bin/env bash
# The recipe screen of docs/recipes.md: every row is the quickstart (experiment=quickstart_embed) at half its
# step budget (400 steps, warm-up 50) with one lever changed (first screen: against AdamW; second
# screen, rows muon_*: on top of the Muon quickstart), then the same sampler sweep
# (ode/sde x K 4/32, 64 samples of 64 tokens, judge SmolLM2-135M). Runs one row after another on the
# 2-core CPU; a finished row (its eval/report.csv exists) is skipped when the script is rerun.
#   bash docs/bench/recipes_cpu.sh [row ...]        (default: every row)
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${RECIPES_OUT:-outputs/recipes}
BUDGET="experiment=quickstart_embed trainer.max_steps=400 module.scheduler.warmup_steps=50 trainer.max_time=00:00:20:00 trainer.val_check_interval=200 callbacks.model_checkpoint.every_n_train_steps=200"
SWEEP="sampler=ode,sde sampler.steps=4,32 num_samples=64 batch_size=64 print_samples=2"

# Rows of the first screen: one lever against the AdamW quickstart of that time (AdamW pinned).
ADAMW="optimizer@module.optimizer=adamw"
# Rows of the second screen: one lever on top of today's quickstart (Muon); the `muon` row is their base.
declare -A ROWS=(
  [base]="$ADAMW"
  [lr3e-3]="$ADAMW module.optimizer.lr=3e-3"
  [uniform_t]="$ADAMW time@module.train_time=uniform"
  [noisier_t]="$ADAMW module.train_time.mean=-1.0"
  [muon]="optimizer@module.optimizer=muon"
  [muon_noisier_t]="module.train_time.mean=-1.0"
  [muon_self_cond]="backbone.self_condition=true module.self_cond_prob=0.5"
  [muon_decoder_step]="module.decoder_prob=0.5"
  [muon_latent32]="autoencoder.latent_dim=32"
  [muon_latent128]="autoencoder.latent_dim=128"
  [muon_scale0.5]="autoencoder.scale=0.5"
  [muon_scale2]="autoencoder.scale=2.0"
  [muon_readout0.1]="module.readout_weight=0.1"
  [muon_readout3]="module.readout_weight=3.0"
  [muon_constant_lr]="module.scheduler.min_ratio=1.0"
  [muon_lr0.05]="module.optimizer.muon_lr=0.05"
  [muon_scale0.5_noisier_t]="autoencoder.scale=0.5 module.train_time.mean=-1.0"
  [muon_scale0.25]="autoencoder.scale=0.25"
)
ORDER=(base lr3e-3 ar_latent uniform_t muon noisier_t
       muon_noisier_t muon_self_cond muon_latent32 muon_latent128 muon_scale0.5 muon_scale2
       muon_readout0.1 muon_readout3 muon_constant_lr muon_lr0.05 muon_decoder_step muon_scale0.5_noisier_t muon_scale0.25)
[ $# -gt 0 ] && ORDER=("$@")

evaluate() {  # $1 row name, $2 checkpoint
  python sample.py -m ckpt_path="$2" $SWEEP hydra.sweep.dir="$OUT/$1/eval" > "$OUT/$1/eval.log" 2>&1
}

for row in "${ORDER[@]}"; do
  [ -f "$OUT/$row/eval/report.csv" ] && { echo "skip $row (done)"; continue; }
  mkdir -p "$OUT/$row"
  start=$(date +%s)
  if [ "$row" = ar_latent ]; then
    # The committing readout: a latent-conditioned AR decoder with a 4-d prefix-only latent
    # (experiment=ar_bottleneck), two stages of 200 steps each (about the other rows' wall time).
    python train.py experiment=ar_bottleneck stage=autoencoder data.batch_size=64 trainer.max_steps=200 \
      stage.scheduler.warmup_steps=50 trainer.max_time=00:00:20:00 trainer.val_check_interval=200 callbacks.model_checkpoint.every_n_train_steps=200 \
      hydra.run.dir="$OUT/$row/ae" > "$OUT/$row/ae.log" 2>&1
    python train.py experiment=ar_bottleneck stage=flow autoencoder_ckpt="$OUT/$row/ae/checkpoints/final.ckpt" \
      data.batch_size=64 trainer.max_steps=200 module.scheduler.warmup_steps=50 trainer.max_time=00:00:20:00 \
      trainer.val_check_interval=100 callbacks.model_checkpoint.every_n_train_steps=100 \
      hydra.run.dir="$OUT/$row/run" > "$OUT/$row/train.log" 2>&1
  else
    python train.py $BUDGET ${ROWS[$row]} hydra.run.dir="$OUT/$row/run" > "$OUT/$row/train.log" 2>&1
  fi
  echo "$row trained in $(( $(date +%s) - start )) s"
  evaluate "$row" "$OUT/$row/run/checkpoints/final.ckpt"
  echo "$row done in $(( $(date +%s) - start )) s"
done
