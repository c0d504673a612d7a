#!/bin/bash
# The device runs behind docs/diagnostics.md's latent-scale sweep, experiment=diag_tube and the AR
# bottleneck variants (one H100, all jobs in parallel, about 6 min each call). Run from the repo root
# with textflow importable and the corpus cache in $TEXTFLOW_CACHE; R = results folder.
R=${R:-outputs/diag_gpu}; mkdir -p $R
G="trainer=gpu data.num_workers=2 logger=csv"
scale_sweep() {  # scale: experiment=diag_sharp (K = 2 DABI), 3:40 on the GPU
  python train.py experiment=diag_sharp $G autoencoder.scale=$1 data.batch_size=128 trainer.max_steps=6000 \
    trainer.max_time=00:00:03:40 trainer.val_check_interval=500 callbacks.model_checkpoint.every_n_train_steps=1000 \
    hydra.run.dir=$R/diag_$1
  python -m textflow.diagnose $R/diag_$1/checkpoints/final.ckpt --steps 2 4 8 16 --blocks 128 --out $R/diag_$1/diagnostics
}
tube() {  # scale: experiment=diag_tube, diagnosed at K = 4, 8, 16 (6,000 steps at batch 128)
  python train.py experiment=diag_tube $G autoencoder.scale=$1 data.batch_size=128 trainer.max_steps=6000 \
    trainer.max_time=00:00:03:40 trainer.val_check_interval=500 callbacks.model_checkpoint.every_n_train_steps=1000 \
    hydra.run.dir=$R/tube_$1
  python -m textflow.diagnose $R/tube_$1/checkpoints/final.ckpt --steps 4 8 16 --blocks 256 --out $R/tube_$1/diagnostics
}
ar() {  # name overrides...: experiment=ar_bottleneck variants, both stages, then the commit ablation
  n=$1; shift
  python train.py experiment=ar_bottleneck stage=autoencoder $G "$@" trainer.max_steps=4000 \
    trainer.max_time=00:00:02:10 hydra.run.dir=$R/ar_$n/ae
  python train.py experiment=ar_bottleneck stage=flow $G "$@" trainer.max_steps=4000 trainer.max_time=00:00:02:10 \
    autoencoder_ckpt=$R/ar_$n/ae/checkpoints/final.ckpt hydra.run.dir=$R/ar_$n/flow
  python -m textflow.diagnose $R/ar_$n/flow/checkpoints/final.ckpt --steps 4 16 --blocks 64 --out $R/ar_$n/diagnostics
}
# call 1
for s in 1.0 0.5 0.25 0.125; do scale_sweep $s > $R/diag_$s.log 2>&1 & done
ar d4_prefix > $R/ar_d4_prefix.log 2>&1 &
ar d4_direct autoencoder.direct_latent=true > $R/ar_d4_direct.log 2>&1 &
ar d8_prefix autoencoder.latent_dim=8 autoencoder.latent_noise=0.3 > $R/ar_d8_prefix.log 2>&1 &
wait
# call 2
tube 0.125 > $R/tube_0.125.log 2>&1 & tube 0.25 > $R/tube_0.25.log 2>&1 &
wait
