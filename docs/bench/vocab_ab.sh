#!/usr/bin/env bash
# The training step, the readout cross-entropy and the readout diagnostics at 4 k, 50 k and 128 k
# vocabularies (bench vocab, dit_tiny) at two commits: worktrees of BASE and NEW, alternated in fresh
# processes, twice (docs/benchmarks.md, "Large vocabularies"). The defaults are the commit before and the
# commit that added textflow/kernels/tile_ops.py ("Sampling at the machine's limit", sixth block); the
# two-pass cross-entropy and the tied readout's own backward were measured with BASE=ee7d88a NEW=<its
# commit>. Run from the repository root:
#   bash docs/bench/vocab_ab.sh            # or: BASE=... NEW=... bash docs/bench/vocab_ab.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
BASE=${BASE:-ee1b15e}
NEW=${NEW:-7e89d3c}
OUT=${BENCH_OUT:-outputs/bench}/vocab-ab-$(date -u +%Y-%m-%dT%H-%M-%SZ)
TREES=$(mktemp -d)
git worktree add --detach "$TREES/base" "$BASE" >/dev/null
git worktree add --detach "$TREES/new" "$NEW" >/dev/null
trap 'git worktree remove --force "$TREES/base"; git worktree remove --force "$TREES/new"' EXIT
for round in 1 2; do
  for which in base new; do
    mkdir -p "$OUT/$which"
    # -P: only PYTHONPATH says which textflow runs; progress bars go to a log beside the rows
    PYTHONPATH="$TREES/$which" python -P -m textflow.bench vocab --vocabs 4096,50257,131072 --preset dit_tiny \
      --repeats 5 --out "$OUT/$which" 2>>"$OUT/$which/progress.log" | grep -E "^ *(vocab|4096|50257|131072) " \
      | sed "s/^/$which: /"
  done
done
echo "raw rows: $OUT"
