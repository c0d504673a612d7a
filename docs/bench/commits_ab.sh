#!/usr/bin/env bash
# One `python -m textflow.bench` command at two commits: worktrees of BASE and NEW, alternated in fresh
# processes, ROUNDS times each (default 2), so both commits see the shared host in the same states. Rows
# and progress logs go to $BENCH_OUT/NAME-<time>/{base,new}/ (the bench's --out), the table lines that
# match KEEP (an extended regex; default: every line) to stdout, prefixed with base: / new:.
# Run from the repository root:
#   BASE=<commit> NEW=<commit> NAME=sampling-ab KEEP='^ *(sampler|ode|sde) ' bash docs/bench/commits_ab.sh \
#     sampling --ckpt CKPT --samplers ode,sde --steps 4 --compile
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
: "${BASE:?set BASE=<commit>}" "${NEW:?set NEW=<commit>}"
OUT=${BENCH_OUT:-outputs/bench}/${NAME:-ab}-$(date -u +%Y-%m-%dT%H-%M-%SZ)
TREES=$(mktemp -d)
git worktree add --detach "$TREES/base" "$BASE" >/dev/null
git worktree add --detach "$TREES/new" "$NEW" >/dev/null
trap 'git worktree remove --force "$TREES/base"; git worktree remove --force "$TREES/new"' EXIT
for round in $(seq "${ROUNDS:-2}"); do
  for which in base new; do
    mkdir -p "$OUT/$which"
    # -P: only PYTHONPATH says which textflow runs; progress bars go to a log beside the rows
    PYTHONPATH="$TREES/$which" python -P -m textflow.bench "$@" --out "$OUT/$which" \
      2>>"$OUT/$which/progress.log" | grep -E "${KEEP:-.}" | sed "s/^/$which: /"
  done
done
echo "raw rows: $OUT"
