#!/usr/bin/env bash
# Issue #17 on this CPU, the fourth block of docs/benchmarks.md ("Sampling at the machine's limit"): adaLN's
# modulation and the gated residuals as single addcmul passes (textflow/backbones/dit.py), the argmax
# decode without the log-sum-exp pass (textflow/kernels/online.py, logsumexp=False), and weights reordered
# for oneDNN once per generate call (textflow/kernels/linear.py, reuse_packed_weights), and under
# torch.compile the oneDNN linears as one custom op.
# 0. ode K = 4, batch 32 x 64, in fresh processes alternating BASE (a worktree of the commit before the
#    change) and this tree, three rounds of 12 batches each (median of the last 10);
# 1. the tokens both versions draw from the same noise: ode and sde (gamma = 0.25) at K = 4 and 16, 64
#    samples, on the Muon quickstart and the one-hot quickstart;
# 2. bench sampling, every sampler at K = 4 twice, and K = 16 once, against the two-GEMM peak;
# 3. the same with the backbone compiled (--compile): inductor's fusions around the oneDNN linears, which
#    a compiled graph calls as the custom op textflow::onednn_linear, twice at K = 4; and the compiled
#    backbone against the eager one in one process, alternated call by call (15 pairs, one packing block).
# Run on an idle machine, from the repository root:
#   bash docs/bench/sampling_passes.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
BASE=${BASE:-9409e83}
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}
OUT=${BENCH_OUT:-outputs/bench}
TREE=$(mktemp -d)/base
git worktree add --detach "$TREE" "$BASE" >/dev/null
trap 'git worktree remove --force "$TREE"' EXIT
IDS=$(mktemp -d)

version() {  # run python (stdin, or the script after $1) with textflow from $1 (this tree's or the worktree's)
  # -P: neither the current directory nor the script's on sys.path, so PYTHONPATH alone says which textflow runs
  local which=$1
  shift
  if [ "$which" = base ]; then PYTHONPATH="$TREE" python -P "${@:--}"; else PYTHONPATH="$PWD" python -P "${@:--}"; fi
}

for round in 1 2 3; do
  for which in base new; do
    version $which docs/bench/ode_batch_times.py "$CKPT" "$which"
  done
done
for which in base new; do
  IDS="$IDS/$which.pt" version $which <<'PY'
import os
import torch
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

torch.set_num_threads(2)
drawn = {}
for run in ("quickstart", "quickstart_onehot"):
    loaded = load_run(f"outputs/{run}/run/checkpoints/final.ckpt")
    for name, knobs in (("ode", {}), ("sde", {"gamma": 0.25})):
        for k in (4, 16):
            sampler = Sampler(name=name, steps=k, **knobs)
            out = generate(sampler.denoiser(loaded, use_ema=True), sampler, num_samples=64,
                           seq_len=int(loaded.info["seq_len"]), seed=0, batch_size=32)
            drawn[f"{run} {name} K={k}"] = (out.ids, out.latents)
torch.save(drawn, os.environ["IDS"])
PY
done
python - "$IDS" <<'PY'
import sys
import torch
base, new = (torch.load(f"{sys.argv[1]}/{w}.pt") for w in ("base", "new"))
for key, (ids, latents) in base.items():
    same = (ids == new[key][0]).float().mean().item()
    mse = (latents - new[key][1]).pow(2).mean().item()
    print(f"{key}: tokens identical {same:.4f}, latent mean-square difference {mse:.1e} "
          f"(latent mean square {latents.pow(2).mean().item():.2f})")
PY
for round in 1 2; do
  python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 \
    --repeats 5 --out "$OUT"
done
python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,commit,adaptive --steps 16 --repeats 3 \
  --out "$OUT"
for round in 1 2; do
  python -m textflow.bench sampling --ckpt "$CKPT" --samplers ode,sde,student,commit,adaptive --steps 4 \
    --repeats 5 --compile --out "$OUT"
done
CKPT="$CKPT" python - <<'PY'
import os, statistics, time
import torch
from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.kernels.linear import reuse_packed_weights
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(load_run(os.environ["CKPT"]), use_ema=True)
backbones = {"eager": den.backbone, "compiled": torch.compile(den.backbone)}
times = {name: [] for name in backbones}
with reuse_packed_weights():
    for round in range(16):
        for name, backbone in backbones.items():
            den.backbone = backbone
            start = time.perf_counter()
            generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
            if round:  # the first round compiles
                times[name].append(time.perf_counter() - start)
paired = statistics.median(c - e for c, e in zip(times["compiled"], times["eager"]))
print(f"ode K=4, one process: eager median {statistics.median(times['eager']):.3f} s, compiled "
      f"{statistics.median(times['compiled']):.3f} s, paired difference {paired * 1e3:+.1f} ms")
PY
