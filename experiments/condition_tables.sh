#!/bin/bash
# Paired tables, per condition (and, for the seven PushObj shapes, pooled seen / unseen), of an evaluate.py run.
#
#   bash experiments/condition_tables.sh <eval workdir> <results dir> <adaptive mode> [<frozen eval workdir>]
#
# Copies the run's success.{md,csv}, config.json, curves and per-episode json/ into <results dir>, then writes
# with paired_runs.py, under <results dir>/budget/, for every condition the run has <adaptive mode> for:
# <condition>_b20 and <condition>_b<R> (success within 20 and within the run's R replans, frozen vs <adaptive
# mode>); for shape conditions also <condition>_sym_b<R> (the symmetry-aware test); and, when all seven shapes
# are there, {seen,unseen}_b{20,R} (the shapes of each set pooled per seed). The frozen runs come from <frozen
# eval workdir> when given (e.g. a run of one adaptive mode paired with the frozen run of another workdir on the
# same episodes; paired_runs.py checks that).
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,12p "$0"; exit 2; fi
E=$1; R=$2; M=$3; F=${4:-$1}
PY=${PY:-python}
shopt -s nullglob
runs_of_mode=("$E"/results/*__"$M".json)
if [ ${#runs_of_mode[@]} -eq 0 ]; then echo "No runs of mode '$M' in $E/results/" >&2; exit 2; fi
mkdir -p "$R/budget" "$R/json"
cp "$E/success.md" "$E/success.csv" "$E/config.json" "$R/"
for png in "$E"/success_curve_*.png; do cp "$png" "$R/"; done
cp "$E"/results/*.json "$R/json/"
replans=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['replans'])" "${runs_of_mode[0]}")
budgets=$( [ "$replans" -gt 20 ] && echo "20 $replans" || echo "$replans" )
for f in "${runs_of_mode[@]}"; do
  c=$(basename "$f" "__$M.json")
  runs="frozen:$F/results/${c}__frozen.json,adaptive:$f"
  for b in $budgets; do $PY experiments/paired_runs.py --runs="$runs" --budget=$b --out="$R/budget/${c}_b$b" > /dev/null; done
  case $c in shape_*)
    $PY experiments/paired_runs.py --runs="$runs" --metric=success_sym_any --out="$R/budget/${c}_sym_b$replans" > /dev/null;;
  esac
done
pooled() {   # items sharing a label are pooled per seed
  local items=""
  for s in $1; do items+="frozen:$F/results/shape_${s}__frozen.json,"; done
  for s in $1; do items+="adaptive:$E/results/shape_${s}__$M.json,"; done
  echo "${items%,}"
}
if ls "$E"/results/shape_{T,L,Z,plus,I,smallT,square}__"$M".json > /dev/null 2>&1; then
  for b in $budgets; do
    $PY experiments/paired_runs.py --runs="$(pooled "T L Z plus")" --budget=$b --out="$R/budget/seen_b$b"
    $PY experiments/paired_runs.py --runs="$(pooled "I smallT square")" --budget=$b --out="$R/budget/unseen_b$b"
  done
fi
