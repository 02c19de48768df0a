#!/bin/bash
# Tables for the PushObj stop-grad model (paper's objective) vs the VICReg model of the same data and recipe
# (data-scale cell K=4 x 1000), GD 100, evaluation seed 2. Into results/pushobj_stopgrad/.
cd "$(dirname "$0")/../.."; PY=${PY:-.venv/bin/python}   # from the repository root
P=workdirs/pushobj_stopgrad; V=workdirs/data_scale/k4_n1000/eval; R=results/pushobj_stopgrad
mkdir -p $R; cp $P/evidence.json $P/metrics.csv $R/
PY=$PY bash experiments/condition_tables.sh $P/shapes_gd $R/shapes_gd predlastblock+enclast > /dev/null 2>&1
[ -d $P/shapes_gd_papercost ] && PY=$PY bash experiments/condition_tables.sh $P/shapes_gd_papercost $R/shapes_gd_papercost predlastblock+enclast > /dev/null 2>&1
pool() {  # label dir mode shapes
  local out=""; for s in $4; do out+="$1:$2/results/shape_${s}__$3.json,"; done; echo "$out"
}
A=predlastblock+enclast
for set in "seen:T L Z plus" "unseen:I smallT square"; do
  n=${set%%:*}; sh=${set#*:}
  runs="$(pool vicreg_frozen $V frozen "$sh")$(pool vicreg_adaptive $V $A "$sh")$(pool stopgrad_frozen $P/shapes_gd frozen "$sh")$(pool stopgrad_adaptive $P/shapes_gd $A "$sh")"
  $PY experiments/paired_runs.py --runs="${runs%,}" --out=$R/vs_vicreg_${n} 2>&1 | grep -v -i warn
done
if [ -d $P/shapes_gd_papercost ]; then
  sh="I smallT square"
  runs="$(pool stopgrad_frozen_cpucost $P/shapes_gd frozen "$sh")$(pool stopgrad_frozen_papercost $P/shapes_gd_papercost frozen "$sh")$(pool stopgrad_adaptive_papercost $P/shapes_gd_papercost $A "$sh")"
  $PY experiments/paired_runs.py --runs="${runs%,}" --out=$R/papercost_unseen 2>&1 | grep -v -i warn
  runs="$(pool frozen $P/shapes_gd_papercost frozen "$sh")$(pool adaptive $P/shapes_gd_papercost $A "$sh")"
  $PY experiments/paired_runs.py --runs="${runs%,}" --out=$R/papercost_unseen_adaptive 2>&1 | grep -v -i warn
fi
