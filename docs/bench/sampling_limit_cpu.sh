#!/usr/bin/env bash
# Issue #17 on this CPU: sampling at the machine's limit (every sampler, K = 4 and 16, eager and compiled;
# adaptive at its default closeness resolution, 256 levels, and with continuous closeness,
# adaptive:levels=null) and the training-time diagnostics at 4 k, 50 k and 128 k vocabularies, after the
# tiled readout kernels (textflow/kernels/online.py). Run on an idle machine; docs/benchmarks.md.
#   CKPT=outputs/reproduce/fast/distill/checkpoints/distilled.ckpt bash docs/bench/sampling_limit_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}
OUT=${BENCH_OUT:-outputs/bench}
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive,adaptive:levels=null \
  --steps 4 --repeats 5 --out "$OUT"
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,commit,adaptive,adaptive:levels=null \
  --steps 16 --repeats 3 --out "$OUT"
# the same with the backbone compiled (sample.py compile=true): the first, untimed call pays the compilation
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 --repeats 5 \
  --compile --out "$OUT"
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,commit,adaptive --steps 16 --repeats 3 \
  --compile --out "$OUT"
python -m textflow.bench vocab --vocabs 4096,50257,131072 --preset dit_tiny --repeats 5 --out "$OUT"
python -m textflow.bench vocab --vocabs 4096,50257,131072 --preset dit_small --repeats 3 --out "$OUT"
