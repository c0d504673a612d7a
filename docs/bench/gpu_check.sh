#!/bin/bash
# The device checks behind the H200 rows of docs/benchmarks.md, run from the repo root on a GPU
# machine with textflow importable (pip install -e .) and the corpus cache in $TEXTFLOW_CACHE; OUT = results folder.
set -x
OUT=${OUT:-outputs/bench}
B="python -m textflow.bench"
C="--out $OUT"
$B train --device cuda --precision bf16-mixed --preset dit_small --batch 256 --seq-len 128 --steps 40 $C
$B train --device cuda --precision bf16-mixed --preset dit_small --batch 256 --seq-len 128 --steps 40 --compile $C
$B train --device cuda --precision bf16-mixed --preset dit_base --batch 64 --seq-len 512 --steps 30 $C
$B train --device cuda --precision bf16-mixed --preset dit_base --batch 64 --seq-len 512 --steps 30 --compile $C
$B scaling --device cuda --bf16 --lengths 128,512,1024 --steps 1,4,8,16,32 --batch-size 32 $C
mkdir -p $OUT/base
$B scaling --device cuda --bf16 --lengths 512,1024 --steps 1,4,32 --batch-size 32 --width 768 --depth 12 --heads 12 \
  --out $OUT/base
$B train --device cuda --precision bf16-mixed --preset dit_small --batch 256 --seq-len 128 --steps 60 --compile \
  --override data.num_workers=4 --override data.pin_memory=true $C
$B train --device cuda --precision bf16-mixed --preset dit_base --batch 64 --seq-len 512 --steps 40 --compile \
  --override data.num_workers=4 --override data.pin_memory=true $C
$B scaling --device cuda --bf16 --compile --lengths 512,1024 --steps 1,4,32 --batch-size 32 --width 768 --depth 12 \
  --heads 12 $C
