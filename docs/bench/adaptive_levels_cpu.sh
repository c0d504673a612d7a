#!/usr/bin/env bash
# Issue #17: does adaptive's closeness resolution (sampler.levels=16, at most 17 times per step: its
# network call costs about what commit's does) change its quality or its noise? Two models, against the
# continuous-closeness points measured before (docs/samplers.md, "adaptive"):
# * the Muon quickstart of docs/bench/quickstart_cpu.sh, gamma 0.75, K = 4 and 8, seeds 0, 1, 2, beside
#   docs/bench/adaptive_seeds_cpu.sh;
# * the shipped diag_tube model of docs/bench/adaptive_tube_cpu.sh (the tube regime, where nearly every
#   token reads as close to a boundary), gamma 0.1, 0.25, 0.5, K = 4 and 8, seeds 0, 1, 2.
# 64 samples of 64 tokens per point. Each sweep's report puts the levels=16 rows beside the continuous ones.
# Then, from the same noise, the share of tokens that 16, 64 and 256 levels (256: the default since
# 2026-11-30) change against continuous closeness on the quickstart, gamma 0.75 and 1.5, K = 4, 8, 16, and
# what a call costs at each resolution (bench sampling on the distilled quickstart-size model, idle CPU).
#   bash docs/bench/adaptive_levels_cpu.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
OUT=${QUICKSTART_OUT:-outputs/quickstart}
TUBE=${TUBE_OUT:-outputs/tube_adaptive}
COMMON="seed=0,1,2 num_samples=64 batch_size=64 print_samples=0"
python sample.py -m ckpt_path="$OUT/run/checkpoints/final.ckpt" sampler=adaptive sampler.steps=4,8 \
  sampler.gamma=0.75 sampler.levels=16 $COMMON \
  hydra.sweep.dir="$OUT/adaptive_levels" > "$OUT.adaptive_levels.log" 2>&1
python -m textflow.sampling.report "$OUT"
python sample.py -m ckpt_path="$TUBE/run/checkpoints/final.ckpt" sampler=adaptive sampler.steps=4,8 \
  sampler.gamma=0.1,0.25,0.5 sampler.levels=16 $COMMON \
  hydra.sweep.dir="$TUBE/levels" > "$TUBE/levels.log" 2>&1
python -m textflow.sampling.report "$TUBE"
for n in 16 64 256; do for g in 0.75 1.5; do
  python -m textflow.sampling.fidelity "$OUT/run/checkpoints/final.ckpt" --sampler "adaptive:levels=$n:gamma=$g" \
    --reference "adaptive:levels=null:gamma=$g" --reference-steps same --steps 4 8 16 --num-samples 64 \
    --out "$OUT/fidelity_levels/levels${n}_gamma$g"
done; done
python -m textflow.bench sampling --ckpt "${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}" \
  --samplers ode,adaptive:levels=null,adaptive:levels=16,adaptive:levels=64,adaptive:levels=256 --steps 4,16 \
  --repeats 3 --out "${BENCH_OUT:-outputs/bench}"
# one figure of the agreement per resolution (docs/figures/adaptive_levels_agreement.png)
python - "$OUT/fidelity_levels" <<'PY'
import json, sys
from pathlib import Path

from textflow.plots import finish, new_axes

root = Path(sys.argv[1])
fig, ax = new_axes()
for n, marker in (("16", "o"), ("64", "s"), ("256", "^")):
    for gamma, style in (("0.75", "-"), ("1.5", "--")):
        rows = json.loads((root / f"levels{n}_gamma{gamma}" / "fidelity.json").read_text())
        ax.plot([r["steps"] for r in rows], [100 * r["token_agreement"] for r in rows], marker + style,
                label=f"{n} levels, γ = {gamma}")
ax.set_xscale("log", base=2)
ax.set_xlabel("K (steps)")
ax.set_ylabel("% of tokens equal to continuous closeness's")
ax.set_title("adaptive: closeness levels against continuous closeness, same noise", fontsize=9)
print(finish(fig, ax, "docs/figures/adaptive_levels_agreement.png"))
PY
