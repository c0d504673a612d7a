#!/usr/bin/env bash
# The training step, the readout cross-entropy and the readout diagnostics at 4 k, 50 k and 128 k
# vocabularies (bench vocab, dit_tiny) at two commits, alternated in fresh processes, twice
# (docs/bench/commits_ab.sh; docs/benchmarks.md, "Large vocabularies"). The defaults are the commit before
# and the commit that added textflow/kernels/tile_ops.py ("Sampling at the machine's limit", sixth block);
# the two-pass cross-entropy and the tied readout's own backward were measured with BASE=ee7d88a NEW=<its
# commit>. Run from the repository root:
#   bash docs/bench/vocab_ab.sh            # or: BASE=... NEW=... bash docs/bench/vocab_ab.sh
set -euo pipefail
BASE=${BASE:-ee1b15e} NEW=${NEW:-7e89d3c} NAME=vocab-ab KEEP='^ *(vocab|4096|50257|131072) ' \
  bash "$(dirname "$0")/commits_ab.sh" vocab --vocabs 4096,50257,131072 --preset dit_tiny --repeats 5
