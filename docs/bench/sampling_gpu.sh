#!/usr/bin/env bash
# Issue #17 on a lent GPU, prepared for one device call (not yet run: no GPU was lent since it was written):
# sampling at the machine's limit. Trains the quickstart-size embedding model on the GPU (its 800 steps
# took about a minute on an H200, docs/benchmarks.md), then times every sampler on it at K = 4 and 16,
# batch 256 x 64 tokens, in fp32, under bf16 autocast, and bf16 with the backbone compiled, each against
# an 8192³ matmul in the same dtype measured in the same run.
#   OUT=outputs/bench bash docs/bench/sampling_gpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${OUT:-outputs/bench}
RUN=${RUN:-outputs/gpu_quickstart}
CKPT="$RUN/checkpoints/final.ckpt"
[ -f "$CKPT" ] || python train.py experiment=quickstart_embed trainer=gpu logger=none hydra.run.dir="$RUN"
B="python -m textflow.bench sampling --ckpt $CKPT --device cuda --steps 4,16 --batch-size 256 --repeats 5 --out $OUT"
$B --samplers ode,sde,commit,adaptive,adaptive:levels=null
$B --samplers ode,sde,commit,adaptive,adaptive:levels=null --bf16
$B --samplers ode,sde,commit,adaptive --bf16 --compile
# Speed at matched quality (needs the sweeps of docs/bench/quickstart_onehot_cpu.sh and its twin; their
# checkpoints are larger than a device call carries, so this line runs where they exist):
#   python -m textflow.bench matched --report SWEEP/report.csv --report GAMMA/report.csv --device cuda --out $OUT
