#!/bin/bash
# Per-shape and pooled (seen / unseen) PushObj tables of an evaluate.py run over the seven shape conditions.
#
#   bash experiments/shape_tables.sh <eval workdir> <results dir> <adaptive mode> [<frozen eval workdir>]
#
# Copies the run's success.{md,csv}, config.json, curves and per-episode json/ into <results dir>, then writes
# with paired_runs.py, under <results dir>/budget/: <shape>_b{20,30} (success within 20 / 30 replans, frozen vs
# <adaptive mode>), <shape>_sym_b30 (the symmetry-aware test) and {seen,unseen}_b{20,30} (the shapes of each set
# pooled per seed). The frozen runs come from <frozen eval workdir> when given (e.g. a run of one adaptive mode
# paired with the frozen run of another workdir on the same episodes; paired_runs.py checks that).
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,10p "$0"; exit 2; fi
E=$1; R=$2; M=$3; F=${4:-$1}
PY=${PY:-python}
mkdir -p "$R/budget" "$R/json"
cp "$E/success.md" "$E/success.csv" "$E/config.json" "$R/"
cp "$E"/success_curve_*.png "$R/" 2>/dev/null || true
cp "$E"/results/*.json "$R/json/"
for s in T L Z plus I smallT square; do
  runs="frozen:$F/results/shape_${s}__frozen.json,adaptive:$E/results/shape_${s}__$M.json"
  for b in 20 30; do $PY experiments/paired_runs.py --runs="$runs" --budget=$b --out="$R/budget/shape_${s}_b$b" > /dev/null; done
  $PY experiments/paired_runs.py --runs="$runs" --metric=success_sym_any --out="$R/budget/shape_${s}_sym_b30" > /dev/null
done
pooled() {   # items sharing a label are pooled per seed
  local items=""
  for s in $1; do items+="frozen:$F/results/shape_${s}__frozen.json,"; done
  for s in $1; do items+="adaptive:$E/results/shape_${s}__$M.json,"; done
  echo "${items%,}"
}
for b in 20 30; do
  $PY experiments/paired_runs.py --runs="$(pooled "T L Z plus")" --budget=$b --out="$R/budget/seen_b$b"
  $PY experiments/paired_runs.py --runs="$(pooled "I smallT square")" --budget=$b --out="$R/budget/unseen_b$b"
done
